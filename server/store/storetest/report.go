package storetest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rasoat/rasoat/server/report"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/survey"
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
	type tk struct {
		from, to string
		earlier  bool
	}
	trans := map[tk]int{}
	prev := map[string]*store.ReportDecided{}
	type ak struct {
		set     int
		village string
	}
	anyDep := map[ak]*store.ReportAnyDeprived{}
	var watch []store.WatchedHousehold
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
		if d, ok := latestDecided(f, q.ListYear); ok {
			from := ""
			if p, ok := latestDecided(f, q.ListYear-1); ok {
				from = p.Result
			}
			// Poor for a year before the year before: that year's
			// result (its latest decision) was POOR.
			earlier := false
			for _, e := range f.Decisions {
				if l, _ := latestDecided(f, e.ListYear); e.ListYear < q.ListYear-1 && l.ReviewID == e.ReviewID && e.Result == "POOR" {
					earlier = true
				}
			}
			trans[tk{from, d.Result, earlier}]++
		}
		if p, ok := latestDecided(f, q.ListYear-1); ok {
			x := prev[f.VillageCode]
			if x == nil {
				x = &store.ReportDecided{Village: f.VillageCode}
				prev[f.VillageCode] = x
			}
			x.Decided++
			switch p.Result {
			case "POOR":
				x.Poor++
			case "NEAR_POOR":
				x.NearPoor++
			}
		}
		for i, set := range q.AnyDeprived {
			if f.Class != "POOR" || !slices.ContainsFunc(set, func(ind string) bool { return slices.Contains(f.Deprived, ind) }) {
				continue
			}
			x := anyDep[ak{i, f.VillageCode}]
			if x == nil {
				x = &store.ReportAnyDeprived{Set: i, Village: f.VillageCode}
				anyDep[ak{i, f.VillageCode}] = x
			}
			x.Poor++
		}
		if q.Watch.Limit > 0 {
			if h, ok := watched(f, q.Watch); ok {
				watch = append(watch, h)
			}
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
		out.Transitions = append(out.Transitions, store.ReportTransition{From: k.from, To: k.to, PoorEarlier: k.earlier, Households: n})
	}
	for _, x := range prev {
		out.Previous = append(out.Previous, *x)
	}
	for _, x := range anyDep {
		out.AnyDeprived = append(out.AnyDeprived, *x)
	}
	slices.SortFunc(watch, func(a, b store.WatchedHousehold) int {
		return cmp.Or(-cmp.Compare(boolInt(a.NearLine)+boolInt(a.ManyDeprived), boolInt(b.NearLine)+boolInt(b.ManyDeprived)),
			-cmp.Compare(a.Deprivations, b.Deprivations), cmp.Compare(a.IncomePerCapita, b.IncomePerCapita), cmp.Compare(a.HouseholdID, b.HouseholdID))
	})
	out.WatchTotal = len(watch)
	out.Watch = watch[:min(len(watch), q.Watch.Limit)]
	return out
}

// latestDecided is f's result for list year y: its decided review of that
// year with the greatest id.
func latestDecided(f *store.HouseholdFacts, y int) (store.DecidedFact, bool) {
	var out store.DecidedFact
	ok := false
	for _, d := range f.Decisions {
		if d.ListYear == y && (!ok || d.ReviewID > out.ReviewID) {
			out, ok = d, true
		}
	}
	return out, ok
}

