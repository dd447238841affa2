package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sampleFile is the village shipped at the repository root.
var sampleFile = filepath.Join("..", "..", "..", "testdata", "sample-village.jsonl")

const goldenFile = "testdata/score-sample.golden"

// rasoat runs the client in-process.
func rasoat(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// result is one output line of score, valid or not.
type result struct {
	Line             int                 `json:"line"`
	ID               string              `json:"id"`
	Standard         string              `json:"standard"`
	Classification   string              `json:"classification"`
	DeprivationCount int                 `json:"deprivationCount"`
	Deprived         []string            `json:"deprived"`
	IncomePerCapita  *int64              `json:"incomePerCapita"`
	ScoreA           *int32              `json:"scoreA"`
	ScoreB           int                 `json:"scoreB"`
	Provisional      bool                `json:"provisional"`
	Reasons          map[string][]string `json:"reasons"`
	Notes            []string            `json:"notes"`
	Error            string              `json:"error"`
	Violations       []violation         `json:"violations"`
}

func parseResults(t *testing.T, stdout string) []result {
	t.Helper()
	var rs []result
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var r result
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		rs = append(rs, r)
	}
	return rs
}

// sampleHousehold is the first household of the sample village (Hoàng Văn
// Sáng's), decoded so that a test can change one answer.
func sampleHousehold(t *testing.T) *rasoatv1.Household {
	t.Helper()
	b, err := os.ReadFile(sampleFile)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	h := new(rasoatv1.Household)
	if err := protojson.Unmarshal(first, h); err != nil {
		t.Fatal(err)
	}
	return h
}

