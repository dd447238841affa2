package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"google.golang.org/grpc/credentials"
)

// authServer is rasoatd's core as it serves a commune (authtest.Serve).
type authServer struct {
	addr string
	st   *sqlite.DB
}

// startAuthServer starts it; lim nil takes the default failure allowance.
func startAuthServer(t *testing.T, lim *auth.Limiter, opts ...server.Option) *authServer {
	t.Helper()
	s := authtest.Serve(t, lim, opts...)
	return &authServer{addr: s.Addr, st: s.Store}
}

// bootstrap makes the first admin and returns their enrolment code, as
// rasoatd bootstrap does on the server machine.
func (s *authServer) bootstrap(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	p := directory.Person{ID: "admin", Name: "Quản trị", Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_ADMIN}}
	if _, _, err := s.st.PutPeople(ctx, []directory.Person{p}); err != nil {
		t.Fatal(err)
	}
	c := auth.NewCode()
	if err := s.st.IssueCode(ctx, directory.Code{ID: c.ID, Hash: c.Hash, PersonID: p.ID, ExpiresAt: time.Now().Add(time.Hour), Attempts: directory.CodeAttempts}); err != nil {
		t.Fatal(err)
	}
	return c.Text
}

// codeLine is what admin code prints on standard output: the code alone.
var codeLine = regexp.MustCompile(`^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\n$`)

// commune is a server with the units of testdata/units-quan-son.csv and
// an admin's file enrolled, with the connection flags of every call.
type commune struct {
	*authServer
	admin string   // the admin's file
	net   []string // --server and, over TLS, --ca
	dir   string   // the test's, where tablet files outlive a step
	files int
}

// newFile is the path of a new tablet file, kept until the test ends.
func (c *commune) newFile() string {
	c.files++
	return filepath.Join(c.dir, fmt.Sprintf("tablet-%d.db", c.files))
}

// setUpCommune bootstraps the admin, enrols their file and imports the
// units, serving the commune 06517.
func setUpCommune(t *testing.T, s *authServer, netArgs ...string) *commune {
	t.Helper()
	c := &commune{authServer: s, admin: tabletFile(t), net: append([]string{"--server", s.addr}, netArgs...), dir: t.TempDir()}
	c.ok(t, "enrol", "--db", c.admin, "--code", s.bootstrap(t), "--name", "máy tính xã")
	c.ok(t, "admin", "units", "import", "testdata/units-quan-son.csv", "--serve", "06517", "--db", c.admin)
	return c
}

// ok runs a verb that dials, with the commune's connection flags.
func (c *commune) ok(t *testing.T, args ...string) string {
	t.Helper()
	return ok(t, "", append(args, c.net...)...)
}

// run is rasoat with the commune's connection flags.
func (c *commune) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return rasoat(t, "", append(args, c.net...)...)
}

// tablet makes a file enrolled for person (put first with roles and
// units) and returns it.
func (c *commune) tablet(t *testing.T, person, roles, units string) string {
	t.Helper()
	c.ok(t, "admin", "person", "put", person, "--name", "Người "+person, "--roles", roles, "--units", units, "--db", c.admin)
	code := c.ok(t, "admin", "code", person, "--db", c.admin)
	if !codeLine.MatchString(code) {
		t.Fatalf("admin code printed %q, want the code alone", code)
	}
	db := c.newFile()
	c.ok(t, "enrol", "--db", db, "--code", strings.TrimSpace(code), "--name", "tablet "+person)
	return db
}

// whoami is the identity the server gives the file db.
func (c *commune) whoami(t *testing.T, db string) identityJSON {
	t.Helper()
	var id identityJSON
	if err := json.Unmarshal([]byte(c.ok(t, "whoami", "--json", "--db", db)), &id); err != nil {
		t.Fatal(err)
	}
	return id
}

// selfSigned makes a self-signed certificate for 127.0.0.1 and returns the
// server's credentials and the certificate's PEM file.
func selfSigned(t *testing.T, _ string) (credentials.TransportCredentials, string) {
	t.Helper()
	cert, key := authtest.SelfSigned(t)
	creds, err := credentials.NewServerTLSFromFile(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return creds, cert
}

func TestOverTLSACommuneCertificateGivenWithCAIsTrusted(t *testing.T) {
	creds, ca := selfSigned(t, t.TempDir())
	s := startAuthServer(t, nil, server.WithTLS(creds))
	c := setUpCommune(t, s, "--ca", ca)
	a := c.tablet(t, "hoa", "collaborator", "06517-01")
	add(t, a, "06517-01")
	if got := parseSummary(t, s.addr, c.ok(t, "sync", "--db", a)); got.pushed == 0 {
		t.Errorf("nothing pushed over TLS: %+v", got)
	}

	tests := []struct {
		name      string
		args      []string
		stderrHas string
	}{
		{"a plain connection to a TLS server does not get through", []string{"--server", s.addr}, "cannot reach a rasoat server at " + s.addr + " over plain gRPC"},
		{"the system's authorities do not know a commune's own certificate", []string{"--server", s.addr, "--tls"}, "certificate"},
		{"another certificate than the server's is not trusted", []string{"--server", s.addr, "--ca", func() string { _, other := selfSigned(t, t.TempDir()); return other }()}, "over TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := rasoat(t, "", append([]string{"sync", "--db", a, "--timeout", "10s"}, tt.args...)...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tt.stderrHas) {
				t.Errorf("exit code %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, exitUsage, tt.stderrHas)
			}
		})
	}
}

func TestConnectionFlagsThatCannotWorkAreBadUsage(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "tablet.db")
	tests := []struct {
		name      string
		args      []string
		stderrHas string
	}{
		{"--ca must hold a PEM certificate", []string{"sync", "--ca", notPEM}, "no PEM certificate"},
		{"--ca must exist", []string{"whoami", "--ca", filepath.Join(dir, "missing.pem")}, "missing.pem"},
		{"--server may not be empty", []string{"enrol", "--code", "X", "--server", ""}, "--server is empty"},
		{"--timeout may not be negative", []string{"history", exampleID, "--timeout", "-1s"}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := rasoat(t, "", append(tt.args, "--db", db)...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tt.stderrHas) {
				t.Errorf("exit code %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, exitUsage, tt.stderrHas)
			}
		})
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused command made the tablet file: %v", err)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7443": true, "localhost:7443": true, "[::1]:7443": true,
		"10.0.0.5:7443": false, "xa-quanson.example:443": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
