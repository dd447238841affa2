package systemtest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rasoat/rasoat/client"
	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/pgtest"
	"github.com/rasoat/rasoat/internal/sqlitedb"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// cutProxy forwards TCP connections to a target until cut: a cut closes
// every connection it carries and refuses new ones until restored, as a
// commune's link to its province does when the line drops. With cutAfter
// set it cuts by itself once that many bytes went upstream, so the cut
// falls in the middle of a sync.
type cutProxy struct {
	lis      net.Listener
	target   string
	cutAfter atomic.Int64 // bytes upstream before a cut by itself; 0: never
	sent     atomic.Int64
	mu       sync.Mutex
	cut      bool
	conns    map[net.Conn]bool
	cuts     chan struct{} // one per cut
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{lis: lis, target: target, conns: map[net.Conn]bool{}, cuts: make(chan struct{}, 16)}
	go p.serve()
	t.Cleanup(func() { lis.Close(); p.setCut(true) })
	return p
}

func (p *cutProxy) addr() string { return p.lis.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go p.pipe(up, c, true)
		go p.pipe(c, up, false)
	}
}

func (p *cutProxy) pipe(dst, src net.Conn, upstream bool) {
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
			if upstream {
				if lim := p.cutAfter.Load(); lim > 0 && p.sent.Add(int64(n)) >= lim {
					p.cutAfter.Store(0)
					p.setCut(true)
				}
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// setCut cuts (closing every connection) or restores the link.
func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cut && !p.cut {
		select {
		case p.cuts <- struct{}{}:
		default:
		}
	}
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

// setupProvince makes a province on a running rasoatd: the admin, the
// units (the province, the test commune and villages of it) served from
// the province, and the people.
func (p *proc) setupProvince(t testing.TB, villages int, people ...*rasoatv1.Person) {
	t.Helper()
	out, err := exec.Command(rasoatd, "bootstrap", "--db", p.db).Output()
	if err != nil {
		t.Fatalf("rasoatd bootstrap: %v", err)
	}
	res, err := rasoatv1.NewEnrolServiceClient(dial(t, p.addr)).Enrol(context.Background(), &rasoatv1.EnrolRequest{Code: strings.TrimSpace(string(out)), ReplicaId: "province-admin", DeviceName: "admin"})
	if err != nil {
		t.Fatalf("enrol the province admin: %v", err)
	}
	p.adminToken = res.GetToken()
	p.admin = rasoatv1.NewAdminServiceClient(dialAs(t, p.addr, p.adminToken))
	if _, err := p.admin.PutUnits(context.Background(), &rasoatv1.PutUnitsRequest{Units: authtest.Units(villages), ServedUnitCode: authtest.Province}); err != nil {
		t.Fatalf("put units: %v", err)
	}
	if _, err := p.admin.PutPeople(context.Background(), &rasoatv1.PutPeopleRequest{People: people}); err != nil {
		t.Fatalf("put people: %v", err)
	}
}

// snapshotStates reads every entity state a token may read over the
// server's Snapshot.
func snapshotStates(t *testing.T, addr, token string) map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := rasoatv1.NewSyncServiceClient(dialAs(t, addr, token)).Snapshot(ctx, &rasoatv1.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for {
		res, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("snapshot %s: %v", addr, err)
		}
		for _, e := range res.GetEntities() {
			out[e.GetEntityId()] = e.GetState()
		}
	}
}

// logOnce pulls a server's whole log over Pull and fails unless each
// (origin, seq) is in it once; it returns the set.
func logOnce(t *testing.T, name, addr, token string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := rasoatv1.NewSyncServiceClient(dialAs(t, addr, token)).Pull(ctx, &rasoatv1.PullRequest{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for {
		res, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return seen
		}
		if err != nil {
			t.Fatalf("pull %s: %v", name, err)
		}
		for _, c := range res.GetChanges() {
			k := fmt.Sprintf("%s#%d", c.GetStamp().GetReplicaId(), c.GetSeq())
			if seen[k] {
				t.Errorf("%s's log holds %s twice", name, k)
			}
			seen[k] = true
		}
	}
}

// tabletAt is enrolledTablet, also saying where the file is.
func tabletAt(t *testing.T, p *proc, name, person string) (*client.Client, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".db")
	rasoatCLI(t, "enrol", "--db", path, "--server", p.addr, "--code", p.code(t, person), "--name", "tablet "+name)
	c, err := client.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

func fileStates(t *testing.T, path string) map[string][]byte {
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

func statesDiff(a, b map[string][]byte) string {
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
	if len(ids) == 0 {
		return ""
	}
	sort.Strings(ids)
	return fmt.Sprintf("%d of %d/%d entities differ, first %s", len(ids), len(a), len(b), ids[0])
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, limit, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// upstreamStatus runs rasoatd upstream status --json on a commune's file.
func upstreamStatus(t *testing.T, db string) (state string, setAside int, raw string) {
	t.Helper()
	out, err := exec.Command(rasoatd, "upstream", "status", "--json", "--db", db).Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		t.Fatalf("rasoatd upstream status: %v", err)
	}
	var s struct {
		State    string `json:"state"`
		SetAside int    `json:"set_aside"`
	}
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("rasoatd upstream status: %v: %s", err, out)
	}
	return s.State, s.SetAside, string(out)
}

// threeTiers is a province rasoatd and a commune rasoatd syncing up to it
// with --upstream through a link the test may cut, each set up with its
// units and people, and a reader's token on each (an officer of the
// commune, one of the province) to compare what they hold.
type threeTiers struct {
	province, commune             *proc
	communeDB                     string
	link                          *cutProxy
	communeReader, provinceReader string
}

// startThreeTiers starts a province over provDB and a commune over
// communeDB (a SQLite path or a PostgreSQL URL each), the commune enrolled
// with the province as its COMMUNE_SERVER and run with the --upstream
// flags extra.
func startThreeTiers(t *testing.T, provDB, communeDB string, extra ...string) *threeTiers {
	t.Helper()
	tr := &threeTiers{communeDB: communeDB}
	tr.province = startServer(t, provDB)
	tr.province.setupProvince(t, 3,
		&rasoatv1.Person{Id: "xa-quan-son", Name: "rasoatd xã Quan Sơn", Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_SERVER}, UnitCodes: []string{authtest.Commune}},
		&rasoatv1.Person{Id: "so-ld", Name: "Sở", Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}, UnitCodes: []string{authtest.Province}})
	tr.link = newCutProxy(t, tr.province.addr)
	out, err := exec.Command(rasoatd, "upstream", "enrol", "--db", communeDB, "--upstream", tr.link.addr(), "--code", tr.province.code(t, "xa-quan-son")).CombinedOutput()
	if err != nil {
		t.Fatalf("rasoatd upstream enrol: %v\n%s", err, out)
	}
	tr.commune = startServer(t, communeDB, append([]string{"--upstream", tr.link.addr()}, extra...)...)
	tr.commune.setup(t, 3, collaborator("hoa", authtest.Village(1), authtest.Village(2), authtest.Village(3)), officer("can"))
	tr.communeReader = tr.commune.enrol(t, "can", "can-laptop")
	tr.provinceReader = tr.province.enrol(t, "so-ld", "so-ld-laptop")
	return tr
}

