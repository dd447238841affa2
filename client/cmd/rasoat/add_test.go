package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/client"
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

// households returns n copies of the example household with fresh ids
// (left empty) and their own head names, as JSON objects on one line each.
func households(t *testing.T, n int) []string {
	t.Helper()
	b, err := os.ReadFile(householdExample)
	if err != nil {
		t.Fatal(err)
	}
	one := strings.ReplaceAll(string(b), "\n", " ")
	for _, id := range []string{exampleID, exampleHead, exampleChild} {
		one = strings.Replace(one, `"id": "`+id+`"`, `"id": ""`, 1)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Replace(one, `"headName": "Hoàng Văn Sáng"`, fmt.Sprintf(`"headName": "Hộ %d"`, i+1), 1)
	}
	return out
}

func TestAddTakesManyHouseholdsInOneCallAllOrNone(t *testing.T) {
	three := households(t, 3)
	badThird := slices.Clone(three)
	badThird[2] = strings.Replace(badThird[2], `"floorAreaM2": 14.5`, `"floorAreaM2": -3`, 1)
	badSecond := slices.Clone(three)
	badSecond[1] = strings.Replace(badSecond[1], `"SEX_FEMALE"`, `"SEX_F"`, 1)
	tests := []struct {
		name      string
		in        string
		args      []string
		code      int
		enrolled  int
		stderrHas []string
	}{
		{"JSON Lines, one household a line", strings.Join(three, "\n") + "\n", nil, exitOK, 3, nil},
		{"a JSON array, pretty-printed", "[\n  " + strings.Join(three, ",\n  ") + "\n]\n", nil, exitOK, 3, nil},
		{"blank lines between JSON Lines are skipped", three[0] + "\n\n" + three[1] + "\n", nil, exitOK, 2, nil},
		{"one household still pretty-printed over lines", strings.Replace(three[0], `"members"`, "\n\"members\"", 1), nil, exitOK, 1, nil},
		{"an answer refused on line 5 refuses every household, naming the line", three[0] + "\n\n" + three[1] + "\n\n" + badThird[2] + "\n", nil, exitInvalid, 0,
			[]string{"line 5: housing.floorAreaM2: must be between 0 and 1000000 m², got -3"}},
		{"a bad enum in an array names the line its household begins on", "[\n" + strings.Join(badSecond, ",\n") + "\n]", nil, exitInvalid, 0,
			[]string{"line 3: decode household: members[1].sex", `"SEX_F"`}},
		{"a broken line of JSON Lines is named", three[0] + "\n" + three[1][:40] + "\n", nil, exitInvalid, 0, []string{"line 2: not one JSON document"}},
		{"--strict names the line of a household the standard cannot score", three[0] + "\n" + strings.Replace(three[1], `"reviewDate": "2025-10-20", `, "", 1) + "\n", []string{"--strict"}, exitInvalid, 0,
			[]string{"line 2: not enrolled", "reviewDate: required"}},
		{"without --village every household must name its village", three[0] + "\n" + strings.Replace(three[1], `"villageCode": "06517-01", `, "", 1) + "\n", nil, exitUsage, 0,
			[]string{"--village is required: the household on line 2 names no villageCode"}},
		{"the same id twice names the second", strings.Replace(three[0], `"id": ""`, `"id": "`+exampleID+`"`, 1) + "\n" + strings.Replace(three[1], `"id": ""`, `"id": "`+exampleID+`"`, 1) + "\n", nil, exitInvalid, 0,
			[]string{"line 2:", "already exists"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "tablet.db")
			stdout, stderr, code := rasoat(t, tt.in, append([]string{"add", "--db", db}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			for _, s := range tt.stderrHas {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr does not contain %q: %s", s, stderr)
				}
			}
			ids := strings.Fields(stdout)
			if len(ids) != tt.enrolled {
				t.Fatalf("printed %d ids, want %d: %q", len(ids), tt.enrolled, stdout)
			}
			if tt.enrolled == 0 {
				if got := files(t, dir); len(got) != 0 {
					t.Errorf("a refused add left %d files", len(got))
				}
				return
			}
			list := ok(t, "", "list", "--db", db)
			for i, id := range ids {
				if !strings.Contains(list, id+"  Hộ "+strconv.Itoa(i+1)) {
					t.Errorf("list does not show %s as Hộ %d, in input order:\n%s", id, i+1, list)
				}
			}
		})
	}
}

func TestAddIsBounded(t *testing.T) {
	one := households(t, 1)[0]
	tests := []struct {
		name      string
		in        string
		stderrHas string
	}{
		{"more households than one add takes", strings.Repeat(one+"\n", client.MaxHouseholdsPerCall+1), fmt.Sprintf("households: more than %d in one add", client.MaxHouseholdsPerCall)},
		{"more than 16 MiB of input", strings.Repeat(" ", maxAddBytes+1), "longer than 16777216 bytes (16 MiB)"},
		{"a line over 4 MiB", one + "\n" + `{"headName":"` + strings.Repeat("x", maxLineBytes) + `"}` + "\n", "line 2: longer than 4194304 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, stderr, code := rasoat(t, tt.in, "add", "--db", filepath.Join(dir, "tablet.db"))
			if code == exitOK || !strings.Contains(stderr, tt.stderrHas) {
				t.Errorf("exit code %d, stderr %.300s; want it refused saying %q", code, stderr, tt.stderrHas)
			}
			if len(files(t, dir)) != 0 {
				t.Error("files were created")
			}
		})
	}
}
