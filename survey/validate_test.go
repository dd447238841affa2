package survey_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/proto"
)

// TestInvalidInputIsNeverClassified pins that each kind of bad input is
// refused with a violation naming the field, and no assessment.
func TestInvalidInputIsNeverClassified(t *testing.T) {
	cases := []struct {
		name  string
		std   string
		edit  func(*rasoatv1.Household)
		field string
	}{
		{"a child born after the review date", "2021-2025", func(h *rasoatv1.Household) { h.Members[2].BirthDate = "2026-01-01" }, "members[2].birthDate"},
		{"a birth date that is not a date", "2021-2025", func(h *rasoatv1.Household) { h.Members[1].BirthDate = "2001-02-30" }, "members[1].birthDate"},
		{"a household with no members", "2021-2025", func(h *rasoatv1.Household) { h.Members = nil }, "members"},
		{"a household whose members all left", "2021-2025", func(h *rasoatv1.Household) {
			for _, m := range h.Members {
				m.Removed = rasoatv1.Removal_REMOVAL_MOVED_OUT
			}
		}, "members"},
		{"a negative floor area", "2021-2025", func(h *rasoatv1.Household) { h.Housing.FloorAreaM2 = proto.Float64(-3) }, "housing.floorAreaM2"},
		{"a missing floor area", "2021-2025", func(h *rasoatv1.Household) { h.Housing.FloorAreaM2 = nil }, "housing.floorAreaM2"},
		{"an unknown enum number", "2021-2025", func(h *rasoatv1.Household) { h.WaterSanitation.Latrine = 99 }, "waterSanitation.latrine"},
		{"an unknown sex number", "2021-2025", func(h *rasoatv1.Household) { h.Members[0].Sex = 5 }, "members[0].sex"},
		{"a negative sex number", "2016-2020", func(h *rasoatv1.Household) { h.Members[1].Sex = -1 }, "members[1].sex"},
		{"an unknown member enum number", "2021-2025", func(h *rasoatv1.Household) { h.Members[0].Employment = 42 }, "members[0].employment"},
		{"an unspecified area", "2021-2025", func(h *rasoatv1.Household) { h.Area = 0 }, "area"},
		{"a missing review date", "2021-2025", func(h *rasoatv1.Household) { h.ReviewDate = "" }, "reviewDate"},
		{"a missing income", "2021-2025", func(h *rasoatv1.Household) { h.Income = nil }, "income"},
		{"a negative income", "2021-2025", func(h *rasoatv1.Household) { monthly(-1)(h) }, "income.monthlyPerCapitaVnd"},
		{"a negative annual source", "2021-2025", func(h *rasoatv1.Household) {
			h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_Annual{Annual: &rasoatv1.AnnualIncome{FisheryVnd: -5}}}
		}, "income.annual.fisheryVnd"},
		{"score A under a standard without confirmed cut-offs", "2026-2030", scoreA(120), "income.scoreA"},
		{"health insurance unanswered for an adult", "2021-2025", func(h *rasoatv1.Household) { h.Members[0].HasHealthInsurance = nil }, "members[0].hasHealthInsurance"},
		{"school attendance unanswered for a child", "2021-2025", func(h *rasoatv1.Household) { h.Members[2].InSchool = nil }, "members[2].inSchool"},
		{"school level unanswered for a child in school", "2021-2025", func(h *rasoatv1.Household) { h.Members[3].SchoolLevel = 0 }, "members[3].schoolLevel"},
		{"employment unanswered for a working-age member", "2021-2025", func(h *rasoatv1.Household) { h.Members[1].Employment = 0 }, "members[1].employment"},
		{"digital services unanswered where the standard asks", "2026-2030", func(h *rasoatv1.Household) { h.Information.UsesDigitalServices = nil }, "information.usesDigitalServices"},
		{"monthly social allowance unanswered for an elder where the standard asks", "2026-2030", add(aged(60, 0, nil)), "members[4].receivesMonthlySocialAllowance"},
		{"monthly social allowance unanswered for a severely disabled member", "2026-2030", add(aged(30, 0, func(m *rasoatv1.Member) { m.DisabilitySevere = true })), "members[4].receivesMonthlySocialAllowance"},
		{"state assistance larger than the income", "2021-2025", all(monthly(1_000_000), farming(48_000_001)), "income.stateAssistanceAnnualVnd"},
		{"waste unanswered where the standard asks", "2026-2030", func(h *rasoatv1.Household) { h.Environment = nil }, "environment.wasteTreatment"},
		{"housing structure unanswered", "2016-2020", func(h *rasoatv1.Household) { h.Housing.RoofDurable = nil }, "housing.roofDurable"},
		{"no housing section at all", "2021-2025", func(h *rasoatv1.Household) { h.Housing = nil }, "housing.wallDurable"},
		{"no information section at all", "2021-2025", func(h *rasoatv1.Household) { h.Information = nil }, "information.usesTelecom"},
		{"no information section under Decree 351", "2026-2030", func(h *rasoatv1.Household) { h.Information = nil }, "information.usesDigitalServices"},
		{"no water and sanitation section", "2016-2020", func(h *rasoatv1.Household) { h.WaterSanitation = nil }, "waterSanitation.latrine"},
		{"member without a name", "2016-2020", func(h *rasoatv1.Household) { h.Members[1].FullName = " " }, "members[1].fullName"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := survey.Builtin().ByID(tc.std)
			if err != nil {
				t.Fatal(err)
			}
			h := base(tc.std)
			tc.edit(h)
			a, err := s.Assess(h)
			var ve *survey.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got assessment %v, err %v; want a ValidationError on %s", a, err, tc.field)
			}
			if a != nil {
				t.Errorf("an invalid household was classified")
			}
			var fields []string
			for _, v := range ve.Violations {
				fields = append(fields, v.Field)
				if v.Description == "" {
					t.Errorf("violation on %s has no description", v.Field)
				}
			}
			if !slices.Contains(fields, tc.field) {
				t.Errorf("violations on %v, want one on %s (%v)", fields, tc.field, err)
			}
		})
	}
}

