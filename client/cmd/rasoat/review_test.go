package main

import (
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
	if code != exitInvalid || !strings.Contains(stderr, `status is "submitted"`) {
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
		if code != exitInvalid || !strings.Contains(stderr, "status: changes only through Submit") {
			t.Errorf("exit code %d, stderr %s", code, stderr)
		}
	})
}
