package robustness

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/client"
	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	rserver "github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/syncsvc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
)

// The default seed budget keeps the package's run (under -race in CI)
// within a couple of minutes; with the store's directory cache,
// authentication costs the world little, so it stays at 20 seeds. Wider
// sweeps pass -robustness.seeds.
var (
	flagSeeds = flag.Int("robustness.seeds", 20, "TestConvergence runs seeds 1..N")
	flagSeed  = flag.Uint64("robustness.seed", 0, "TestConvergence replays only this seed")
	flagOps   = flag.Int("robustness.ops", 120, "random operations per seed")
	flagWild  = flag.Bool("robustness.wildclocks", false, "sometimes set a tablet clock beyond the 24h drift bound, then correct it (exercises re-stamping)")
)

// TestConvergence drives a real server and tablets with random writes and
// sync faults, then checks the model (see the package doc).
func TestConvergence(t *testing.T) {
	var seeds []uint64
	switch {
	case *flagSeed != 0:
		seeds = []uint64{*flagSeed}
	case testing.Short():
		seeds = []uint64{1, 2}
	default:
		for s := range *flagSeeds {
			seeds = append(seeds, uint64(s)+1)
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runSeed(t, seed, *flagOps, *flagWild)
		})
	}
}

// foundSeeds are runs TestConvergence once failed, with the settings that
// found them (the seed budget of a plain run does not reach them), and the
// test that reduces each to its few steps. A change to the world changes
// what a seed runs (156 was found before the world ran with
// authentication), so the reduced test is what pins each failure.
var foundSeeds = []struct {
	seed uint64
	ops  int
	wild bool
	see  string
}{
	{156, 120, true, "TestRestoredFileRestampCollides"},
	{161, 120, true, "TestRestoredFileWritesTheSameValueAgain"}, // and seed 160 without wild clocks
}

// TestConvergenceFoundSeeds replays foundSeeds.
func TestConvergenceFoundSeeds(t *testing.T) {
	if testing.Short() || *flagSeed != 0 {
		t.Skip("replays only in a full run")
	}
	for _, f := range foundSeeds {
		t.Run(fmt.Sprintf("seed=%d", f.seed), func(t *testing.T) {
			t.Parallel()
			t.Logf("found by TestConvergence -robustness.seed=%d -robustness.ops=%d -robustness.wildclocks=%v; see %s", f.seed, f.ops, f.wild, f.see)
			runSeed(t, f.seed, f.ops, f.wild)
		})
	}
}

// runSeed is one seed's run of TestConvergence: ops random operations
// (with clocks beyond the drift bound when wild), then the final syncs
// and the checker.
func runSeed(t *testing.T, seed uint64, ops int, wild bool) {
	w := newWorld(t, seed, ops, wild)
	w.run(ops)
	w.concurrentEdits()
	w.quiesce()
	w.drainStall()
	w.check()
}

// world is one seed's run: the server, the tablets, and the model — what
// each tablet acknowledged, and what it knew when.
type world struct {
	t    *testing.T
	ctx  context.Context
	seed uint64
	nops int  // random operations
	wild bool // clocks beyond the drift bound too (-robustness.wildclocks)
	r    *rand.Rand
	dir  string
	wall atomic.Int64 // the true time, Unix ns: virtual, so a seed replays
	srv  *server
	tabs []*tablet
	// retired tablets: reinstalled apps' old files, whose writes the
	// server must still hold.
	retired []*tablet
	step    int
	hist    []string // the last operations, printed on failure
	errs    int
	n       counts

	log  []logged // the server's change log as last read, in server order
	last uint64   // server sequence of its last entry
	ops  []*op    // every acknowledged write, in order
	ents map[string]*ent
	ids  []string // entity ids in creation order
	// shared households, created on tablet 0 and synced to all, so that
	// several tablets edit the same fields; hot fields of them most
	// writes go to, so that edits collide.
	shared []string
	hot    []fieldKey
	// created holds the entities the write being made creates, until
	// acknowledged gives them to its op.
	created []string
	kinds   map[string]int // entities named per kind, for the history

	// Hostile traffic and stalled readers (hostile_test.go), and the
	// devices that make it (people_test.go).
	bulk    bool     // a bulk village only the stalled readers read
	stalls  []*stall // Snapshot streams read once, then left
	nstalls int      // how many stay open
	hclock  *hlc.Clock
	relay   *device // a commune server's device in the wrong hands
	field   *device // a collaborator's device pushing raw
	reader  *device // the stalled readers' (and the bulk village's writer)
	checker *device // an officer's, for checkLogOverGRPC
}

// counts says what a run did, to see that the faults strike.
type counts struct {
	syncs, failed, resolved, restarts, reopens, reinstalls int
	backups, restores, reissued, reissues, lost            int
	hostile                                                int
	transitions                                            int // refused by the workflow, discarded
	hits                                                   map[string]int
	refusals                                               map[string]int
}

func (c counts) String() string {
	var hits []string
	for _, k := range sortedKeys(c.hits) {
		hits = append(hits, fmt.Sprintf("%s %d", k, c.hits[k]))
	}
	var refusals []string
	for _, k := range sortedKeys(c.refusals) {
		refusals = append(refusals, fmt.Sprintf("%s %d", k, c.refusals[k]))
	}
	return fmt.Sprintf("%d syncs (%d failed; faults struck: %s), %d conflicts resolved, %d tablet reopens, %d reinstalls, %d server restarts; "+
		"%d tablet files copied, %d restored (%d local changes lost, %d moves to a fresh replica id re-issuing %d changes); %d hostile pushes refused (%s)",
		c.syncs, c.failed, strings.Join(hits, ", "), c.resolved, c.reopens, c.reinstalls, c.restarts,
		c.backups, c.restores, c.lost, c.reissues, c.reissued, c.hostile, strings.Join(refusals, ", "))
}