func jsonLine(t *testing.T, h *rasoatv1.Household) string {
	t.Helper()
	b, err := protojson.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func TestScoreSampleFirstHouseholdIsPoorAndInvalidLastLineExitsOne(t *testing.T) {
	stdout, stderr, code := rasoat(t, "", "score", sampleFile)
	if code != exitInvalid {
		t.Errorf("exit code = %d, want %d (the last line is invalid); stderr: %s", code, exitInvalid, stderr)
	}
	rs := parseResults(t, stdout)
	if len(rs) < 2 {
		t.Fatalf("got %d output lines", len(rs))
	}
	first := rs[0]
	if first.Line != 1 || first.ID != "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d01" || first.Standard != "2021-2025" {
		t.Errorf("first line = %+v", first)
	}
	if first.Classification != "POOR" {
		t.Errorf("classification = %q, want POOR (1,350,000 VND under the rural line of 1,500,000, 4 deprivations)", first.Classification)
	}
	wantDeprived := []string{"HEALTH_INSURANCE", "HOUSING_QUALITY", "HOUSING_AREA", "LATRINE"}
	if !slices.Equal(first.Deprived, wantDeprived) || first.DeprivationCount != 4 || first.ScoreB != 40 {
		t.Errorf("deprived = %v (%d, score B %d), want %v (4, score B 40)", first.Deprived, first.DeprivationCount, first.ScoreB, wantDeprived)
	}
	if first.IncomePerCapita == nil || *first.IncomePerCapita != 1350000 {
		t.Errorf("incomePerCapita = %v, want 1350000", first.IncomePerCapita)
	}
	if got := first.Reasons["HEALTH_INSURANCE"]; !slices.Equal(got, []string{"Vi Thị Mai, 12 tuổi, không có bảo hiểm y tế"}) {
		t.Errorf("HEALTH_INSURANCE reasons = %q", got)
	}
	if len(first.Reasons) != 4 {
		t.Errorf("reasons given for %d indicators, want the 4 deprived: %v", len(first.Reasons), first.Reasons)
	}
	last := rs[len(rs)-1]
	if last.Error == "" || len(last.Violations) == 0 || last.Classification != "" {
		t.Errorf("last line = %+v, want an error with violations", last)
	}
	for _, r := range rs[:len(rs)-1] {
		if r.Error != "" {
			t.Errorf("line %d is invalid: %s", r.Line, r.Error)
		}
	}
}

func TestScoreSampleGolden(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		golden string
	}{
		{"one line per household", []string{"score", sampleFile}, goldenFile},
		{"summary table", []string{"score", "--summary", sampleFile}, "testdata/score-sample-summary.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, code := rasoat(t, "", tt.args...)
			if code != exitInvalid {
				t.Errorf("exit code = %d, want %d", code, exitInvalid)
			}
			if *update {
				if err := os.WriteFile(tt.golden, []byte(stdout), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(tt.golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if stdout != string(want) {
				t.Errorf("output differs from %s (run go test -update and review the diff):\n%s", tt.golden, lineDiff(string(want), stdout))
			}
		})
	}
}

func TestScoreSummaryOfTheSampleVillageAgreesWithTheLines(t *testing.T) {
	stdout, _, _ := rasoat(t, "", "score", sampleFile)
	rs := parseResults(t, stdout)
	classes := map[string]int{}
	var households, invalid, multi int
	var share float64
	for _, r := range rs {
		if r.Error != "" {
			invalid++
			continue
		}
		households++
		classes[r.Classification]++
		if r.DeprivationCount >= 3 {
			multi++
			share += float64(r.DeprivationCount) / 12
		}
	}
	// The village is meant to show every classification.
	if want := map[string]int{"POOR": 4, "NEAR_POOR": 4, "MIDDLE": 2, "NOT_POOR": 3}; !maps.Equal(classes, want) {
		t.Errorf("sample village classes = %v, want %v", classes, want)
	}

	stdout, stderr, code := rasoat(t, "", "score", "--summary", "--json", sampleFile)
	if code != exitInvalid {
		t.Errorf("exit code = %d, want %d", code, exitInvalid)
	}
	if !strings.Contains(stderr, "sample-village.jsonl:14: invalid household: members[2].birthDate") {
		t.Errorf("stderr does not report line 14: %s", stderr)
	}
	var s summaryJSON
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Standards) != 1 {
		t.Fatalf("standards = %d, want 1", len(s.Standards))
	}
	ss := s.Standards[0]
	c := ss.Classifications
	got := map[string]int{"POOR": c.Poor.Count, "NEAR_POOR": c.NearPoor.Count, "MIDDLE": c.Middle.Count, "NOT_POOR": c.NotPoor.Count}
	if !maps.Equal(got, classes) || ss.Households != households || ss.Invalid != invalid || s.Invalid != invalid || s.Unassigned != 0 {
		t.Errorf("summary %v, %d households, %d invalid; lines give %v, %d, %d", got, ss.Households, ss.Invalid, classes, households, invalid)
	}
	h := float64(multi) / float64(households)
	if a := share / float64(multi); !near(ss.AlkireFoster.H, h) || !near(ss.AlkireFoster.A, a) || !near(ss.AlkireFoster.M0, h*a) {
		t.Errorf("Alkire–Foster = %+v, want H %v A %v", ss.AlkireFoster, h, a)
	}
}

// lineDiff names the first lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

func TestScoreInvalidLineNamesTheField(t *testing.T) {
	const id = "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d01"
	tests := []struct {
		name   string
		line   func(t *testing.T) string
		field  string
		id     string // "" when the line cannot be read at all
		errHas string
	}{
		{
			name: "child born after the review date names the member's birthDate",
			line: func(t *testing.T) string {
				h := sampleHousehold(t)
				h.Members[1].BirthDate = "2026-01-15"
				return jsonLine(t, h)
			},
			field: "members[1].birthDate", id: id, errHas: "after the review date",
		},
		{
			name: "unknown enum name names the field",
			line: func(t *testing.T) string {
				return strings.Replace(jsonLine(t, sampleHousehold(t)), `"AREA_RURAL"`, `"AREA_MOUNTAIN"`, 1)
			},
			field: "area", id: id, errHas: "AREA_MOUNTAIN",
		},
		{
			name: "unknown enum name in a member names the member's field",
			line: func(t *testing.T) string {
				return strings.Replace(jsonLine(t, sampleHousehold(t)), `"SEX_FEMALE"`, `"NỮ"`, 1)
			},
			field: "members[1].sex", id: id, errHas: "the names sex takes are SEX_UNSPECIFIED, SEX_MALE, SEX_FEMALE",
		},
		{
			name: "unknown enum name in a repeated field names the element",
			line: func(t *testing.T) string {
				return strings.Replace(jsonLine(t, sampleHousehold(t)), `"INFO_DEVICE_SMARTPHONE"`, `"INFO_DEVICE_FAX"`, 1)
			},
			field: "information.infoDevices[0]", id: id, errHas: "INFO_DEVICE_FAX",
		},
		{
			name: "unknown field names the field",
			line: func(t *testing.T) string {
				return strings.Replace(jsonLine(t, sampleHousehold(t)), `{"id"`, `{"foo":1, "id"`, 1)
			},
			field: "foo", id: id, errHas: `unknown field "foo"`,
		},
		{
			name: "unknown field in a member names its path",
			line: func(t *testing.T) string {
				return strings.Replace(jsonLine(t, sampleHousehold(t)), `"fullName":"Vi Thị Mai"`, `"fullName":"Vi Thị Mai", "nickname":"Mai"`, 1)
			},
			field: "members[1].nickname", id: id, errHas: "nickname",
		},
		{
			name: "a number where an object belongs names the field",
			line: func(t *testing.T) string {
				h := sampleHousehold(t)
				h.Housing = nil
				return strings.Replace(jsonLine(t, h), `{"id"`, `{"housing":5, "id"`, 1)
			},
			field: "housing", id: id, errHas: "5",
		},
		{
			name: "money that is not a number names the field",
			line: func(t *testing.T) string {
				return strings.Replace(jsonLine(t, sampleHousehold(t)), `"1350000"`, `"1.350.000"`, 1)
			},
			field: "income.monthlyPerCapitaVnd", id: id, errHas: "1.350.000",
		},
		{
			name: "two income bases name the second one",
			line: func(t *testing.T) string {
				return strings.Replace(jsonLine(t, sampleHousehold(t)), `"monthlyPerCapitaVnd":"1350000"`, `"monthlyPerCapitaVnd":"1350000", "scoreA":120`, 1)
			},
			field: "income.scoreA", id: id, errHas: "give only one of monthlyPerCapitaVnd, annual, scoreA",
		},
		{
			name:  "a line that is not JSON has an empty field and an error",
			line:  func(*testing.T) string { return "{\"id\": \"x\", \"members\": [\n" },
			field: "", errHas: "decode household",
		},
		{
			name: "a missing review date names reviewDate",
			line: func(t *testing.T) string {
				h := sampleHousehold(t)
				h.ReviewDate = ""
				return jsonLine(t, h)
			},
			field: "reviewDate", id: id, errHas: "reviewDate",
		},
		{
			name: "a review date no standard covers names reviewDate",
			line: func(t *testing.T) string {
				h := sampleHousehold(t)
				h.ReviewDate = "2040-10-20"
				return jsonLine(t, h)
			},
			field: "reviewDate", id: id, errHas: "no standard in force",
		},
		{
			name: "a child of school age without inSchool names it",
			line: func(t *testing.T) string {
				h := sampleHousehold(t)
				h.Members[1].InSchool = nil
				return jsonLine(t, h)
			},
			field: "members[1].inSchool", id: id, errHas: "required",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := rasoat(t, tt.line(t), "score")
			if code != exitInvalid {
				t.Errorf("exit code = %d, want %d; stderr: %s", code, exitInvalid, stderr)
			}
			rs := parseResults(t, stdout)
			if len(rs) != 1 {
				t.Fatalf("got %d output lines, want 1: %s", len(rs), stdout)
			}
			r := rs[0]
			if r.Line != 1 || r.ID != tt.id || r.Classification != "" {
				t.Errorf("line %d, id %q, classification %q; want line 1, id %q, no classification", r.Line, r.ID, r.Classification, tt.id)
			}
			if !strings.Contains(r.Error, tt.errHas) {
				t.Errorf("error = %q, want it to contain %q", r.Error, tt.errHas)
			}
			var fields []string
			for _, v := range r.Violations {
				fields = append(fields, v.Field)
				if v.Description == "" {
					t.Errorf("violation of %q has no description", v.Field)
				}
			}
			if !slices.Contains(fields, tt.field) {
				t.Errorf("violations name %q, want %q among them", fields, tt.field)
			}
			if !strings.Contains(stdout, `"violations":[`) {
				t.Errorf("no violations array in %s", stdout)
			}
		})
	}
}