// TestThreeTiersConverge runs a province (PostgreSQL when
// RASOAT_TEST_POSTGRES is set, SQLite otherwise), a commune syncing up to
// it with --upstream through a link this test cuts in the middle of a
// sync, and a tablet through the client library. The tablet's offline
// work reaches the province; a province officer's correction reaches the
// tablet; all three hold the same bytes, each change once in each log.
// The commune runs on SQLite (a commune server's embedded default) and,
// with RASOAT_TEST_POSTGRES, again on a database of its own in the same
// PostgreSQL cluster as the province's.
func TestThreeTiersConverge(t *testing.T) {
	for _, commune := range []string{"sqlite", "postgres"} {
		t.Run("commune on "+commune, func(t *testing.T) {
			dir := t.TempDir()
			provDB := filepath.Join(dir, "province.db")
			if pgtest.Available() {
				provDB = pgtest.URL(t)
				t.Log("province on PostgreSQL (RASOAT_TEST_POSTGRES)")
			} else {
				t.Log("province on SQLite: RASOAT_TEST_POSTGRES is not set")
			}
			communeDB := filepath.Join(dir, "commune.db")
			if commune == "postgres" {
				communeDB = pgtest.URL(t) // skips without RASOAT_TEST_POSTGRES
			}
			threeTiersConverge(t, startThreeTiers(t, provDB, communeDB,
				"--upstream-every", "100ms", "--upstream-max-backoff", "1s", "--upstream-batch", "50"))
		})
	}
}