type logged struct {
	seq uint64
	c   *rasoatv1.Change
}

// ent is an entity an acknowledged write created.
type ent struct {
	id, kind, household, village string
	name                         string   // h3, m7, r2: for the history
	members                      []string // of a household, in creation order
}

// op is an acknowledged local write: the changes it made, numbered from
// seq0 under replica, and what the tablet knew of the server's log then:
// it had applied log[:posL] (its last sync that succeeded) and at most
// log[:posU] (its last sync, whatever its outcome).
//
// A tablet file restored from an older copy (restore_test.go) forks its
// history: prev links each write to the one before it in the file that
// made it, so that an author's own earlier writes are those it holds, not
// the ones the restore threw away. Those are lost (lost[seq]) unless the
// server stored them first; writes after the restore that the client
// issues again under a fresh replica id move (replica, seq0) with them.
type op struct {
	tab        *tablet
	idx        int // place in world.ops
	prev       *op // the write before it in its file's history
	replica    string
	step       int
	desc       string
	seq0       uint64
	n          int
	want       []want
	posL, posU int
	created    []string        // entities it created
	lost       map[uint64]bool // its changes lost with a restored file
}

type want struct {
	entity, field string
	value         []byte
}

type server struct {
	path string
	db   *sqlite.DB
	lis  *bufconn.Listener
	stop context.CancelFunc // ends Serve
	done chan error         // Serve's return
}

type tablet struct {
	w    *world
	i    int    // place in world.tabs
	gen  int    // reinstalls before this file
	id   string // replica id
	path string
	skew atomic.Int64 // ns ahead of the true time
	c    *client.Client
	conn *grpc.ClientConn
	// person is whose the tablet is (people_test.go); villages the
	// world's villages the person's units cover, which it writes and
	// must hold, and nothing else.
	person   directory.Person
	villages []string
	raw      *sql.DB // the same file read beside the client, for entity states
	plan     atomic.Pointer[faultPlan]
	// wild: the clock has been beyond the drift bound since the last
	// successful sync, so the server may refuse this tablet's stamps.
	wild bool
	// lastOp is the newest write the file holds; backup a copy of the
	// file taken earlier; restored says the file was restored from a copy
	// and the server holds seqs of its replica the copy had not issued, so
	// the client must move to a fresh replica id before it pushes more.
	lastOp     *op
	backup     *fileCopy
	restored   bool
	restoredAt uint64 // the next seq of the copy it was restored from

	next           uint64 // the next origin sequence number, as counted here
	posL, posU     int
	knownL, knownU map[string]bool // entities in log[:posL], log[:posU], or written here
	name           string
}

func (tb *tablet) now() time.Time {
	return time.Unix(0, tb.w.wall.Load()+tb.skew.Load()).UTC()
}

func (w *world) now() time.Time { return time.Unix(0, w.wall.Load()).UTC() }

func newWorld(t *testing.T, seed uint64, ops int, wild bool) *world {
	w := &world{
		t: t, ctx: context.Background(), seed: seed, nops: ops, wild: wild,
		r:     rand.New(rand.NewPCG(seed, 0x726f627573746e73)),
		dir:   t.TempDir(),
		ents:  map[string]*ent{},
		kinds: map[string]int{},
		n:     counts{hits: map[string]int{}, refusals: map[string]int{}},
	}
	w.wall.Store(time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC).UnixNano())
	t.Cleanup(func() {
		if t.Failed() {
			wild := ""
			if w.wild {
				wild = " -robustness.wildclocks"
			}
			t.Logf("seed %d failed at step %d; replay with: go test ./internal/robustness -run 'TestConvergence/seed=%d$' -robustness.seed=%d -robustness.ops=%d%s -v\nlast operations:\n%s",
				seed, w.step, seed, seed, w.nops, wild, strings.Join(w.hist, "\n"))
		}
	})
	n := 3 + w.r.IntN(2)
	w.bulk = seed%8 == 0 // stalled readers mid-snapshot: a few MiB through SQLite, slow under -race
	people := w.assignPeople(n)
	w.srv = &server{path: filepath.Join(w.dir, "server.db")}
	w.startServer()
	t.Cleanup(func() {
		w.stopServer()
		for _, tb := range w.tabs {
			tb.c.Close()
			tb.raw.Close()
		}
	})
	w.seedDirectory(people)
	for i := range n {
		w.tabs = append(w.tabs, w.newTablet(i, 0, people[i]))
	}
	w.setup()
	w.setupStalls()
	return w
}

// newTablet opens a new tablet file, a new replica, of person (not yet
// enrolled). gen tells a reinstalled tablet from the one before it.
func (w *world) newTablet(i, gen int, person directory.Person) *tablet {
	tb := &tablet{
		w: w, i: i, gen: gen, id: w.uuid(), path: filepath.Join(w.dir, fmt.Sprintf("tablet%d-%d.db", i, gen)),
		knownL: map[string]bool{}, knownU: map[string]bool{}, next: 1, name: fmt.Sprintf("t%d%s", i, strings.Repeat("'", gen)),
		person: person, villages: unitVillages(person.Units),
	}
	tb.skew.Store(int64(w.skew()))
	w.openTablet(tb)
	w.openRaw(tb)
	tb.conn = w.dial(grpc.WithUnaryInterceptor(tb.unary), grpc.WithStreamInterceptor(tb.stream))
	return tb
}

