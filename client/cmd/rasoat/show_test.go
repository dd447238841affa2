package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// decodeShow parses show --json.
func decodeShow(t *testing.T, stdout string) (*rasoatv1.Household, *rasoatv1.Assessment, []violation) {
	t.Helper()
	var out struct {
		Household  json.RawMessage `json:"household"`
		Assessment json.RawMessage `json:"assessment"`
		Violations []violation     `json:"violations"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("show --json: %v\n%s", err, stdout)
	}
	h := &rasoatv1.Household{}
	if err := protojson.Unmarshal(out.Household, h); err != nil {
		t.Fatalf("show --json household: %v", err)
	}
	if out.Assessment == nil {
		return h, nil, out.Violations
	}
	a := &rasoatv1.Assessment{}
	if err := protojson.Unmarshal(out.Assessment, a); err != nil {
		t.Fatalf("show --json assessment: %v", err)
	}
	return h, a, out.Violations
}

// squash collapses runs of spaces, so that a test does not depend on how
// wide a column is.
func squash(s string) string {
	return spaces.ReplaceAllString(s, " ")
}

var spaces = regexp.MustCompile(` {2,}`)

func readExample(t *testing.T) *rasoatv1.Household {
	t.Helper()
	b, err := os.ReadFile(householdExample)
	if err != nil {
		t.Fatal(err)
	}
	h := &rasoatv1.Household{}
	if err := protojson.Unmarshal(b, h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAddThenShowTheSampleHouseholdIsPoorWithFourDeprivedIndicators(t *testing.T) {
	db := tabletFile(t)
	enrolExample(t, db)

	t.Run("text", func(t *testing.T) {
		stdout := ok(t, "", "show", "--db", db, exampleID)
		for _, want := range []string{
			"Household (hộ) " + exampleID + ", village " + exampleVill,
			`headName                         "Hoàng Văn Sáng"`,
			"housing.floorAreaM2              14.5",
			"Member " + exampleChild,
			"standard 2021-2025",
			"classification   POOR (hộ nghèo)",
			"income used      1.350.000 đồng/người/tháng (entered per capita); poverty line 1.500.000, middle 2.250.000",
			"deprived         4 of 12 indicators (score B 40; poor needs 3 or more)",
			"HEALTH_INSURANCE (Bảo hiểm y tế): Vi Thị Mai, 12 tuổi, không có bảo hiểm y tế",
			"HOUSING_AREA (Diện tích nhà ở bình quân đầu người): diện tích bình quân 7,25 m²/người (14,5 m², 2 người)",
			"provisional: no",
		} {
			if !strings.Contains(squash(stdout), squash(want)) {
				t.Errorf("show does not print %q:\n%s", want, stdout)
			}
		}
		for _, ind := range exampleDeprived {
			if !strings.Contains(stdout, "\n    "+ind+" (") {
				t.Errorf("show does not give the reasons for %s:\n%s", ind, stdout)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		h, a, viol := decodeShow(t, ok(t, "", "show", "--json", "--db", db, exampleID))
		if want := readExample(t); !proto.Equal(h, want) {
			t.Errorf("household round trip differs:\n got %v\nwant %v", h, want)
		}
		if a == nil || viol != nil {
			t.Fatalf("assessment %v, violations %v", a, viol)
		}
		if a.GetClassification() != rasoatv1.Classification_CLASSIFICATION_POOR || !slices.Equal(a.GetDeprived(), exampleDeprived) ||
			a.GetIncomePerCapitaVnd() != 1350000 || a.GetStandard() != "2021-2025" || a.GetProvisional() || a.GetHouseholdId() != exampleID {
			t.Errorf("assessment = %v", a)
		}
		for _, ir := range a.GetIndicators() {
			if ir.GetDeprived() && (len(ir.GetReasons()) == 0 || ir.GetReasons()[0].GetText() == "") {
				t.Errorf("%s is deprived without a reason", ir.GetIndicator())
			}
		}
	})
}

func TestShowHouseholdTheStandardCannotScoreYet(t *testing.T) {
	db := tabletFile(t)
	id := strings.TrimSpace(ok(t, `{"headName":"Lò Văn Pảo","area":"AREA_RURAL","reviewDate":"2025-10-20"}`, "add", "--db", db, "--village", "V1"))
	tests := []struct {
		name string
		args []string
	}{
		{"text lists the answers still needed", []string{"show", "--db", db, id}},
		{"json gives violations instead of an assessment", []string{"show", "--json", "--db", db, id}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, code := rasoat(t, "", tt.args...)
			if code != exitInvalid {
				t.Errorf("exit code %d, want %d", code, exitInvalid)
			}
			if slices.Contains(tt.args, "--json") {
				h, a, viol := decodeShow(t, stdout)
				if h.GetHeadName() != "Lò Văn Pảo" || a != nil || len(viol) == 0 || !slices.ContainsFunc(viol, func(v violation) bool { return v.Field == "income" }) {
					t.Errorf("household %v, assessment %v, violations %v", h, a, viol)
				}
				return
			}
			if !strings.Contains(stdout, "Assessment: not possible yet") || !strings.Contains(stdout, "  income: required") || !strings.Contains(stdout, `"Lò Văn Pảo"`) {
				t.Errorf("show:\n%s", stdout)
			}
		})
	}
}

func TestShowUnknownHouseholdExitsOne(t *testing.T) {
	db := tabletFile(t)
	enrolExample(t, db)
	for _, id := range []string{"0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9dff", exampleChild} {
		stdout, stderr, code := rasoat(t, "", "show", "--db", db, id)
		if code != exitInvalid || stdout != "" || !strings.Contains(stderr, "not found") {
			t.Errorf("show %s: exit code %d, stdout %q, stderr %q", id, code, stdout, stderr)
		}
	}
}
