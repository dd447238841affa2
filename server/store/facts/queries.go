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