// reinstall replaces tb, once it has pushed everything, by a new file: a
// reinstalled app, with a new replica id, whose first sync takes a
// snapshot.
func (w *world) reinstall(tb *tablet) {
	w.correctClock(tb)
	if tb.pending() > 0 {
		w.sync(tb, false)
		if n := tb.pending(); n > 0 {
			w.fatalf("%s: %d changes pending after a sync without faults", tb.name, n)
		}
	}
	tb.conn.Close()
	if err := errors.Join(tb.c.Close(), tb.raw.Close()); err != nil {
		w.fatalf("close %s: %v", tb.name, err)
	}
	w.retired = append(w.retired, tb)
	w.dropBackup(tb)
	nt := w.newTablet(tb.i, tb.gen+1, tb.person)
	w.enrol(nt)
	w.tabs[tb.i] = nt
	w.n.reinstalls++
	w.record("%s reinstalled as %s (replica %s)", tb.name, nt.name, nt.id)
}

// correctClock sets a clock beyond the drift bound right again, so that
// the next sync re-stamps what it wrote meanwhile.
func (w *world) correctClock(tb *tablet) {
	if time.Duration(tb.skew.Load()) > 24*time.Hour {
		d := w.skew()
		w.record("%s clock corrected to %v ahead", tb.name, d)
		tb.skew.Store(int64(d))
	}
}

// skew is a tablet clock's error: up to 8 hours either way, so that two
// tablets are at most 16 hours apart, inside the 24-hour drift bound.
func (w *world) skew() time.Duration {
	return time.Duration(w.r.IntN(961)-480) * time.Minute
}

// uuid is a deterministic UUIDv7-shaped id: the true time's milliseconds,
// then random bits.
func (w *world) uuid() string {
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[:8], uint64(w.now().UnixMilli())<<16|w.r.Uint64()&0xffff)
	binary.BigEndian.PutUint64(u[8:], w.r.Uint64())
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}

// openRaw opens the tablet's file beside the client, read only, to read
// entity states as stored.
func (w *world) openRaw(tb *tablet) {
	raw, err := sql.Open("sqlite", "file:"+tb.path+"?_pragma=busy_timeout(5000)&_pragma=query_only(1)")
	if err != nil {
		w.fatalf("open %s: %v", tb.path, err)
	}
	tb.raw = raw
}

func (w *world) openTablet(tb *tablet) {
	c, err := client.Open(w.ctx, tb.path, client.WithClock(tb.now), client.WithReplicaID(tb.id))
	if err != nil {
		w.fatalf("open %s: %v", tb.name, err)
	}
	tb.c = c
}

// startServer serves the store file with the real server assembly, with
// authentication and scopes (people_test.go), and dials every tablet and
// device again.
func (w *world) startServer() {
	db, err := sqlite.Open(w.ctx, w.srv.path)
	if err != nil {
		w.fatalf("open server store: %v", err)
	}
	srv, err := rserver.New(rserver.WithSync(db, syncsvc.WithClock(w.now)), rserver.WithAuth(db, generousLimiter()),
		rserver.WithShutdownTimeout(0)) // a restart cuts what runs, as a crash would
	if err != nil {
		w.fatalf("new server: %v", err)
	}
	lis := bufconn.Listen(1 << 20)
	ctx, stop := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	w.srv.db, w.srv.lis, w.srv.stop, w.srv.done = db, lis, stop, done
	for _, tb := range w.tabs {
		tb.conn = w.dial(grpc.WithUnaryInterceptor(tb.unary), grpc.WithStreamInterceptor(tb.stream))
	}
	for _, d := range w.devices() {
		if d != nil {
			d.conn = w.dial(authtest.Bearer(d.token))
		}
	}
	w.openStalls()
}

func (w *world) dial(opts ...grpc.DialOption) *grpc.ClientConn {
	lis := w.srv.lis
	conn, err := grpc.NewClient("passthrough:///bufnet", append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)...)
	if err != nil {
		w.fatalf("dial: %v", err)
	}
	return conn
}

func (w *world) stopServer() {
	for _, tb := range w.tabs {
		tb.conn.Close()
	}
	for _, d := range w.devices() {
		if d != nil && d.conn != nil {
			d.conn.Close()
		}
	}
	w.closeStalls()
	w.srv.stop()
	if err := <-w.srv.done; err != nil {
		w.fatalf("serve: %v", err)
	}
	if err := w.srv.db.Close(); err != nil {
		w.fatalf("close server store: %v", err)
	}
}

// record adds a line to the history.
func (w *world) record(format string, args ...any) {
	const keep = 60
	line := fmt.Sprintf("%4d %s", w.step, fmt.Sprintf(format, args...))
	if len(w.hist) == keep {
		w.hist = slices.Delete(w.hist, 0, 1)
	}
	w.hist = append(w.hist, line)
}

func (w *world) fatalf(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("seed %d step %d: %s", w.seed, w.step, fmt.Sprintf(format, args...))
}

