package storetest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rasoat/rasoat/server/store"
)

// ExpectReport computes, from the facts themselves, what a store's Report
// must answer for q: the same rows by plain counting, not by the store's
// queries.
func ExpectReport(fs []store.HouseholdFacts, q store.ReportQuery) store.ReportRows {
	type gk struct {
		v        string
		urban    bool
		minority int
	}
	groups := map[gk]*store.ReportGroup{}
	ind := map[string]*store.ReportIndicator{}
	type pk struct{ v, s, st string }
	prog := map[pk]*store.ReportProgress{}
	type tk struct{ from, to string }
	trans := map[tk]int{}
	byID := map[string]*store.HouseholdFacts{}
	for i := range fs {
		byID[fs[i].HouseholdID] = &fs[i]
	}
	for i := range fs {
		f := &fs[i]
		if !q.Villages.Has(f.VillageCode) {
			continue
		}
		k := gk{f.VillageCode, f.Urban, f.MinorityHead}
		g := groups[k]
		if g == nil {
			g = &store.ReportGroup{Village: k.v, Urban: k.urban, MinorityHead: k.minority}
			groups[k] = g
		}
		g.Households++
		if f.ListYear == q.ListYear {
			g.Reviewed++
		}
		switch f.Class {
		case "POOR":
			g.Poor++
		case "NEAR_POOR":
			g.NearPoor++
		case "MIDDLE":
			g.Middle++
		case "NOT_POOR":
			g.NotPoor++
		default:
			g.Unscored++
		}
		if f.MDPoor {
			g.MDPoor++
			g.MDShareSum += float64(f.Deprivations) / float64(f.Indicators)
		}
		for _, d := range f.Deprived {
			x := ind[d]
			if x == nil {
				x = &store.ReportIndicator{Indicator: d}
				ind[d] = x
			}
			x.Deprived++
			if f.Class == "POOR" {
				x.DeprivedPoor++
			}
		}
		if f.ReviewID != "" && f.ListYear == q.ListYear {
			p := prog[pk{f.VillageCode, f.Surveyor, f.Status}]
			if p == nil {
				p = &store.ReportProgress{Village: f.VillageCode, Surveyor: f.Surveyor, Status: f.Status}
				prog[pk{f.VillageCode, f.Surveyor, f.Status}] = p
			}
			p.Households++
			if f.DueDate != "" && f.DueDate < q.Today && f.Status != "decided" && f.Status != "refused" {
				p.Overdue++
			}
		}
		for _, d := range f.Decisions {
			if d.ListYear != q.ListYear {
				continue
			}
			from := ""
			for _, p := range f.Decisions {
				if p.ListYear == q.ListYear-1 {
					from = p.Result
				}
			}
			trans[tk{from, d.Result}]++
		}
	}
	var out store.ReportRows
	for _, g := range groups {
		out.Groups = append(out.Groups, *g)
	}
	for _, x := range ind {
		out.Indicators = append(out.Indicators, *x)
	}
	for _, p := range prog {
		out.Progress = append(out.Progress, *p)
	}
	for k, n := range trans {
		out.Transitions = append(out.Transitions, store.ReportTransition{From: k.from, To: k.to, Households: n})
	}
	return out
}

