// Package facts holds what both stores share of the report facts
// (store.HouseholdFacts): the tables' schema and the rows of a batch, as
// arguments for multi-row statements either engine runs.
package facts

import (
	_ "embed"

	"github.com/rasoat/rasoat/server/store"
)

// Schema creates the facts tables; the statements are the same on SQLite
// and PostgreSQL.
//
//go:embed schema.sql
var Schema string

// Columns of household_facts, in Row's order.
const Columns = "household_id, village_code, urban, minority_head, members, class, standard, deprivations, indicators, md_poor, income_per_capita, review_id, round, list_year, review_date, status, status_at, surveyor, due_date"

// NColumns is the number of Columns.
const NColumns = 19

// Deprived returns f's household_deprived rows: household, indicator,
// village, poor.
func Deprived(f *store.HouseholdFacts) [][]any {
	poor := 0
	if f.Class == "POOR" {
		poor = 1
	}
	out := make([][]any, len(f.Deprived))
	for i, d := range f.Deprived {
		out[i] = []any{f.HouseholdID, d, f.VillageCode, poor}
	}
	return out
}

// DeprivedColumns are household_deprived's, in Deprived's order.
var DeprivedColumns = []string{"household_id", "indicator", "village_code", "poor"}

// Row returns f's household_facts values in Columns' order.
func Row(f *store.HouseholdFacts) []any {
	urban, md := 0, 0
	if f.Urban {
		urban = 1
	}
	if f.MDPoor {
		md = 1
	}
	return []any{f.HouseholdID, f.VillageCode, urban, f.MinorityHead, f.Members, f.Class, f.Standard, f.Deprivations, f.Indicators, md, f.IncomePerCapita,
		f.ReviewID, f.Round, f.ListYear, f.ReviewDate, f.Status, f.StatusAt, f.Surveyor, f.DueDate}
}
