package survey_test

import (
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/proto"
)

// realistic is a 4-member rural household with a few deprivations: the
// common case of a village review.
func realistic() *rasoatv1.Household {
	h := base("2021-2025")
	h.Members[1].Employment = rasoatv1.Employment_EMPLOYMENT_SELF_EMPLOYED
	h.Members[3].HasHealthInsurance = proto.Bool(false)
	h.Housing.FloorAreaM2 = proto.Float64(30)
	h.WaterSanitation.Latrine = rasoatv1.Latrine_LATRINE_SIMPLE_PIT
	monthly(1_400_000)(h)
	return h
}

// BenchmarkAssess is the single-core in-process rate, reusing the
// assessment as bulk scoring does.
func BenchmarkAssess(b *testing.B) {
	s, _ := survey.Builtin().ByID("2021-2025")
	h := realistic()
	var a survey.Assessment
	b.ReportAllocs()
	for b.Loop() {
		if err := s.AssessInto(h, &a); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "households/s")
}

// BenchmarkAssessExplained adds rendering the reasons into the wire message,
// what the scoring service does for every household.
func BenchmarkAssessExplained(b *testing.B) {
	s, _ := survey.Builtin().ByID("2021-2025")
	h := realistic()
	var a survey.Assessment
	b.ReportAllocs()
	for b.Loop() {
		if err := s.AssessInto(h, &a); err != nil {
			b.Fatal(err)
		}
		_ = a.Proto(h)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "households/s")
}