func TestScoreStandardChangesTheResult(t *testing.T) {
	// noDeprivation is the first household with every deprivation repaired.
	noDeprivation := func(h *rasoatv1.Household) {
		h.Members[1].HasHealthInsurance = proto.Bool(true)
		h.Housing.WallDurable, h.Housing.RoofDurable = proto.Bool(true), proto.Bool(true)
		h.Housing.FloorAreaM2 = proto.Float64(40)
		h.WaterSanitation.Latrine = rasoatv1.Latrine_LATRINE_POUR_FLUSH
		h.Information.InfoDevices = append(h.Information.InfoDevices, rasoatv1.InfoDevice_INFO_DEVICE_TV)
	}
	tests := []struct {
		name     string
		standard string // flag value; "" chooses by review date
		income   int64
		repair   bool
		want     string
	}{
		{"1,350,000 with 4 deprivations is poor under 2021-2025 (line 1,500,000)", "", 1350000, false, "POOR"},
		{"1,350,000 with 4 deprivations is poor when 2021-2025 is named", "2021-2025", 1350000, false, "POOR"},
		{"1,350,000 is middle under 2016-2020 (near-poor line 1,000,000, middle 1,500,000)", "2016-2020", 1350000, false, "MIDDLE"},
		{"650,000 is poor under 2016-2020 without any deprivation (line 700,000)", "2016-2020", 650000, true, "POOR"},
		{"900,000 with 5 deprivations is poor under 2016-2020", "2016-2020", 900000, false, "POOR"},
		{"900,000 without deprivation is near-poor under 2016-2020", "2016-2020", 900000, true, "NEAR_POOR"},
		{"1,600,000 is not poor under 2016-2020 (middle up to 1,500,000)", "2016-2020", 1600000, false, "NOT_POOR"},
		{"1,600,000 is middle under 2021-2025 (middle up to 2,250,000)", "2021-2025", 1600000, false, "MIDDLE"},
		{"1,350,000 without deprivation is near-poor under 2021-2025", "", 1350000, true, "NEAR_POOR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sampleHousehold(t)
			h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: tt.income}, StateAssistanceAnnualVnd: proto.Int64(0)}
			if tt.repair {
				noDeprivation(h)
			}
			args := []string{"score"}
			if tt.standard != "" {
				args = append(args, "--standard", tt.standard)
			}
			stdout, stderr, code := rasoat(t, jsonLine(t, h), args...)
			if code != exitOK {
				t.Fatalf("exit code = %d; stderr: %s; stdout: %s", code, stderr, stdout)
			}
			rs := parseResults(t, stdout)
			if len(rs) != 1 {
				t.Fatalf("got %d lines", len(rs))
			}
			wantStd := tt.standard
			if wantStd == "" {
				wantStd = "2021-2025"
			}
			if rs[0].Classification != tt.want || rs[0].Standard != wantStd {
				t.Errorf("got %s under %s (%d deprivations: %v), want %s under %s", rs[0].Classification, rs[0].Standard, rs[0].DeprivationCount, rs[0].Deprived, tt.want, wantStd)
			}
			if tt.repair && rs[0].DeprivationCount != 0 {
				t.Errorf("repaired household still deprived in %v", rs[0].Deprived)
			}
		})
	}
}

