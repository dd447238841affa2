package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rasoat/rasoat/client"
)

// pending returns how many changes of the tablet file wait for a server.
func pending(t *testing.T, db string) int {
	t.Helper()
	c, err := client.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := c.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var (
	// progressLines is sync's progress where stderr is not a terminal.
	progressLines = regexp.MustCompile(`^(push \d+ sent · pull \d+ received\n)+$`)
	// progressLine is sync's progress on a terminal, rewritten in place.
	progressLine = regexp.MustCompile(`^(\rpush \d+ sent · pull \d+ received)+\n$`)
	summaryLine  = regexp.MustCompile(`^synced with (\S+): pushed (\d+) · duplicates (\d+) · restamped (\d+) · snapshot states (\d+) · pulled (\d+) · cursor (\d+) · open conflicts (\d+)\n$`)
)

// syncResult is the numbers of sync's summary line.
type syncResult struct {
	pushed, duplicates, restamped, snapshot, pulled, cursor, conflicts int
}

func parseSummary(t *testing.T, addr, stdout string) syncResult {
	t.Helper()
	m := summaryLine.FindStringSubmatch(stdout)
	if m == nil || m[1] != addr {
		t.Fatalf("sync's summary line is %q", stdout)
	}
	n := make([]int, 7)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+2])
	}
	return syncResult{n[0], n[1], n[2], n[3], n[4], n[5], n[6]}
}

// lastProgress is the last state of the progress, in lines or in place.
func lastProgress(stderr string) string {
	parts := strings.FieldsFunc(stderr, func(r rune) bool { return r == '\r' || r == '\n' })
	if len(parts) == 0 {
		return ""
	}
	return parts[len(parts)-1]
}

func TestSyncPrintsProgressAndASummary(t *testing.T) {
	addr := startServer(t)
	a, b := tabletFile(t), tabletFile(t)
	enrolExample(t, a)
	changes := pending(t, a)
	const entities = 3 // the household and its two members

	// The first sync of A pushes its changes and, its cursor being 0, takes
	// the server's states whole; B's first sync takes the same states; a
	// second sync of A has nothing to do; after B adds a member, A pulls
	// B's changes.
	added := 0 // changes of the member B adds
	steps := []struct {
		name   string
		db     string
		before func()
		want   func() (syncResult, string) // the summary and the last progress
	}{
		{"the first sync pushes and takes a snapshot", a, nil, func() (syncResult, string) {
			return syncResult{pushed: changes, snapshot: entities, cursor: changes}, fmt.Sprintf("push %d sent · pull %d received", changes, entities)
		}},
		{"a new tablet takes the snapshot", b, nil, func() (syncResult, string) {
			return syncResult{snapshot: entities, cursor: changes}, fmt.Sprintf("push 0 sent · pull %d received", entities)
		}},
		{"with nothing new, nothing moves", a, nil, func() (syncResult, string) {
			return syncResult{cursor: changes}, "push 0 sent · pull 0 received"
		}},
		{"a member added on B reaches A by pull", a, func() {
			ok(t, childOutOfSchool, "member", "add", "--db", b, exampleID)
			added = pending(t, b)
			syncOK(t, b, addr)
		}, func() (syncResult, string) {
			return syncResult{pulled: added, cursor: changes + added}, fmt.Sprintf("push 0 sent · pull %d received", added)
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before()
			}
			stdout, stderr, code := rasoat(t, "", "sync", "--db", st.db, "--server", addr)
			if code != exitOK {
				t.Fatalf("exit code %d; stderr: %s", code, stderr)
			}
			if !progressLines.MatchString(stderr) {
				t.Errorf("stderr (not a terminal) is not plain progress lines: %q", stderr)
			}
			want, progress := st.want()
			if got := lastProgress(stderr); got != progress {
				t.Errorf("last progress %q, want %q", got, progress)
			}
			if got := parseSummary(t, addr, stdout); got != want {
				t.Errorf("summary %+v, want %+v", got, want)
			}
			if n := pending(t, st.db); n != 0 {
				t.Errorf("%d changes still pending after sync", n)
			}
		})
	}
	if showA, showB := ok(t, "", "show", "--json", "--db", a, exampleID), ok(t, "", "show", "--json", "--db", b, exampleID); showA != showB {
		t.Errorf("the tablets disagree:\n%s\n%s", showA, showB)
	}
}

// cancelOnWrite cancels a context at the first write: the stderr of a sync
// whose first progress line is its Ctrl-C.
type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel()
	return w.buf.Write(p)
}

