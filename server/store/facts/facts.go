// Package facts holds what both stores share of the report facts
// (store.HouseholdFacts): the tables' schema and the rows of a batch, as
// arguments for multi-row statements either engine runs.
package facts

import (
	"cmp"
	_ "embed"
	"slices"
	"strings"

	"github.com/rasoat/rasoat/internal/quality"
	"github.com/rasoat/rasoat/server/store"
)

// Schema creates the facts tables; the statements are the same on SQLite
// and PostgreSQL.
//
//go:embed schema.sql
var Schema string

// QualitySchema adds the quality checks' facts (SQLite version 6,
// PostgreSQL migration 3); the statements are the same on both.
//
//go:embed quality.sql
var QualitySchema string

// Columns of household_facts, in Row's order.
const Columns = "household_id, village_code, urban, minority_head, members, class, standard, deprivations, indicators, md_poor, income_per_capita, review_id, round, list_year, review_date, status, status_at, surveyor, due_date, head_name"

// NColumns is the number of Columns.
const NColumns = 20

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
		f.ReviewID, f.Round, f.ListYear, f.ReviewDate, f.Status, f.StatusAt, f.Surveyor, f.DueDate, f.HeadName}
}

// DecidedColumns are household_decided's, in DecidedRows' order.
var DecidedColumns = []string{"household_id", "list_year", "review_id", "standard", "result", "deprivations", "floor_area_m2", "income_per_capita", "latest"}

// DecidedRows returns f's household_decided rows, each with latest set
// when it is its list year's latest decided review (the greatest id):
// the household's result for that year.
func DecidedRows(f *store.HouseholdFacts) [][]any {
	out := make([][]any, len(f.Decisions))
	for i, d := range f.Decisions {
		latest := int32(1)
		for _, e := range f.Decisions {
			if e.ListYear == d.ListYear && e.ReviewID > d.ReviewID {
				latest = 0
			}
		}
		out[i] = []any{f.HouseholdID, int32(d.ListYear), d.ReviewID, d.Standard, d.Result, int32(d.Deprivations), d.FloorAreaM2, d.IncomePerCapita, latest}
	}
	return out
}

// LatestSchema adds household_decided.latest (SQLite schema 7, PostgreSQL
// migration 4): a report reads each household's result for a year as one
// row, where grouping every decision by household to find its latest
// took a province's report 1 to 2 s of its 2.
const LatestSchema = `
ALTER TABLE household_decided ADD COLUMN latest INTEGER NOT NULL DEFAULT 1;
UPDATE household_decided SET latest = 0 WHERE review_id < (SELECT MAX(d.review_id) FROM household_decided d
	WHERE d.household_id = household_decided.household_id AND d.list_year = household_decided.list_year);
`

// HeadNameSchema adds household_facts.head_name (SQLite schema 10,
// PostgreSQL migration 6), so that the watch list and the flag list name
// each household's head, not only its id; every household's facts are
// derived again (the store's SetDeriver finds them missing).
const HeadNameSchema = `
ALTER TABLE household_facts ADD COLUMN head_name TEXT NOT NULL DEFAULT '';
DELETE FROM household_facts;
`

// FlagColumns are household_flags', in Flags' order.
var FlagColumns = []string{"household_id", "code", "village_code", "detail"}

// Flags returns f's household_flags rows.
func Flags(f *store.HouseholdFacts) [][]any {
	out := make([][]any, len(f.Flags))
	for i, fl := range f.Flags {
		out[i] = []any{f.HouseholdID, fl.Code, f.VillageCode, fl.Detail}
	}
	return out
}

// AckColumns are household_acks', in Acks' order.
var AckColumns = []string{"household_id", "code", "comment"}

// Acks returns f's household_acks rows, by code.
func Acks(f *store.HouseholdFacts) [][]any {
	codes := make([]string, 0, len(f.Acks))
	for c := range f.Acks {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	out := make([][]any, len(codes))
	for i, c := range codes {
		out[i] = []any{f.HouseholdID, c, f.Acks[c]}
	}
	return out
}

// PeopleColumns are household_people's, in People's order.
var PeopleColumns = []string{"household_id", "member_id", "village_code", "person_key", "full_name", "birth_date"}

// People returns f's household_people rows.
func People(f *store.HouseholdFacts) [][]any {
	out := make([][]any, len(f.People))
	for i, p := range f.People {
		out[i] = []any{f.HouseholdID, p.MemberID, f.VillageCode, p.Key, p.FullName, p.BirthDate}
	}
	return out
}

// Duplicate is one row of DuplicatesSQL: a member of a household of the
// listing whose name and birth date are on another household's roster.
type Duplicate struct {
	HouseholdID, HeadName, Village, FullName, BirthDate string
	OtherHousehold, OtherVillage, OtherHead             string
	Acked                                               bool
	Comment                                             string
}

// maxDuplicateDetails bounds the other households one DUPLICATE_PERSON
// flag names.
const maxDuplicateDetails = 5

// WithDuplicates adds to rows (by village, household, code) one
// DUPLICATE_PERSON flag per household of dups (in DuplicatesSQL's
// order), naming each member and the other household, which is named
// only when it is in villages (the caller's scope): outside, it is "a
// household of another unit", so a listing never shows what the caller
// may not read.
func WithDuplicates(rows []store.FlagRow, dups []Duplicate, villages store.Villages) []store.FlagRow {
	if len(dups) == 0 {
		return rows
	}
	var add []store.FlagRow
	for i := 0; i < len(dups); {
		j := i
		var parts []string
		for ; j < len(dups) && dups[j].HouseholdID == dups[i].HouseholdID; j++ {
			d := dups[j]
			if len(parts) == maxDuplicateDetails {
				parts = append(parts, "…")
				continue
			}
			if len(parts) > maxDuplicateDetails {
				continue
			}
			other := "một hộ thuộc đơn vị khác"
			if villages.Has(d.OtherVillage) {
				other = quality.OtherHousehold(d.OtherHead, d.OtherHousehold, d.OtherVillage)
			}
			part := quality.Duplicate(d.FullName, d.BirthDate, other)
			if len(parts) > 0 && parts[len(parts)-1] == part {
				continue // one person entered twice on a roster: said once
			}
			parts = append(parts, part)
		}
		d := dups[i]
		add = append(add, store.FlagRow{HouseholdID: d.HouseholdID, HeadName: d.HeadName, Village: d.Village, Code: "DUPLICATE_PERSON",
			Detail: strings.Join(parts, "; "), Acked: d.Acked, Comment: d.Comment})
		i = j
	}
	out := append(rows, add...)
	slices.SortStableFunc(out, func(a, b store.FlagRow) int {
		return cmp.Or(cmp.Compare(a.Village, b.Village), cmp.Compare(a.HouseholdID, b.HouseholdID), cmp.Compare(a.Code, b.Code))
	})
	return out
}