// errorf reports a failed check and goes on, up to a point.
func (w *world) errorf(format string, args ...any) {
	w.t.Helper()
	w.errs++
	if w.errs > 25 {
		w.t.FailNow()
	}
	w.t.Errorf("seed %d: %s", w.seed, fmt.Sprintf(format, args...))
}

// Values a field can be set to, per kind and path, in canonical form (what
// the client stores: compact protojson).
var domains = map[string]map[string][]string{
	entity.KindHousehold: {
		"headName":                    {`"Nguyễn Văn An"`, `"Nguyễn Văn Ân"`, `"Lò Văn Páo"`},
		"address":                     {`"Thôn Nà Pàn"`, `"Bản Khuổi Tát"`, `"Tổ 3"`},
		"area":                        {`"AREA_RURAL"`, `"AREA_URBAN"`},
		"housing.floorAreaM2":         {`36.5`, `40`, `12.25`, `null`},
		"housing.wallDurable":         {`true`, `false`, `null`},
		"policyFlags":                 {`["POLICY_FLAG_SOCIAL_PROTECTION"]`, `["POLICY_FLAG_REVOLUTION_CONTRIBUTOR","POLICY_FLAG_SOCIAL_PROTECTION"]`, `[]`},
		"waterSanitation.waterSource": {`"WATER_SOURCE_PIPED"`, `"WATER_SOURCE_TUBE_WELL"`},
	},
	entity.KindMember: {
		"fullName":   {`"Hoàng Thị Mai"`, `"Hoàng Thị Mây"`, `"Vi Văn Tâm"`},
		"sex":        {`"SEX_MALE"`, `"SEX_FEMALE"`},
		"birthDate":  {`"1980-02-01"`, `"2012-04-09"`, `"2019-10-30"`},
		"inSchool":   {`true`, `false`, `null`},
		"employment": {`"EMPLOYMENT_SELF_EMPLOYED"`, `"EMPLOYMENT_UNEMPLOYED"`},
	},
	entity.KindReview: {
		"comment":    {`"thiếu giấy tờ"`, `"đã xác minh"`, `null`},
		"reviewDate": {`"2025-11-15"`, `"2025-12-01"`},
	},
}

var removals = []rasoatv1.Removal{rasoatv1.Removal_REMOVAL_DIED, rasoatv1.Removal_REMOVAL_MOVED_OUT, rasoatv1.Removal_REMOVAL_OTHER}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for p := range m {
		k = append(k, p)
	}
	slices.Sort(k)
	return k
}

// fields returns values for a random subset of kind's fields, for a new
// entity: only values the client writes on creation (protojson leaves out
// null, [] and unset enums), with required ones always there.
func (w *world) fields(kind string, required ...string) map[string]string {
	out := map[string]string{}
	for _, p := range sortedKeys(domains[kind]) {
		if !slices.Contains(required, p) && w.r.IntN(2) == 0 {
			continue
		}
		var vs []string
		for _, v := range domains[kind][p] {
			if v != "null" && v != "[]" {
				vs = append(vs, v)
			}
		}
		out[p] = pick(w.r, vs)
	}
	return out
}

// nested turns path → value into the JSON object of a message.
func nested(fields map[string]string) []byte {
	obj := map[string]any{}
	for _, p := range sortedKeys(fields) {
		parts := strings.Split(p, ".")
		o := obj
		for _, k := range parts[:len(parts)-1] {
			next, ok := o[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				o[k] = next
			}
			o = next
		}
		o[parts[len(parts)-1]] = json.RawMessage(fields[p])
	}
	b, _ := json.Marshal(obj) // raw messages of valid JSON
	return b
}

func (w *world) newEnt(id, kind, household, village string) *ent {
	e := &ent{id: id, kind: kind, household: household, village: village}
	e.name = fmt.Sprintf("%c%d", kind[0], w.kinds[kind])
	w.kinds[kind]++
	w.created = append(w.created, id)
	if kind == entity.KindHousehold {
		e.household = id
	}
	w.ents[id] = e
	w.ids = append(w.ids, id)
	if h := w.ents[household]; kind == entity.KindMember && h != nil {
		h.members = append(h.members, id)
	}
	return e
}

func (w *world) name(id string) string {
	if e := w.ents[id]; e != nil {
		return e.name
	}
	return id
}

// setup enrols tablet 0 and creates the shared households on it, in
// every village in turn, enrols the others (some after writing their own
// household, before their first sync), and syncs tablet 0 and most of the
// others without faults.
func (w *world) setup() {
	t0 := w.tabs[0]
	w.enrol(t0)
	for i := range 5 {
		w.shared = append(w.shared, w.createHousehold(t0, villages[i%len(villages)], 1+w.r.IntN(3)))
	}
	for range 6 {
		id := pick(w.r, w.shared)
		if e := w.ents[id]; len(e.members) > 0 && w.r.IntN(2) == 0 {
			id = pick(w.r, e.members)
		}
		w.hot = append(w.hot, fieldKey{id, pick(w.r, sortedKeys(domains[w.ents[id].kind]))})
	}
	for _, tb := range w.tabs[1:] {
		early := w.r.IntN(2) == 0
		if early {
			w.enrol(tb)
		}
		if w.r.IntN(3) == 0 {
			w.createHousehold(tb, pick(w.r, tb.villages), w.r.IntN(3))
		}
		if !early {
			w.enrol(tb)
		}
	}
	w.sync(t0, false)
	for _, tb := range w.tabs[1:] {
		if w.r.IntN(4) != 0 {
			w.sync(tb, false)
		}
	}
}

