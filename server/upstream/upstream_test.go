package upstream_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/rasoat/rasoat/client"
	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/sqlitedb"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/upstream"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// tiers is a province and a commune server, in process, each with its own
// SQLite file and authentication on, and the commune enrolled with the
// province as a person with role COMMUNE_SERVER.
type tiers struct {
	province, commune *authtest.Server
	provConn          *grpc.ClientConn
}

func newTiers(t *testing.T, provinceVillages, communeVillages int) *tiers {
	t.Helper()
	ctx := context.Background()
	tr := &tiers{province: authtest.Serve(t, nil), commune: authtest.Serve(t, nil)}
	if _, _, err := tr.province.Store.PutUnits(ctx, authtest.Units(provinceVillages), authtest.Province); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.province.Store.PutPeople(ctx, []directory.Person{
		authtest.Person("xa-quan-son", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_SERVER}, authtest.Commune),
		authtest.Person("so-ld", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}, authtest.Province),
	}); err != nil {
		t.Fatal(err)
	}
	villages := make([]string, communeVillages)
	for i := range villages {
		villages[i] = authtest.Village(i + 1)
	}
	if err := authtest.Seed(ctx, tr.commune.Store, communeVillages, authtest.Collaborator("hoa", villages...)); err != nil {
		t.Fatal(err)
	}
	tr.provConn = dial(t, tr.province.Addr)
	code, err := authtest.Code(ctx, tr.province.Store, "xa-quan-son")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := upstream.Enrol(ctx, tr.commune.Store, tr.provConn, tr.province.Addr, code, "commune"); err != nil {
		t.Fatal(err)
	}
	return tr
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := upstream.Dial(addr, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// run starts the commune's link to addr until the test ends.
func (tr *tiers) run(t *testing.T, addr string) *upstream.Link {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, err := upstream.LoadEnrolment(ctx, tr.commune.Store)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := upstream.Dial(addr, "", false, e.Token)
	if err != nil {
		t.Fatal(err)
	}
	l, err := upstream.New(ctx, upstream.Config{Store: tr.commune.Store, Conn: conn, Upstream: addr, Every: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, RetryAside: 100 * time.Millisecond, PushBatch: 7})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; conn.Close() })
	return l
}

// tablet is a tablet file enrolled with srv for person.
func tablet(t *testing.T, srv *authtest.Server, conn *grpc.ClientConn, person string) *client.Client {
	c, _ := tabletAt(t, srv, conn, person)
	return c
}

func tabletAt(t *testing.T, srv *authtest.Server, conn *grpc.ClientConn, person string) (*client.Client, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), person+".db")
	c, err := client.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	code, err := authtest.Code(ctx, srv.Store, person)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enrol(ctx, conn, srv.Addr, code, "tablet "+person); err != nil {
		t.Fatal(err)
	}
	return c, path
}

func household(i int) *rasoatv1.Household {
	b := func(v bool) *bool { return &v }
	return &rasoatv1.Household{
		Area: rasoatv1.Area_AREA_RURAL, HeadName: fmt.Sprintf("Hoàng Văn Sáng %d", i), ReviewDate: "2025-10-20",
		Members: []*rasoatv1.Member{{FullName: fmt.Sprintf("Hoàng Văn Sáng %d", i), Sex: rasoatv1.Sex_SEX_MALE, BirthDate: "1979-04-02",
			Relation: rasoatv1.Relation_RELATION_HEAD, HasHealthInsurance: b(true)}},
		Housing: &rasoatv1.Housing{FloorAreaM2: proto.Float64(14.5)},
	}
}

