// Package facts holds what both stores share of the report facts
// (store.HouseholdFacts): the tables' schema and the rows of a batch, as
// arguments for multi-row statements either engine runs.
package facts

import (
	_ "embed"
	"fmt"
	"math/rand/v2"

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

// Synthetic returns n households' facts spread over villages (codes
// "<commune>-01" on), with classifications, deprivations and review
// states in realistic shares, the same for a seed: for benchmarks of the
// report queries, which read facts only.
func Synthetic(n, villages int, commune string, seed uint64) []store.HouseholdFacts {
	r := rand.New(rand.NewPCG(seed, 1))
	indicators := []string{"EMPLOYMENT", "DEPENDANTS", "NUTRITION", "HEALTH_INSURANCE", "ADULT_EDUCATION", "CHILD_SCHOOLING",
		"HOUSING_QUALITY", "HOUSING_AREA", "WATER", "LATRINE", "TELECOM", "INFORMATION"}
	classes := []string{"POOR", "NEAR_POOR", "NEAR_POOR", "MIDDLE", "NOT_POOR", "NOT_POOR", "NOT_POOR", "NOT_POOR", "NOT_POOR", ""}
	statuses := []string{"draft", "submitted", "agreed", "posted", "passed", "decided", "decided", "decided"}
	out := make([]store.HouseholdFacts, n)
	for i := range out {
		f := &out[i]
		f.HouseholdID = fmt.Sprintf("%08x-0000-7000-8000-%012x", seed, i)
		f.VillageCode = fmt.Sprintf("%s-%02d", commune, 1+i%villages)
		f.Urban = r.IntN(5) == 0
		f.MinorityHead = r.IntN(3) - 1
		f.Members = 1 + r.IntN(7)
		f.Class = classes[r.IntN(len(classes))]
		if f.Class != "" {
			f.Standard, f.Indicators = "2021-2025", len(indicators)
			f.Deprivations = r.IntN(6)
			for _, j := range r.Perm(len(indicators))[:f.Deprivations] {
				f.Deprived = append(f.Deprived, indicators[j])
			}
			f.MDPoor = f.Deprivations >= 3
			f.IncomePerCapita = int64(500_000 + r.IntN(40)*100_000)
		}
		if r.IntN(10) < 8 {
			f.ReviewID = fmt.Sprintf("%08x-0001-7000-8000-%012x", seed, i)
			f.Round, f.ListYear, f.ReviewDate = "periodic", 2026, "2025-10-20"
			f.Status = statuses[r.IntN(len(statuses))]
			f.Surveyor = fmt.Sprintf("col%d", 1+i%(villages*2))
			if r.IntN(20) == 0 {
				f.Round, f.ListYear, f.DueDate = "regular", 2025, "2025-11-30"
			}
		}
		results := []string{"POOR", "NEAR_POOR", "MIDDLE", "NOT_POOR", "NOT_POOR"}
		for y := 2025; y <= 2026; y++ {
			if r.IntN(5) > 0 {
				f.Decisions = append(f.Decisions, store.DecidedFact{ListYear: y, ReviewID: fmt.Sprintf("%08x-%04x-7000-8000-%012x", seed, y, i),
					Standard: "2021-2025", Result: results[r.IntN(len(results))], Deprivations: r.IntN(6)})
			}
		}
	}
	return out
}

// SyntheticProvince is Synthetic over communes communes of perCommune
// households in villages villages each (commune codes 10001 on), and the
// villages' codes.
func SyntheticProvince(communes, perCommune, villages int) ([]store.HouseholdFacts, []string) {
	var fs []store.HouseholdFacts
	var codes []string
	for c := range communes {
		commune := fmt.Sprintf("%05d", 10001+c)
		fs = append(fs, Synthetic(perCommune, villages, commune, uint64(c+1))...)
		for v := 1; v <= villages; v++ {
			codes = append(codes, fmt.Sprintf("%s-%02d", commune, v))
		}
	}
	return fs, codes
}
