package server_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/rpcerr"
	"github.com/rasoat/rasoat/internal/sqlitedb"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// commune is a real server with authentication over a real SQLite file on
// a loopback port, seeded with three villages and one person of each role.
type commune struct {
	t      *testing.T
	path   string
	st     *sqlite.DB
	addr   string
	tokens map[string]string // person id → token
	grpc   *server.Server
}

var roleOf = map[string][]rasoatv1.Role{
	"admin":   {rasoatv1.Role_ROLE_ADMIN},
	"col1":    {rasoatv1.Role_ROLE_COLLABORATOR},
	"col2":    {rasoatv1.Role_ROLE_COLLABORATOR},
	"head1":   {rasoatv1.Role_ROLE_VILLAGE_HEAD},
	"officer": {rasoatv1.Role_ROLE_COMMUNE_OFFICER},
	"chair":   {rasoatv1.Role_ROLE_COMMUNE_CHAIR},
	"service": {rasoatv1.Role_ROLE_SERVICE},
	"relay":   {rasoatv1.Role_ROLE_COMMUNE_SERVER},
}

var unitsOf = map[string][]string{
	"col1": {authtest.Village(1)}, "col2": {authtest.Village(2)}, "head1": {authtest.Village(1)},
	"officer": {authtest.Commune}, "chair": {authtest.Commune}, "relay": {authtest.Commune},
}

