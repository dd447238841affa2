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
		want     *rasoatv1.TransitionSummary
	}{
		{"poor to near-poor has left poverty", "POOR", "NEAR_POOR", &rasoatv1.TransitionSummary{LeftPoverty: 3}},
		{"poor to not poor has left poverty", "POOR", "NOT_POOR", &rasoatv1.TransitionSummary{LeftPoverty: 3}},
		{"near-poor to middle has left near-poverty", "NEAR_POOR", "MIDDLE", &rasoatv1.TransitionSummary{LeftNearPoverty: 3}},
		{"near-poor to poor fell into poverty", "NEAR_POOR", "POOR", &rasoatv1.TransitionSummary{NearPoorToPoor: 3}},
		{"not poor to poor is newly poor", "NOT_POOR", "POOR", &rasoatv1.TransitionSummary{NewlyPoor: 3}},
		{"undecided before, poor now, is newly poor", "", "POOR", &rasoatv1.TransitionSummary{NewlyPoor: 3}},
		{"middle to near-poor is newly near-poor", "MIDDLE", "NEAR_POOR", &rasoatv1.TransitionSummary{NewlyNearPoor: 3}},
		{"poor staying poor is no transition", "POOR", "POOR", &rasoatv1.TransitionSummary{}},
		{"not poor to middle is no transition the lists count", "NOT_POOR", "MIDDLE", &rasoatv1.TransitionSummary{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Build(store.ReportRows{Transitions: []store.ReportTransition{{From: tc.from, To: tc.to, Households: 3}}})
			if !proto.Equal(res.GetTransitionSummary(), tc.want) {
				t.Errorf("summary %v; want %v", res.GetTransitionSummary(), tc.want)
			}
		})
	}
}