// run performs n random operations.
func (w *world) run(n int) {
	for range n {
		w.step++
		// Time goes on a few seconds per operation, sometimes much more.
		adv := time.Duration(w.r.IntN(3000)) * time.Millisecond
		if w.r.IntN(40) == 0 {
			adv += time.Duration(w.r.IntN(120)) * time.Minute
		}
		w.wall.Add(int64(adv))
		tb := pick(w.r, w.tabs)
		if w.randomFault(tb) {
			continue
		}
		w.randomOp(tb)
	}
}

// randomFault sometimes, instead of an operation, copies tb's file,
// restores it from its copy (restore_test.go), or has a hostile replica
// push (hostile_test.go); it reports whether it did.
func (w *world) randomFault(tb *tablet) bool {
	switch k := w.r.IntN(100); {
	case k < 3 && tb.backup == nil && !tb.restored: // see restore_test.go
		w.backupTablet(tb)
	case k < 10 && tb.backup != nil:
		w.restoreTablet(tb)
	case k >= 95:
		w.hostilePush()
	default:
		return false
	}
	return true
}

// randomOp has tb do one random thing.
func (w *world) randomOp(tb *tablet) {
	switch k := w.r.IntN(100); {
	case k < 30:
		w.setRandomField(tb)
	case k < 34:
		w.createHousehold(tb, pick(w.r, tb.villages), w.r.IntN(3))
	case k < 39:
		w.addMember(tb)
	case k < 43:
		w.removeMember(tb)
	case k < 47:
		w.startReview(tb)
	case k < 51:
		w.submit(tb)
	case k < 60:
		w.resolve(tb)
	case k < 90:
		w.sync(tb, w.r.IntN(2) == 0)
	case k < 94:
		w.record("%s close and reopen", tb.name)
		if err := tb.c.Close(); err != nil {
			w.fatalf("close %s: %v", tb.name, err)
		}
		w.openTablet(tb)
		w.n.reopens++
	case k < 96:
		w.record("server store closed and reopened")
		w.stopServer()
		w.startServer()
		w.n.restarts++
	case k >= 98:
		w.reinstall(tb)
	default:
		d := w.skew()
		if w.wild && w.r.IntN(2) == 0 {
			d = 24*time.Hour + time.Duration(1+w.r.IntN(90))*time.Minute
			tb.wild = true
		}
		w.record("%s clock set to %v ahead", tb.name, d)
		tb.skew.Store(int64(d))
	}
}

func (tb *tablet) pending() int {
	n, err := tb.c.Pending(tb.w.ctx)
	if err != nil {
		tb.w.fatalf("%s pending: %v", tb.name, err)
	}
	return n
}

// state reads an entity's state from the tablet's file.
func (tb *tablet) state(id string) (entity.State, bool) {
	var b []byte
	err := tb.raw.QueryRowContext(tb.w.ctx, "SELECT state FROM entities WHERE id = ?", id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return entity.State{}, false
	}
	var s entity.State
	if err == nil {
		err = s.UnmarshalBinary(b)
	}
	if err != nil {
		tb.w.fatalf("%s read entity %s: %v", tb.name, tb.w.name(id), err)
	}
	return s, true
}

// acknowledged records a write the client returned nil for. wants are
// the changes it must have made; single marks a one-field write, which
// the client skips when the field already holds only that value. It checks
// the outbox grew by exactly those changes and that the tablet now shows
// each value (read your writes), then credits the tablet with them.
func (w *world) acknowledged(tb *tablet, desc string, before int, wants []want, single bool) {
	w.t.Helper()
	d := tb.pending() - before
	if single && d == 0 {
		wants = nil // already the value
	} else if d != len(wants) {
		w.fatalf("%s %s: the outbox grew by %d changes, want %d", tb.name, desc, d, len(wants))
	}
	for _, x := range wants {
		tb.knownL[x.entity], tb.knownU[x.entity] = true, true
	}
	checks := wants
	if single && d == 0 {
		checks = nil
	}
	for _, x := range checks {
		s, ok := tb.state(x.entity)
		if !ok {
			w.fatalf("%s %s: entity %s missing right after writing it", tb.name, desc, w.name(x.entity))
		}
		f := s.Field(x.field)
		h, ok := f.Winner()
		if !ok || string(h.Value) != string(x.value) {
			w.fatalf("%s %s: %s.%s shows %s right after writing %s", tb.name, desc, w.name(x.entity), x.field, h.Value, x.value)
		}
		if _, _, bad := f.Conflict(); bad {
			w.fatalf("%s %s: %s.%s still in conflict after writing it: heads %s", tb.name, desc, w.name(x.entity), x.field, headsString(f.Heads))
		}
	}
	o := &op{tab: tb, idx: len(w.ops), prev: tb.lastOp, replica: tb.c.ReplicaID(), step: w.step, desc: desc, seq0: tb.next, n: len(wants), want: wants,
		posL: tb.posL, posU: tb.posU, created: w.created}
	w.created = nil
	w.ops = append(w.ops, o)
	tb.lastOp = o
	tb.next += uint64(len(wants))
	w.record("%s %s (%d changes)", tb.name, desc, len(wants))
}

