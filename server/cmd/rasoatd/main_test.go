package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/pgtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// logWatch is run's stderr: it keeps the log and reports the address from
// the "rasoatd listening" line.
type logWatch struct {
	db   string // the --db start gave
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
}

var listeningAddr = regexp.MustCompile(`msg="rasoatd listening" addr=(\S+)`)

func newLogWatch() *logWatch { return &logWatch{addr: make(chan string, 1)} }

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if m := listeningAddr.FindSubmatch(p); m != nil {
		select {
		case w.addr <- string(m[1]):
		default:
		}
	}
	return w.buf.Write(p)
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// start runs rasoatd with args until the test ends, and returns the address
// it listens on and a stop function returning run's error.
func start(t *testing.T, args ...string) (string, *logWatch, func() error) {
	t.Helper()
	return startWith(t, filepath.Join(t.TempDir(), "rasoat.db"), args...)
}

// startWith is start serving --db db.
func startWith(t *testing.T, db string, args ...string) (string, *logWatch, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := newLogWatch()
	logs.db = db
	done := make(chan error, 1)
	args = append([]string{"--db", logs.db}, args...)
	go func() { done <- run(ctx, args, &bytes.Buffer{}, logs) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatalf("run did not return after cancel; log:\n%s", logs)
			return nil
		}
	}
	t.Cleanup(func() { cancel() })
	select {
	case addr := <-logs.addr:
		return addr, logs, stop
	case err := <-done:
		t.Fatalf("run returned %v before listening; log:\n%s", err, logs)
	case <-time.After(15 * time.Second):
		t.Fatalf("no listening line; log:\n%s", logs)
	}
	return "", nil, nil
}

func example(t *testing.T) *rasoatv1.Household {
	t.Helper()
	b, err := os.ReadFile("../../../survey/testdata/household-example.json")
	if err != nil {
		t.Fatal(err)
	}
	h := new(rasoatv1.Household)
	if err := protojson.Unmarshal(b, h); err != nil {
		t.Fatal(err)
	}
	return h
}

// adminToken makes the first admin with rasoatd bootstrap, as an operator
// would, and enrols a device for them.
func adminToken(t *testing.T, addr, db string) string {
	t.Helper()
	var code bytes.Buffer
	if err := run(t.Context(), []string{"bootstrap", "--db", db}, &code, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := rasoatv1.NewEnrolServiceClient(conn).Enrol(t.Context(), &rasoatv1.EnrolRequest{Code: strings.TrimSpace(code.String()), ReplicaId: "admin-laptop"})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetToken()
}

func assess(t *testing.T, addr string, logs *logWatch, h *rasoatv1.Household) *rasoatv1.Assessment {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), authtest.Bearer(adminToken(t, addr, logs.db)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := rasoatv1.NewScoringServiceClient(conn).Assess(ctx, &rasoatv1.AssessRequest{Household: h})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetAssessment()
}

func TestRunServesScoringOverTCPAndStopsOnCancel(t *testing.T) {
	addr, logs, stop := start(t, "--addr", "127.0.0.1:0")
	a := assess(t, addr, logs, example(t))
	if a.GetClassification() != rasoatv1.Classification_CLASSIFICATION_POOR || a.GetStandard() != "2021-2025" {
		t.Errorf("got %v under %s, want POOR under 2021-2025", a.GetClassification(), a.GetStandard())
	}
	if err := stop(); err != nil {
		t.Fatalf("run returned %v after cancel, want nil", err)
	}
	out := logs.String()
	if !strings.Contains(out, "standards=2016-2020,2021-2025,2026-2030") || !strings.Contains(out, "rasoatd stopped") {
		t.Errorf("log lacks the known standards or the stop:\n%s", out)
	}
}

// province writes a copy of the built-in 2021–2025 standard edited by the
// replacements, as a province would for a higher local line.
func province(t *testing.T, oldnew ...string) string {
	t.Helper()
	b, err := os.ReadFile("../../../survey/standards/2021-2025.json")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(oldnew); i += 2 {
		if !strings.Contains(s, oldnew[i]) {
			t.Fatalf("built-in standard has no %q", oldnew[i])
		}
		s = strings.Replace(s, oldnew[i], oldnew[i+1], 1)
	}
	name := filepath.Join(t.TempDir(), "province.json")
	if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestRunStandardFileReplacesBuiltinWithSameID(t *testing.T) {
	file := province(t, `"rural": {"poverty": 1500000, "middle": 2250000}`, `"rural": {"poverty": 1800000, "middle": 2500000}`)
	addr, logs, stop := start(t, "--addr", "127.0.0.1:0", "--standard-file", file, "--log-level", "debug")
	if got := assess(t, addr, logs, example(t)).GetPovertyLineVnd(); got != 1_800_000 {
		t.Errorf("poverty line %d, want the file's 1800000", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// runRefused runs rasoatd with args expecting it to refuse them; were it to
// start serving instead, the deadline ends it and the test fails.
func runRefused(t *testing.T, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "rasoat.db")}, args...), &bytes.Buffer{}, &bytes.Buffer{})
	if ctx.Err() != nil {
		t.Fatalf("rasoatd %q served instead of refusing its arguments", args)
	}
	return err
}

func TestRunBadStandardFileNamesTheField(t *testing.T) {
	file := province(t, `"rural": {"poverty": 1500000`, `"rural": {"poverty": 0`)
	err := runRefused(t, "--standard-file", "a.json,"+file)
	if err == nil {
		t.Fatal("run accepted a bad standard file")
	}
	// a.json does not exist: the first file's error is reported.
	if !strings.Contains(err.Error(), "a.json") {
		t.Errorf("error %q does not name a.json", err)
	}
	err = runRefused(t, "--standard-file", file)
	if err == nil || !strings.Contains(err.Error(), "lines.rural.poverty") || !strings.Contains(err.Error(), file) {
		t.Fatalf("got %v, want an error naming %s and lines.rural.poverty", err, file)
	}
}

func TestRunStandardFileOverlappingAnotherIsRefused(t *testing.T) {
	file := province(t, `"id": "2021-2025"`, `"id": "LS-2021-2025"`)
	err := runRefused(t, "--standard-file", file)
	if err == nil || !strings.Contains(err.Error(), "both cover") {
		t.Fatalf("got %v, want a refusal of two standards for one list year", err)
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"serve"}, {"--log-level", "loud"}} {
		if err := runRefused(t, args...); err == nil {
			t.Errorf("run %q returned nil", args)
		}
	}
}