func newCommune(t *testing.T, lim *auth.Limiter) *commune {
	t.Helper()
	ctx := t.Context()
	srv := authtest.Serve(t, lim)
	c := &commune{t: t, path: srv.Store.Path(), st: srv.Store, addr: srv.Addr, grpc: srv.Server(), tokens: map[string]string{}}
	var people []directory.Person
	for id, roles := range roleOf {
		people = append(people, authtest.Person(id, roles, unitsOf[id]...))
	}
	if err := authtest.Seed(ctx, c.st, 3, people...); err != nil {
		t.Fatal(err)
	}
	for id := range roleOf {
		tok, err := authtest.Enrol(ctx, c.st, c.conn(""), id, "replica-"+id)
		if err != nil {
			t.Fatal(err)
		}
		c.tokens[id] = tok
		// Its first call records when the device was last seen; from then
		// on, for a minute, a call writes nothing unless it stores.
		if _, err := rasoatv1.NewEnrolServiceClient(c.as(id)).WhoAmI(ctx, &rasoatv1.WhoAmIRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// conn dials the commune, sending token on every call when not empty.
func (c *commune) conn(token string) *grpc.ClientConn {
	c.t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, authtest.Bearer(token))
	}
	conn, err := grpc.NewClient(c.addr, opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return conn
}

func (c *commune) as(person string) *grpc.ClientConn { return c.conn(c.tokens[person]) }

// dump is every row of every table of the store, hashed: a refused request
// must leave it as it was.
func (c *commune) dump() string {
	c.t.Helper()
	db, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(c.path, sqlitedb.Options{ReadOnly: true}))
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
	if err != nil {
		c.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	h := sha256.New()
	for _, tb := range tables {
		rows, err := db.Query("SELECT * FROM " + tb + " ORDER BY 1")
		if err != nil {
			c.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			fmt.Fprintf(h, "%s %v\n", tb, vals)
		}
		rows.Close()
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// rpc is one call of every method the server serves, with a request that
// a caller allowed to make it would have answered.
type rpc struct {
	method string
	call   func(ctx context.Context, conn *grpc.ClientConn) error
}

func stream[T any](s interface{ Recv() (T, error) }, err error) error {
	if err != nil {
		return err
	}
	_, err = s.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func rpcs() []rpc {
	hh := storetest.Must(storetest.New("replica-col1", authtest.Village(1)).Household(1))
	return []rpc{
		{"Sync/Push", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewSyncServiceClient(c).Push(ctx, &rasoatv1.PushRequest{Changes: hh})
			return err
		}},
		{"Sync/Pull", func(ctx context.Context, c *grpc.ClientConn) error {
			return stream(rasoatv1.NewSyncServiceClient(c).Pull(ctx, &rasoatv1.PullRequest{}))
		}},
		{"Sync/Snapshot", func(ctx context.Context, c *grpc.ClientConn) error {
			return stream(rasoatv1.NewSyncServiceClient(c).Snapshot(ctx, &rasoatv1.SnapshotRequest{}))
		}},
		{"Scoring/Assess", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewScoringServiceClient(c).ListStandards(ctx, &rasoatv1.ListStandardsRequest{})
			return err
		}},
		{"Scoring/AssessStream", func(ctx context.Context, c *grpc.ClientConn) error {
			s, err := rasoatv1.NewScoringServiceClient(c).AssessStream(ctx)
			if err != nil {
				return err
			}
			s.CloseSend()
			return stream(s, nil)
		}},
		{"Scoring/ListStandards", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewScoringServiceClient(c).ListStandards(ctx, &rasoatv1.ListStandardsRequest{})
			return err
		}},
		{"Admin/PutUnits", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewAdminServiceClient(c).PutUnits(ctx, &rasoatv1.PutUnitsRequest{Units: authtest.Units(3)})
			return err
		}},
		{"Admin/ListUnits", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewAdminServiceClient(c).ListUnits(ctx, &rasoatv1.ListUnitsRequest{})
			return err
		}},
		{"Admin/PutPeople", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewAdminServiceClient(c).PutPeople(ctx, &rasoatv1.PutPeopleRequest{People: []*rasoatv1.Person{
				{Id: "col3", Name: "Lò Thị Ba", Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR}, UnitCodes: []string{authtest.Village(3)}},
			}})
			return err
		}},
		{"Admin/ListPeople", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewAdminServiceClient(c).ListPeople(ctx, &rasoatv1.ListPeopleRequest{})
			return err
		}},
		{"Admin/IssueCode", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewAdminServiceClient(c).IssueCode(ctx, &rasoatv1.IssueCodeRequest{PersonId: "col1"})
			return err
		}},
		{"Admin/ListDevices", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewAdminServiceClient(c).ListDevices(ctx, &rasoatv1.ListDevicesRequest{})
			return err
		}},
		{"Admin/RevokeDevice", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewAdminServiceClient(c).RevokeDevice(ctx, &rasoatv1.RevokeDeviceRequest{DeviceId: "no-such-device"})
			if status.Code(err) == codes.NotFound {
				return nil // allowed to ask; there is no such device
			}
			return err
		}},
		{"Quality/Flags", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewQualityServiceClient(c).Flags(ctx, &rasoatv1.FlagsRequest{UnitCode: authtest.Village(1)})
			if status.Code(err) == codes.PermissionDenied && rpcerr.Reason(err) == rasoatv1.ErrorReason_OUT_OF_SCOPE {
				return nil // allowed to ask; the village is not theirs
			}
			return err
		}},
		{"Enrol/WhoAmI", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewEnrolServiceClient(c).WhoAmI(ctx, &rasoatv1.WhoAmIRequest{})
			return err
		}},
		{"History/EntityHistory", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := rasoatv1.NewHistoryServiceClient(c).EntityHistory(ctx, &rasoatv1.EntityHistoryRequest{EntityId: "0190f0c2-0000-7000-8000-000000000000"})
			if status.Code(err) == codes.NotFound {
				return nil // allowed to ask; there is no such entity
			}
			return err
		}},
	}
}

// mayCall is who may call each method: the rule the interceptor pins.
func mayCall(method, person string) bool {
	switch svc, _, _ := strings.Cut(method, "/"); svc {
	case "Admin":
		return person == "admin"
	case "Sync", "History":
		return !slices.Contains([]string{"admin", "service"}, person)
	case "Quality":
		return slices.Contains([]string{"head1", "officer", "chair", "service", "relay"}, person)
	}
	return true // scoring, whoami: anyone enrolled
}