func TestScoreReviewDateChoosesTheStandardPerLine(t *testing.T) {
	h := sampleHousehold(t)
	in := jsonLine(t, h)
	h.ReviewDate = "2020-10-20" // decides list year 2021: Decision 59/2015
	in += jsonLine(t, h)
	stdout, stderr, code := rasoat(t, in, "score")
	if code != exitOK {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr)
	}
	rs := parseResults(t, stdout)
	if len(rs) != 2 || rs[0].Standard != "2021-2025" || rs[1].Standard != "2016-2020" {
		t.Fatalf("standards = %+v, want 2021-2025 then 2016-2020", rs)
	}
	if rs[0].Classification != "POOR" || rs[1].Classification != "MIDDLE" {
		t.Errorf("classifications = %s, %s; want POOR, MIDDLE", rs[0].Classification, rs[1].Classification)
	}

	// The summary gives one block per standard.
	stdout, _, code = rasoat(t, in, "score", "--summary")
	if code != exitOK {
		t.Fatalf("--summary exit code = %d", code)
	}
	i16, i21 := strings.Index(stdout, "Standard 2016-2020"), strings.Index(stdout, "Standard 2021-2025")
	if i16 < 0 || i21 < 0 || i16 > i21 {
		t.Errorf("want a 2016-2020 block then a 2021-2025 block:\n%s", stdout)
	}
}