func TestRunHelpPrintsFlagsToStdout(t *testing.T) {
	var stdout bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := run(ctx, []string{"-h"}, &stdout, &bytes.Buffer{}); err != nil || ctx.Err() != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"-addr", "-standard-file", "-log-level", "127.0.0.1:7443"} {
		if !strings.Contains(stdout.String(), flag) {
			t.Errorf("help lacks %s:\n%s", flag, stdout.String())
		}
	}
}

// TestRunWithoutTLSListensOnLoopbackOnly: tokens and households never
// cross a network in clear unless the operator says so.
func TestRunWithoutTLSListensOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:7443"} {
		err := runRefused(t, "--addr", addr)
		if err == nil || !strings.Contains(err.Error(), "--insecure-listen") {
			t.Errorf("--addr %s without TLS: %v; want a refusal naming --insecure-listen", addr, err)
		}
	}
	if err := runRefused(t, "--tls-cert", "x.pem"); err == nil {
		t.Error("--tls-cert without --tls-key was accepted")
	}
	_, _, stop := start(t, "--addr", "0.0.0.0:0", "--insecure-listen")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		if !loopback(ok) {
			t.Errorf("%s is loopback", ok)
		}
	}
}

// TestBootstrapPrintsACodeAlone: the code is the only thing on stdout,
// and a second run gives a second code for the same admin.
func TestBootstrapPrintsACodeAlone(t *testing.T) {
	db := filepath.Join(t.TempDir(), "rasoat.db")
	var a, b bytes.Buffer
	if err := run(t.Context(), []string{"bootstrap", "--db", db}, &a, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"bootstrap", "--db", db}, &b, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile(`^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\n$`)
	if !code.MatchString(a.String()) || !code.MatchString(b.String()) || a.String() == b.String() {
		t.Errorf("bootstrap printed %q and %q; want two different codes alone", a.String(), b.String())
	}
}

// TestRunServesFromPostgreSQL: --db postgres://… serves from PostgreSQL
// (a province), bootstrap included, and logs the URL without its password.
func TestRunServesFromPostgreSQL(t *testing.T) {
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "s3cret") // trust auth ignores it
	addr, logs, stop := startWith(t, u.String(), "--addr", "127.0.0.1:0")
	if a := assess(t, addr, logs, example(t)); a.GetClassification() != rasoatv1.Classification_CLASSIFICATION_POOR {
		t.Errorf("got %v, want POOR", a.GetClassification())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); strings.Contains(out, "s3cret") || !strings.Contains(out, `db="postgres://`) {
		t.Errorf("the log shows the password or not the database:\n%s", out)
	}
}
