package facts

import (
	"strconv"
	"strings"
)

// The report's queries over the facts tables, written once for both
// engines with ? placeholders (Rebind numbers them for PostgreSQL); where
// is the village filter each engine writes ("" for every village), after
// the placeholders the query's own arguments take. Each reads the facts
// of the villages once, by the village index, and groups in the database.

// GroupsSQL: (list year) + where's arguments.
func GroupsSQL(where string) string {
	return `SELECT village_code, urban, minority_head, COUNT(*),
	SUM(CASE WHEN list_year = ? THEN 1 ELSE 0 END),
	SUM(CASE WHEN class = 'POOR' THEN 1 ELSE 0 END),
	SUM(CASE WHEN class = 'NEAR_POOR' THEN 1 ELSE 0 END),
	SUM(CASE WHEN class = 'MIDDLE' THEN 1 ELSE 0 END),
	SUM(CASE WHEN class = 'NOT_POOR' THEN 1 ELSE 0 END),
	SUM(CASE WHEN class = '' THEN 1 ELSE 0 END),
	SUM(md_poor),
	SUM(CASE WHEN md_poor = 1 THEN CAST(deprivations AS DOUBLE PRECISION) / indicators ELSE 0 END)
FROM household_facts` + and(" WHERE ", where) + `
GROUP BY village_code, urban, minority_head`
}

// IndicatorsSQL: where's arguments.
func IndicatorsSQL(where string) string {
	return `SELECT indicator, COUNT(*), SUM(poor)
FROM household_deprived` + and(" WHERE ", where) + `
GROUP BY indicator`
}

// ProgressSQL: (today, list year) + where's arguments.
func ProgressSQL(where string) string {
	return `SELECT village_code, surveyor, status, COUNT(*),
	SUM(CASE WHEN due_date <> '' AND due_date < ? AND status NOT IN ('decided', 'refused') THEN 1 ELSE 0 END)
FROM household_facts WHERE list_year = ? AND review_id <> ''` + and(" AND ", where) + `
GROUP BY village_code, surveyor, status`
}

func and(prefix, where string) string {
	if where == "" {
		return ""
	}
	return prefix + where
}

// qualify names household_facts' columns in where as f's.
func qualify(where string) string { return strings.ReplaceAll(where, "village_code", "f.village_code") }

// Rebind turns the ? placeholders of q into PostgreSQL's $1, $2, ….
func Rebind(q string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// TransitionsSQL: (list year, list year) + where's arguments. Each
// household decided for the list year, with its result the year before
// (” when it was not decided then).
func TransitionsSQL(where string) string {
	return `SELECT COALESCE(p.result, ''), c.result, COUNT(*)
FROM household_decided c
JOIN household_facts f ON f.household_id = c.household_id
LEFT JOIN household_decided p ON p.household_id = c.household_id AND p.list_year = ? - 1
WHERE c.list_year = ?` + and(" AND ", qualify(where)) + `
GROUP BY COALESCE(p.result, ''), c.result`
}

// DecidedSQL: (household id). A household's decided results with their
// figures, for the quality checks' last round.
const DecidedSQL = `SELECT list_year, review_id, standard, result, deprivations, floor_area_m2, income_per_capita
FROM household_decided WHERE household_id = ?`

// SamePeopleSQL: (household id, limit) after keys' arguments, which the
// engine writes in keys ("person_key IN (?, ?)", "person_key = ANY(?)").
// The members of other households with one of the keys, by the key's
// index.
func SamePeopleSQL(keys string) string {
	return `SELECT person_key, household_id, village_code FROM household_people
WHERE ` + keys + ` AND household_id <> ?
ORDER BY person_key, household_id LIMIT ?`
}

// FlagsSQL: (list year, when byYear) + where's arguments. Each stored
// flag of the villages' households with the acknowledgement on the
// household's latest review, by village, household and code.
func FlagsSQL(where string, byYear bool) string {
	return `SELECT fl.household_id, fl.village_code, fl.code, fl.detail,
	CASE WHEN a.household_id IS NULL THEN 0 ELSE 1 END, COALESCE(a.comment, '')
FROM household_flags fl
LEFT JOIN household_acks a ON a.household_id = fl.household_id AND a.code = fl.code` +
		yearJoin("fl", byYear) + and(" WHERE ", qualifyAs("fl", where)) + `
ORDER BY fl.village_code, fl.household_id, fl.code`
}

// DuplicatesSQL: (list year, when byYear) + where's arguments. Each
// member of the villages' households whose name and birth date
// (person_key) are on another household's roster, anywhere in the store,
// with that household and the acknowledgement of DUPLICATE_PERSON. The
// keys held by two households or more are found first, by one pass over
// the key's index, so the cost is the store's people once, not once per
// member.
func DuplicatesSQL(where string, byYear bool) string {
	return `SELECT p.household_id, p.village_code, p.full_name, p.birth_date, q.household_id, q.village_code,
	CASE WHEN a.household_id IS NULL THEN 0 ELSE 1 END, COALESCE(a.comment, '')
FROM household_people p
JOIN household_people q ON q.person_key = p.person_key AND q.household_id <> p.household_id
LEFT JOIN household_acks a ON a.household_id = p.household_id AND a.code = 'DUPLICATE_PERSON'` +
		yearJoin("p", byYear) + `
WHERE p.person_key IN (SELECT person_key FROM household_people GROUP BY person_key HAVING COUNT(DISTINCT household_id) > 1)` +
		and(" AND ", qualifyAs("p", where)) + `
ORDER BY p.village_code, p.household_id, p.person_key, q.household_id`
}

func yearJoin(t string, byYear bool) string {
	if !byYear {
		return ""
	}
	return "\nJOIN household_facts f ON f.household_id = " + t + ".household_id AND f.list_year = ?"
}

// qualifyAs names the village column in where as table t's.
func qualifyAs(t, where string) string {
	return strings.ReplaceAll(where, "village_code", t+".village_code")
}