func TestScoreSummaryAlkireFosterByHand(t *testing.T) {
	// Three households whose deprivations are known: the first sample
	// household (4 of 12, poor), the same with every deprivation repaired
	// and a high income (0, not poor), and one deprived in 3 indicators but
	// with 2,000,000 VND a head (middle by income, yet multidimensionally
	// poor for Alkire–Foster, which looks at deprivations only).
	poor := sampleHousehold(t)
	rich := sampleHousehold(t)
	rich.Members[1].HasHealthInsurance = proto.Bool(true)
	rich.Housing.WallDurable, rich.Housing.RoofDurable = proto.Bool(true), proto.Bool(true)
	rich.Housing.FloorAreaM2 = proto.Float64(40)
	rich.WaterSanitation.Latrine = rasoatv1.Latrine_LATRINE_FLUSH_SEPTIC
	rich.Income.Basis = &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: 3000000}
	middle := sampleHousehold(t)
	middle.Housing.WallDurable, middle.Housing.RoofDurable = proto.Bool(true), proto.Bool(true)
	middle.Housing.FloorAreaM2 = proto.Float64(10)
	middle.Income.Basis = &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: 2000000}
	households := []struct {
		h            *rasoatv1.Household
		deprivations int
		class        string
	}{
		{poor, 4, "POOR"},
		{rich, 0, "NOT_POOR"},
		{middle, 3, "MIDDLE"},
	}
	const indicators, k = 12, 3
	var in string
	for _, x := range households {
		in += jsonLine(t, x.h)
	}

	// The per-line output pins the inputs.
	stdout, _, code := rasoat(t, in, "score")
	if code != exitOK {
		t.Fatalf("exit code = %d", code)
	}
	for i, r := range parseResults(t, stdout) {
		if r.DeprivationCount != households[i].deprivations || r.Classification != households[i].class {
			t.Fatalf("household %d: %d deprivations, %s; the test assumes %d, %s", i+1, r.DeprivationCount, r.Classification, households[i].deprivations, households[i].class)
		}
	}

	// H: share with >= k deprivations; A: mean deprivation share among
	// them; M0 = H × A.
	n, poorMD, shares := 0, 0, 0.0
	for _, x := range households {
		n++
		if x.deprivations >= k {
			poorMD++
			shares += float64(x.deprivations) / indicators
		}
	}
	wantH := float64(poorMD) / float64(n)
	wantA := shares / float64(poorMD)
	wantM0 := wantH * wantA

	t.Run("text", func(t *testing.T) {
		stdout, stderr, code := rasoat(t, in, "score", "--summary")
		if code != exitOK {
			t.Fatalf("exit code = %d; stderr: %s", code, stderr)
		}
		rows := map[string][]string{}
		for _, l := range strings.Split(stdout, "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				rows[f[0]] = f
			}
		}
		for _, c := range []struct {
			row  string
			want float64
		}{{"H", wantH}, {"A", wantA}, {"M0", wantM0}} {
			if got := rows[c.row]; len(got) < 2 || got[1] != fmt.Sprintf("%.4f", c.want) {
				t.Errorf("%s row = %q, want %.4f", c.row, got, c.want)
			}
		}
		for _, c := range []struct{ row, count, rate string }{
			{"POOR", "1", "33.3%"}, {"NEAR_POOR", "0", "0.0%"}, {"MIDDLE", "1", "33.3%"}, {"NOT_POOR", "1", "33.3%"},
		} {
			f := rows[c.row]
			if len(f) < 2 || f[len(f)-2] != c.count || f[len(f)-1] != c.rate {
				t.Errorf("%s row = %q, want count %s rate %s", c.row, f, c.count, c.rate)
			}
		}
		if f := rows["Households"]; len(f) != 2 || f[1] != "3" {
			t.Errorf("Households row = %q, want 3", f)
		}
		if f := rows["Members"]; len(f) != 2 || f[1] != "6" {
			t.Errorf("Members row = %q, want 6", f)
		}
		if f := rows["Invalid"]; len(f) != 2 || f[1] != "0" {
			t.Errorf("Invalid row = %q, want 0", f)
		}
		if f := rows["Provisional"]; len(f) != 2 || f[1] != "no" {
			t.Errorf("Provisional row = %q, want no", f)
		}
		// HOUSING_AREA: the poor household (7.25 m²) and the middle one
		// (5 m²): 2 of 3, 1 of the 1 poor.
		if f := rows["HOUSING_AREA"]; len(f) < 4 || !slices.Equal(f[len(f)-4:], []string{"2", "66.7%", "1", "100.0%"}) {
			t.Errorf("HOUSING_AREA row = %q", f)
		}
	})

	t.Run("json", func(t *testing.T) {
		stdout, stderr, code := rasoat(t, in+"{bad\n", "score", "--summary", "--json")
		if code != exitInvalid {
			t.Fatalf("exit code = %d, want %d (one bad line); stderr: %s", code, exitInvalid, stderr)
		}
		if !strings.Contains(stderr, ":4:") {
			t.Errorf("stderr does not name line 4: %s", stderr)
		}
		var s summaryJSON
		dec := json.NewDecoder(strings.NewReader(stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("%v: %s", err, stdout)
		}
		if s.Lines != 4 || s.Households != 3 || s.Invalid != 1 || s.Unassigned != 1 || len(s.Standards) != 1 {
			t.Fatalf("summary = %+v", s)
		}
		ss := s.Standards[0]
		if ss.Households != 3 || ss.Members != 6 || ss.Classifications.Poor.Count != 1 || ss.Classifications.NotPoor.Count != 1 || ss.Classifications.Middle.Count != 1 {
			t.Errorf("standard summary = %+v", ss)
		}
		af := ss.AlkireFoster
		if af.K != k || af.Indicators != indicators || !near(af.H, wantH) || !near(af.A, wantA) || !near(af.M0, wantM0) {
			t.Errorf("Alkire–Foster = %+v, want H %v A %v M0 %v", af, wantH, wantA, wantM0)
		}
	})
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestScoreUsageErrorsExitTwo(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		stderrHas []string
	}{
		{"no command prints the usage", nil, []string{"Usage:", "score"}},
		{"an unknown command is named", []string{"scor"}, []string{`unknown command "scor"`, "Usage:"}},
		{"an unknown flag prints the score usage", []string{"score", "--standrad", "2021-2025"}, []string{"standrad", "Usage: rasoat score"}},
		{"two input files are refused", []string{"score", "a.jsonl", "b.jsonl"}, []string{"at most one input file"}},
		{"--json needs --summary", []string{"score", "--json"}, []string{"--json goes with --summary"}},
		{"a directory is unreadable input", []string{"score", "testdata"}, []string{"read testdata"}},
		{"a missing input file is unreadable input", []string{"score", filepath.Join("testdata", "no-such.jsonl")}, []string{"no-such.jsonl"}},
		{"an unknown --standard lists the known standards", []string{"score", "--standard", "2021-2026"}, []string{`unknown standard "2021-2026"`, "known: 2016-2020, 2021-2025, 2026-2030"}},
		{"a missing --standard-file is named", []string{"score", "--standard-file", "nope.json"}, []string{"--standard-file", "nope.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := rasoat(t, "", tt.args...)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d", code, exitUsage)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			for _, s := range tt.stderrHas {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr does not contain %q:\n%s", s, stderr)
				}
			}
		})
	}
}

func TestScoreHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"help", "score"}, {"score", "-h"}} {
		stdout, _, code := rasoat(t, "", args...)
		if code != exitOK || !strings.Contains(stdout, "score") {
			t.Errorf("%q: exit code %d, stdout %q", args, code, stdout)
		}
	}
}

// writeStandard writes the built-in 2021-2025 standard, changed by edit, to
// a file.
func writeStandard(t *testing.T, edit func(s map[string]any)) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "survey", "standards", "2021-2025.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	edit(s)
	if b, err = json.Marshal(s); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "standard.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScoreStandardFile(t *testing.T) {
	lowerLine := func(s map[string]any) {
		rural := s["lines"].(map[string]any)["rural"].(map[string]any)
		rural["poverty"], rural["middle"] = 1300000, 2000000
	}
	in := jsonLine(t, sampleHousehold(t)) // 1,350,000 VND, 4 deprivations
	tests := []struct {
		name      string
		edit      func(s map[string]any)
		args      []string
		code      int
		class     string
		standard  string
		stderrHas string
	}{
		{
			name: "a file with a built-in's id replaces it for lines chosen by date",
			edit: lowerLine, code: exitOK, class: "MIDDLE", standard: "2021-2025",
		},
		{
			name: "a local standard over the same years must be named",
			edit: func(s map[string]any) { lowerLine(s); s["id"] = "LS-2021-2025" },
			code: exitUsage, stderrHas: "--standard LS-2021-2025",
		},
		{
			name: "a local standard named with --standard scores every line",
			edit: func(s map[string]any) { lowerLine(s); s["id"] = "LS-2021-2025" },
			args: []string{"--standard", "LS-2021-2025"}, code: exitOK, class: "MIDDLE", standard: "LS-2021-2025",
		},
		{
			name: "a file with an unknown key is a bad --standard-file",
			edit: func(s map[string]any) { s["povertyLine"] = 1 },
			code: exitUsage, stderrHas: "povertyLine",
		},
		{
			name: "a file with a middle line under the poverty line is refused",
			edit: func(s map[string]any) {
				s["lines"].(map[string]any)["rural"].(map[string]any)["middle"] = 1000000
			},
			code: exitUsage, stderrHas: "lines.rural.middle",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"score", "--standard-file", writeStandard(t, tt.edit)}, tt.args...)
			stdout, stderr, code := rasoat(t, in, args...)
			if code != tt.code {
				t.Fatalf("exit code = %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.stderrHas) {
				t.Errorf("stderr does not contain %q: %s", tt.stderrHas, stderr)
			}
			if tt.class == "" {
				return
			}
			rs := parseResults(t, stdout)
			if len(rs) != 1 || rs[0].Classification != tt.class || rs[0].Standard != tt.standard {
				t.Errorf("got %+v, want %s under %s", rs, tt.class, tt.standard)
			}
		})
	}
}

