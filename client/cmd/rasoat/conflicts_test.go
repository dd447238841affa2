package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// syncOK syncs the tablet file db with the server at addr.
func syncOK(t *testing.T, db, addr string) string {
	t.Helper()
	return ok(t, "", "sync", "--db", db, "--server", addr)
}

func decodeConflicts(t *testing.T, stdout string) []conflictJSON {
	t.Helper()
	var out []conflictJSON
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		var c conflictJSON
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("conflicts --json line %q: %v", sc.Text(), err)
		}
		out = append(out, c)
	}
	return out
}

func TestConcurrentEditsListTheSameConflictOnBothTabletsUntilSetResolvesIt(t *testing.T) {
	tests := []struct {
		name           string
		entity, kind   string
		field          string
		valueA, valueB string // written offline on A, then on B
		resolved       string
	}{
		{
			name: "two collaborators correct the head's name", entity: exampleID, kind: "household", field: "headName",
			valueA: `"Hoàng Văn Sáng A"`, valueB: `"Hoàng Văn Sáng B"`, resolved: `"Hoàng Văn Sáng"`,
		},
		{
			name: "two collaborators correct a member's birth date", entity: exampleChild, kind: "member", field: "birthDate",
			valueA: `"2012-11-13"`, valueB: `"2012-10-30"`, resolved: `"2012-11-30"`,
		},
		{
			name: "two collaborators measure the house", entity: exampleID, kind: "household", field: "housing.floorAreaM2",
			valueA: "18", valueB: "24.5", resolved: "20",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startServer(t)
			a, b := tabletFile(t), tabletFile(t)
			enrolExample(t, a)
			syncOK(t, a, addr)
			syncOK(t, b, addr)
			ra, rb := replicaOf(t, a), replicaOf(t, b)

			// Offline, each writes its own value; B writes later.
			ok(t, "", "set", "--db", a, tt.entity, tt.field, tt.valueA)
			time.Sleep(5 * time.Millisecond)
			ok(t, "", "set", "--db", b, tt.entity, tt.field, tt.valueB)
			syncOK(t, a, addr)
			if out := syncOK(t, b, addr); !strings.Contains(out, "open conflicts 1") {
				t.Errorf("sync of B does not count the conflict: %s", out)
			}
			syncOK(t, a, addr)

			textA, textB := ok(t, "", "conflicts", "--db", a), ok(t, "", "conflicts", "--db", b)
			if textA != textB {
				t.Fatalf("the tablets list different conflicts:\nA:\n%s\nB:\n%s", textA, textB)
			}
			for _, want := range []string{
				"household " + exampleID + " · " + tt.kind + " " + tt.entity + " · " + tt.field + "\n",
				"winner " + tt.valueB + " replica " + rb + " ",
				"other " + tt.valueA + " replica " + ra + " ",
				"1 open conflict: resolve it with rasoat set",
			} {
				if !strings.Contains(squash(textA), want) {
					t.Errorf("conflicts does not print %q:\n%s", want, textA)
				}
			}
			jsonA, jsonB := ok(t, "", "conflicts", "--json", "--db", a), ok(t, "", "conflicts", "--json", "--db", b)
			if jsonA != jsonB {
				t.Fatalf("the tablets list different conflicts in JSON:\n%s\n%s", jsonA, jsonB)
			}
			cs := decodeConflicts(t, jsonA)
			if len(cs) != 1 {
				t.Fatalf("conflicts --json = %+v, want one", cs)
			}
			c := cs[0]
			if c.HouseholdID != exampleID || c.EntityID != tt.entity || c.Kind != tt.kind || c.Field != tt.field ||
				string(c.Winner.Value) != tt.valueB || c.Winner.Replica != rb || len(c.Others) != 1 ||
				string(c.Others[0].Value) != tt.valueA || c.Others[0].Replica != ra {
				t.Errorf("conflict = %+v", c)
			}
			for _, v := range append([]conflictValueJSON{c.Winner}, c.Others...) {
				at, err := time.Parse(time.RFC3339Nano, v.At)
				if err != nil || time.Since(at) > time.Minute || v.HLC == 0 {
					t.Errorf("value %+v: time %q is not the time it was written (%v)", v, v.At, err)
				}
			}
			if show := ok(t, "", "show", "--db", a, exampleID); !strings.Contains(squash(show), tt.field+" "+tt.valueB+" CONFLICT with 1 other value(s)") {
				t.Errorf("show does not mark the conflicted field:\n%s", show)
			}

			// A commune officer settles it on A; after both sync, neither lists it.
			out := ok(t, "", "set", "--db", a, tt.entity, tt.field, tt.resolved)
			if !strings.Contains(out, "resolved the conflict on "+tt.field) {
				t.Errorf("set does not say it resolved the conflict: %s", out)
			}
			if got := ok(t, "", "conflicts", "--db", a); got != "no open conflicts\n" {
				t.Errorf("conflicts on A after set:\n%s", got)
			}
			syncOK(t, a, addr)
			syncOK(t, b, addr)
			for _, db := range []string{a, b} {
				if got := ok(t, "", "conflicts", "--db", db); got != "no open conflicts\n" {
					t.Errorf("conflicts on %s after syncing the resolution:\n%s", db, got)
				}
				if got := ok(t, "", "conflicts", "--json", "--db", db); got != "" {
					t.Errorf("conflicts --json with none: %q", got)
				}
			}
			showA, showB := ok(t, "", "show", "--json", "--db", a, exampleID), ok(t, "", "show", "--json", "--db", b, exampleID)
			if showA != showB || !strings.Contains(showA, strings.Trim(tt.resolved, `"`)) {
				t.Errorf("the tablets disagree after resolving, or lost the value:\n%s\n%s", showA, showB)
			}
		})
	}
}