// refused checks a write the client refused left nothing behind, and that
// the reason holds: an entity this tablet had certainly seen is not "not
// found".
func (w *world) refused(tb *tablet, desc string, before int, err error, target string, allowed ...error) {
	w.t.Helper()
	if d := tb.pending() - before; d != 0 {
		w.fatalf("%s %s failed (%v) but wrote %d changes", tb.name, desc, err, d)
	}
	if !slices.ContainsFunc(allowed, func(e error) bool { return errors.Is(err, e) }) {
		w.fatalf("%s %s: unexpected error %v", tb.name, desc, err)
	}
	if errors.Is(err, client.ErrNotFound) && tb.knownL[target] {
		w.fatalf("%s %s: %v, but the tablet had synced (or written) %s", tb.name, desc, err, w.name(target))
	}
	w.record("%s %s refused: %v", tb.name, desc, err)
}

// succeeded checks a write on an existing entity could have found it.
func (w *world) couldKnow(tb *tablet, desc, target string) {
	w.t.Helper()
	if !tb.knownU[target] {
		w.fatalf("%s %s succeeded on %s, which no sync of this tablet could have brought", tb.name, desc, w.name(target))
	}
}

func (w *world) createHousehold(tb *tablet, village string, members int) string {
	id := w.uuid()
	hf := w.fields(entity.KindHousehold, "headName")
	h := &rasoatv1.Household{}
	if err := protojson.Unmarshal(nested(hf), h); err != nil {
		w.fatalf("build household: %v", err)
	}
	h.Id = id
	wants := wantsOf(id, hf)
	type mem struct {
		id string
		f  map[string]string
	}
	var ms []mem
	for range members {
		m, f := w.member()
		h.Members = append(h.Members, m)
		ms = append(ms, mem{m.Id, f})
		wants = append(wants, wantsOf(m.Id, f)...)
	}
	before := tb.pending()
	got, err := tb.c.CreateHousehold(w.ctx, village, h)
	desc := fmt.Sprintf("create household %s", id)
	if err != nil || got != id {
		w.fatalf("%s %s: got %q, %v", tb.name, desc, got, err)
	}
	e := w.newEnt(id, entity.KindHousehold, id, village)
	for _, m := range ms {
		w.newEnt(m.id, entity.KindMember, id, village)
	}
	w.acknowledged(tb, fmt.Sprintf("create household %s with %d members", e.name, members), before, wants, false)
	return id
}

// member returns a new member and the fields the client writes for it.
func (w *world) member() (*rasoatv1.Member, map[string]string) {
	f := w.fields(entity.KindMember, "fullName")
	m := &rasoatv1.Member{}
	if err := protojson.Unmarshal(nested(f), m); err != nil {
		w.fatalf("build member: %v", err)
	}
	m.Id = w.uuid()
	f["removed"] = `"REMOVAL_UNSPECIFIED"` // always written, so a member exists
	return m, f
}

func wantsOf(id string, fields map[string]string) []want {
	var out []want
	for _, p := range sortedKeys(fields) {
		out = append(out, want{id, p, []byte(fields[p])})
	}
	return out
}

// target picks an entity of one of kinds for tb to write: mostly one it
// may hold, mostly of the shared households; sometimes any at all, of
// another person's village too (which the tablet must not find).
func (w *world) target(tb *tablet, kinds ...string) string {
	var all, known, shared []string
	for _, id := range w.ids {
		e := w.ents[id]
		if !slices.Contains(kinds, e.kind) {
			continue
		}
		all = append(all, id)
		if tb.knownU[id] {
			known = append(known, id)
			if slices.Contains(w.shared, e.household) {
				shared = append(shared, id)
			}
		}
	}
	switch {
	case len(all) == 0:
		return ""
	case len(shared) > 0 && w.r.IntN(3) != 0:
		return pick(w.r, shared)
	case len(known) > 0 && w.r.IntN(10) != 0:
		return pick(w.r, known)
	}
	return pick(w.r, all)
}

func (w *world) setRandomField(tb *tablet) {
	hot := slices.DeleteFunc(slices.Clone(w.hot), func(f fieldKey) bool { return !tb.reads(w.ents[f.entity].village) })
	if w.r.IntN(2) == 0 && len(hot) > 0 {
		f := pick(w.r, hot)
		w.setField(tb, f.entity, f.field, pick(w.r, domains[w.ents[f.entity].kind][f.field]))
		return
	}
	id := w.target(tb, entity.KindHousehold, entity.KindMember, entity.KindReview)
	if id == "" {
		return
	}
	e := w.ents[id]
	path := pick(w.r, sortedKeys(domains[e.kind]))
	w.setField(tb, id, path, pick(w.r, domains[e.kind][path]))
}

func (w *world) setField(tb *tablet, id, path, value string) {
	desc := fmt.Sprintf("set %s.%s = %s", w.name(id), path, value)
	before := tb.pending()
	if err := tb.c.SetField(w.ctx, id, path, []byte(value)); err != nil {
		w.refused(tb, desc, before, err, id, client.ErrNotFound)
		return
	}
	w.couldKnow(tb, desc, id)
	w.acknowledged(tb, desc, before, []want{{id, path, []byte(value)}}, true)
}

func (w *world) addMember(tb *tablet) {
	hh := w.target(tb, entity.KindHousehold)
	if hh == "" {
		return
	}
	m, f := w.member()
	desc := fmt.Sprintf("add member to %s", w.name(hh))
	before := tb.pending()
	got, err := tb.c.AddMember(w.ctx, hh, m)
	if err != nil {
		w.refused(tb, desc, before, err, hh, client.ErrNotFound)
		return
	}
	if got != m.Id {
		w.fatalf("%s %s: id %s, want %s", tb.name, desc, got, m.Id)
	}
	w.couldKnow(tb, desc, hh)
	e := w.newEnt(m.Id, entity.KindMember, hh, w.ents[hh].village)
	w.acknowledged(tb, desc+" as "+e.name, before, wantsOf(m.Id, f), false)
}

