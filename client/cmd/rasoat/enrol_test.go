package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rasoat/rasoat/server/auth"
)

// mistype changes the last character of a code: its id still names the
// code, its secret is wrong (a typo, which counts against the code).
func mistype(code string) string {
	last := code[len(code)-1]
	next := byte('A')
	if last == 'A' {
		next = 'B'
	}
	return code[:len(code)-1] + string(next)
}

const codeInvalidWords = "the code is not valid (unknown, expired, used or out of attempts): ask the commune officer/admin for a new one"

func TestAWrongCodeIsRefusedInWordsAndTheRightOneStillEnrols(t *testing.T) {
	s := startAuthServer(t, nil)
	c := setUpCommune(t, s)
	c.ok(t, "admin", "person", "put", "hoa", "--name", "Nguyễn Thị Hoa", "--roles", "collaborator", "--units", "06517-01", "--db", c.admin)
	code := strings.TrimSpace(c.ok(t, "admin", "code", "hoa", "--db", c.admin))
	db := tabletFile(t)
	tries := []struct {
		name string
		code string
		exit int
	}{
		{"a mistyped code is refused", mistype(code), exitInvalid},
		{"a mistyped code is refused a second time", mistype(code), exitInvalid},
		{"a code of the wrong shape is refused the same way", "K7Q2-M4XP", exitInvalid},
		{"the right code, typed in lower case without dashes, enrols", strings.ToLower(strings.ReplaceAll(code, "-", "")), exitOK},
		{"a code used once is refused", code, exitInvalid},
	}
	for _, tt := range tries {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, exit := c.run(t, "enrol", "--db", db, "--code", tt.code)
			if exit != tt.exit {
				t.Fatalf("exit code %d, want %d; stderr %s", exit, tt.exit, stderr)
			}
			if tt.exit == exitOK {
				if !strings.Contains(stdout, "person    hoa (Nguyễn Thị Hoa)") {
					t.Errorf("stdout %q", stdout)
				}
				return
			}
			if stdout != "" || stderr != "rasoat enrol: "+codeInvalidWords+"\n" {
				t.Errorf("stdout %q, stderr %q", stdout, stderr)
			}
		})
	}
}

func TestTooManyWrongCodesFromOneAddressSayHowLongToWait(t *testing.T) {
	s := startAuthServer(t, auth.NewLimiter(time.Hour, 2))
	code := s.bootstrap(t)
	db := tabletFile(t)
	for range 2 {
		if _, stderr, exit := rasoat(t, "", "enrol", "--db", db, "--server", s.addr, "--code", mistype(code)); exit != exitInvalid {
			t.Fatalf("exit code %d, stderr %s", exit, stderr)
		}
	}
	stdout, stderr, exit := rasoat(t, "", "enrol", "--db", db, "--server", s.addr, "--code", code)
	if exit != exitUsage || stdout != "" || !regexp.MustCompile(`^rasoat enrol: too many failed attempts from this address: wait \d+ s, then try again\n$`).MatchString(stderr) {
		t.Errorf("exit code %d, stdout %q, stderr %q", exit, stdout, stderr)
	}
}

func TestEnrollingAFileThatWroteBeforeKeepsItsChanges(t *testing.T) {
	s := startAuthServer(t, nil)
	c := setUpCommune(t, s)
	db := tabletFile(t)
	add(t, db, "06517-01")
	before := pending(t, db)
	c.ok(t, "admin", "person", "put", "hoa", "--name", "Hoa", "--roles", "collaborator", "--units", "06517-01", "--db", c.admin)
	code := strings.TrimSpace(c.ok(t, "admin", "code", "hoa", "--db", c.admin))
	c.ok(t, "enrol", "--db", db, "--code", code, "--json")
	if got := parseSummary(t, s.addr, c.ok(t, "sync", "--db", db)); got.pushed != before {
		t.Errorf("pushed %d, want the %d changes written before enrolling", got.pushed, before)
	}
}

func TestACopiedFileIsWarnedThatWhatItsOriginalWroteWillBeSetAside(t *testing.T) {
	s := startAuthServer(t, nil)
	c := setUpCommune(t, s)
	original := c.newFile()
	add(t, original, "06517-01")
	copied := c.newFile()
	b, err := os.ReadFile(original)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copied, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok(t, "admin", "person", "put", "hoa", "--name", "Hoa", "--roles", "collaborator", "--units", "06517-01", "--db", c.admin)
	for _, db := range []string{original, copied} {
		code := strings.TrimSpace(c.ok(t, "admin", "code", "hoa", "--db", c.admin))
		stdout, stderr, exit := c.run(t, "enrol", "--db", db, "--code", code, "--json")
		if exit != exitOK {
			t.Fatalf("exit code %d, stderr %s", exit, stderr)
		}
		var id identityJSON
		if err := json.Unmarshal([]byte(stdout), &id); err != nil {
			t.Fatal(err)
		}
		warned := strings.Contains(stderr, "bound to another device on the server (was this file copied from another tablet?)")
		if db == original && (warned || len(id.Unbound) != 0) {
			t.Errorf("the original was warned: %s %+v", stderr, id)
		}
		if db == copied && (!warned || len(id.Unbound) != 1) {
			t.Errorf("the copy was not warned: %q %+v", stderr, id)
		}
	}
}
