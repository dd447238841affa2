package systemtest

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/client"
	"github.com/rasoat/rasoat/internal/authtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// setup makes the commune on a running rasoatd as an operator would: the
// first admin's code from rasoatd bootstrap on the server's file, the
// admin enrolled over the API, then the units (villages 1 to villages of
// commune 06517, served) and the people.
func (p *proc) setup(t testing.TB, villages int, people ...*rasoatv1.Person) {
	t.Helper()
	out, err := exec.Command(rasoatd, "bootstrap", "--db", p.db).Output()
	if err != nil {
		t.Fatalf("rasoatd bootstrap: %v", err)
	}
	conn := dial(t, p.addr)
	res, err := rasoatv1.NewEnrolServiceClient(conn).Enrol(context.Background(), &rasoatv1.EnrolRequest{Code: strings.TrimSpace(string(out)), ReplicaId: "admin-laptop", DeviceName: "admin laptop"})
	if err != nil {
		t.Fatalf("enrol the admin: %v", err)
	}
	p.adminToken = res.GetToken()
	p.admin = rasoatv1.NewAdminServiceClient(dialAs(t, p.addr, p.adminToken))
	if _, err := p.admin.PutUnits(context.Background(), &rasoatv1.PutUnitsRequest{Units: authtest.Units(villages), ServedUnitCode: authtest.Commune}); err != nil {
		t.Fatalf("put units: %v", err)
	}
	if len(people) > 0 {
		if _, err := p.admin.PutPeople(context.Background(), &rasoatv1.PutPeopleRequest{People: people}); err != nil {
			t.Fatalf("put people: %v", err)
		}
	}
}

// code issues an enrolment code for person through the admin API.
func (p *proc) code(t testing.TB, person string) string {
	t.Helper()
	res, err := p.admin.IssueCode(context.Background(), &rasoatv1.IssueCodeRequest{PersonId: person})
	if err != nil {
		t.Fatalf("issue a code for %s: %v", person, err)
	}
	return res.GetCode()
}

// enrol enrols a device of person under replica over the API and returns
// its token.
func (p *proc) enrol(t testing.TB, person, replica string) string {
	t.Helper()
	res, err := rasoatv1.NewEnrolServiceClient(dial(t, p.addr)).Enrol(context.Background(), &rasoatv1.EnrolRequest{Code: p.code(t, person), ReplicaId: replica})
	if err != nil {
		t.Fatalf("enrol %s: %v", person, err)
	}
	return res.GetToken()
}

// dialAs dials addr sending token on every call.
func dialAs(t testing.TB, addr, token string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), authtest.Bearer(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// collaborator is a person with the collaborator role in villages.
func collaborator(id string, villages ...string) *rasoatv1.Person {
	return &rasoatv1.Person{Id: id, Name: "Người " + id, Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR}, UnitCodes: villages}
}

// officer is a commune officer of the test commune.
func officer(id string) *rasoatv1.Person {
	return &rasoatv1.Person{Id: id, Name: "Người " + id, Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}, UnitCodes: []string{authtest.Commune}}
}

// rasoatCLI runs the built rasoat command line, as a user would type it.
func rasoatCLI(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(rasoatBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rasoat %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// enrolledTablet is a new tablet file enrolled for person with rasoat
// enrol, then opened with the client library as the tablet app would.
func enrolledTablet(t *testing.T, p *proc, name, person string) *client.Client {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".db")
	rasoatCLI(t, "enrol", "--db", path, "--server", p.addr, "--code", p.code(t, person), "--name", "tablet "+name)
	c, err := client.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// enrolLoad puts each load tablet's village and a collaborator of it, and
// enrols the tablet's replica for them: the tokens, in tabs' order. It
// runs outside any timed part of a benchmark.
func (p *proc) enrolLoad(t testing.TB, tabs []*loadTablet) []string {
	t.Helper()
	ctx := context.Background()
	units := make([]*rasoatv1.Unit, len(tabs))
	people := make([]*rasoatv1.Person, len(tabs))
	for i, tab := range tabs {
		units[i] = &rasoatv1.Unit{Code: tab.village, Name: "Thôn " + tab.village, Level: rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE, Kind: "thôn", ParentCode: authtest.Commune}
		people[i] = collaborator("load-"+strings.ToLower(tab.village), tab.village)
	}
	if _, err := p.admin.PutUnits(ctx, &rasoatv1.PutUnitsRequest{Units: units}); err != nil {
		t.Fatalf("put the load villages: %v", err)
	}
	if _, err := p.admin.PutPeople(ctx, &rasoatv1.PutPeopleRequest{People: people}); err != nil {
		t.Fatalf("put the load collaborators: %v", err)
	}
	tokens := make([]string, len(tabs))
	for i, tab := range tabs {
		tokens[i] = p.enrol(t, people[i].GetId(), tab.replica)
	}
	return tokens
}