func TestScoreInputLines(t *testing.T) {
	line := strings.TrimSuffix(jsonLine(t, sampleHousehold(t)), "\n")
	tests := []struct {
		name  string
		in    string
		args  []string
		lines []int // line numbers of the results
		code  int
	}{
		{"blank lines are skipped but counted", "\n" + line + "\n  \n\n" + line + "\n", nil, []int{2, 5}, exitOK},
		{"CRLF line endings and a byte-order mark are accepted", "\ufeff" + line + "\r\n" + line + "\r\n", nil, []int{1, 2}, exitOK},
		{"the last line needs no newline", line + "\n" + line, nil, []int{1, 2}, exitOK},
		{"- reads standard input", line + "\n", []string{"-"}, []int{1}, exitOK},
		{"empty input gives no output", "", nil, nil, exitOK},
		{"a line over 4 MiB is invalid and the next line is still scored",
			line + "\n" + `{"id":"` + strings.Repeat("x", maxLineBytes) + `"}` + "\n" + line + "\n", nil, []int{1, 2, 3}, exitInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := rasoat(t, tt.in, append([]string{"score"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			var got []int
			for _, r := range parseResults(t, stdout) {
				got = append(got, r.Line)
				if tt.code == exitOK && r.Classification != "POOR" {
					t.Errorf("line %d: %+v", r.Line, r)
				}
				if r.Error != "" && !strings.Contains(r.Error, "longer than 4194304 bytes") {
					t.Errorf("line %d: error %q does not say the line is too long", r.Line, r.Error)
				}
			}
			if !slices.Equal(got, tt.lines) {
				t.Errorf("result lines = %v, want %v", got, tt.lines)
			}
		})
	}
}

func TestScoreOutputKeepsVietnameseAndSymbolsReadableInOrder(t *testing.T) {
	h := sampleHousehold(t)
	h.Id = "hộ<7>&1"
	h.Members[1].FullName = "Vi Thị Mai <Mai bé> & em"
	stdout, _, _ := rasoat(t, jsonLine(t, h), "score")
	for _, s := range []string{`"id":"hộ<7>&1"`, `"Vi Thị Mai <Mai bé> & em, 12 tuổi, không có bảo hiểm y tế"`, "7,25 m²/người"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output does not contain %s verbatim: %s", s, stdout)
		}
	}
	if strings.Contains(stdout, `\u`) {
		t.Errorf("output has \\u escapes: %s", stdout)
	}
	// Keys follow the documented order, reasons the standard's order.
	keys := []string{`{"line":`, `"id":`, `"standard":`, `"classification":`, `"deprivationCount":`, `"deprived":`, `"incomePerCapita":`, `"scoreB":`, `"reasons":{"HEALTH_INSURANCE":`, `"HOUSING_QUALITY":`, `"HOUSING_AREA":`, `"LATRINE":`}
	at := 0
	for _, k := range keys {
		i := strings.Index(stdout[at:], k)
		if i < 0 {
			t.Fatalf("%s not found in order in %s", k, stdout)
		}
		at += i
	}
}

func TestScoreScoreAOmitsIncomeAndNotesMiddleUnknown(t *testing.T) {
	h := sampleHousehold(t)
	h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_ScoreA{ScoreA: 150}} // above the rural cut-off of 140
	stdout, _, code := rasoat(t, jsonLine(t, h), "score")
	if code != exitOK {
		t.Fatalf("exit code = %d", code)
	}
	r := parseResults(t, stdout)[0]
	if r.ScoreA == nil || *r.ScoreA != 150 || r.IncomePerCapita != nil {
		t.Errorf("scoreA = %v, incomePerCapita = %v; want 150 and absent", r.ScoreA, r.IncomePerCapita)
	}
	if r.Classification != "NOT_POOR" || len(r.Notes) == 0 {
		t.Errorf("classification %s, notes %q; want NOT_POOR with a note that MIDDLE is unknown", r.Classification, r.Notes)
	}
}

// TestScoreBinary runs the real binary, to prove the exit code and output
// through a real process.
func TestScoreBinary(t *testing.T) {
	bin := buildBinary(t)
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout string
	}{
		{"the sample file exits 1 with the golden output", []string{"score", sampleFile}, "", exitInvalid, string(want)},
		{"an unknown standard exits 2", []string{"score", "--standard", "1990"}, "", exitUsage, ""},
		{"a valid household on stdin exits 0", []string{"score"}, jsonLine(t, sampleHousehold(t)), exitOK, strings.SplitAfter(string(want), "\n")[0]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Stdin = strings.NewReader(tt.stdin)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit code = %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			if stdout.String() != tt.stdout {
				t.Errorf("stdout differs:\n%s", lineDiff(tt.stdout, stdout.String()))
			}
		})
	}
}

// buildBinary builds this command into a temporary directory, for tests
// that run it as a real process.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	bin := filepath.Join(t.TempDir(), "rasoat")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