func TestSyncInterruptedExitsTwoAndARerunCompletes(t *testing.T) {
	addr := startServer(t)
	a, b := tabletFile(t), tabletFile(t)
	enrolExample(t, a)
	changes := pending(t, a)

	// Ctrl-C just after the push was acknowledged: the snapshot never starts.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &cancelOnWrite{cancel: cancel}
	var stdout bytes.Buffer
	code := run(ctx, []string{"sync", "--db", a, "--server", addr}, strings.NewReader(""), &stdout, stderr)
	if code != exitUsage || stdout.Len() != 0 {
		t.Errorf("interrupted sync: exit code %d, stdout %q; want %d and nothing", code, stdout.String(), exitUsage)
	}
	for _, want := range []string{"rasoat sync: interrupted", fmt.Sprintf("done before stopping: pushed %d", changes), "run rasoat sync again"} {
		if !strings.Contains(stderr.buf.String(), want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr.buf.String())
		}
	}
	if n := pending(t, a); n != 0 {
		t.Errorf("%d changes pending: the acknowledged push was not kept", n)
	}

	// Rerun: nothing is pushed twice, and the snapshot is taken.
	if got := parseSummary(t, addr, syncOK(t, a, addr)); got != (syncResult{snapshot: 3, cursor: changes}) {
		t.Errorf("rerun: %+v", got)
	}
	syncOK(t, b, addr)
	if got := ok(t, "", "list", "--db", b); !strings.Contains(got, exampleID) {
		t.Errorf("the other tablet does not list the household:\n%s", got)
	}
}

func TestSyncThatCannotCompleteExitsTwo(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()
	addr := startServer(t)
	tests := []struct {
		name      string
		args      []string
		stderrHas string
	}{
		{"no server listening", []string{"--server", closed}, "cannot reach a rasoat server at " + closed},
		{"a timeout", []string{"--server", addr, "--timeout", "1ns"}, "timed out after 1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := tabletFile(t)
			enrolExample(t, db)
			changes := pending(t, db)
			stdout, stderr, code := rasoat(t, "", append([]string{"sync", "--db", db}, tt.args...)...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tt.stderrHas) {
				t.Errorf("exit code %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, exitUsage, tt.stderrHas)
			}
			if n := pending(t, db); n != changes {
				t.Errorf("%d changes pending, want all %d kept", n, changes)
			}
		})
	}
}

// silentServer accepts connections and never answers; accepted receives
// each connection, so a test knows a client is waiting on it.
func silentServer(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String(), ch
}

// TestTabletBinary runs the real binary, as a collaborator would, in two
// working directories (two tablets, each with the default tablet.db):
// enrol and show offline, sync, see the household on the other tablet, and
// interrupt a sync with Ctrl-C.
func TestTabletBinary(t *testing.T) {
	bin := buildBinary(t)
	example, err := filepath.Abs(householdExample)
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t)
	tabletA, tabletB := t.TempDir(), t.TempDir()

	type result struct {
		stdout, stderr string
		code           int
	}
	start := func(dir string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &stdout, &stderr
	}
	wait := func(cmd *exec.Cmd, stdout, stderr *bytes.Buffer) result {
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{stdout.String(), stderr.String(), code}
	}
	runIn := func(dir string, args ...string) result {
		t.Helper()
		cmd, stdout, stderr := start(dir, args...)
		return wait(cmd, stdout, stderr)
	}
	want := func(r result, code int, stdoutHas ...string) {
		t.Helper()
		if r.code != code {
			t.Errorf("exit code %d, want %d; stderr: %s", r.code, code, r.stderr)
		}
		for _, s := range stdoutHas {
			if !strings.Contains(squash(r.stdout), s) {
				t.Errorf("stdout does not contain %q:\n%s", s, r.stdout)
			}
		}
	}

	t.Run("add and show work offline in tablet.db of the working directory", func(t *testing.T) {
		want(runIn(tabletA, "add", example), exitOK, exampleID)
		if _, err := os.Stat(filepath.Join(tabletA, "tablet.db")); err != nil {
			t.Errorf("no tablet.db in the working directory: %v", err)
		}
		want(runIn(tabletA, "show", exampleID), exitOK, "classification POOR (hộ nghèo)", "4 of 12 indicators")
	})
	t.Run("sync sends the household and the other tablet shows it", func(t *testing.T) {
		r := runIn(tabletA, "sync", "--server", addr)
		want(r, exitOK, "synced with "+addr+": pushed ")
		if !progressLines.MatchString(r.stderr) {
			t.Errorf("stderr (a pipe) is not plain progress lines: %q", r.stderr)
		}
		want(runIn(tabletB, "sync", "--server", addr), exitOK, "snapshot states 3")
		want(runIn(tabletB, "show", exampleID), exitOK, "classification POOR (hộ nghèo)", "HEALTH_INSURANCE (Bảo hiểm y tế): Vi Thị Mai, 12 tuổi, không có bảo hiểm y tế")
	})
	t.Run("Ctrl-C interrupts a sync, exits 2, and a rerun completes", func(t *testing.T) {
		want(runIn(tabletB, "set", exampleID, "housing.floorAreaM2", "40"), exitOK)
		silent, accepted := silentServer(t)
		cmd, stdout, stderr := start(tabletB, "sync", "--server", silent)
		select {
		case <-accepted: // the sync is waiting on the server
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatal("the sync never connected")
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		r := wait(cmd, stdout, stderr)
		if r.code != exitUsage || !strings.Contains(r.stderr, "rasoat sync: interrupted") || !strings.Contains(r.stderr, "run rasoat sync again") {
			t.Errorf("exit code %d, stderr %q; want %d, interrupted", r.code, r.stderr, exitUsage)
		}
		want(runIn(tabletB, "sync", "--server", addr), exitOK, "pushed 1 ")
		want(runIn(tabletA, "sync", "--server", addr), exitOK, "pulled 1 ")
		want(runIn(tabletA, "show", exampleID), exitOK, "housing.floorAreaM2 40", "3 of 12 indicators")
	})
}

