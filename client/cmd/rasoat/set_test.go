package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

func TestSetThenShowReflectsTheChangeAndTheNewClassification(t *testing.T) {
	tests := []struct {
		name     string
		sets     [][3]string // entity, field, JSON value
		check    func(h *rasoatv1.Household) bool
		class    rasoatv1.Classification
		deprived []string
	}{
		{
			// Middle applies to a farming (forestry, fishery, salt) household,
			// on its income without state assistance (QĐ 24/2021, Điều 2 khoản 2).
			name: "income above the poverty line and under the middle line makes a farming household MIDDLE",
			sets: [][3]string{
				{exampleID, "agriForestryFisherySalt", "true"},
				{exampleID, "income", `{"monthlyPerCapitaVnd":"1800000","stateAssistanceAnnualVnd":"0"}`},
			},
			check:    func(h *rasoatv1.Household) bool { return h.GetIncome().GetMonthlyPerCapitaVnd() == 1800000 },
			class:    rasoatv1.Classification_CLASSIFICATION_MIDDLE,
			deprived: exampleDeprived,
		},
		{
			name:     "a larger house is no longer deprived of housing area and three deprivations stay POOR",
			sets:     [][3]string{{exampleID, "housing.floorAreaM2", "40"}},
			check:    func(h *rasoatv1.Household) bool { return h.GetHousing().GetFloorAreaM2() == 40 },
			class:    rasoatv1.Classification_CLASSIFICATION_POOR,
			deprived: []string{"HEALTH_INSURANCE", "HOUSING_QUALITY", "LATRINE"},
		},
		{
			name: "a child's health insurance (a member's field) and a latrine leave two deprivations: NEAR_POOR",
			sets: [][3]string{
				{exampleChild, "hasHealthInsurance", "true"},
				{exampleID, "waterSanitation.latrine", `"LATRINE_FLUSH_SEPTIC"`},
			},
			check: func(h *rasoatv1.Household) bool {
				return h.GetMembers()[1].GetHasHealthInsurance() && h.GetWaterSanitation().GetLatrine() == rasoatv1.Latrine_LATRINE_FLUSH_SEPTIC
			},
			class:    rasoatv1.Classification_CLASSIFICATION_NEAR_POOR,
			deprived: []string{"HOUSING_QUALITY", "HOUSING_AREA"},
		},
		{
			name:     "a name in Vietnamese is a JSON string and changes no classification",
			sets:     [][3]string{{exampleID, "headName", `"Hoàng Văn Sáng (Sáng B)"`}},
			check:    func(h *rasoatv1.Household) bool { return h.GetHeadName() == "Hoàng Văn Sáng (Sáng B)" },
			class:    rasoatv1.Classification_CLASSIFICATION_POOR,
			deprived: exampleDeprived,
		},
		{
			name:     "an enum may be given by number: urban, still under the urban line",
			sets:     [][3]string{{exampleID, "area", "2"}},
			check:    func(h *rasoatv1.Household) bool { return h.GetArea() == rasoatv1.Area_AREA_URBAN },
			class:    rasoatv1.Classification_CLASSIFICATION_POOR,
			deprived: exampleDeprived,
		},
		{
			name:  "null clears an answer, and without the floor area the household cannot be scored",
			sets:  [][3]string{{exampleID, "housing.floorAreaM2", "null"}},
			check: func(h *rasoatv1.Household) bool { return h.GetHousing().FloorAreaM2 == nil },
			class: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := tabletFile(t)
			enrolExample(t, db)
			for _, s := range tt.sets {
				stdout := ok(t, "", "set", "--db", db, s[0], s[1], s[2])
				if !strings.Contains(stdout, s[1]+" = "+s[2]) {
					t.Errorf("set printed %q", stdout)
				}
			}
			stdout, _, code := rasoat(t, "", "show", "--json", "--db", db, exampleID)
			h, a, _ := decodeShow(t, stdout)
			if !tt.check(h) {
				t.Errorf("household after set = %v", h)
			}
			if tt.class < 0 {
				if code != exitInvalid || a != nil {
					t.Errorf("exit code %d, assessment %v; want it unscorable", code, a)
				}
				return
			}
			if a.GetClassification() != tt.class || !slices.Equal(a.GetDeprived(), tt.deprived) {
				t.Errorf("classification %v deprived %v; want %v %v", a.GetClassification(), a.GetDeprived(), tt.class, tt.deprived)
			}
			text := ok(t, "", "show", "--db", db, exampleID)
			if want := classificationName(tt.class); !strings.Contains(text, "classification   "+want+" (") {
				t.Errorf("show does not print the classification %s:\n%s", want, text)
			}
		})
	}
}

