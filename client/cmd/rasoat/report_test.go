package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	targetsSample = filepath.Join("..", "..", "..", "examples", "targets", "lang-son-2026.csv")
	villageSample = filepath.Join("..", "..", "..", "testdata", "sample-village.jsonl")
)

// TestReportWithTargetsAndTheWatchList reports on the sample village, as
// the README shows it, against the sample targets file: the output is
// testdata/report-targets.golden (go test -update rewrites it), and the
// README's example is that file.
func TestReportWithTargetsAndTheWatchList(t *testing.T) {
	c := setUpCommune(t, startAuthServer(t, nil))
	col := c.tablet(t, "hoa", "collaborator", "06517-01")
	officer := c.tablet(t, "minh", "commune_officer", "06517")
	b, err := os.ReadFile(villageSample)
	if err != nil {
		t.Fatal(err)
	}
	// The sample's households of village 06517-01 (its last line is
	// deliberately wrong, and one household is of another village).
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.Contains(l, `"villageCode": "06517-01"`) && !strings.Contains(l, "2026-01-15") {
			lines = append(lines, l)
		}
	}
	ids := strings.Fields(ok(t, strings.Join(lines, "\n"), "add", "--db", col, "--village", "06517-01", "-"))
	if len(ids) != len(lines) || len(ids) < 10 {
		t.Fatalf("add printed %d ids, want the sample village's %d", len(ids), len(lines))
	}
	// A middle household earning 1,700,000 a person a month: within 20 %
	// of the 1,500,000 line.
	ok(t, "", "set", "--db", col, "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c1900", "income", `{"monthlyPerCapitaVnd":"1700000","stateAssistanceAnnualVnd":"0"}`)
	for i, id := range ids[:8] {
		rv := strings.TrimSpace(ok(t, "", "review", "start", "--db", col, "--date", "2025-10-20", id))
		if i < 5 {
			ok(t, "", "review", "submit", "--db", col, rv)
		}
	}
	c.ok(t, "sync", "--db", col)
	out := c.ok(t, "report", "--db", officer, "--unit", "06517", "--year", "2026", "--targets", targetsSample, "--watch", "5")
	golden := filepath.Join("testdata", "report-targets.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if out != string(want) {
		t.Errorf("output differs from %s (run go test -update and review the diff):\n%s", golden, lineDiff(string(want), out))
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```text\n"+string(want)+"```\n") {
		t.Errorf("the README's reports section does not show %s as its example output", golden)
	}
	for _, s := range []string{"giảm số hộ nghèo", "không áp dụng: no result decided for the 2025 list", "Hộ có nguy cơ rơi vào nghèo (watch list)", "thu nhập sát chuẩn"} {
		if !strings.Contains(out, s) {
			t.Errorf("the report does not show %q", s)
		}
	}
}

func TestReportTargetsFileErrorsNameTheLine(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "targets.csv")
	if err := os.WriteFile(bad, []byte("mã đơn vị,chỉ tiêu,giá trị\n06517,WATER,99\n06517,LATRINE,150\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := tabletFile(t)
	enrolExample(t, db)
	_, stderr, code := rasoat(t, "", "report", "--db", db, "--unit", "06517", "--year", "2026", "--targets", bad)
	if code != exitInvalid || !strings.Contains(stderr, "line 3, giá trị: 150 %") {
		t.Errorf("exit code %d, stderr %q; want %d naming line 3's value", code, stderr, exitInvalid)
	}
}