func wantReason(t *testing.T, err error, code codes.Code, reason rasoatv1.ErrorReason) {
	t.Helper()
	if status.Code(err) != code || rpcerr.Reason(err) != reason {
		t.Fatalf("got %v (reason %v); want %v with reason %v", err, rpcerr.Reason(err), code, reason)
	}
}

// TestEveryMethodNeedsAToken: no token, a malformed one, one of another
// server and a revoked one are refused on every method but health and
// enrolment, before the method runs, and the store is unchanged.
func TestEveryMethodNeedsAToken(t *testing.T) {
	lim := auth.NewLimiter(time.Millisecond, 10_000) // many failures on purpose
	c := newCommune(t, lim)
	other := newCommune(t, nil) // another commune's server, its own tokens
	ctx := t.Context()
	if _, err := rasoatv1.NewAdminServiceClient(c.as("admin")).RevokeDevice(ctx, &rasoatv1.RevokeDeviceRequest{DeviceId: deviceOf(t, c, "col2")}); err != nil {
		t.Fatal(err)
	}
	before := c.dump()
	for _, tc := range []struct {
		name   string
		token  string
		reason rasoatv1.ErrorReason
	}{
		{"no token", "", rasoatv1.ErrorReason_TOKEN_MISSING},
		{"malformed token", "Basic abc", rasoatv1.ErrorReason_TOKEN_UNKNOWN},
		{"another server's token", other.tokens["officer"], rasoatv1.ErrorReason_TOKEN_UNKNOWN},
		{"a token with a wrong secret", c.tokens["officer"][:len(c.tokens["officer"])-4] + "aaaa", rasoatv1.ErrorReason_TOKEN_UNKNOWN},
		{"a revoked token", c.tokens["col2"], rasoatv1.ErrorReason_TOKEN_REVOKED},
	} {
		for _, r := range rpcs() {
			t.Run(tc.name+"/"+r.method, func(t *testing.T) {
				conn := c.conn(tc.token)
				if tc.name == "malformed token" {
					conn = c.conn("")
					ctx := metadataCtx(ctx, tc.token)
					wantReason(t, r.call(ctx, conn), codes.Unauthenticated, tc.reason)
					return
				}
				wantReason(t, r.call(ctx, conn), codes.Unauthenticated, tc.reason)
			})
		}
	}
	if c.dump() != before {
		t.Error("refused calls changed the store")
	}
}

// TestRolesMayCallOnlyTheirMethods: each role calls every method; the
// interceptor lets through exactly mayCall's.
func TestRolesMayCallOnlyTheirMethods(t *testing.T) {
	c := newCommune(t, nil)
	for person := range roleOf {
		for _, r := range rpcs() {
			t.Run(person+"/"+r.method, func(t *testing.T) {
				err := r.call(t.Context(), c.as(person))
				if !mayCall(r.method, person) {
					wantReason(t, err, codes.PermissionDenied, rasoatv1.ErrorReason_ROLE_DENIED)
					return
				}
				// Allowed through: whatever the method answers, the
				// interceptor did not refuse it (its refusals name the method).
				if _, meta := rpcerr.Info(err); meta["method"] != "" {
					t.Fatalf("refused by the interceptor: %v", err)
				}
				if status.Code(err) == codes.Unauthenticated {
					t.Fatalf("refused: %v", err)
				}
			})
		}
	}
}

// TestEveryServedMethodHasARule: a method the interceptor has no rule for
// is refused to everyone; every method served must have one (or be open).
func TestEveryServedMethodHasARule(t *testing.T) {
	c := newCommune(t, nil)
	for svc, info := range c.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			if !auth.Known(full) {
				t.Errorf("%s has no rule in auth.Methods: everyone is refused", full)
			}
		}
	}
}

