package main

import (
	"strings"
	"testing"
)

func TestListListsTheHouseholdsOfAVillage(t *testing.T) {
	db := tabletFile(t)
	enrolExample(t, db) // 06517-01, POOR
	h := readExample(t)
	h.Id, h.HeadName = "", "Nông Thị Lan"
	for _, m := range h.Members {
		m.Id = ""
	}
	lan := strings.TrimSpace(ok(t, jsonLine(t, h), "add", "--db", db))
	h.VillageCode, h.HeadName = "20-LS-BGA-05", "Lục Văn Quý"
	quy := strings.TrimSpace(ok(t, jsonLine(t, h), "add", "--db", db))
	draft := strings.TrimSpace(ok(t, `{"headName":"Hà Văn Nam"}`, "add", "--db", db, "--village", exampleVill))

	tests := []struct {
		name  string
		args  []string
		lines [][]string // words each line must have, in order
	}{
		{"every household in enrolment order without --village", nil, [][]string{
			{exampleID, "Hoàng Văn Sáng", exampleVill, "POOR"},
			{lan, "Nông Thị Lan", exampleVill, "POOR"},
			{quy, "Lục Văn Quý", "20-LS-BGA-05", "POOR"},
			{draft, "Hà Văn Nam", exampleVill, "not scored: reviewDate"},
		}},
		{"only the village's households with --village", []string{"--village", exampleVill}, [][]string{
			{exampleID, "Hoàng Văn Sáng", exampleVill, "POOR"},
			{lan, "Nông Thị Lan", exampleVill, "POOR"},
			{draft, "Hà Văn Nam", exampleVill, "not scored: reviewDate"},
		}},
		{"another village", []string{"--village", "20-LS-BGA-05"}, [][]string{
			{quy, "Lục Văn Quý", "20-LS-BGA-05", "POOR"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout := ok(t, "", append([]string{"list", "--db", db}, tt.args...)...)
			got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			if len(got) != len(tt.lines) {
				t.Fatalf("%d lines, want %d:\n%s", len(got), len(tt.lines), stdout)
			}
			for i, words := range tt.lines {
				if want := strings.Join(words, " "); squash(got[i]) != want {
					t.Errorf("line %d = %q, want %q", i+1, squash(got[i]), want)
				}
			}
		})
	}

	t.Run("a village with no households prints nothing and says so on stderr", func(t *testing.T) {
		stdout, stderr, code := rasoat(t, "", "list", "--db", db, "--village", "01-HN-XX-01")
		if code != exitOK || stdout != "" || !strings.Contains(stderr, "no households in village 01-HN-XX-01") {
			t.Errorf("exit code %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}

func TestListDoesNotStopAtAHouseholdTheEngineFailsOn(t *testing.T) {
	db := tabletFile(t)
	// No housing answers at all: the survey engine must not stop the list.
	ok(t, `{"headName":"Lò Văn Pảo","area":"AREA_RURAL","reviewDate":"2025-10-20",
	  "members":[{"fullName":"Lò Văn Pảo","sex":"SEX_MALE","birthDate":"1980-01-01","relation":"RELATION_HEAD"}],
	  "income":{"monthlyPerCapitaVnd":"1000000"}}`, "add", "--db", db, "--village", "V1")
	enrolExample(t, db)
	stdout := ok(t, "", "list", "--db", db)
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], "POOR") || !strings.Contains(lines[1], "Lò Văn Pảo") || !strings.Contains(lines[1], "not scored") {
		t.Errorf("list:\n%s", stdout)
	}
}
