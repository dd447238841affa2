package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestAddRefusesInvalidInputNamingTheFieldAndWritesNothing(t *testing.T) {
	example, err := os.ReadFile(householdExample)
	if err != nil {
		t.Fatal(err)
	}
	ex := string(example)
	tests := []struct {
		name      string
		in        string
		args      []string
		stderrHas []string
	}{
		{"an unknown enum name names the member's field", strings.Replace(ex, `"SEX_FEMALE"`, `"SEX_F"`, 1), nil, []string{"members[1].sex", `"SEX_F"`}},
		{"an unknown key is named", strings.Replace(ex, `"headName"`, `"headname"`, 1), nil, []string{`headname`, "unknown field"}},
		{"a value of the wrong type names its field", strings.Replace(ex, `"floorAreaM2": 14.5`, `"floorAreaM2": "big"`, 1), nil, []string{"housing.floorAreaM2"}},
		{"broken JSON gives the line and column", strings.Replace(ex, `"waterSource":`, `"waterSource"`, 1), nil, []string{"line 2, column"}},
		{"two households are not one", ex + ex, nil, []string{"not one JSON document"}},
		{"no input", "", nil, []string{"no JSON given"}},
		{"the head's name is required", strings.Replace(ex, `"headName": "Hoàng Văn Sáng", `, "", 1), nil, []string{"headName: is required"}},
		{"a village other than --village", ex, []string{"--village", "20-LS-BGA-04"}, []string{"villageCode", "20-LS-BGA-04"}},
		{"an id that is not a UUID", strings.Replace(ex, exampleID, "hh-1", 1), nil, []string{`id: "hh-1" is not a UUID`}},
		{"a member id used twice", strings.Replace(ex, exampleChild, exampleHead, 1), nil, []string{"members[1].id", "used twice"}},
		{"--strict refuses what the standard cannot score", strings.Replace(ex, `"reviewDate": "2025-10-20", `, "", 1), []string{"--strict"}, []string{"not enrolled", "reviewDate: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "tablet.db")
			stdout, stderr, code := rasoat(t, tt.in, append([]string{"add", "--db", db}, tt.args...)...)
			if code != exitInvalid || stdout != "" {
				t.Errorf("exit code %d, stdout %q; want %d and nothing", code, stdout, exitInvalid)
			}
			for _, s := range tt.stderrHas {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr does not contain %q: %s", s, stderr)
				}
			}
			if got := files(t, dir); len(got) != 0 {
				t.Errorf("the refused household left files behind: %d", len(got))
			}
		})
	}

	t.Run("a household whose id is taken leaves the file as it was", func(t *testing.T) {
		dir := t.TempDir()
		db := filepath.Join(dir, "tablet.db")
		enrolExample(t, db)
		before := files(t, dir)
		_, stderr, code := rasoat(t, "", "add", "--db", db, householdExample)
		if code != exitInvalid || !strings.Contains(stderr, "already exists") {
			t.Errorf("exit code %d, stderr %s", code, stderr)
		}
		if !sameFiles(before, files(t, dir)) {
			t.Error("the file changed")
		}
	})
}

func TestAddMakesTheIDsAndTakesTheVillageFromTheFlag(t *testing.T) {
	db := tabletFile(t)
	h := readExample(t)
	h.Id, h.VillageCode = "", ""
	for _, m := range h.Members {
		m.Id = ""
	}
	in := jsonLine(t, h)
	for _, args := range [][]string{{"-"}, nil} {
		stdout, stderr, code := rasoat(t, in, append([]string{"add", "--db", db, "--village", "V7"}, args...)...)
		if code != exitOK || stderr != "" {
			t.Fatalf("exit code %d, stderr %s", code, stderr)
		}
		id := strings.TrimSpace(stdout)
		if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
			t.Errorf("add printed %q, want a new UUIDv7", stdout)
		}
		h, _, _ := decodeShow(t, ok(t, "", "show", "--json", "--db", db, id))
		if h.GetVillageCode() != "V7" || len(h.GetMembers()) != 2 || uuid.Validate(h.GetMembers()[1].GetId()) != nil {
			t.Errorf("household = %v", h)
		}
	}
}

func TestAddDraftListsWhatTheStandardStillNeeds(t *testing.T) {
	db := tabletFile(t)
	stdout, stderr, code := rasoat(t, `{"headName":"Lò Văn Pảo"}`, "add", "--db", db, "--village", "V1")
	if code != exitOK || strings.TrimSpace(stdout) == "" {
		t.Fatalf("exit code %d, stdout %q: a draft must be enrolled", code, stdout)
	}
	if !strings.Contains(stderr, "as a draft") || !strings.Contains(stderr, "reviewDate: required") {
		t.Errorf("stderr does not say what is missing: %s", stderr)
	}
}

func TestAddWithoutAVillageIsBadUsage(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := rasoat(t, `{"headName":"Lò Văn Pảo"}`, "add", "--db", filepath.Join(dir, "t.db"))
	if code != exitUsage || !strings.Contains(stderr, "--village is required") {
		t.Errorf("exit code %d, stderr %s", code, stderr)
	}
	if len(files(t, dir)) != 0 {
		t.Error("files were created")
	}
}