func metadataCtx(ctx context.Context, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", value)
}

func deviceOf(t *testing.T, c *commune, person string) string {
	t.Helper()
	res, err := rasoatv1.NewAdminServiceClient(c.as("admin")).ListDevices(t.Context(), &rasoatv1.ListDevicesRequest{PersonId: person})
	if err != nil || len(res.GetDevices()) != 1 {
		t.Fatalf("devices of %s: %v, %v", person, res, err)
	}
	return res.GetDevices()[0].GetId()
}

// TestScopeAndRoleOnEveryChange: a push that writes outside the person's
// villages, forges another device's replica, or writes a field (or value)
// the role may not, is refused whole, naming the change and field, and
// the store is unchanged.
func TestScopeAndRoleOnEveryChange(t *testing.T) {
	c := newCommune(t, nil)
	ctx := t.Context()
	review := func(replica, village, status string) []*rasoatv1.Change {
		g := storetest.New(replica, village)
		hh := g.Household(0)
		// A review is started with its date written first.
		d := &rasoatv1.Change{
			EntityId: "0190f0c2-1111-7000-8000-0000000000aa", Kind: rasoatv1.EntityKind_ENTITY_KIND_REVIEW,
			HouseholdId: hh[0].GetEntityId(), VillageCode: village, Field: "reviewDate", Value: []byte(`"2025-10-05"`),
			Stamp: &rasoatv1.Stamp{Hlc: hh[len(hh)-1].GetStamp().GetHlc() + 1, ReplicaId: replica}, Seq: uint64(len(hh) + 1),
		}
		r := &rasoatv1.Change{
			EntityId: "0190f0c2-1111-7000-8000-0000000000aa", Kind: rasoatv1.EntityKind_ENTITY_KIND_REVIEW,
			HouseholdId: hh[0].GetEntityId(), VillageCode: village, Field: "status", Value: []byte(`"` + status + `"`),
			Stamp: &rasoatv1.Stamp{Hlc: hh[len(hh)-1].GetStamp().GetHlc() + 2, ReplicaId: replica}, Seq: uint64(len(hh) + 2),
		}
		return storetest.Must(append(hh, d, r))
	}
	good := storetest.Must(storetest.New("replica-col1", authtest.Village(1)).Household(2))
	mixed := append(slices.Clone(good), storetest.Must(storetest.New("replica-col1", authtest.Village(2)).Household(0))...)
	for i := range mixed { // one origin, one seq sequence
		mixed[i].Seq = uint64(i + 1)
	}
	for _, tc := range []struct {
		name    string
		person  string
		changes []*rasoatv1.Change
		reason  rasoatv1.ErrorReason
		field   string
	}{
		{"a collaborator writes another village", "col2", storetest.Must(storetest.New("replica-col2", authtest.Village(1)).Household(1)), rasoatv1.ErrorReason_OUT_OF_SCOPE, "changes[0].village_code"},
		{"one change of the batch outside the villages refuses the batch", "col1", mixed, rasoatv1.ErrorReason_OUT_OF_SCOPE, fmt.Sprintf("changes[%d].village_code", len(good))},
		{"a device writes under another device's replica", "col1", storetest.Must(storetest.New("replica-col2", authtest.Village(1)).Household(0)), rasoatv1.ErrorReason_REPLICA_NOT_BOUND, "changes[0].stamp.replica_id"},
		{"a device writes under a replica no one holds", "officer", storetest.Must(storetest.New("forged", authtest.Village(1)).Household(0)), rasoatv1.ErrorReason_REPLICA_NOT_BOUND, "changes[0].stamp.replica_id"},
		{"a village head writes a review's comment", "head1", review("replica-head1", authtest.Village(1), "draft")[:1], rasoatv1.ErrorReason_ROLE_DENIED, "changes[0].field"},
		{"a village head writes a household", "head1", storetest.Must(storetest.New("replica-head1", authtest.Village(1)).Household(0)), rasoatv1.ErrorReason_ROLE_DENIED, ""},
		{"a chair writes a household", "chair", storetest.Must(storetest.New("replica-chair", authtest.Village(1)).Household(0)), rasoatv1.ErrorReason_ROLE_DENIED, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := c.dump()
			_, err := rasoatv1.NewSyncServiceClient(c.as(tc.person)).Push(ctx, &rasoatv1.PushRequest{Changes: tc.changes})
			wantReason(t, err, codes.PermissionDenied, tc.reason)
			if tc.field != "" {
				vs := rpcerr.Violations(err)
				if len(vs) == 0 || !strings.HasSuffix(vs[0].Field, tc.field) {
					t.Errorf("violations %v; want the first naming %s", vs, tc.field)
				}
			}
			if c.dump() != before {
				t.Error("a refused push changed the store")
			}
		})
	}
	// And what is allowed goes through: the collaborator in their village,
	// starting a review; the officer starting one; the relay writing anyone's.
	for _, ok := range []struct {
		person  string
		changes []*rasoatv1.Change
	}{
		{"col1", good},
		{"officer", review("replica-officer", authtest.Village(3), "draft")},
		{"relay", storetest.Must(storetest.New("some-tablet-of-the-commune", authtest.Village(2)).Household(1))},
	} {
		if _, err := rasoatv1.NewSyncServiceClient(c.as(ok.person)).Push(ctx, &rasoatv1.PushRequest{Changes: ok.changes}); err != nil {
			t.Errorf("%s: %v", ok.person, err)
		}
	}
}

