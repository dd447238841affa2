package client

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// authServer is a real rasoatd server with authentication over a SQLite
// file: commune 06517 with villages 1 to 3, collaborators col1 (village 1),
// col2 (village 2) and an officer.
type authServer struct {
	db   *sqlite.DB
	conn *grpc.ClientConn // no token of its own: a tablet's Sync sends its own
}

func newAuthServer(t testing.TB) *authServer {
	t.Helper()
	srv := authtest.Serve(t, nil)
	if err := authtest.Seed(context.Background(), srv.Store, 3, authtest.Collaborator("col1", authtest.Village(1)),
		authtest.Collaborator("col2", authtest.Village(2)), authtest.Officer("officer")); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &authServer{db: srv.Store, conn: conn}
}

func (s *authServer) enrol(t testing.TB, c *Client, person string) Enrolment {
	t.Helper()
	code, err := authtest.Code(context.Background(), s.db, person)
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Enrol(context.Background(), s.conn, "test", code, "tablet of "+person)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSyncWithoutEnrolmentNamesTheReason(t *testing.T) {
	s := newAuthServer(t)
	c := tablet(t)
	if _, err := c.CreateHousehold(t.Context(), authtest.Village(1), fullHousehold(1)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Sync(t.Context(), s.conn)
	if rpcerr.Reason(err) != rasoatv1.ErrorReason_TOKEN_MISSING {
		t.Fatalf("sync of a file never enrolled: %v; want TOKEN_MISSING", err)
	}
	if _, err := c.Enrolled(t.Context()); !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("Enrolled = %v; want ErrNotEnrolled", err)
	}
}

// TestEnrolledTabletSyncsItsVillagesOnly: a fresh file keeps its replica
// id at its first enrolment; what it wrote before syncs; it reads its
// village only.
func TestEnrolledTabletSyncsItsVillagesOnly(t *testing.T) {
	s := newAuthServer(t)
	ctx := t.Context()
	a, b := tablet(t), tablet(t)
	before := a.ReplicaID()
	e := s.enrol(t, a, "col1")
	if a.ReplicaID() != before || e.PersonID != "col1" || !slices.Equal(e.Villages, []string{authtest.Village(1)}) {
		t.Fatalf("enrolment %+v, replica %s (was %s)", e, a.ReplicaID(), before)
	}
	s.enrol(t, b, "col2")
	if _, err := a.CreateHousehold(ctx, authtest.Village(1), fullHousehold(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateHousehold(ctx, authtest.Village(2), fullHousehold(2)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{a, b, a, b} {
		if _, err := c.Sync(ctx, s.conn); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		c       *Client
		village string
	}{{a, authtest.Village(1)}, {b, authtest.Village(2)}} {
		var villages []string
		if err := tc.c.Households(ctx, "", func(id string) error {
			h, err := tc.c.Household(ctx, id)
			villages = append(villages, h.GetVillageCode())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(villages) != 1 || villages[0] != tc.village {
			t.Errorf("tablet of %s holds households of %v; want one of %s", tc.village, villages, tc.village)
		}
	}
}

// TestReEnrolledTabletKeepsItsUnsentChanges: a tablet handed to another
// collaborator enrols again; it moves to a fresh replica id, and what the
// first collaborator wrote and never synced still syncs, attributed to
// them.
func TestReEnrolledTabletKeepsItsUnsentChanges(t *testing.T) {
	s := newAuthServer(t)
	ctx := t.Context()
	c := tablet(t)
	s.enrol(t, c, "col1")
	id, err := c.CreateHousehold(ctx, authtest.Village(1), fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	old := c.ReplicaID()
	s.enrol(t, c, "officer")
	if c.ReplicaID() == old {
		t.Fatal("re-enrolment kept the replica id: the officer's writes would be col1's")
	}
	if err := c.SetField(ctx, id, "headName", []byte(`"Đinh Văn Tú"`)); err != nil {
		t.Fatal(err)
	}
	st, err := c.Sync(ctx, s.conn)
	if err != nil || st.Refused != 0 {
		t.Fatalf("sync after re-enrolment: %+v, %v", st, err)
	}
	if n, _ := c.Pending(ctx); n != 0 {
		t.Fatalf("%d changes still pending", n)
	}
	h, _, err := s.db.History(ctx, id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	authors := map[string]int{}
	for _, e := range h {
		authors[e.AuthorPerson]++
		if e.SenderPerson != "officer" {
			t.Errorf("change %d sent by %q; want officer", e.ServerSeq, e.SenderPerson)
		}
	}
	if authors["officer"] != 1 || authors["col1"] != len(h)-1 {
		t.Errorf("authors %v; want col1 for the household and officer for the one edit", authors)
	}
}

// TestFileOfSchemaV2OpensAndEnrols: a file written by schema version 2,
// with a replica id it retired, migrates; its retired id is offered at
// enrolment and its changes sync.
func TestFileOfSchemaV2OpensAndEnrols(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v2.db")
	copyFile(t, filepath.Join("testdata", "v2.db"), path)
	c := open(t, path)
	if c.ReplicaID() != "0190f0c2-2222-7000-8000-0000000000aa" {
		t.Fatalf("replica %s", c.ReplicaID())
	}
	if l, err := c.lineage(ctx); err != nil || len(l) != 0 {
		t.Errorf("lineage of a file that recorded no successor: %v, %v", l, err)
	}
	s := newAuthServer(t)
	s.enrol(t, c, "col1")
	devs, err := s.db.Devices(ctx, "col1")
	if err != nil || len(devs) != 1 {
		t.Fatal(devs, err)
	}
	for _, r := range []string{"0190f0c2-2222-7000-8000-0000000000aa", "0190f0c2-2222-7000-8000-0000000000a0", c.ReplicaID()} {
		if !slices.Contains(devs[0].Replicas, r) {
			t.Errorf("device replicas %v lack %s", devs[0].Replicas, r)
		}
	}
	if _, err := c.Sync(ctx, s.conn); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Pending(ctx); n != 0 {
		t.Errorf("%d changes pending after sync", n)
	}
}

// TestRestoredEnrolledTabletProvesItsSuccessorID: a tablet restored from
// an older copy of its file moves to a successor replica id; the server,
// which takes replicas from the token, accepts the new id because the push
// shows it descends from the device's own.
func TestRestoredEnrolledTabletProvesItsSuccessorID(t *testing.T) {
	ctx := t.Context()
	s := newAuthServer(t)
	dir := t.TempDir()
	path, backup := filepath.Join(dir, "tablet.db"), filepath.Join(dir, "backup.db")
	a := open(t, path)
	s.enrol(t, a, "col1")
	id, err := a.CreateHousehold(ctx, authtest.Village(1), fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sync(ctx, s.conn); err != nil {
		t.Fatal(err)
	}
	a.Close()
	restoreFile(t, path, backup)
	a = open(t, path)
	if err := a.SetField(ctx, id, "headName", []byte(`"Written after the backup"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sync(ctx, s.conn); err != nil {
		t.Fatal(err)
	}
	a.Close()
	restoreFile(t, backup, path)
	a = open(t, path)
	if err := a.SetField(ctx, id, "address", []byte(`"Written after the restore"`)); err != nil {
		t.Fatal(err)
	}
	st, err := a.Sync(ctx, s.conn)
	if err != nil || st.Reissued != 1 || st.Refused != 0 {
		t.Fatalf("sync after the restore: %+v, %v; want 1 change issued again, none refused", st, err)
	}
	devs, err := s.db.Devices(ctx, "col1")
	if err != nil || len(devs) != 1 || !slices.Contains(devs[0].Replicas, a.ReplicaID()) {
		t.Fatalf("device %v, %v; want the successor %s bound", devs, err, a.ReplicaID())
	}
}
