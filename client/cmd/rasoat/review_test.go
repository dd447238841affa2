package main

import (
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestReviewStartThenSubmitFollowsTheWorkflow(t *testing.T) {
	db := tabletFile(t)
	enrolExample(t, db)
	id := strings.TrimSpace(ok(t, "", "review", "start", "--db", db, "--date", "2025-10-20", exampleID))
	if uuid.Validate(id) != nil {
		t.Fatalf("review start printed %q, want the review's id", id)
	}
	ok(t, "", "set", "--db", db, id, "comment", `"Đã xác minh tại hộ"`)
	if out := ok(t, "", "review", "submit", "--db", db, id); !strings.Contains(out, id+": submitted") {
		t.Errorf("submit printed %q", out)
	}
	_, stderr, code := rasoat(t, "", "review", "submit", "--db", db, id)
	if code != exitInvalid || !strings.Contains(stderr, `it is submitted, and cannot move to submitted`) {
		t.Errorf("a second submit: exit code %d, stderr %s; want %d, not allowed", code, stderr, exitInvalid)
	}
	// Without --date the review is dated today.
	if today := strings.TrimSpace(ok(t, "", "review", "--db", db, "start", exampleID)); uuid.Validate(today) != nil {
		t.Errorf("review start printed %q", today)
	}
}

func TestReviewRefusesWhatTheWorkflowDoesNot(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		stderrHas string
	}{
		{"a date that is not YYYY-MM-DD names reviewDate", []string{"start", "--date", "20/10/2025", exampleID}, "reviewDate"},
		{"a review of a household that is not there", []string{"start", "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9dff"}, "not found"},
		{"submitting a household is not submitting a review", []string{"submit", exampleID}, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "tablet.db")
			enrolExample(t, db)
			before := files(t, dir)
			stdout, stderr, code := rasoat(t, "", append(append([]string{"review"}, tt.args...), "--db", db)...)
			if code != exitInvalid || stdout != "" || !strings.Contains(stderr, tt.stderrHas) {
				t.Errorf("exit code %d, stdout %q, stderr %q; want %d naming %q", code, stdout, stderr, exitInvalid, tt.stderrHas)
			}
			if !sameFiles(before, files(t, dir)) {
				t.Error("the tablet file changed")
			}
		})
	}

	t.Run("a review's status changes only through submit", func(t *testing.T) {
		db := tabletFile(t)
		enrolExample(t, db)
		id := strings.TrimSpace(ok(t, "", "review", "start", "--db", db, exampleID))
		_, stderr, code := rasoat(t, "", "set", "--db", db, id, "status", `"approved"`)
		if code != exitInvalid || !strings.Contains(stderr, "status: changes only through the review workflow") {
			t.Errorf("exit code %d, stderr %s", code, stderr)
		}
	})
}

// TestReviewStepsOnATablet runs the procedure's steps through the command
// line on one file (the server checks who may take each; the tablet only
// what the status allows).
func TestReviewStepsOnATablet(t *testing.T) {
	db := tabletFile(t)
	enrolExample(t, db)
	id := strings.TrimSpace(ok(t, "", "review", "start", "--db", db, "--date", "2026-10-05", exampleID))
	ok(t, "", "review", "submit", "--db", db, id)
	if out := ok(t, "", "review", "meeting", "--db", db, "--date", "2026-10-20", "--attendees", "40", "--agreeing", "16", id); !strings.Contains(out, id+": returned") {
		t.Errorf("a meeting where 40 %% agree printed %q; want the review returned", out)
	}
	if out := ok(t, "", "review", "list", "--db", db, "--state", "returned"); !strings.Contains(out, id) {
		t.Errorf("list --state returned does not list the review:\n%s", out)
	}
	if out := ok(t, "", "review", "list", "--db", db, "--state", "submitted"); strings.Contains(out, id) {
		t.Errorf("list --state submitted lists a returned review:\n%s", out)
	}
	if out := ok(t, "", "review", "show", "--db", db, id); !strings.Contains(out, "16 of 40 attendees agreed") || !strings.Contains(out, "returned (trả lại, rà soát lại)") {
		t.Errorf("show does not give the meeting's count and the status:\n%s", out)
	}
	ok(t, "", "review", "submit", "--db", db, id)
	if out := ok(t, "", "review", "meeting", "--db", db, "--date", "2026-10-27", "--attendees", "40", "--agreeing", "24", id); !strings.Contains(out, id+": agreed") {
		t.Errorf("a meeting where 60 %% agree printed %q; want agreed", out)
	}
	ok(t, "", "review", "post", "--db", db, id[:13]) // a unique prefix names it
	if _, stderr, code := rasoat(t, "", "review", "complaint", "--db", db, id); code != exitUsage || !strings.Contains(stderr, "--note is required") {
		t.Errorf("a complaint without its note: exit %d, %s; want %d asking for --note", code, stderr, exitUsage)
	}
	ok(t, "", "review", "complaint", "--db", db, "--note", "Hộ khiếu nại diện tích nhà", id)
	ok(t, "", "review", "recheck", "--db", db, "--note", "Giữ nguyên kết quả", id)
	ok(t, "", "review", "pass", "--db", db, id)
	if out := ok(t, "", "review", "decide", "--db", db, "--number", "125/QĐ-UBND", "--date", "2026-12-10", id); !strings.Contains(out, "decided in 125/QĐ-UBND, seal ") {
		t.Errorf("decide printed %q", out)
	}
	if out := ok(t, "", "review", "show", "--db", db, id); !strings.Contains(out, "the household's answers are as decided") {
		t.Errorf("show of a decided review does not check its seal:\n%s", out)
	}
	_, stderr, code := rasoat(t, "", "review", "submit", "--db", db, id)
	if code != exitInvalid || !strings.Contains(stderr, "it is decided") {
		t.Errorf("submitting a decided review: exit %d, %s; want %d", code, stderr, exitInvalid)
	}
}

