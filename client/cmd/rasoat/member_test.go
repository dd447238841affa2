package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// childOutOfSchool is a boy of 10 on the example's review date who does
// not attend school: CHILD_SCHOOLING is deprived while he is a member.
const childOutOfSchool = `{
  "fullName": "Vi Văn Tú", "sex": "SEX_MALE", "birthDate": "2015-03-01",
  "relation": "RELATION_CHILD", "ethnicity": "Nùng",
  "highestEducation": "EDUCATION_LEVEL_NONE", "inSchool": false,
  "hasHealthInsurance": true, "employment": "EMPLOYMENT_NOT_IN_LABOUR_FORCE"
}`

func TestMemberAddCountsAndRemoveStopsCounting(t *testing.T) {
	db := tabletFile(t)
	enrolExample(t, db)
	assessed := func() (*rasoatv1.Household, *rasoatv1.Assessment) {
		t.Helper()
		h, a, _ := decodeShow(t, ok(t, "", "show", "--json", "--db", db, exampleID))
		if a == nil {
			t.Fatal("not assessed")
		}
		return h, a
	}

	id := strings.TrimSpace(ok(t, childOutOfSchool, "member", "add", "--db", db, exampleID))
	h, a := assessed()
	if len(h.GetMembers()) != 3 || h.GetMembers()[2].GetId() != id || h.GetMembers()[2].GetFullName() != "Vi Văn Tú" {
		t.Fatalf("members after add = %v (id printed %q)", h.GetMembers(), id)
	}
	if a.GetMemberCount() != 3 || !slices.Contains(a.GetDeprived(), "CHILD_SCHOOLING") {
		t.Errorf("a child of 10 out of school: %d members counted, deprived %v; want 3 and CHILD_SCHOOLING", a.GetMemberCount(), a.GetDeprived())
	}

	stdout := ok(t, "", "member", "remove", "--db", db, "--reason", "moved-out", id)
	if !strings.Contains(stdout, "removed (moved-out)") {
		t.Errorf("remove printed %q", stdout)
	}
	h, a = assessed()
	if len(h.GetMembers()) != 3 || h.GetMembers()[2].GetRemoved() != rasoatv1.Removal_REMOVAL_MOVED_OUT {
		t.Errorf("a removed member stays on the roster with the reason: %v", h.GetMembers())
	}
	if a.GetMemberCount() != 2 || slices.Contains(a.GetDeprived(), "CHILD_SCHOOLING") {
		t.Errorf("after moving out: %d members counted, deprived %v", a.GetMemberCount(), a.GetDeprived())
	}
	text := ok(t, "", "show", "--db", db, exampleID)
	if !strings.Contains(text, "Member "+id+" (removed: MOVED_OUT)") || !strings.Contains(text, "Members (thành viên): 3, 2 present") {
		t.Errorf("show does not mark the removal:\n%s", text)
	}
}

func TestMemberRefusesInvalidInputNamingTheField(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		in        string
		stderrHas string
	}{
		{"an unknown enum name", []string{"add", exampleID}, `{"fullName":"A","sex":"SEX_X"}`, "sex"},
		{"an unknown key", []string{"add", exampleID}, `{"fullName":"A","age":3}`, "age"},
		{"a member id that is not a UUID", []string{"add", exampleID}, `{"id":"m1","fullName":"A"}`, `id: "m1" is not a UUID`},
		{"a member id already used", []string{"add", exampleID}, `{"id":"` + exampleChild + `","fullName":"A"}`, "already exists"},
		{"a household that is not there", []string{"add", "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9dff"}, `{"fullName":"A"}`, "not found"},
		{"a member is not a household", []string{"add", exampleChild}, `{"fullName":"A"}`, "not found"},
		{"removing a household", []string{"remove", "--reason", "died", exampleID}, "", "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "tablet.db")
			enrolExample(t, db)
			before := files(t, dir)
			stdout, stderr, code := rasoat(t, tt.in, append(append([]string{"member"}, tt.args...), "--db", db)...)
			if code != exitInvalid || stdout != "" {
				t.Errorf("exit code %d, stdout %q; want %d and nothing", code, stdout, exitInvalid)
			}
			if !strings.Contains(stderr, tt.stderrHas) {
				t.Errorf("stderr does not contain %q: %s", tt.stderrHas, stderr)
			}
			if !sameFiles(before, files(t, dir)) {
				t.Error("the tablet file changed")
			}
		})
	}
}
