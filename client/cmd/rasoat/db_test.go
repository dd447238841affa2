package main

import (
	"context"
	"flag"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/client"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/syncsvc"
	"google.golang.org/grpc"
)

// householdExample is Hoàng Văn Sáng's household: poor under 2021–2025
// (1,350,000 VND a head, deprived in health insurance, housing quality,
// housing area and latrine).
var householdExample = filepath.Join("..", "..", "..", "survey", "testdata", "household-example.json")

// Ids in householdExample.
const (
	exampleID    = "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d01"
	exampleHead  = "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d02" // Hoàng Văn Sáng
	exampleChild = "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d03" // Vi Thị Mai, 12, without health insurance
	exampleVill  = "06517-01"
)

// exampleDeprived are the example's deprived indicators, in order.
var exampleDeprived = []string{"HEALTH_INSURANCE", "HOUSING_QUALITY", "HOUSING_AREA", "LATRINE"}

// tabletFile is the path of a tablet file in a fresh directory.
func tabletFile(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "tablet.db")
}

// ok runs the client in-process and fails the test unless it exits 0.
func ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, code := rasoat(t, stdin, args...)
	if code != exitOK {
		t.Fatalf("rasoat %s: exit code %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// enrolExample adds householdExample to the file db.
func enrolExample(t *testing.T, db string) {
	t.Helper()
	if got := strings.TrimSpace(ok(t, "", "add", "--db", db, householdExample)); got != exampleID {
		t.Fatalf("add printed %q, want the household's id %s", got, exampleID)
	}
}

// startServer starts a real sync server (syncsvc over a SQLite file) on a
// free port of 127.0.0.1 and returns its address.
func startServer(t *testing.T, opts ...syncsvc.Option) string {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(maxMessage))
	rasoatv1.RegisterSyncServiceServer(srv, syncsvc.New(db, opts...))
	go srv.Serve(lis)
	t.Cleanup(func() {
		srv.Stop()
		db.Close()
	})
	return lis.Addr().String()
}

// replicaOf returns the replica id of a tablet file.
func replicaOf(t *testing.T, db string) string {
	t.Helper()
	c, err := client.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ReplicaID()
}

// files returns the name and content of every file in dir, to show that a
// refused command wrote nothing.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func sameFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		db   string
		json bool
		pos  []string
	}{
		{"flags may come after the arguments", []string{"id", "--db", "x.db"}, "x.db", false, []string{"id"}},
		{"flags may come between the arguments", []string{"id", "--json", "field", "-db=x.db", "1"}, "x.db", true, []string{"id", "field", "1"}},
		{"a negative number is an argument, not a flag", []string{"id", "housing.floorAreaM2", "-1.5"}, defaultDB, false, []string{"id", "housing.floorAreaM2", "-1.5"}},
		{"a negative number right after a flag is an argument", []string{"--json", "-2", "--db", "x.db"}, "x.db", true, []string{"-2"}},
		{"a flag's value may look like a flag", []string{"--db", "-odd.db", "id"}, "-odd.db", false, []string{"id"}},
		{"after -- everything is an argument", []string{"--db", "x.db", "--", "--json", "-"}, "x.db", false, []string{"--json", "-"}},
		{"- is an argument (standard input)", []string{"-", "--json"}, defaultDB, true, []string{"-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			db := fs.String("db", defaultDB, "")
			asJSON := fs.Bool("json", false, "")
			pos, err := parseArgs(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if *db != tt.db || *asJSON != tt.json || !slices.Equal(pos, tt.pos) {
				t.Errorf("db %q json %v args %q; want db %q json %v args %q", *db, *asJSON, pos, tt.db, tt.json, tt.pos)
			}
		})
	}
	t.Run("an unknown flag is an error", func(t *testing.T) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		if _, err := parseArgs(fs, []string{"id", "--nope"}); err == nil {
			t.Error("no error")
		}
	})
}

func TestVerbsOnAMissingFileExitTwoAndCreateNothing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{
		{"set", exampleID, "headName", `"X"`},
		{"member", "add", exampleID},
		{"member", "remove", "--reason", "died", exampleHead},
		{"show", exampleID},
		{"list"},
		{"conflicts"},
		{"review", "start", exampleID},
		{"review", "submit", exampleID},
	} {
		t.Run(args[0], func(t *testing.T) {
			stdout, stderr, code := rasoat(t, `{"fullName":"A"}`, append(args, "--db", db)...)
			if code != exitUsage || stdout != "" {
				t.Errorf("exit code %d, stdout %q; want %d and nothing", code, stdout, exitUsage)
			}
			if !strings.Contains(stderr, "typo.db: no such file") {
				t.Errorf("stderr does not name the missing file: %s", stderr)
			}
		})
	}
	if got := files(t, dir); len(got) != 0 {
		t.Errorf("files were created: %v", slices.Collect(maps.Keys(got)))
	}
}

func TestTabletVerbsHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"add", "-h"}, {"set", "-h"}, {"member", "-h"}, {"member", "add", "-h"}, {"member", "remove", "--help"},
		{"show", "-h"}, {"list", "-h"}, {"conflicts", "-h"}, {"review", "-h"}, {"review", "start", "-h"},
		{"sync", "-h"}, {"help", "sync"}, {"help", "member"},
	} {
		stdout, stderr, code := rasoat(t, "", args...)
		verb := args[0]
		if verb == "help" {
			verb = args[1]
		}
		if code != exitOK || !strings.Contains(stdout, "rasoat "+verb) || stderr != "" {
			t.Errorf("%q: exit code %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	usage, _, _ := rasoat(t, "", "help")
	for _, verb := range []string{"add", "set", "member", "show", "list", "conflicts", "review", "sync"} {
		if !strings.Contains(usage, "\n\t"+verb+" ") && !strings.Contains(usage, " "+verb+" ") {
			t.Errorf("rasoat help does not list %s:\n%s", verb, usage)
		}
	}
}

func TestTabletVerbsBadUsageExitsTwo(t *testing.T) {
	db := tabletFile(t)
	enrolExample(t, db)
	tests := []struct {
		name      string
		args      []string
		stderrHas string
	}{
		{"set needs three arguments", []string{"set", exampleID, "headName"}, "missing ENTITY_ID FIELD JSON_VALUE"},
		{"show takes one household", []string{"show", exampleID, exampleID}, "unexpected argument"},
		{"member needs add or remove", []string{"member"}, "missing subcommand: add or remove"},
		{"member has no edit", []string{"member", "edit"}, `unknown subcommand "edit"`},
		{"remove needs a reason", []string{"member", "remove", exampleChild}, "--reason is required"},
		{"remove knows three reasons", []string{"member", "remove", "--reason", "married", exampleChild}, `--reason "married"`},
		{"review needs start or submit", []string{"review", "approve", "x"}, `unknown subcommand "approve"`},
		{"an unknown flag", []string{"list", "--villages", "x"}, "villages"},
		{"sync refuses a negative timeout", []string{"sync", "--timeout", "-1s"}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := rasoat(t, "", append(tt.args, "--db", db)...)
			if code != exitUsage || stdout != "" {
				t.Errorf("exit code %d, stdout %q; want %d and nothing", code, stdout, exitUsage)
			}
			if !strings.Contains(stderr, tt.stderrHas) || !strings.Contains(stderr, "Usage:") {
				t.Errorf("stderr does not contain %q and the usage:\n%s", tt.stderrHas, stderr)
			}
		})
	}
}

func TestIDsMayBeTypedAsAUniquePrefix(t *testing.T) {
	const head, child = "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d02", "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d03"
	tests := []struct {
		name      string
		args      []string // after the verb's --db
		code      int
		stdoutHas string
		stderrHas []string
	}{
		{"set takes a unique prefix", []string{"set", exampleID[:35] + "1", "headName", `"Hoàng Văn Sáng"`}, exitOK, exampleID + ": headName", nil},
		{"show takes a prefix unique among households", []string{"show", "0193a1f2"}, exitOK, "Household (hộ) " + exampleID, nil},
		{"member remove takes a prefix unique among members", []string{"member", "remove", "--reason", "moved-out", child[:35] + "3"}, exitOK, child + ": removed", nil},
		{"an ambiguous prefix lists the candidates", []string{"set", "0193a1f2", "headName", `"X"`}, exitInvalid, "",
			[]string{`id prefix "0193a1f2" matches more than one entity`, exampleID + " (household)", head + " (member)", child + " (member)", "type more of the id"}},
		{"a prefix of no id says what to do", []string{"set", "0193b", "headName", `"X"`}, exitInvalid, "",
			[]string{`no entity id in this file begins with "0193b"`, "rasoat list shows this file's households and their ids", "rasoat sync"}},
		{"a prefix too short is refused", []string{"set", "019", "headName", `"X"`}, exitInvalid, "", []string{"at least 4 characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := tabletFile(t)
			enrolExample(t, db)
			args := append([]string{tt.args[0], "--db", db}, tt.args[1:]...)
			stdout, stderr, code := rasoat(t, "", args...)
			if code != tt.code || !strings.Contains(stdout, tt.stdoutHas) {
				t.Errorf("exit code %d, stdout %q; want %d and %q\nstderr: %s", code, stdout, tt.code, tt.stdoutHas, stderr)
			}
			for _, s := range tt.stderrHas {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr does not contain %q: %s", s, stderr)
				}
			}
		})
	}
}

func TestAnUnknownIDSaysWhatToDo(t *testing.T) {
	const unknown = "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9dff"
	for _, args := range [][]string{
		{"set", unknown, "headName", `"X"`},
		{"show", unknown},
		{"member", "remove", "--reason", "died", unknown},
	} {
		t.Run(args[0], func(t *testing.T) {
			db := tabletFile(t)
			enrolExample(t, db)
			_, stderr, code := rasoat(t, "", append([]string{args[0], "--db", db}, args[1:]...)...)
			if code != exitInvalid || !strings.Contains(stderr, unknown) || !strings.Contains(stderr, "not found") ||
				!strings.Contains(stderr, "rasoat list shows this file's households and their ids") || !strings.Contains(stderr, "arrives here with rasoat sync") {
				t.Errorf("exit code %d, stderr %s", code, stderr)
			}
		})
	}
}