// villagesRead is the villages of everything a person's Pull and Snapshot
// return.
func villagesRead(t *testing.T, conn *grpc.ClientConn, want ...string) (pulled, snap []string, err error) {
	t.Helper()
	ctx := t.Context()
	p, err := rasoatv1.NewSyncServiceClient(conn).Pull(ctx, &rasoatv1.PullRequest{VillageCodes: want})
	if err != nil {
		return nil, nil, err
	}
	for {
		r, err := p.Recv()
		if err != nil {
			return nil, nil, err
		}
		for _, ch := range r.GetChanges() {
			pulled = append(pulled, ch.GetVillageCode())
		}
		if r.GetDone() {
			break
		}
	}
	s, err := rasoatv1.NewSyncServiceClient(conn).Snapshot(ctx, &rasoatv1.SnapshotRequest{VillageCodes: want})
	if err != nil {
		return nil, nil, err
	}
	for {
		r, err := s.Recv()
		if err != nil {
			return nil, nil, err
		}
		for _, e := range r.GetEntities() {
			snap = append(snap, e.GetVillageCode())
		}
		if r.GetDone() {
			break
		}
	}
	slices.Sort(pulled)
	slices.Sort(snap)
	return slices.Compact(pulled), slices.Compact(snap), nil
}

// TestReadsStayInScope: Pull and Snapshot give a collaborator their
// villages only, an officer the commune; naming another village is
// refused; a reassignment takes effect on the next call.
func TestReadsStayInScope(t *testing.T) {
	c := newCommune(t, nil)
	ctx := t.Context()
	for v := 1; v <= 3; v++ {
		hh := storetest.Must(storetest.New(fmt.Sprintf("tablet-%d", v), authtest.Village(v)).Household(1))
		if _, err := rasoatv1.NewSyncServiceClient(c.as("relay")).Push(ctx, &rasoatv1.PushRequest{Changes: hh}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(person string, want ...string) {
		t.Helper()
		pulled, snap, err := villagesRead(t, c.as(person))
		if err != nil {
			t.Fatalf("%s: %v", person, err)
		}
		if !slices.Equal(pulled, want) || !slices.Equal(snap, want) {
			t.Errorf("%s read villages %v (pull), %v (snapshot); want %v", person, pulled, snap, want)
		}
	}
	check("col1", authtest.Village(1))
	check("col2", authtest.Village(2))
	check("officer", authtest.Village(1), authtest.Village(2), authtest.Village(3))
	if _, _, err := villagesRead(t, c.as("col1"), authtest.Village(2)); status.Code(err) != codes.PermissionDenied || rpcerr.Reason(err) != rasoatv1.ErrorReason_OUT_OF_SCOPE {
		t.Errorf("col1 naming village 2: %v; want PermissionDenied OUT_OF_SCOPE", err)
	}
	// Reassign col1 to village 3: the next read follows.
	if _, err := rasoatv1.NewAdminServiceClient(c.as("admin")).PutPeople(ctx, &rasoatv1.PutPeopleRequest{People: []*rasoatv1.Person{
		{Id: "col1", Name: "Người col1", Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR}, UnitCodes: []string{authtest.Village(3)}},
	}}); err != nil {
		t.Fatal(err)
	}
	check("col1", authtest.Village(3))
}

// TestEnrolmentCodes: a code works once, expires, and dies after
// CodeAttempts wrong secrets; every failure reads the same.
func TestEnrolmentCodes(t *testing.T) {
	c := newCommune(t, auth.NewLimiter(time.Hour, 1000))
	ctx := t.Context()
	enrol := func(code, replica string) error {
		_, err := rasoatv1.NewEnrolServiceClient(c.conn("")).Enrol(ctx, &rasoatv1.EnrolRequest{Code: code, ReplicaId: replica})
		return err
	}
	code, err := authtest.Code(ctx, c.st, "col1")
	if err != nil {
		t.Fatal(err)
	}
	if err := enrol(strings.ToLower(strings.ReplaceAll(code, "-", " ")), "tab-x"); err != nil {
		t.Fatalf("code typed in lower case with spaces: %v", err)
	}
	wantReason(t, enrol(code, "tab-y"), codes.PermissionDenied, rasoatv1.ErrorReason_CODE_INVALID) // used

	code, _ = authtest.Code(ctx, c.st, "col1")
	wrong := code[:len(code)-1] + map[bool]string{true: "1", false: "2"}[code[len(code)-1] != '1']
	for range directory.CodeAttempts {
		wantReason(t, enrol(wrong, "tab-z"), codes.PermissionDenied, rasoatv1.ErrorReason_CODE_INVALID)
	}
	wantReason(t, enrol(code, "tab-z"), codes.PermissionDenied, rasoatv1.ErrorReason_CODE_INVALID) // out of attempts

	expired := auth.NewCode()
	if err := c.st.IssueCode(ctx, directory.Code{ID: expired.ID, Hash: expired.Hash, PersonID: "col1", ExpiresAt: time.Now().Add(-time.Second), Attempts: 5}); err != nil {
		t.Fatal(err)
	}
	wantReason(t, enrol(expired.Text, "tab-w"), codes.PermissionDenied, rasoatv1.ErrorReason_CODE_INVALID)

	// A replica id bound to another device cannot be enrolled again.
	code, _ = authtest.Code(ctx, c.st, "col1")
	wantReason(t, enrol(code, "replica-col2"), codes.FailedPrecondition, rasoatv1.ErrorReason_REPLICA_TAKEN)
}

// TestFailuresAreRateLimitedPerAddress: past the allowance, even a right
// code is refused until time passes.
func TestFailuresAreRateLimitedPerAddress(t *testing.T) {
	c := newCommune(t, auth.NewLimiter(time.Hour, 3))
	ctx := t.Context()
	for range 3 {
		_, err := rasoatv1.NewEnrolServiceClient(c.conn("")).Enrol(ctx, &rasoatv1.EnrolRequest{Code: "AAAA-BBBB-CCCC", ReplicaId: "tab-q"})
		wantReason(t, err, codes.PermissionDenied, rasoatv1.ErrorReason_CODE_INVALID)
	}
	code, _ := authtest.Code(ctx, c.st, "col1")
	_, err := rasoatv1.NewEnrolServiceClient(c.conn("")).Enrol(ctx, &rasoatv1.EnrolRequest{Code: code, ReplicaId: "tab-q"})
	wantReason(t, err, codes.ResourceExhausted, rasoatv1.ErrorReason_RATE_LIMITED)
	// Bad tokens count against the same address and are answered as
	// such; a valid token from it still gets through (tablets of a village
	// often share one address behind a carrier's NAT).
	_, err = rasoatv1.NewEnrolServiceClient(c.conn("rst1_nosuch.token")).WhoAmI(ctx, &rasoatv1.WhoAmIRequest{})
	wantReason(t, err, codes.ResourceExhausted, rasoatv1.ErrorReason_RATE_LIMITED)
	if _, err := rasoatv1.NewEnrolServiceClient(c.as("col1")).WhoAmI(ctx, &rasoatv1.WhoAmIRequest{}); err != nil {
		t.Errorf("a valid token from a blocked address: %v", err)
	}
}

// TestReEnrolledDeviceKeepsItsReplicasAndAuthors: a tablet handed to
// another collaborator enrols again with its old token; its earlier
// replica's changes still push, and the history names who wrote each and
// who sent it.
func TestReEnrolledDeviceKeepsItsReplicasAndAuthors(t *testing.T) {
	c := newCommune(t, nil)
	ctx := t.Context()
	// col1's tablet wrote a household in village 1 and did not sync. Then
	// it is handed to the officer (who may write every village).
	unsent := storetest.Must(storetest.New("replica-col1", authtest.Village(1)).Household(0))
	code, _ := authtest.Code(ctx, c.st, "officer")
	res, err := rasoatv1.NewEnrolServiceClient(c.conn("")).Enrol(ctx, &rasoatv1.EnrolRequest{
		Code: code, ReplicaId: "replica-col1-next", PriorReplicaIds: []string{"replica-col1"}, PreviousToken: c.tokens["col1"],
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.GetDevice().GetReplicaIds(); !slices.Contains(got, "replica-col1") || !slices.Contains(got, "replica-col1-next") {
		t.Fatalf("device replicas %v; want both", got)
	}
	if _, err := rasoatv1.NewEnrolServiceClient(c.as("col1")).WhoAmI(ctx, &rasoatv1.WhoAmIRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("the old token still works: %v", err)
	}
	conn := c.conn(res.GetToken())
	if _, err := rasoatv1.NewSyncServiceClient(conn).Push(ctx, &rasoatv1.PushRequest{ReplicaId: "replica-col1-next", Changes: unsent}); err != nil {
		t.Fatalf("the earlier replica's unsent changes: %v", err)
	}
	h, err := rasoatv1.NewHistoryServiceClient(conn).EntityHistory(ctx, &rasoatv1.EntityHistoryRequest{EntityId: unsent[0].GetEntityId()})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.GetEntries()) != len(unsent) {
		t.Fatalf("history has %d entries; want %d", len(h.GetEntries()), len(unsent))
	}
	for _, e := range h.GetEntries() {
		if e.GetAuthorPersonId() != "col1" || e.GetSenderPersonId() != "officer" || e.GetSenderDeviceId() != res.GetDevice().GetId() || e.GetReceivedAtUnix() == 0 {
			t.Fatalf("entry %v: want written by col1, sent by officer from the device", e)
		}
	}
	// col2 may not read the history of village 1.
	_, err = rasoatv1.NewHistoryServiceClient(c.as("col2")).EntityHistory(ctx, &rasoatv1.EntityHistoryRequest{EntityId: unsent[0].GetEntityId()})
	wantReason(t, err, codes.PermissionDenied, rasoatv1.ErrorReason_OUT_OF_SCOPE)
}