// states are a store's entity states by id.
func states(t *testing.T, st interface {
	Snapshot(context.Context, store.SnapshotQuery, func(store.Position, *rasoatv1.EntityState) error) (store.Position, error)
}) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if _, err := st.Snapshot(context.Background(), store.SnapshotQuery{Villages: store.AllVillages()}, func(_ store.Position, e *rasoatv1.EntityState) error {
		out[e.GetEntityId()] = e.GetState()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// tabletStates reads a tablet file's entity states, as the robustness
// checker does.
func tabletStates(t *testing.T, path string) map[string][]byte {
	t.Helper()
	db, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(path, sqlitedb.Options{ReadOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT id, state FROM entities")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var id string
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			t.Fatal(err)
		}
		out[id] = b
	}
	return out
}

func diff(a, b map[string][]byte) string {
	var ids []string
	for id, x := range a {
		if !bytes.Equal(x, b[id]) {
			ids = append(ids, id)
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return ""
	}
	return fmt.Sprintf("%d entities differ, first %s", len(ids), ids[0])
}

// eventually polls cond for up to 20 s.
func eventually(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// onceEach fails unless every (origin, seq) is in the store's log once.
func onceEach(t *testing.T, name string, st interface {
	Pull(context.Context, store.Villages, store.Position, int, func(*rasoatv1.Change, store.Position) error) (store.Position, bool, error)
}) int {
	t.Helper()
	seen := map[string]int{}
	pos := store.Position{}
	for {
		next, more, err := st.Pull(context.Background(), store.AllVillages(), pos, 1000, func(c *rasoatv1.Change, _ store.Position) error {
			seen[fmt.Sprintf("%s#%d", c.GetStamp().GetReplicaId(), c.GetSeq())]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		pos = next
		if !more {
			break
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s log holds %s %d times", name, k, n)
		}
	}
	return len(seen)
}

// TestTabletToProvinceAndCorrectionBack: a tablet's household reaches the
// province through its commune as the same changes; a province officer's
// correction comes back to the commune and to the tablet; all hold the
// same bytes, and every change is in each log once.
func TestTabletToProvinceAndCorrectionBack(t *testing.T) {
	ctx := context.Background()
	tr := newTiers(t, 3, 3)
	communeConn := dial(t, tr.commune.Addr)
	tab, tabFile := tabletAt(t, tr.commune, communeConn, "hoa")
	var ids []string
	for i := range 3 {
		id, err := tab.CreateHousehold(ctx, authtest.Village(1+i%2), household(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := tab.Sync(ctx, communeConn); err != nil {
		t.Fatal(err)
	}
	link := tr.run(t, tr.province.Addr)
	eventually(t, "the province holds the commune's states", func() string {
		return diff(states(t, tr.commune.Store), states(t, tr.province.Store))
	})

	officer, officerFile := tabletAt(t, tr.province, tr.provConn, "so-ld")
	if _, err := officer.Sync(ctx, tr.provConn); err != nil {
		t.Fatal(err)
	}
	if err := officer.SetField(ctx, ids[0], "headName", []byte(`"Hoàng Văn Sáng (sửa)"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := officer.Sync(ctx, tr.provConn); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the commune holds the province's correction", func() string {
		return diff(states(t, tr.province.Store), states(t, tr.commune.Store))
	})
	if _, err := tab.Sync(ctx, communeConn); err != nil {
		t.Fatal(err)
	}
	h, err := tab.Household(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if h.GetHeadName() != "Hoàng Văn Sáng (sửa)" {
		t.Errorf("the tablet's household head is %q, want the province's correction", h.GetHeadName())
	}
	// The tablet writes over the correction: its base names the
	// province's change, which the province holds.
	if err := tab.SetField(ctx, ids[0], "housing.floorAreaM2", []byte(`20`)); err != nil {
		t.Fatal(err)
	}
	if err := tab.SetField(ctx, ids[0], "headName", []byte(`"Hoàng Văn Sáng"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Sync(ctx, communeConn); err != nil {
		t.Fatal(err)
	}
	link.Kick()
	eventually(t, "the province holds the tablet's write over the correction", func() string {
		return diff(states(t, tr.commune.Store), states(t, tr.province.Store))
	})
	if _, err := officer.Sync(ctx, tr.provConn); err != nil {
		t.Fatal(err)
	}
	want := states(t, tr.province.Store)
	if d := diff(want, tabletStates(t, tabFile)); d != "" {
		t.Errorf("tablet and province differ: %s", d)
	}
	if d := diff(want, tabletStates(t, officerFile)); d != "" {
		t.Errorf("officer's tablet and province differ: %s", d)
	}
	np, nc := onceEach(t, "province", tr.province.Store), onceEach(t, "commune", tr.commune.Store)
	if np != nc {
		t.Errorf("the province's log holds %d changes, the commune's %d", np, nc)
	}
	eventually(t, "the link says in-sync", func() string {
		if s := link.Status(); s.State != upstream.StateInSync || s.SetAside != 0 {
			return fmt.Sprintf("%+v", s)
		}
		return ""
	})
}

// TestRefusedChangeSetAsideThenRetried: the province does not know one of
// the commune's villages, so it refuses that village's changes; they are
// set aside with the reason, visible in the status, and the rest syncs;
// once the province's admin adds the village they go through.
func TestRefusedChangeSetAsideThenRetried(t *testing.T) {
	ctx := context.Background()
	tr := newTiers(t, 2, 3)
	communeConn := dial(t, tr.commune.Addr)
	tab := tablet(t, tr.commune, communeConn, "hoa")
	for i := range 4 {
		if _, err := tab.CreateHousehold(ctx, authtest.Village(1+i%3), household(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tab.Sync(ctx, communeConn); err != nil {
		t.Fatal(err)
	}
	link := tr.run(t, tr.province.Addr)
	eventually(t, "village 3's changes set aside", func() string {
		s := link.Status()
		if s.SetAside == 0 || s.State != upstream.StateInSync {
			return fmt.Sprintf("%+v", s)
		}
		return ""
	})
	st, aside, err := upstream.ReadStatus(ctx, tr.commune.Store, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(aside) != st.SetAside || len(aside) == 0 {
		t.Fatalf("status lists %d set aside, counts %d", len(aside), st.SetAside)
	}
	for _, a := range aside {
		if a.Reason != rasoatv1.ErrorReason_OUT_OF_SCOPE.String() || a.Dir != "push" {
			t.Errorf("set aside %+v, want OUT_OF_SCOPE on push", a)
		}
	}
	// Villages 1 and 2 reached the province whole.
	prov, comm := states(t, tr.province.Store), states(t, tr.commune.Store)
	if len(prov) == 0 || len(prov) >= len(comm) {
		t.Fatalf("province holds %d entities, commune %d: want the two villages the province knows", len(prov), len(comm))
	}
	if _, _, err := tr.province.Store.PutUnits(ctx, authtest.Units(3), ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the set-aside changes retried", func() string {
		if s := link.Status(); s.SetAside != 0 {
			return fmt.Sprintf("%+v", s)
		}
		return diff(states(t, tr.commune.Store), states(t, tr.province.Store))
	})
	onceEach(t, "province", tr.province.Store)
}

// TestProvinceLogChangedResyncs: the commune is moved to another province
// server (a new log): its pull cursor names the old log, so it pulls the
// new one from its start and pushes its whole log again; the new province
// ends with everything.
func TestProvinceLogChangedResyncs(t *testing.T) {
	ctx := context.Background()
	tr := newTiers(t, 3, 3)
	communeConn := dial(t, tr.commune.Addr)
	tab := tablet(t, tr.commune, communeConn, "hoa")
	for i := range 3 {
		if _, err := tab.CreateHousehold(ctx, authtest.Village(1+i%3), household(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tab.Sync(ctx, communeConn); err != nil {
		t.Fatal(err)
	}
	ctxA, stopA := context.WithCancel(ctx)
	e, _ := upstream.LoadEnrolment(ctx, tr.commune.Store)
	connA, _ := upstream.Dial(tr.province.Addr, "", false, e.Token)
	la, err := upstream.New(ctx, upstream.Config{Store: tr.commune.Store, Conn: connA, Every: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	doneA := make(chan struct{})
	go func() { defer close(doneA); la.Run(ctxA) }()
	eventually(t, "province A in sync", func() string {
		if s := la.Status(); s.State != upstream.StateInSync || s.PullLogID == "" {
			return fmt.Sprintf("%+v", s)
		}
		return diff(states(t, tr.commune.Store), states(t, tr.province.Store))
	})
	stopA()
	<-doneA
	connA.Close()

	// Province B: same units and people, another log.
	b := newTiers(t, 3, 0).province
	code, err := authtest.Code(ctx, b.Store, "xa-quan-son")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := upstream.Enrol(ctx, tr.commune.Store, dial(t, b.Addr), b.Addr, code, "commune"); err != nil {
		t.Fatal(err)
	}
	lb := tr.run(t, b.Addr)
	eventually(t, "province B holds the commune's states", func() string {
		if s := lb.Status(); s.State != upstream.StateInSync || s.Resyncs != 1 || s.PullLogID != b.Store.LogID() {
			return fmt.Sprintf("%+v", s)
		}
		return diff(states(t, tr.commune.Store), states(t, b.Store))
	})
	onceEach(t, "province B", b.Store)
	onceEach(t, "commune", tr.commune.Store)
}
