package report

import (
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/protobuf/proto"
)

func TestTransitionSummary(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to string
		earlier  bool // decided poor for a year before the year before
		want     *rasoatv1.TransitionSummary
	}{
		{"poor two years ago, not last year, poor now has fallen back", "NOT_POOR", "POOR", true, &rasoatv1.TransitionSummary{FellBackIntoPoverty: 3}},
		{"poor two years ago, near-poor last year, poor now has fallen back, not near-poor to poor", "NEAR_POOR", "POOR", true, &rasoatv1.TransitionSummary{FellBackIntoPoverty: 3}},
		{"poor two years ago, undecided last year, poor now has fallen back", "", "POOR", true, &rasoatv1.TransitionSummary{FellBackIntoPoverty: 3}},
		{"poor every year is no transition", "POOR", "POOR", true, &rasoatv1.TransitionSummary{}},
		{"poor two years ago, left poverty now", "POOR", "NEAR_POOR", true, &rasoatv1.TransitionSummary{LeftPoverty: 3}},
		{"poor two years ago, near-poor now, is newly near-poor", "NOT_POOR", "NEAR_POOR", true, &rasoatv1.TransitionSummary{NewlyNearPoor: 3}},
		{"poor to near-poor has left poverty", "POOR", "NEAR_POOR", false, &rasoatv1.TransitionSummary{LeftPoverty: 3}},
		{"poor to not poor has left poverty", "POOR", "NOT_POOR", false, &rasoatv1.TransitionSummary{LeftPoverty: 3}},
		{"near-poor to middle has left near-poverty", "NEAR_POOR", "MIDDLE", false, &rasoatv1.TransitionSummary{LeftNearPoverty: 3}},
		{"near-poor to poor fell into poverty", "NEAR_POOR", "POOR", false, &rasoatv1.TransitionSummary{NearPoorToPoor: 3}},
		{"not poor to poor is newly poor", "NOT_POOR", "POOR", false, &rasoatv1.TransitionSummary{NewlyPoor: 3}},
		{"undecided before, poor now, is newly poor", "", "POOR", false, &rasoatv1.TransitionSummary{NewlyPoor: 3}},
		{"middle to near-poor is newly near-poor", "MIDDLE", "NEAR_POOR", false, &rasoatv1.TransitionSummary{NewlyNearPoor: 3}},
		{"poor staying poor is no transition", "POOR", "POOR", false, &rasoatv1.TransitionSummary{}},
		{"not poor to middle is no transition the lists count", "NOT_POOR", "MIDDLE", false, &rasoatv1.TransitionSummary{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Build(store.ReportRows{Transitions: []store.ReportTransition{{From: tc.from, To: tc.to, PoorEarlier: tc.earlier, Households: 3}}})
			if !proto.Equal(res.GetTransitionSummary(), tc.want) {
				t.Errorf("summary %v; want %v", res.GetTransitionSummary(), tc.want)
			}
		})
	}
}

// A province's report sums its villages by commune: a village's code is
// its commune's, a dash and a suffix.
func TestByCommuneSumsTheCommunesVillages(t *testing.T) {
	res := Build(store.ReportRows{Groups: []store.ReportGroup{
		{Village: "10001-01", Households: 10, Poor: 2},
		{Village: "10001-02", Households: 5, Poor: 1, Urban: true},
		{Village: "10002-01", Households: 7, NearPoor: 3},
	}})
	want := map[string][2]int32{"10001": {15, 3}, "10002": {7, 0}}
	if len(res.GetByCommune()) != len(want) {
		t.Fatalf("by commune %v; want %v", res.GetByCommune(), want)
	}
	for _, b := range res.GetByCommune() {
		if w := want[b.GetKey()]; b.GetCounts().GetHouseholds() != w[0] || b.GetCounts().GetPoor() != w[1] {
			t.Errorf("commune %s: %v; want %d households, %d poor", b.GetKey(), b.GetCounts(), w[0], w[1])
		}
	}
	if got := res.GetByCommune()[0].GetCounts().GetPovertyRate(); got != 0.2 {
		t.Errorf("commune 10001's poverty rate %v; want 0.2", got)
	}
}

func TestReductionTargetsAreMeasuredFromLastYearsDecisions(t *testing.T) {
	rows := store.ReportRows{
		Groups:   []store.ReportGroup{{Village: "06517-01", Households: 60, Poor: 1, NearPoor: 4}, {Village: "06517-02", Households: 40, Poor: 1}},
		Previous: []store.ReportDecided{{Village: "06517-01", Decided: 50, Poor: 8, NearPoor: 9}, {Village: "06517-02", Decided: 30, Poor: 2}},
	}
	scope := map[string][]string{"06517": {"06517-01", "06517-02"}, "06517-03": nil}
	tg := &rasoatv1.ReportTargets{Units: []*rasoatv1.UnitTarget{
		{UnitCode: "06517", PovertyRateReductionPoints: proto.Float64(8), ReducePoor: proto.Int32(8), ReduceNearPoor: proto.Int32(6)},
		{UnitCode: "06517-03", ReducePoor: proto.Int32(1)},
	}}
	got := Measure(rows, tg, scope, nil, nil, 2026)
	met, notMet, na := rasoatv1.TargetStatus_TARGET_STATUS_MET, rasoatv1.TargetStatus_TARGET_STATUS_NOT_MET, rasoatv1.TargetStatus_TARGET_STATUS_NOT_APPLICABLE
	for i, want := range []struct {
		name     string
		achieved float64
		status   rasoatv1.TargetStatus
	}{
		{"10 % poor last year, 2 % now: 8 points, met", 8, met},
		{"10 poor last year, 2 now: 8 reduced, met", 8, met},
		{"9 near-poor last year, 4 now: 5 reduced, not the 6 set", 5, notMet},
		{"a village with no result decided last year cannot be measured", 0, na},
	} {
		if g := got[i]; g.GetStatus() != want.status || g.GetAchieved() < want.achieved-1e-9 || g.GetAchieved() > want.achieved+1e-9 {
			t.Errorf("%s: %v", want.name, g)
		}
	}
}
