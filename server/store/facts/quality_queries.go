package facts

import "strings"

// The quality checks' queries (internal/quality), written once for both
// engines as the report's are (queries.go).

// DecidedFiguresSQL: (household id). A household's decided results with their
// figures, for the quality checks' last round.
const DecidedFiguresSQL = `SELECT list_year, review_id, standard, result, deprivations, floor_area_m2, income_per_capita
FROM household_decided WHERE household_id = ?`

// SamePeopleSQL: (household id, limit) after keys' arguments, which the
// engine writes in keys ("person_key IN (?, ?)", "person_key = ANY(?)").
// The other households with a member of one of the keys, by the key's
// index: a household holding one person twice (entered twice) once;
// with its head's name, to name it to the chair.
func SamePeopleSQL(keys string) string {
	return `SELECT DISTINCT p.person_key, p.household_id, p.village_code, COALESCE(f.head_name, '') FROM household_people p
LEFT JOIN household_facts f ON f.household_id = p.household_id
WHERE p.` + keys + ` AND p.household_id <> ?
ORDER BY p.person_key, p.household_id LIMIT ?`
}

// FlagsSQL: (list year, when byYear) + where's arguments. Each stored
// flag of the villages' households still to be decided (factsJoin), with
// the acknowledgement on the household's latest review, by village,
// household and code.
func FlagsSQL(where string, byYear bool) string {
	return `SELECT fl.household_id, f.head_name, fl.village_code, fl.code, fl.detail,
	CASE WHEN a.household_id IS NULL THEN 0 ELSE 1 END, COALESCE(a.comment, '')
FROM household_flags fl
LEFT JOIN household_acks a ON a.household_id = fl.household_id AND a.code = fl.code` +
		factsJoin("fl", byYear) + and(" WHERE ", qualifyAs("fl", where)) + `
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
	return `SELECT p.household_id, f.head_name, p.village_code, p.full_name, p.birth_date, q.household_id, q.village_code,
	COALESCE(qf.head_name, ''), CASE WHEN a.household_id IS NULL THEN 0 ELSE 1 END, COALESCE(a.comment, '')
FROM household_people p
JOIN household_people q ON q.person_key = p.person_key AND q.household_id <> p.household_id
LEFT JOIN household_facts qf ON qf.household_id = q.household_id
LEFT JOIN household_acks a ON a.household_id = p.household_id AND a.code = 'DUPLICATE_PERSON'` +
		factsJoin("p", byYear) + `
WHERE p.person_key IN (SELECT person_key FROM household_people GROUP BY person_key HAVING COUNT(DISTINCT household_id) > 1)` +
		and(" AND ", qualifyAs("p", where)) + `
ORDER BY p.village_code, p.household_id, p.person_key, q.household_id`
}

// factsJoin keeps the households whose latest review is not closed
// (decided, refused, or the legacy approved): their flags can no longer be
// acknowledged (a decided household is locked), so listing them would
// count, for good, flags nobody can clear; with byYear, only those whose
// latest review decides the list year.
func factsJoin(t string, byYear bool) string {
	j := "\nJOIN household_facts f ON f.household_id = " + t + ".household_id AND f.status NOT IN ('decided', 'refused', 'approved')"
	if byYear {
		j += " AND f.list_year = ?"
	}
	return j
}

// qualifyAs names the village column in where as table t's.
func qualifyAs(t, where string) string {
	return strings.ReplaceAll(where, "village_code", t+".village_code")
}