// watched says whether f is on the watch list w describes, counted here
// from the rule as WatchQuery's comment states it.
func watched(f *store.HouseholdFacts, w store.WatchQuery) (store.WatchedHousehold, bool) {
	h := store.WatchedHousehold{HouseholdID: f.HouseholdID, HeadName: f.HeadName, Village: f.VillageCode, Class: f.Class, Standard: f.Standard, Urban: f.Urban,
		IncomePerCapita: f.IncomePerCapita, Deprivations: f.Deprivations}
	if (f.Class == "MIDDLE" || f.Class == "NOT_POOR") && f.IncomePerCapita > 0 { // 0: scored on score A, income not known
		for _, l := range w.Lines {
			if l.Standard == f.Standard && l.Urban == f.Urban && f.IncomePerCapita <= l.Max {
				h.NearLine = true
			}
		}
	}
	h.ManyDeprived = (f.Class == "NEAR_POOR" || f.Class == "MIDDLE" || f.Class == "NOT_POOR") && !f.MDPoor && f.Deprivations >= w.MinDeprivations
	if len(f.Deprived) > 0 {
		h.Deprived = slices.Sorted(slices.Values(f.Deprived))
	}
	return h, h.NearLine || h.ManyDeprived
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
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To), cmp.Compare(boolInt(a.PoorEarlier), boolInt(b.PoorEarlier)))
	})
	slices.SortFunc(r.Previous, func(a, b store.ReportDecided) int { return cmp.Compare(a.Village, b.Village) })
	slices.SortFunc(r.AnyDeprived, func(a, b store.ReportAnyDeprived) int {
		return cmp.Or(cmp.Compare(a.Set, b.Set), cmp.Compare(a.Village, b.Village))
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
	if !slices.Equal(got.Previous, want.Previous) {
		t.Errorf("previous year %+v, want %+v", got.Previous, want.Previous)
	}
	if !slices.Equal(got.AnyDeprived, want.AnyDeprived) {
		t.Errorf("any deprived %+v, want %+v", got.AnyDeprived, want.AnyDeprived)
	}
	if got.WatchTotal != want.WatchTotal {
		t.Errorf("watch list of %d households, want %d", got.WatchTotal, want.WatchTotal)
	}
	if !slices.EqualFunc(got.Watch, want.Watch, func(a, b store.WatchedHousehold) bool {
		return slices.Equal(a.Deprived, b.Deprived) && a.HouseholdID == b.HouseholdID && a.HeadName == b.HeadName && a.Village == b.Village && a.Class == b.Class &&
			a.Standard == b.Standard && a.Urban == b.Urban && a.IncomePerCapita == b.IncomePerCapita && a.Deprivations == b.Deprivations &&
			a.NearLine == b.NearLine && a.ManyDeprived == b.ManyDeprived
	}) {
		t.Errorf("watch list\n%+v\nwant\n%+v", got.Watch, want.Watch)
	}
	if len(want.Transitions) == 0 || len(want.Progress) == 0 || len(want.Previous) == 0 {
		t.Fatal("the facts do not exercise transitions, progress and the year before")
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
	sets := [][]string{{"WATER"}, {"HOUSING_QUALITY", "HOUSING_AREA"}, {"INFO_DEVICES"}}
	watch := store.WatchQuery{MinDeprivations: 2, Limit: 25, Lines: []store.WatchLine{
		{Standard: "2021-2025", Line: 1_500_000, Max: 1_800_000}, {Standard: "2021-2025", Urban: true, Line: 2_000_000, Max: 2_400_000}}}
	for _, q := range []store.ReportQuery{
		{Villages: store.AllVillages(), ListYear: 2026, Today: "2025-12-01", AnyDeprived: sets, Watch: watch},
		{Villages: store.OnlyVillages("06517-02"), ListYear: 2026, Today: "2025-12-01", AnyDeprived: sets, Watch: watch},
		{Villages: store.OnlyVillages("06517-01", "06517-05"), ListYear: 2025, Today: "2025-11-01"},
		{Villages: store.OnlyVillages("06517-03"), ListYear: 2026, Today: "2025-12-01", Watch: store.WatchQuery{MinDeprivations: 2, Limit: 1000}},
	} {
		t.Run(fmt.Sprintf("%v/%d", q.Villages.Codes(), q.ListYear), func(t *testing.T) {
			got, err := report(q)
			if err != nil {
				t.Fatal(err)
			}
			want := ExpectReport(fs, q)
			CheckReport(t, got, want)
			if q.ListYear == 2026 && !slices.ContainsFunc(want.Transitions, func(tr store.ReportTransition) bool { return tr.PoorEarlier && tr.From != "POOR" && tr.To == "POOR" }) {
				t.Error("the facts have no household fallen back into poverty")
			}
			if q.Watch.Limit > 0 && (want.WatchTotal <= len(want.Watch) && q.Watch.Limit < 1000 || len(want.Watch) == 0) {
				t.Errorf("the watch list of %d households does not exercise its limit of %d", want.WatchTotal, q.Watch.Limit)
			}
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
		f.HeadName = headName(i)
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
		// Three list years (a household poor in 2024, not in 2025, poor in
		// 2026 has fallen back into poverty), and now and then a second
		// decision in a year (a regular review changing the list: the later
		// review's result counts).
		results := []string{"POOR", "NEAR_POOR", "MIDDLE", "NOT_POOR", "NOT_POOR"}
		for y := 2024; y <= 2026; y++ {
			if r.IntN(5) > 0 {
				f.Decisions = append(f.Decisions, store.DecidedFact{ListYear: y, ReviewID: fmt.Sprintf("%08x-%04x-7000-8000-%012x", seed, y, i),
					Standard: "2021-2025", Result: results[r.IntN(len(results))], Deprivations: r.IntN(6)})
				if r.IntN(15) == 0 {
					f.Decisions = append(f.Decisions, store.DecidedFact{ListYear: y, ReviewID: fmt.Sprintf("%08x-%04x-7001-8000-%012x", seed, y, i),
						Standard: "2021-2025", Result: results[r.IntN(len(results))], Deprivations: r.IntN(6)})
				}
			}
		}
	}
	return out
}

// headName is the i-th of a few hundred Vietnamese names (not drawn from
// the generator, so adding it changed no other fact).
func headName(i int) string {
	family := []string{"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Hà", "Lò", "Sầm", "Vi", "Đinh"}
	given := []string{"Văn An", "Thị Bình", "Văn Cường", "Thị Dung", "Văn Đức", "Thị Hoa", "Văn Khánh", "Thị Lan", "Văn Minh", "Thị Nga"}
	return family[i%len(family)] + " " + given[(i/len(family))%len(given)]
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

// ServiceQuery is the query ReportService makes of a store for villages
// with the sample targets file's indicator sets and the default watch
// list: what the report benchmarks time.
func ServiceQuery(villages store.Villages) store.ReportQuery {
	return store.ReportQuery{Villages: villages, ListYear: 2026, Today: "2025-12-01",
		AnyDeprived: [][]string{{"WATER"}, {"LATRINE"}, {"TELECOM"}, {"INFO_DEVICES"}, {"HOUSING_AREA", "HOUSING_QUALITY"}, {"CHILD_SCHOOLING"}},
		Watch:       report.WatchRule(survey.Builtin(), report.DefaultWatchLimit)}
}