// TestAnswersOnlyAskedByOtherStandardsAreOptional: a standard asks only
// for what its indicators use.
func TestAnswersOnlyAskedByOtherStandardsAreOptional(t *testing.T) {
	s, _ := survey.Builtin().ByID("2021-2025")
	h := base("2021-2025")
	h.Information.UsesDigitalServices = nil
	h.Environment = nil
	if _, err := s.Assess(h); err != nil {
		t.Fatalf("Decree 07/2021 does not use digital services or waste: %v", err)
	}
}

func TestStandardChosenByReviewDate(t *testing.T) {
	cases := []struct{ date, want string }{
		{"2019-10-15", "2016-2020"},
		{"2021-06-30", "2016-2020"}, // ad-hoc review in 2021: list year 2021
		{"2021-09-01", "2021-2025"}, // annual review of 2021 decides the 2022 list
		{"2025-10-20", "2021-2025"},
		{"2026-08-31", "2021-2025"}, // Decree 351/2025 kept Decree 07/2021 for 2026
		{"2026-09-01", "2026-2030"}, // the coming annual review: list year 2027
		{"2030-06-01", "2026-2030"},
	}
	for _, tc := range cases {
		s, err := survey.Builtin().Choose("", tc.date)
		if err != nil {
			t.Errorf("%s: %v", tc.date, err)
			continue
		}
		if s.ID != tc.want {
			t.Errorf("review on %s chose %s, want %s", tc.date, s.ID, tc.want)
		}
	}
	if _, err := survey.Builtin().Choose("", "2031-10-01"); !errors.Is(err, survey.ErrNoStandard) {
		t.Errorf("list year 2032 has no standard, got %v", err)
	}
	if _, err := survey.Builtin().Choose("1999", ""); !errors.Is(err, survey.ErrUnknownStandard) {
		t.Errorf("unknown id: got %v", err)
	}
}

func TestLoadStandardRefusesBadFiles(t *testing.T) {
	good := func() string {
		b, err := survey.BuiltinJSON("2021-2025")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cases := []struct{ name, from, to, wantInErr string }{
		{"an unknown key", `"deprivationThreshold"`, `"deprivationTreshold"`, "deprivationTreshold"},
		{"an unknown rule", `"rule": "telecom"`, `"rule": "telepathy"`, "unknown rule"},
		{"an unknown enum name in a list", `"WATER_SOURCE_RAINWATER"`, `"WATER_SOURCE_WINE"`, "WATER_SOURCE_WINE"},
		{"a middle line under the poverty line", `"middle": 2250000`, `"middle": 1000`, "lines.rural.middle"},
		{"a duplicate indicator id", `"id": "LATRINE"`, `"id": "WATER"`, "duplicate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := good()
			if !strings.Contains(src, tc.from) {
				t.Fatalf("fixture lacks %s", tc.from)
			}
			_, err := survey.LoadStandard(strings.NewReader(strings.Replace(src, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("got %v, want an error mentioning %q", err, tc.wantInErr)
			}
		})
	}
	// A province's higher local standard replaces the built-in of that id.
	local := strings.Replace(good(), `"poverty": 1500000`, `"poverty": 1800000`, 1)
	s, err := survey.LoadStandard(strings.NewReader(local))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := survey.Builtin().With(s)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := reg.ByID("2021-2025")
	if got.Lines.Rural.Poverty != 1_800_000 {
		t.Errorf("local standard not used: rural line %d", got.Lines.Rural.Poverty)
	}
	h := base("2021-2025")
	deprive(3)(h)
	monthly(1_700_000)(h)
	a, err := got.Assess(h)
	if err != nil {
		t.Fatal(err)
	}
	if a.Classification != poor {
		t.Errorf("under the local line 1,800,000, income 1,700,000 with 3 deprivations is %v, want POOR", a.Classification)
	}
}

// TestReviewDatesAreTheInverseOfTheListYearRule: the span a standard
// reports is exactly the review dates that choose it.
func TestReviewDatesAreTheInverseOfTheListYearRule(t *testing.T) {
	for _, s := range survey.Builtin().Standards() {
		from, to := s.ReviewDates()
		for _, d := range []string{from, to} {
			got, err := survey.Builtin().Choose("", d)
			if err != nil || got.ID != s.ID {
				t.Errorf("%s: review on %s chose %v (%v)", s.ID, d, got, err)
			}
		}
		ft, _ := time.Parse(time.DateOnly, from)
		tt, _ := time.Parse(time.DateOnly, to)
		for _, d := range []time.Time{ft.AddDate(0, 0, -1), tt.AddDate(0, 0, 1)} {
			if got, err := survey.Builtin().Choose("", d.Format(time.DateOnly)); err == nil && got.ID == s.ID {
				t.Errorf("%s: review on %s, outside %s..%s, chose it", s.ID, d.Format(time.DateOnly), from, to)
			}
		}
	}
}