// charDevice is a writer that says it is a terminal, as an *os.File on a
// tty does.
type charDevice struct{ bytes.Buffer }

func (*charDevice) Stat() (os.FileInfo, error) { return charDeviceInfo{}, nil }

type charDeviceInfo struct{ os.FileInfo }

func (charDeviceInfo) Mode() os.FileMode { return os.ModeDevice | os.ModeCharDevice | 0o620 }

func TestSyncProgressIsRewrittenInPlaceOnlyOnATerminal(t *testing.T) {
	addr := startServer(t)
	logFile := func(t *testing.T) (io.Writer, func() string) {
		f, err := os.Create(filepath.Join(t.TempDir(), "sync.log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f, func() string {
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	tests := []struct {
		name   string
		stderr func(t *testing.T) (io.Writer, func() string)
		want   *regexp.Regexp
	}{
		{"a terminal gets one line rewritten in place", func(*testing.T) (io.Writer, func() string) {
			w := &charDevice{}
			return w, w.String
		}, progressLine},
		{"a log file gets plain lines and no carriage return", logFile, progressLines},
		{"a buffer (a pipe) gets plain lines", func(*testing.T) (io.Writer, func() string) {
			w := &bytes.Buffer{}
			return w, w.String
		}, progressLines},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := tabletFile(t)
			enrolExample(t, db)
			changes := pending(t, db)
			w, read := tt.stderr(t)
			var stdout bytes.Buffer
			if code := run(context.Background(), []string{"sync", "--db", db, "--server", addr}, strings.NewReader(""), &stdout, w); code != exitOK {
				t.Fatalf("exit code %d: %s", code, read())
			}
			got := read()
			if !tt.want.MatchString(got) {
				t.Errorf("progress %q does not match %s", got, tt.want)
			}
			// Another tablet's household is in the snapshot too after the first run.
			if last := lastProgress(got); !strings.HasPrefix(last, fmt.Sprintf("push %d sent · pull ", changes)) {
				t.Errorf("last progress %q", last)
			}
		})
	}
}

func TestProgressInALogIsTheFirstBatchThenALinePerPhaseAndEveryTenSeconds(t *testing.T) {
	p := func(phase string, sent, received int) client.Progress {
		return client.Progress{Phase: phase, Sent: sent, Received: received}
	}
	tests := []struct {
		name    string
		updates []client.Progress
		gaps    []time.Duration // before each update
		want    string
	}{
		{"the first batch, then one line as each phase ends, none for the batches within it",
			[]client.Progress{p(client.PhasePush, 5000, 0), p(client.PhasePush, 7000, 0), p(client.PhaseSnapshot, 7000, 1000), p(client.PhaseSnapshot, 7000, 3000), p(client.PhasePull, 7000, 3010)},
			[]time.Duration{0, time.Second, time.Second, time.Second, time.Second},
			"push 5000 sent · pull 0 received\npush 7000 sent · pull 0 received\npush 7000 sent · pull 3000 received\npush 7000 sent · pull 3010 received\n"},
		{"a long phase shows it is still going every ten seconds",
			[]client.Progress{p(client.PhasePull, 0, 5000), p(client.PhasePull, 0, 10000), p(client.PhasePull, 0, 15000), p(client.PhasePull, 0, 20000)},
			[]time.Duration{0, 6 * time.Second, 6 * time.Second, time.Second},
			"push 0 sent · pull 5000 received\npush 0 sent · pull 15000 received\npush 0 sent · pull 20000 received\n"},
		{"nothing reported writes nothing", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			now := time.Date(2025, 10, 20, 8, 0, 0, 0, time.UTC)
			pp := &progressPrinter{w: &out, now: func() time.Time { return now }}
			for i, u := range tt.updates {
				now = now.Add(tt.gaps[i])
				pp.update(u)
			}
			pp.end()
			if out.String() != tt.want {
				t.Errorf("wrote\n%q\nwant\n%q", out.String(), tt.want)
			}
		})
	}
}
