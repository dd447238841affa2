package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/facts"
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
	fs := facts.Synthetic(3000, 6, "06517", 7)
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
