package survey

import (
	"strconv"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/proto"
)

// shown parses the figure a reason displays after prefix ("7,99" → 7.99).
func shown(t *testing.T, text, prefix string) float64 {
	t.Helper()
	i := strings.Index(text, prefix)
	if i < 0 {
		t.Fatalf("%q has no %q", text, prefix)
	}
	s := text[i+len(prefix):]
	end := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != ',' })
	f, err := strconv.ParseFloat(strings.ReplaceAll(s[:end], ",", "."), 64)
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	return f
}

// TestReasonNeverRoundsAcrossTheThreshold: a reason shows its figure to two
// decimals, and the figure it shows is on the same side of the threshold as
// the verdict it explains. A household at 7.998 m² a person is deprived
// (under 8 m², Decree 07/2021) and must not read "8 m²/người"; one at
// exactly 8 is not deprived and must not read "7,99". Checked through the
// engine, for areas a hair either side of 8 m² × members, and for the
// dependants' share either side of 50 % with a province's 33.33 %.
func TestReasonNeverRoundsAcrossTheThreshold(t *testing.T) {
	s, err := Builtin().ByID("2021-2025")
	if err != nil {
		t.Fatal(err)
	}
	area := func(h *Household) *IndicatorResult {
		a, err := s.Assess(h)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a.Indicators {
			if a.Indicators[i].Indicator.ID == "HOUSING_AREA" {
				return &a.Indicators[i]
			}
		}
		t.Fatal("no HOUSING_AREA")
		return nil
	}
	checked := 0
	for n := 1; n <= 9; n++ {
		for _, per := range []float64{7.99, 7.994, 7.995, 7.996, 7.998, 7.9999, 7.99999999, 8, 8.00000001, 8.001, 8.004, 8.005, 8.009} {
			h := sampleHousehold(n)
			h.Housing.FloorAreaM2 = proto.Float64(per * float64(n))
			r := area(h)
			got := shown(t, r.Reasons[0].Text(h), "diện tích bình quân ")
			if r.Deprived && got >= 8 || !r.Deprived && got < 8 {
				t.Errorf("%d members, %v m² each: deprived %v but the reason shows %v m²/người (%s)", n, per, r.Deprived, got, r.Reasons[0].Text(h))
			}
			checked++
		}
	}

	for _, tc := range []struct {
		name     string
		limit    int32 // hundredths of a percent
		deps, n  int
		deprived bool
	}{
		{"half is not over 50 %", 5000, 1, 2, false},
		{"51 of 100 is over 50 %", 5000, 51, 100, true},
		{"1 of 3 is over a province's 33.33 %", 3333, 1, 3, true},
		{"1 of 3 is not over 33.34 %", 3334, 1, 3, false},
		{"2 of 3 is over 66.66 %", 6666, 2, 3, true},
		{"2 of 3 is not over 66.67 %", 6667, 2, 3, false},
	} {
		r := Reason{Member: -1, Code: reasonDependants, Age: tc.deps, Enum: int32(tc.n), Enum2: tc.limit}
		text := r.Text(&Household{})
		got := shown(t, text, "(")
		limit := float64(tc.limit) / 100
		if tc.deprived && got <= limit || !tc.deprived && got > limit {
			t.Errorf("%s: the reason shows %v%% against %v%% (%s)", tc.name, got, limit, text)
		}
		checked++
	}
	t.Logf("%d reasons checked", checked)
}

// sampleHousehold is a valid household of n adults for the tests of this
// package.
func sampleHousehold(n int) *Household {
	h := &Household{
		Id: "h", Area: rasoatv1.Area_AREA_RURAL, ReviewDate: "2025-10-20",
		Housing: &rasoatv1.Housing{WallDurable: proto.Bool(true), FrameDurable: proto.Bool(true), RoofDurable: proto.Bool(true), FloorAreaM2: proto.Float64(100)},
		WaterSanitation: &rasoatv1.WaterSanitation{
			WaterSource: rasoatv1.WaterSource_WATER_SOURCE_PIPED, Latrine: rasoatv1.Latrine_LATRINE_FLUSH_SEPTIC,
		},
		Information: &rasoatv1.Information{UsesTelecom: proto.Bool(true), InfoDevices: []rasoatv1.InfoDevice{rasoatv1.InfoDevice_INFO_DEVICE_TV}},
		Income:      &rasoatv1.Income{Basis: &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: 9_000_000}},
	}
	for i := range n {
		h.Members = append(h.Members, &rasoatv1.Member{
			Id: "m" + strconv.Itoa(i), FullName: "Người " + strconv.Itoa(i), Sex: rasoatv1.Sex_SEX_MALE, BirthDate: "1990-03-01",
			InSchool: proto.Bool(false), HasHealthInsurance: proto.Bool(true),
			HighestEducation: rasoatv1.EducationLevel_EDUCATION_LEVEL_UPPER_SECONDARY,
			Employment:       rasoatv1.Employment_EMPLOYMENT_WAGE_WITH_CONTRACT,
		})
	}
	return h
}

// TestThresholdOffTheReasonsGridIsRefused: a province's threshold with more
// decimals than a reason shows could not be shown on the right side of, so
// the standard is refused on load, naming the parameter.
func TestThresholdOffTheReasonsGridIsRefused(t *testing.T) {
	src, err := BuiltinJSON("2021-2025")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`"minM2PerCapita": 8}`, `"minM2PerCapita": 7.995}`, "minM2PerCapita: at most two decimals"},
		{`"maxRatio": 0.5}`, `"maxRatio": 0.33333}`, "maxRatio: at most four decimals"},
	} {
		edited := strings.Replace(string(src), tc.from, tc.to, 1)
		if edited == string(src) {
			t.Fatalf("%s not found in the built-in standard", tc.from)
		}
		if _, err := LoadStandard(strings.NewReader(edited)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.to, err, tc.want)
		}
	}
}