func (w *world) removeMember(tb *tablet) {
	id := w.target(tb, entity.KindMember)
	if id == "" {
		return
	}
	reason := pick(w.r, removals)
	desc := fmt.Sprintf("remove %s (%s)", w.name(id), reason)
	before := tb.pending()
	if err := tb.c.RemoveMember(w.ctx, id, reason); err != nil {
		w.refused(tb, desc, before, err, id, client.ErrNotFound)
		return
	}
	w.couldKnow(tb, desc, id)
	w.acknowledged(tb, desc, before, []want{{id, "removed", []byte(`"` + reason.String() + `"`)}}, true)
}

func (w *world) startReview(tb *tablet) {
	hh := w.target(tb, entity.KindHousehold)
	if hh == "" {
		return
	}
	date := pick(w.r, []string{"2025-11-15", "2025-12-01"})
	desc := fmt.Sprintf("start review of %s", w.name(hh))
	before := tb.pending()
	// The household's review date is written unless it already holds
	// exactly that value with no conflict (the client writes nothing then).
	moveDate := true
	if s, ok := tb.state(hh); ok {
		if f := s.Field("reviewDate"); f != nil && len(f.Heads) == 1 && string(f.Heads[0].Value) == `"`+date+`"` {
			moveDate = false
		}
	}
	id, err := tb.c.StartReview(w.ctx, hh, date)
	if err != nil {
		w.refused(tb, desc, before, err, hh, client.ErrNotFound)
		return
	}
	w.couldKnow(tb, desc, hh)
	if w.ents[id] != nil || !entity.ValidID(id) {
		w.fatalf("%s %s: id %q is not a new UUID", tb.name, desc, id)
	}
	e := w.newEnt(id, entity.KindReview, hh, w.ents[hh].village)
	// In the order StartReview writes them: the round's date, the status
	// (the review is started before the household changes: a decided
	// household unlocks only for a started round), the household's review
	// date (scoring follows the new round).
	wants := []want{{id, "reviewDate", []byte(`"` + date + `"`)}, {id, "status", []byte(`"draft"`)}}
	if moveDate {
		wants = append(wants, want{hh, "reviewDate", []byte(`"` + date + `"`)})
	}
	w.acknowledged(tb, desc+" as "+e.name, before, wants, false)
}

func (w *world) submit(tb *tablet) {
	id := w.target(tb, entity.KindReview)
	if id == "" {
		return
	}
	desc := fmt.Sprintf("submit %s", w.name(id))
	// The status as the tablet holds it; none when a pull has brought the
	// review's date but not yet its status (batches split writes).
	status := ""
	if s, ok := tb.state(id); ok {
		if f := s.Field("status"); f != nil {
			h, _ := f.Winner()
			status = string(h.Value)
		}
	}
	open := status == `"draft"` || status == `"returned"`
	before := tb.pending()
	if err := tb.c.Submit(w.ctx, id); err != nil {
		w.refused(tb, desc, before, err, id, client.ErrNotFound, client.ErrWorkflow)
		if errors.Is(err, client.ErrWorkflow) && open {
			w.fatalf("%s %s: %v, but its status is %s", tb.name, desc, err, status)
		}
		return
	}
	if !open {
		w.fatalf("%s %s succeeded from status %q", tb.name, desc, status)
	}
	w.couldKnow(tb, desc, id)
	w.acknowledged(tb, desc, before, []want{{id, "status", []byte(`"submitted"`)}}, false)
}

// resolve lets an officer settle one of the conflicts tb lists, by writing
// one of its values or another one.
func (w *world) resolve(tb *tablet) {
	var cs []client.Conflict
	if err := tb.c.Conflicts(w.ctx, func(c client.Conflict) error {
		cs = append(cs, c)
		return nil
	}); err != nil {
		w.fatalf("%s conflicts: %v", tb.name, err)
	}
	cs = slices.DeleteFunc(cs, func(c client.Conflict) bool { return c.Kind == entity.KindReview && c.Field == "status" })
	if len(cs) == 0 {
		w.setRandomField(tb)
		return
	}
	// Review ids are made by the client: order by the model's creation
	// order, so that the pick does not depend on them.
	ord := func(id string) int { return slices.Index(w.ids, id) }
	slices.SortFunc(cs, func(a, b client.Conflict) int {
		if d := ord(a.EntityID) - ord(b.EntityID); d != 0 {
			return d
		}
		return strings.Compare(a.Field, b.Field)
	})
	c := pick(w.r, cs)
	values := []string{string(c.Winner.Value)}
	for _, o := range c.Others {
		values = append(values, string(o.Value))
	}
	if d := domains[c.Kind][c.Field]; len(d) > 0 && w.r.IntN(2) == 0 {
		values = d
	}
	w.n.resolved++
	w.record("%s resolves the conflict on %s.%s (%d values)", tb.name, w.name(c.EntityID), c.Field, 1+len(c.Others))
	w.setField(tb, c.EntityID, c.Field, pick(w.r, values))
}

