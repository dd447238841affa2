package scoring

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TestAssessBatchIsTheMarshalledResponse: the encoded results assessBatch
// writes are byte for byte proto.Marshal of the response the service built
// before (resultsBefore), for every view, a named, unknown or chosen
// standard, and households good and bad, over more than one chunk so that
// several workers take part.
func TestAssessBatchIsTheMarshalledResponse(t *testing.T) {
	s := New(survey.Builtin(), nil)
	hs := variedHouseholds(t, 5*chunk+7)
	var workers []*scratch // reused from batch to batch, as a stream does
	for _, std := range []string{"", "2021-2025", "2016-2020", "no-such-standard"} {
		for _, view := range []rasoatv1.AssessmentView{
			rasoatv1.AssessmentView_ASSESSMENT_VIEW_UNSPECIFIED,
			rasoatv1.AssessmentView_ASSESSMENT_VIEW_FULL,
			rasoatv1.AssessmentView_ASSESSMENT_VIEW_BASIC,
		} {
			req := &rasoatv1.AssessStreamRequest{Households: hs, Standard: std, View: view}
			results := resultsBefore(t, s, req)
			var assessed int
			for _, r := range results {
				if r.GetAssessment() != nil {
					assessed++
				}
			}
			if std != "no-such-standard" && (assessed < len(hs)/2 || assessed == len(hs)) {
				t.Fatalf("standard %q: %d of %d households assessed; the test needs both outcomes", std, assessed, len(hs))
			}
			want, err := proto.Marshal(&rasoatv1.AssessStreamResponse{Results: results})
			if err != nil {
				t.Fatal(err)
			}
			prefix := []byte("prefix")
			got, err := s.assessBatch(bytes.Clone(prefix), &workers, req)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append(prefix, want...)) {
				t.Errorf("standard %q, %v: assessBatch writes %d bytes, differing from the %d of proto.Marshal", std, view, len(got)-len(prefix), len(want))
			}
		}
	}
	// An empty batch is an empty response.
	if got, err := s.assessBatch(nil, &workers, &rasoatv1.AssessStreamRequest{}); err != nil || len(got) != 0 {
		t.Errorf("empty batch: %x, %v", got, err)
	}
}

// variedHouseholds are n variations on the example household:
// both areas, every income basis, answers that change the reasons, a long
// name, no id, and some that are invalid or that no standard decides.
func variedHouseholds(t *testing.T, n int) []*rasoatv1.Household {
	t.Helper()
	b, err := os.ReadFile("../../survey/testdata/household-example.json")
	if err != nil {
		t.Fatal(err)
	}
	example := new(rasoatv1.Household)
	if err := protojson.Unmarshal(b, example); err != nil {
		t.Fatal(err)
	}
	hs := make([]*rasoatv1.Household, n)
	for i := range hs {
		h := proto.Clone(example).(*rasoatv1.Household)
		h.Id = fmt.Sprintf("0193a1f2-7c4e-7b1a-9d2e-%012x", i)
		if i%4 == 3 {
			h.Area = rasoatv1.Area_AREA_URBAN
		}
		h.Members[1].HasHealthInsurance = proto.Bool(i%3 == 0)
		h.Housing.FloorAreaM2 = proto.Float64(float64(10 + i%30))
		h.WaterSanitation.Latrine = rasoatv1.Latrine(i % 9)
		switch i % 5 {
		case 1:
			h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_Annual{Annual: &rasoatv1.AnnualIncome{FarmingVnd: int64(20_000_000 + i*500_000)}}}
		case 2:
			h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_ScoreA{ScoreA: int32(100 + i%80)}}
		case 3:
			h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: int64(i) * 50_000}}
		}
		switch i % 13 {
		case 1:
			h.Members[1].FullName = strings.Repeat("Vi Thị Mai ", 20)
		case 2:
			h.Id, h.Members[1].Id = "", ""
		case 3:
			h.Members[1].BirthDate = "2026-01-01" // after the review
		case 4:
			h.ReviewDate = "2015-10-20" // no standard decides it
		case 5:
			h.Members = nil
		case 6:
			h.Members[0].Removed = rasoatv1.Removal_REMOVAL_DIED
		}
		hs[i] = h
	}
	return hs
}

// resultsBefore is how the service answered a batch before it wrote the
// results' bytes itself: assessResult and render below are the code it
// ran, unchanged.
func resultsBefore(t *testing.T, s *Service, req *rasoatv1.AssessStreamRequest) []*rasoatv1.AssessResult {
	var named *survey.Standard
	var namedErr error
	if id := req.GetStandard(); id != "" {
		named, namedErr = s.reg.ByID(id)
	}
	var a survey.Assessment
	var out []*rasoatv1.AssessResult
	for i, h := range req.GetHouseholds() {
		r, err := s.assessResult(&a, h, named, namedErr, req.GetView())
		if err != nil {
			t.Fatalf("household %d: %v", i, err)
		}
		out = append(out, r)
	}
	return out
}

// assessResult assesses one household of a batch into a, with named (or
// namedErr) the batch's standard when the request names one. Bad input
// yields violations in the result; an error is the server's fault.
func (s *Service) assessResult(a *survey.Assessment, h *rasoatv1.Household, named *survey.Standard, namedErr error, view rasoatv1.AssessmentView) (*rasoatv1.AssessResult, error) {
	res := &rasoatv1.AssessResult{HouseholdId: h.GetId()}
	err := namedErr
	switch {
	case err != nil:
	case h == nil:
		err = &requestError{field: "household", desc: "required"}
	case named != nil:
		err = named.AssessInto(h, a)
	default:
		var std *survey.Standard
		if std, err = s.choose("", h.GetReviewDate(), 0); err == nil {
			err = std.AssessInto(h, a)
		}
	}
	if err == nil {
		res.Outcome = &rasoatv1.AssessResult_Assessment{Assessment: render(a, h, view)}
		return res, nil
	}
	fv, ok := fieldViolations(err)
	if !ok {
		return nil, err
	}
	res.Outcome = &rasoatv1.AssessResult_Violations{Violations: &rasoatv1.Violations{Violations: fv}}
	return res, nil
}

// render builds the wire assessment in the view asked for.
func render(a *survey.Assessment, h *rasoatv1.Household, view rasoatv1.AssessmentView) *rasoatv1.Assessment {
	if view == rasoatv1.AssessmentView_ASSESSMENT_VIEW_BASIC {
		return a.ProtoBasic(h)
	}
	return a.Proto(h)
}
