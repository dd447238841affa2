package main

import (
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

func readCSVOut(t *testing.T, out string) [][]string {
	t.Helper()
	s, bom := strings.CutPrefix(out, "\ufeff")
	if !bom {
		t.Fatalf("the CSV has no byte-order mark:\n%s", out)
	}
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, out)
	}
	return recs
}

func openXLSX(t *testing.T, path string) *excelize.File {
	t.Helper()
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatalf("the workbook %s does not open: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestPostedListAndDecisionExports takes the example household through a
// round on one tablet and reads what an officer would take away at each
// stage: the posted list (while posted, then under re-check) and the
// decision's lists, as text, CSV and workbook.
func TestPostedListAndDecisionExports(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tablet.db")
	enrolExample(t, db)
	if out := ok(t, "", "review", "posted", "--db", db); !strings.Contains(out, ": 0 hộ") {
		t.Errorf("nothing posted yet, the list prints:\n%s", out)
	}
	id := strings.TrimSpace(ok(t, "", "review", "start", "--db", db, "--date", "2025-10-06", exampleID))
	ok(t, "", "review", "submit", "--db", db, id)
	ok(t, "", "review", "meeting", "--db", db, "--date", "2025-10-20", "--attendees", "10", "--agreeing", "7", id)
	ok(t, "", "review", "post", "--db", db, id)
	today := time.Now().In(time.FixedZone("ICT", 7*3600))

	out := ok(t, "", "review", "posted", "--db", db, "--unit", "06517")
	for _, want := range []string{"Danh sách niêm yết công khai — đơn vị 06517: 1 hộ", "Danh sách hộ nghèo (1):", "Hoàng Văn Sáng", "hộ nghèo", "niêm yết công khai", today.Format(time.DateOnly), exampleID} {
		if !strings.Contains(out, want) {
			t.Errorf("the posted list does not show %q:\n%s", want, out)
		}
	}
	if out := ok(t, "", "review", "posted", "--db", db, "--unit", "06518"); !strings.Contains(out, ": 0 hộ") {
		t.Errorf("another commune's posted list:\n%s", out)
	}

	recs := readCSVOut(t, ok(t, "", "review", "posted", "--db", db, "--csv"))
	if len(recs) != 2 || recs[0][0] != "STT" || recs[0][2] != "Họ tên chủ hộ" || recs[0][12] != "Hạn cuối nhận khiếu nại" {
		t.Fatalf("posted CSV %q", recs)
	}
	if r := recs[1]; r[1] != "Danh sách hộ nghèo" || r[2] != "Hoàng Văn Sáng" || r[6] != "hộ nghèo" || r[11] != today.Format(time.DateOnly) || r[12] != "" || r[14] != exampleID || r[15] != id {
		t.Errorf("posted CSV row %q; want the household, posted today, no complaint period set", r)
	}

	// Under re-check: listed as such, the posting day no longer known here.
	ok(t, "", "review", "complaint", "--db", db, "--note", "Hộ khiếu nại diện tích nhà", id)
	book := filepath.Join(dir, "niêm yết.xlsx")
	if out := ok(t, "", "review", "posted", "--db", db, "--xlsx", book); out != "wrote "+book+" (1 sheet)\n" {
		t.Errorf("posted --xlsx printed %q", out)
	}
	f := openXLSX(t, book)
	rows, err := f.GetRows("Danh sách niêm yết")
	if err != nil || len(rows) != 2 || rows[1][10] != "phúc tra" || rows[1][11] != "" || rows[1][2] != "Hoàng Văn Sáng" {
		t.Errorf("posted workbook %q, %v; want the household under re-check", rows, err)
	}
	if v, err := f.GetCellValue("Danh sách niêm yết", "A2"); err != nil || v != "1" {
		t.Errorf("STT %q, %v", v, err)
	}

	ok(t, "", "review", "recheck", "--db", db, "--note", "Giữ nguyên kết quả", id)
	ok(t, "", "review", "pass", "--db", db, id)
	ok(t, "", "review", "decide", "--db", db, "--number", "125/QĐ-UBND", "--date", "2025-12-10", id)
	if out := ok(t, "", "review", "posted", "--db", db); !strings.Contains(out, ": 0 hộ") {
		t.Errorf("a decided household is still on the posted list:\n%s", out)
	}

	book = filepath.Join(dir, "quyết định.xlsx")
	ok(t, "", "review", "decision", "--db", db, "--number", "125/QĐ-UBND", "--xlsx", book)
	f = openXLSX(t, book)
	want := []string{"Danh sách hộ nghèo", "Danh sách hộ cận nghèo", "Danh sách hộ thoát nghèo", "Danh sách hộ thoát cận nghèo", "Mã kiểm tra"}
	if got := f.GetSheetList(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("decision sheets %q; want %q", got, want)
	}
	poor, _ := f.GetRows("Danh sách hộ nghèo")
	if len(poor) != 2 || poor[1][0] != "1" || poor[1][1] != exampleID || poor[1][3] != "2026" || poor[1][4] != "hộ nghèo" || poor[1][6] != id {
		t.Errorf("the poor list %q", poor)
	}
	digest, _ := f.GetRows("Mã kiểm tra")
	text := ok(t, "", "review", "decision", "--db", db, "--number", "125/QĐ-UBND")
	if len(digest) < 4 || !strings.Contains(text, "digest "+digest[3][1]) {
		t.Errorf("the digest sheet %q does not hold the digest printed:\n%s", digest, text)
	}
}

func TestExportFlagsChooseOneOutput(t *testing.T) {
	db := tabletFile(t)
	enrolExample(t, db)
	for _, args := range [][]string{
		{"review", "posted", "--csv", "--json"},
		{"review", "posted", "--csv", "--xlsx", "x.xlsx"},
		{"review", "decision", "--number", "1", "--json", "--xlsx", "x.xlsx"},
		{"report", "--unit", "06517", "--year", "2026", "--csv", "--xlsx", "x.xlsx"},
	} {
		_, stderr, code := rasoat(t, "", append(args, "--db", db)...)
		if code != exitUsage || !strings.Contains(stderr, "give one") {
			t.Errorf("rasoat %s: exit %d, %s; want %d, one output", strings.Join(args, " "), code, stderr, exitUsage)
		}
	}
}

// A workbook that fails half way leaves the earlier file whole.
func TestWriteFileAtomicKeepsTheEarlierFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "báo cáo.xlsx")
	if err := os.WriteFile(path, []byte("earlier"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := writeFileAtomic(path, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v; want boom wrapped", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "earlier" {
		t.Errorf("the file holds %q; want the earlier content", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files left; want only the earlier one", len(ents))
	}
}