// TestReviewListOverdue: a regular review is decided within 15 days of the
// monthly review it joined (the 15th): listed as late on day 16, not on
// day 15.
func TestReviewListOverdue(t *testing.T) {
	db := tabletFile(t)
	enrolExample(t, db)
	id := strings.TrimSpace(ok(t, "", "review", "start", "--db", db, "--date", "2026-10-15", "--regular", "form01", exampleID))
	if out := ok(t, "", "review", "list", "--db", db, "--overdue", "--today", "2026-10-30"); strings.Contains(out, id) {
		t.Errorf("on day 15 the regular review is listed as overdue:\n%s", out)
	}
	out := ok(t, "", "review", "list", "--db", db, "--overdue", "--today", "2026-10-31")
	if !strings.Contains(out, id) || !strings.Contains(out, "LATE, due by 2026-10-30") {
		t.Errorf("on day 16 the regular review is not listed as late:\n%s", out)
	}
	if _, _, code := rasoat(t, "", "review", "start", "--db", db, "--regular", "form09", exampleID); code != exitInvalid {
		t.Errorf("a regular review started by form09: exit %d; want %d", code, exitInvalid)
	}
}

func TestReviewCertificate(t *testing.T) {
	db := tabletFile(t)
	enrolExample(t, db)
	if _, stderr, code := rasoat(t, "", "review", "certificate", "--db", db, exampleID); code != exitInvalid || !strings.Contains(stderr, "no review of the household is decided") {
		t.Errorf("a certificate before any decision: exit %d, %s", code, stderr)
	}
	id := strings.TrimSpace(ok(t, "", "review", "start", "--db", db, "--date", "2025-10-05", exampleID))
	ok(t, "", "review", "submit", "--db", db, id)
	ok(t, "", "review", "meeting", "--db", db, "--date", "2025-10-20", "--attendees", "10", "--agreeing", "7", id)
	ok(t, "", "review", "post", "--db", db, id)
	ok(t, "", "review", "pass", "--db", db, id)
	ok(t, "", "review", "decide", "--db", db, "--number", "125/QĐ-UBND", "--date", "2025-12-10", id)
	if dec := ok(t, "", "review", "decision", "--db", db, "--number", "125/QĐ-UBND"); !strings.Contains(dec, "Danh sách hộ nghèo (1):") || !strings.Contains(dec, exampleID) || !strings.Contains(dec, "digest ") {
		t.Errorf("the decision's lists:\n%s", dec)
	}
	// The decision's lists as CSV, read back.
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(ok(t, "", "review", "decision", "--csv", "--db", db, "--number", "125/QĐ-UBND"), "\ufeff"))).ReadAll()
	if err != nil || len(recs) != 2 || recs[0][0] != "Số quyết định" || recs[1][2] != "Danh sách hộ nghèo" || recs[1][3] != exampleID {
		t.Errorf("the decision's CSV = %q, %v; want a header and the household on the poor list", recs, err)
	}
	out := ok(t, "", "review", "certificate", "--db", db, exampleID)
	for _, want := range []string{"GIẤY CHỨNG NHẬN HỘ NGHÈO", "Hoàng Văn Sáng", "2026 POOR", "125/QĐ-UBND of 2025-12-10", "HOUSING_AREA"} {
		if !strings.Contains(out, want) {
			t.Errorf("the certificate does not show %q:\n%s", want, out)
		}
	}
	js := ok(t, "", "review", "certificate", "--json", "--db", db, exampleID)
	var c struct {
		Kind  string `json:"kind"`
		Years []struct {
			Year     int      `json:"year"`
			Deprived []string `json:"deprived"`
		} `json:"years"`
	}
	if err := json.Unmarshal([]byte(js), &c); err != nil || c.Kind != "POOR" || len(c.Years) != 1 || c.Years[0].Year != 2026 || len(c.Years[0].Deprived) < 3 {
		t.Errorf("certificate --json = %s (%v); want one POOR row for 2026 with its deprivations", js, err)
	}
}