// SortReport puts rows in one order, for comparing.
func SortReport(r *store.ReportRows) {
	slices.SortFunc(r.Groups, func(a, b store.ReportGroup) int {
		return cmp.Or(cmp.Compare(a.Village, b.Village), cmp.Compare(boolInt(a.Urban), boolInt(b.Urban)), cmp.Compare(a.MinorityHead, b.MinorityHead))
	})
	slices.SortFunc(r.Indicators, func(a, b store.ReportIndicator) int { return cmp.Compare(a.Indicator, b.Indicator) })
	slices.SortFunc(r.Progress, func(a, b store.ReportProgress) int {
		return cmp.Or(cmp.Compare(a.Village, b.Village), cmp.Compare(a.Surveyor, b.Surveyor), cmp.Compare(a.Status, b.Status))
	})
	slices.SortFunc(r.Transitions, func(a, b store.ReportTransition) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CheckReport fails t unless got is want, row for row (shares of the
// deprivation sums to 1e-9).
func CheckReport(t testing.TB, got, want store.ReportRows) {
	t.Helper()
	SortReport(&got)
	SortReport(&want)
	if len(got.Groups) != len(want.Groups) {
		t.Fatalf("%d groups, want %d", len(got.Groups), len(want.Groups))
	}
	for i := range got.Groups {
		g, w := got.Groups[i], want.Groups[i]
		d := g.MDShareSum - w.MDShareSum
		g.MDShareSum, w.MDShareSum = 0, 0
		if g != w || d > 1e-9 || d < -1e-9 {
			t.Errorf("group %d: %+v (share sum off by %g), want %+v", i, g, d, w)
		}
	}
	if !slices.Equal(got.Indicators, want.Indicators) {
		t.Errorf("indicators %+v, want %+v", got.Indicators, want.Indicators)
	}
	if !slices.Equal(got.Progress, want.Progress) {
		t.Errorf("progress %+v, want %+v", got.Progress, want.Progress)
	}
	if !slices.Equal(got.Transitions, want.Transitions) {
		t.Errorf("transitions %+v, want %+v", got.Transitions, want.Transitions)
	}
	if len(want.Transitions) == 0 || len(want.Progress) == 0 {
		t.Fatal("the facts do not exercise transitions and progress")
	}
}

// ReportSuite checks a store's report queries against the facts they
// read, counted here: 3,000 households' facts for the commune, one
// village, and two list years (transitions across two rounds), and a
// household's facts rewritten (its old rows replaced). put stores facts as
// a push would; report is the store's Report.
func ReportSuite(t *testing.T, put func([]store.HouseholdFacts) error, report func(store.ReportQuery) (store.ReportRows, error)) {
	fs := SyntheticFacts(3000, 6, "06517", 7)
	if err := put(fs); err != nil {
		t.Fatal(err)
	}
	fs[0].Deprived, fs[0].Decisions = fs[0].Deprived[:0], nil
	if err := put(fs[:1]); err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.ReportQuery{
		{Villages: store.AllVillages(), ListYear: 2026, Today: "2025-12-01"},
		{Villages: store.OnlyVillages("06517-02"), ListYear: 2026, Today: "2025-12-01"},
		{Villages: store.OnlyVillages("06517-01", "06517-05"), ListYear: 2025, Today: "2025-11-01"},
	} {
		t.Run(fmt.Sprintf("%v/%d", q.Villages.Codes(), q.ListYear), func(t *testing.T) {
			got, err := report(q)
			if err != nil {
				t.Fatal(err)
			}
			CheckReport(t, got, ExpectReport(fs, q))
		})
	}
}

// SyntheticFacts returns n households' facts spread over villages (codes
// "<commune>-01" on), with classifications, deprivations and review
// states in realistic shares, the same for a seed: for benchmarks of the
// report queries, which read facts only.
func SyntheticFacts(n, villages int, commune string, seed uint64) []store.HouseholdFacts {
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

// SyntheticProvince is SyntheticFacts over communes communes of perCommune
// households in villages villages each (commune codes 10001 on), and the
// villages' codes.
func SyntheticProvince(communes, perCommune, villages int) ([]store.HouseholdFacts, []string) {
	var fs []store.HouseholdFacts
	var codes []string
	for c := range communes {
		commune := fmt.Sprintf("%05d", 10001+c)
		fs = append(fs, SyntheticFacts(perCommune, villages, commune, uint64(c+1))...)
		for v := 1; v <= villages; v++ {
			codes = append(codes, fmt.Sprintf("%s-%02d", commune, v))
		}
	}
	return fs, codes
}
