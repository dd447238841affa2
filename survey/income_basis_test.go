package survey_test

import (
	"errors"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/proto"
)

// TestAVerdictOnADeclaredIncomeSaysSo: the review form's score A (phiếu B)
// is the official income measure (Circular 07/2021/TT-BLĐTBXH); a verdict
// on a money income the household declared, per capita or by source, says
// so in the result, on the wire as in Go.
func TestAVerdictOnADeclaredIncomeSaysSo(t *testing.T) {
	s, err := survey.Builtin().ByID("2021-2025")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		edit     func(*rasoatv1.Household)
		declared bool
	}{
		{"income per capita entered is declared", monthly(1_400_000), true},
		{"annual income by source is declared", func(h *rasoatv1.Household) {
			h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_Annual{Annual: &rasoatv1.AnnualIncome{FarmingVnd: 60_000_000}}}
		}, true},
		{"score A is the official measure", scoreA(120), false},
	} {
		h := base("2021-2025")
		tc.edit(h)
		a, err := s.Assess(h)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if a.DeclaredIncome != tc.declared || a.Proto(h).GetDeclaredIncome() != tc.declared {
			t.Errorf("%s: declared income = %v (wire %v), want %v", tc.name, a.DeclaredIncome, a.Proto(h).GetDeclaredIncome(), tc.declared)
		}
	}
}

// TestStateAssistanceMustBePartOfTheIncome: the assistance left out for
// the middle living standard is part of the income given, so it can be
// neither negative nor more than that income over 12 months.
func TestStateAssistanceMustBePartOfTheIncome(t *testing.T) {
	s, err := survey.Builtin().ByID("2021-2025")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		edit   func(*rasoatv1.Household)
		refuse bool
	}{
		// 4 members × 12 × 2,000,000 = 96,000,000.
		{"assistance equal to the income is accepted", all(monthly(2_000_000), farming(96_000_000)), false},
		{"assistance over the monthly income is refused", all(monthly(2_000_000), farming(96_000_001)), true},
		{"negative assistance is refused", all(monthly(2_000_000), farming(-1)), true},
		{"assistance over the annual income is refused", all(func(h *rasoatv1.Household) {
			h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_Annual{Annual: &rasoatv1.AnnualIncome{FarmingVnd: 80_000_000}}}
		}, farming(80_000_001)), true},
	} {
		h := base("2021-2025")
		tc.edit(h)
		_, err := s.Assess(h)
		var ve *survey.ValidationError
		switch {
		case tc.refuse && (!errors.As(err, &ve) || !strings.Contains(err.Error(), "income.stateAssistanceAnnualVnd")):
			t.Errorf("%s: err = %v, want a violation naming income.stateAssistanceAnnualVnd", tc.name, err)
		case !tc.refuse && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestMiddleOnTheWire: the determination travels in Assessment.middle.
func TestMiddleOnTheWire(t *testing.T) {
	s, _ := survey.Builtin().ByID("2021-2025")
	h := base("2021-2025")
	all(monthly(2_000_000), farming(0))(h)
	a, err := s.Assess(h)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Proto(h).GetMiddle(); got != rasoatv1.MiddleStatus_MIDDLE_STATUS_MIDDLE {
		t.Errorf("wire middle = %v", got)
	}
	h.AgriForestryFisherySalt = nil
	h.Income.StateAssistanceAnnualVnd = proto.Int64(0)
	if a, _ = s.Assess(h); a.Proto(h).GetMiddle() != rasoatv1.MiddleStatus_MIDDLE_STATUS_UNDETERMINED || len(a.Notes()) == 0 {
		t.Errorf("unknown sector: middle %v, notes %q", a.Middle, a.Notes())
	}
}