func threeTiersConverge(t *testing.T, tr *threeTiers) {
	ctx := context.Background()
	province, commune, link, communeDB := tr.province, tr.commune, tr.link, tr.communeDB
	communeReader, provinceReader := tr.communeReader, tr.provinceReader

	// The tablet writes offline, then syncs with its commune.
	tab, tabFile := tabletAt(t, commune, "hoa", "hoa")
	var ids []string
	for i := range 40 {
		id, err := tab.CreateHousehold(ctx, authtest.Village(1+i%3), household(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// Cut the link once a few batches went up.
	link.cutAfter.Store(40 << 10)
	communeConn := dial(t, commune.addr)
	syncOK(t, tab, communeConn)
	select {
	case <-link.cuts:
	case <-time.After(30 * time.Second):
		t.Fatal("the link was not cut: the commune pushed less than 40 KB")
	}
	waitFor(t, "the commune says its link is down", 20*time.Second, func() string {
		if state, _, raw := upstreamStatus(t, communeDB); state != "down" {
			return raw
		}
		return ""
	})
	if d := statesDiff(snapshotStates(t, commune.addr, communeReader), snapshotStates(t, province.addr, provinceReader)); d == "" {
		t.Fatal("the province holds everything although the link was cut mid-sync: make the cut earlier")
	}
	link.setCut(false)
	waitFor(t, "the province holds the commune's states", 60*time.Second, func() string {
		return statesDiff(snapshotStates(t, commune.addr, communeReader), snapshotStates(t, province.addr, provinceReader))
	})

	// A province officer corrects a household on their own tablet.
	off, offFile := tabletAt(t, province, "so-ld", "so-ld")
	provConn := dial(t, province.addr)
	syncOK(t, off, provConn)
	if err := off.SetField(ctx, ids[7], "headName", []byte(`"Hoàng Văn Sáng (Sở sửa)"`)); err != nil {
		t.Fatal(err)
	}
	syncOK(t, off, provConn)
	waitFor(t, "the commune holds the correction", 30*time.Second, func() string {
		return statesDiff(snapshotStates(t, province.addr, provinceReader), snapshotStates(t, commune.addr, communeReader))
	})
	syncOK(t, tab, communeConn)
	h, err := tab.Household(ctx, ids[7])
	if err != nil {
		t.Fatal(err)
	}
	if h.GetHeadName() != "Hoàng Văn Sáng (Sở sửa)" {
		t.Errorf("the tablet's household head is %q, want the province officer's correction", h.GetHeadName())
	}
	syncOK(t, off, provConn)

	// The province sets its posting period; the commune's link brings it
	// down and the tablet reads it after its next sync, the province named
	// as its setter.
	if _, err := rasoatv1.NewProcedureServiceClient(dialAs(t, province.addr, provinceReader)).SetProcedure(ctx, &rasoatv1.SetProcedureRequest{UnitCode: authtest.Province,
		Settings: &rasoatv1.ProcedureSettings{Periods: []*rasoatv1.ProcedurePeriod{{Id: "posting", Days: 10, WorkingDays: true, Source: "Quyết định của UBND tỉnh (thử)"}}}}); err != nil {
		t.Fatalf("the province officer sets the posting period: %v", err)
	}
	waitFor(t, "the tablet reads the province's posting period", 30*time.Second, func() string {
		syncOK(t, tab, communeConn)
		s, err := tab.Procedure(ctx, authtest.Village(1))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.GetPeriods()) != 1 || s.GetPeriods()[0].GetSetBy() != authtest.Province || s.GetPeriods()[0].GetDays() != 10 {
			return fmt.Sprintf("settings at the village: %v", s)
		}
		return ""
	})

	prov := snapshotStates(t, province.addr, provinceReader)
	for name, got := range map[string]map[string][]byte{
		"commune":          snapshotStates(t, commune.addr, communeReader),
		"tablet":           fileStates(t, tabFile),
		"officer's tablet": fileStates(t, offFile),
	} {
		if d := statesDiff(prov, got); d != "" {
			t.Errorf("%s and province differ: %s", name, d)
		}
	}
	pl, cl := logOnce(t, "province", province.addr, provinceReader), logOnce(t, "commune", commune.addr, communeReader)
	if len(pl) != len(cl) {
		t.Errorf("the province's log holds %d changes, the commune's %d", len(pl), len(cl))
	}
	for k := range cl {
		if !pl[k] {
			t.Errorf("the province lacks %s", k)
			break
		}
	}
	waitFor(t, "rasoatd upstream status says in-sync", 10*time.Second, func() string {
		if state, aside, raw := upstreamStatus(t, communeDB); state != "in-sync" || aside != 0 {
			return raw
		}
		return ""
	})
	t.Logf("%d entities, %d changes in each log", len(prov), len(pl))
	text, err := exec.Command(rasoatd, "upstream", "status", "--db", communeDB).Output()
	if err != nil || !strings.Contains(string(text), "in-sync") {
		t.Errorf("rasoatd upstream status: %v\n%s", err, text)
	}
	t.Logf("rasoatd upstream status:\n%s", text)
}

// TestPushWakesTheUpstreamLink: a commune whose link looks for new work
// only every minute sends a tablet's push up at once, because the push it
// acknowledged wakes the link (syncsvc.WithOnStored → upstream.Link.Kick).
// Each write is a separate push after the link is back in sync, so every
// one of them needs its own wake.
func TestPushWakesTheUpstreamLink(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tr := startThreeTiers(t, filepath.Join(dir, "province.db"), filepath.Join(dir, "commune.db"), "--upstream-every", "1m")
	waitFor(t, "the link's first pass", 20*time.Second, func() string {
		if state, _, raw := upstreamStatus(t, tr.communeDB); state != "in-sync" {
			return raw
		}
		return ""
	})
	tab, _ := tabletAt(t, tr.commune, "hoa", "hoa")
	conn := dial(t, tr.commune.addr)
	var took []time.Duration
	for i := range 3 {
		id, err := tab.CreateHousehold(ctx, authtest.Village(1+i), household(i))
		if err != nil {
			t.Fatal(err)
		}
		syncOK(t, tab, conn)
		start := time.Now()
		// Far under the minute the link would otherwise wait.
		waitFor(t, "the province holds the tablet's household", 10*time.Second, func() string {
			if _, ok := snapshotStates(t, tr.province.addr, tr.provinceReader)[id]; !ok {
				return "not yet"
			}
			return ""
		})
		took = append(took, time.Since(start).Round(time.Millisecond))
		waitFor(t, "the link back in sync", 10*time.Second, func() string {
			if state, _, raw := upstreamStatus(t, tr.communeDB); state != "in-sync" {
				return raw
			}
			return ""
		})
	}
	t.Logf("acknowledged by the commune → held by the province, with --upstream-every 1m: %v", took)
}