func TestSetInvalidNamesTheFieldAndLeavesTheFileUnchanged(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		stderrHas []string
	}{
		{"an unknown field lists the fields", []string{exampleID, "housing.floorArea", "14"}, []string{"housing.floorArea: is not a field of a household", "housing.floorAreaM2"}},
		{"a value of the wrong type", []string{exampleID, "housing.floorAreaM2", `"big"`}, []string{"housing.floorAreaM2: not a valid value"}},
		{"text without JSON quotes says how to quote it", []string{exampleID, "headName", "Hoàng Văn Sáng"}, []string{"headName:", "not valid JSON", `'"Hoàng Văn Sáng"'`}},
		{"an unknown enum name lists the valid names", []string{exampleID, "waterSanitation.latrine", `"LATRINE_GOLD"`}, []string{`waterSanitation.latrine: unknown value "LATRINE_GOLD"; valid: LATRINE_UNSPECIFIED, LATRINE_FLUSH_SEPTIC,`}},
		{"an unknown enum number lists the valid names", []string{exampleID, "area", "9"}, []string{"area: unknown value 9; valid: AREA_UNSPECIFIED, AREA_RURAL, AREA_URBAN"}},
		{"an unknown name in an enum list lists the valid names", []string{exampleID, "information.infoDevices", `["INFO_DEVICE_TV","PHONE"]`}, []string{`information.infoDevices: unknown value "PHONE"; valid: INFO_DEVICE_UNSPECIFIED,`}},
		{"a member's field on the household", []string{exampleID, "birthDate", `"2001-01-01"`}, []string{"birthDate: is not a field of a household"}},
		{"a household field on a member", []string{exampleChild, "headName", `"X"`}, []string{"headName: is not a field of a member"}},
		{"an unknown entity", []string{"0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9dff", "headName", `"X"`}, []string{"0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9dff", "not found"}},
		{"a negative floor area is refused with the range the engine allows", []string{exampleID, "housing.floorAreaM2", "-3"}, []string{"housing.floorAreaM2: must be between 0 and 1000000 m², got -3"}},
		{"a score A out of range names the field inside income", []string{exampleID, "income", `{"scoreA":-4}`}, []string{"income.scoreA: must be between 0 and 10000, got -4"}},
		{"a birth date after the review date is refused at the door", []string{exampleChild, "birthDate", `"2026-01-15"`}, []string{"birthDate: 2026-01-15 is after the review date 2025-10-20"}},
		{"a member removal must be a known reason", []string{exampleChild, "removed", `"REMOVAL_ELOPED"`}, []string{`removed: unknown value "REMOVAL_ELOPED"; valid: REMOVAL_UNSPECIFIED, REMOVAL_DIED`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "tablet.db")
			enrolExample(t, db)
			before := files(t, dir)
			stdout, stderr, code := rasoat(t, "", append([]string{"set", "--db", db}, tt.args...)...)
			if code != exitInvalid || stdout != "" {
				t.Errorf("exit code %d, stdout %q; want %d and nothing", code, stdout, exitInvalid)
			}
			for _, s := range tt.stderrHas {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr does not contain %q: %s", s, stderr)
				}
			}
			if !sameFiles(before, files(t, dir)) {
				t.Error("the tablet file changed")
			}
		})
	}
}

func TestSetANegativeNumberNeedsNoDoubleDash(t *testing.T) {
	db := tabletFile(t)
	enrolExample(t, db)
	// -1 reaches the engine as the value (which refuses it), not the flag parser.
	_, stderr, code := rasoat(t, "", "set", exampleID, "housing.floorAreaM2", "-1", "--db", db)
	if code != exitInvalid || !strings.Contains(stderr, "housing.floorAreaM2: must be between 0 and 1000000 m², got -1") {
		t.Errorf("exit code %d, stderr %s", code, stderr)
	}
}
