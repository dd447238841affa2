package facts

import (
	"slices"
	"strconv"
	"strings"

	"github.com/rasoat/rasoat/server/store"
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

// DecidedSQL: (the list year, five times) + where's arguments. The households with a result decided
// for the list year or the year before, by village, their result the year
// before and now (” when not decided then), and whether they were decided
// poor for a year before that (tái nghèo): the transitions and the year
// before's base in one pass.
//
// A household's result for a year is its latest decided review's (the
// greatest review id: UUIDv7, the review started last), so a regular
// review changing the list counts once, with its result: the row marked
// latest when the facts were written. Earlier years' rows count only when
// poor.
func DecidedSQL(where string) string {
	return `SELECT f.village_code, COALESCE(h.prev, ''), COALESCE(h.cur, ''), h.earlier, COUNT(*)
FROM (SELECT household_id,
	MAX(CASE WHEN list_year = ? THEN result END) AS cur,
	MAX(CASE WHEN list_year = ? - 1 THEN result END) AS prev,
	MAX(CASE WHEN list_year < ? - 1 THEN 1 ELSE 0 END) AS earlier
	FROM household_decided WHERE latest = 1 AND list_year <= ? AND (list_year >= ? - 1 OR result = 'POOR') GROUP BY household_id) h
JOIN household_facts f ON f.household_id = h.household_id
WHERE (h.cur IS NOT NULL OR h.prev IS NOT NULL)` + and(" AND ", qualify(where)) + `
GROUP BY f.village_code, COALESCE(h.prev, ''), COALESCE(h.cur, ''), h.earlier`
}

// Decided adds a DecidedSQL row to r: a transition when decided now, the
// year before's base when decided then.
func Decided(r *store.ReportRows, village, prev, cur string, earlier bool, n int) {
	if cur != "" {
		i := slices.IndexFunc(r.Transitions, func(t store.ReportTransition) bool {
			return t.From == prev && t.To == cur && t.PoorEarlier == earlier
		})
		if i < 0 {
			r.Transitions = append(r.Transitions, store.ReportTransition{From: prev, To: cur, PoorEarlier: earlier})
			i = len(r.Transitions) - 1
		}
		r.Transitions[i].Households += n
	}
	if prev != "" {
		i := slices.IndexFunc(r.Previous, func(d store.ReportDecided) bool { return d.Village == village })
		if i < 0 {
			r.Previous = append(r.Previous, store.ReportDecided{Village: village})
			i = len(r.Previous) - 1
		}
		d := &r.Previous[i]
		d.Decided += n
		switch prev {
		case "POOR":
			d.Poor += n
		case "NEAR_POOR":
			d.NearPoor += n
		}
	}
}

// AnyDeprivedSQL returns the query counting, for each set of indicators
// (numbered from 0) and village, the poor households deprived in any of
// the set's, and its arguments, which where's follow. The sets are one
// VALUES table joined to household_deprived, so every set is one scan of
// the poor households' deprivations.
func AnyDeprivedSQL(where string, sets [][]string) (string, []any) {
	var b strings.Builder
	var args []any
	b.WriteString(`SELECT s.column1, d.village_code, COUNT(DISTINCT d.household_id)
FROM household_deprived d
JOIN (VALUES `)
	first := true
	for i, set := range sets {
		for _, ind := range set {
			if !first {
				b.WriteString(", ")
			}
			first = false
			b.WriteString("(CAST(? AS INTEGER), CAST(? AS TEXT))")
			args = append(args, i, ind)
		}
	}
	b.WriteString(`) s ON s.column2 = d.indicator
WHERE d.poor = 1` + and(" AND ", where) + `
GROUP BY s.column1, d.village_code`)
	return b.String(), args
}

// WatchSQL returns the watch list's query and its arguments, which
// where's follow and, unless count, the limit follows: with count, the
// number of households on it; without, the first Limit of them, most at
// risk first (both reasons, then more deprivations, then lower income,
// then the id, so the order is the same on both engines).
func WatchSQL(where string, q store.WatchQuery, count bool) (string, []any) {
	var near strings.Builder
	var args []any
	for i, l := range q.Lines {
		if i > 0 {
			near.WriteString(" OR ")
		}
		urban := 0
		if l.Urban {
			urban = 1
		}
		near.WriteString("(standard = ? AND urban = ? AND income_per_capita <= ?)")
		args = append(args, l.Standard, urban, l.Max)
	}
	if len(q.Lines) == 0 {
		near.WriteString("1 = 0")
	}
	args = append(args, q.MinDeprivations)
	inner := `SELECT household_id, head_name, village_code, class, standard, urban, income_per_capita, deprivations,
	CASE WHEN class IN ('MIDDLE', 'NOT_POOR') AND income_per_capita > 0 AND (` + near.String() + `) THEN 1 ELSE 0 END AS near_line,
	CASE WHEN class IN ('NEAR_POOR', 'MIDDLE', 'NOT_POOR') AND md_poor = 0 AND deprivations >= ? THEN 1 ELSE 0 END AS many
FROM household_facts` + and(" WHERE ", where)
	if count {
		return "SELECT COUNT(*) FROM (" + inner + ") w WHERE near_line = 1 OR many = 1", args
	}
	return `SELECT household_id, head_name, village_code, class, standard, urban, income_per_capita, deprivations, near_line, many
FROM (` + inner + `) w WHERE near_line = 1 OR many = 1
ORDER BY near_line + many DESC, deprivations DESC, income_per_capita, household_id
LIMIT ?`, args
}