// sync runs one Sync of tb, with random faults if faulty, and updates what
// the model says tb knows.
func (w *world) sync(tb *tablet, faulty bool) {
	p := noFaults()
	if faulty {
		p = randomFaults(w.r)
	}
	batch := 1 + w.r.IntN(50)
	opts := []client.SyncOption{client.WithBatchSize(batch)}
	snap := ""
	if w.r.IntN(5) == 0 {
		opts = append(opts, client.WithoutSnapshot())
		snap = " without snapshot"
	}
	ctx, cancel := context.WithTimeout(w.ctx, syncTimeout)
	defer cancel()
	p.cancel = cancel
	if p.cancelAt > 0 {
		n := 0
		opts = append(opts, client.WithProgress(func(client.Progress) {
			if n++; n == p.cancelAt {
				p.stop()
			}
		}))
	}
	tb.plan.Store(p)
	replica := tb.c.ReplicaID()
	st, err := tb.c.Sync(ctx, tb.conn, opts...)
	tb.plan.Store(nil)
	w.record("%s sync batch=%d%s faults=%s hit=%s: %+v err=%v", tb.name, batch, snap, p, p.hit(), st, err)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		w.fatalf("%s sync stuck for %v (%d stalled Snapshot streams open): %v", tb.name, syncTimeout, len(w.stalls), err)
	}
	w.afterSync(tb, replica, st, err)
	switch {
	case err != nil && tb.wild && clockRefused(err):
		// The server refuses stamps beyond the drift bound until the
		// clock is corrected and Sync re-stamps them.
	case err != nil && !p.mayFail():
		w.fatalf("%s sync failed with no fault injected: %v", tb.name, err)
	case err != nil && !explained(err):
		w.fatalf("%s sync failed with %v; the faults (%s) do not explain it", tb.name, err, p.hit())
	case err == nil && p.mustFail():
		w.fatalf("%s sync returned nil though faults struck (%s)", tb.name, p.hit())
	}
	if err == nil && time.Duration(tb.skew.Load()) <= 24*time.Hour {
		tb.wild = false
	}
	w.n.syncs++
	if err != nil {
		w.n.failed++
	}
	if h := p.hit(); h != "" {
		for _, f := range strings.Split(h, ",") {
			w.n.hits[f]++
		}
	}
	w.refresh()
	for _, l := range w.log[tb.posU:] {
		if tb.reads(l.c.GetVillageCode()) {
			tb.knownU[l.c.GetEntityId()] = true
		}
	}
	tb.posU = len(w.log)
	if err == nil {
		for _, l := range w.log[tb.posL:] {
			if tb.reads(l.c.GetVillageCode()) {
				tb.knownL[l.c.GetEntityId()] = true
			}
		}
		tb.posL = len(w.log)
	}
}

// syncTimeout is how long one Sync may take before the tablet counts as
// stuck: far beyond what one takes (milliseconds).
const syncTimeout = time.Minute

// worldVillages are the villages the tablets write and read (people_test.go):
// not the bulk one of the stalled readers (hostile_test.go).
func worldVillages() store.Villages { return store.OnlyVillages(villages...) }

// refresh reads the server log's new entries.
func (w *world) refresh() {
	for {
		next, more, err := w.srv.db.Pull(w.ctx, worldVillages(), store.Position{Seq: w.last}, 1000, func(c *rasoatv1.Change, pos store.Position) error {
			w.log = append(w.log, logged{pos.Seq, c})
			return nil
		})
		if err != nil {
			w.fatalf("read server log: %v", err)
		}
		w.last = next.Seq
		if !more {
			return
		}
	}
}

// concurrentEdits has every tablet write a few fields of the shared
// households offline, so that conflicts are open at the end too.
func (w *world) concurrentEdits() {
	for range 3 {
		w.step++
		id := pick(w.r, w.shared)
		if w.r.IntN(2) == 0 && len(w.ents[id].members) > 0 {
			id = pick(w.r, w.ents[id].members)
		}
		e := w.ents[id]
		path := pick(w.r, sortedKeys(domains[e.kind]))
		for _, tb := range w.tabs {
			if tb.knownU[id] {
				w.setField(tb, id, path, pick(w.r, domains[e.kind][path]))
			}
		}
	}
}

// quiesce syncs every tablet without faults until a round moves nothing.
func (w *world) quiesce() {
	w.step++
	for _, tb := range w.tabs {
		w.correctClock(tb)
	}
	for round := 1; ; round++ {
		moved := 0
		for _, i := range w.r.Perm(len(w.tabs)) {
			tb := w.tabs[i]
			ctx, cancel := context.WithTimeout(w.ctx, syncTimeout)
			replica := tb.c.ReplicaID()
			st, err := tb.c.Sync(ctx, tb.conn, client.WithBatchSize(1+w.r.IntN(500)))
			cancel()
			w.record("%s final sync round %d: %+v err=%v", tb.name, round, st, err)
			w.afterSync(tb, replica, st, err)
			if err != nil {
				w.fatalf("%s final sync: %v", tb.name, err)
			}
			moved += st.Pushed + st.Duplicates + st.Pulled + st.Snapshot
			if n := tb.pending(); n != 0 {
				w.fatalf("%s has %d changes pending after a sync without faults", tb.name, n)
			}
		}
		if moved == 0 {
			break
		}
		if round == 5 {
			w.fatalf("sync does not settle: round %d still moved %d changes", round, moved)
		}
	}
	w.refresh()
}
