package client

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func conflicts(t *testing.T, c *Client) []Conflict {
	t.Helper()
	var out []Conflict
	if err := c.Conflicts(context.Background(), func(cf Conflict) error {
		out = append(out, cf)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func household(t *testing.T, c *Client, id string) *rasoatv1.Household {
	t.Helper()
	h, err := c.Household(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// sameHousehold fails unless both tablets materialise id equally.
func sameHousehold(t *testing.T, a, b *Client, id string) *rasoatv1.Household {
	t.Helper()
	ha, hb := household(t, a, id), household(t, b, id)
	if !proto.Equal(ha, hb) {
		t.Fatalf("tablets disagree on household %s:\n%v\n%v", id, ha, hb)
	}
	return ha
}

func TestConcurrentEditsConvergeAndListTheConflictUntilResolved(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	a, b := tablet(t), tablet(t)
	id, err := a.CreateHousehold(ctx, "001", fullHousehold(2))
	if err != nil {
		t.Fatal(err)
	}
	syncOK(t, a, srv)
	syncOK(t, b, srv)
	sameHousehold(t, a, b, id)

	// Offline, both correct the head's name differently.
	if err := a.SetField(ctx, id, "headName", []byte(`"Hoàng Văn Thắng A"`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if err := b.SetField(ctx, id, "headName", []byte(`"Hoàng Văn Thắng B"`)); err != nil {
		t.Fatal(err)
	}
	syncOK(t, a, srv)
	syncOK(t, b, srv)
	syncOK(t, a, srv)

	h := sameHousehold(t, a, b, id)
	if h.HeadName != "Hoàng Văn Thắng B" {
		t.Errorf("headName = %q, want the later write", h.HeadName)
	}
	ca, cb := conflicts(t, a), conflicts(t, b)
	if !reflect.DeepEqual(ca, cb) {
		t.Fatalf("tablets list different conflicts:\n%+v\n%+v", ca, cb)
	}
	if len(ca) != 1 || ca[0].EntityID != id || ca[0].Field != "headName" || ca[0].Kind != "household" || ca[0].HouseholdID != id || len(ca[0].Others) != 1 {
		t.Fatalf("conflicts = %+v, want one on headName", ca)
	}
	cf := ca[0]
	if string(cf.Winner.Value) != `"Hoàng Văn Thắng B"` || cf.Winner.Replica != b.ReplicaID() ||
		string(cf.Others[0].Value) != `"Hoàng Văn Thắng A"` || cf.Others[0].Replica != a.ReplicaID() {
		t.Fatalf("conflict = %+v, want B's value winning over A's", cf)
	}
	for _, v := range []ConflictValue{cf.Winner, cf.Others[0]} {
		if !v.At.Equal(hlc.Timestamp(v.HLC).Wall()) || time.Since(v.At) > time.Minute {
			t.Errorf("conflict value %+v: time does not match its stamp", v)
		}
	}

	// An officer resolves it on tablet A; both tablets see it resolved.
	if err := a.SetField(ctx, id, "headName", []byte(`"Hoàng Văn Thắng"`)); err != nil {
		t.Fatal(err)
	}
	if got := conflicts(t, a); len(got) != 0 {
		t.Fatalf("conflicts after resolving = %+v", got)
	}
	syncOK(t, a, srv)
	syncOK(t, b, srv)
	if got := conflicts(t, b); len(got) != 0 {
		t.Fatalf("tablet B still lists %+v", got)
	}
	if h := sameHousehold(t, a, b, id); h.HeadName != "Hoàng Văn Thắng" {
		t.Errorf("headName = %q after resolving", h.HeadName)
	}
}

func TestMemberRemovalAndReviewSync(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	a, b := tablet(t), tablet(t)
	id, err := a.CreateHousehold(ctx, "001", fullHousehold(3))
	if err != nil {
		t.Fatal(err)
	}
	syncOK(t, a, srv)
	syncOK(t, b, srv)
	m := household(t, b, id).Members[2].Id
	if err := b.RemoveMember(ctx, m, rasoatv1.Removal_REMOVAL_DIED); err != nil {
		t.Fatal(err)
	}
	r, err := b.StartReview(ctx, id, "2025-11-15")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Submit(ctx, r); err != nil {
		t.Fatal(err)
	}
	syncOK(t, b, srv)
	syncOK(t, a, srv)
	h := sameHousehold(t, a, b, id)
	if h.Members[2].Removed != rasoatv1.Removal_REMOVAL_DIED {
		t.Fatalf("member on tablet A = %v, want removed (died)", h.Members[2])
	}
	assessed, _, err := a.Assess(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if assessed.Members != 2 {
		t.Errorf("Assess counts %d members, want 2 after the removal", assessed.Members)
	}
	if err := a.Submit(ctx, r); !errors.Is(err, ErrWorkflow) {
		t.Errorf("tablet A submitting B's submitted review: %v, want ErrWorkflow", err)
	}
}

// fill makes households on c: changesOf(members) changes each.
func fill(t testing.TB, c *Client, households, members int) []string {
	t.Helper()
	var ids []string
	for range households {
		id, err := c.CreateHousehold(context.Background(), "001", fullHousehold(members))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// checkLog fails unless the server stored each of replica's changes 1..n
// exactly once.
func checkLog(t *testing.T, srv *server, replica string, n int) {
	t.Helper()
	seen := map[uint64]int{}
	for _, c := range srv.log(t) {
		if c.Stamp.ReplicaId == replica {
			seen[c.Seq]++
		}
	}
	for s := uint64(1); s <= uint64(n); s++ {
		if seen[s] != 1 {
			t.Fatalf("server holds change %d of %s %d times", s, replica, seen[s])
		}
	}
	if len(seen) != n {
		t.Fatalf("server holds %d changes of %s, want %d", len(seen), replica, n)
	}
}

func TestInterruptedPushResumesAndStoresEveryChangeOnce(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	a := tablet(t)
	fill(t, a, 5, 4)
	total := 5 * changesOf(4)

	cctx, cancel := context.WithCancel(ctx)
	_, err := a.Sync(cctx, srv.conn, WithBatchSize(100), WithProgress(func(p Progress) {
		if p.Phase == PhasePush && p.Sent >= 100 {
			cancel() // the connection drops after the first batch
		}
	}))
	if !errors.Is(err, context.Canceled) && status.Code(err) != codes.Canceled {
		t.Fatalf("interrupted sync returned %v", err)
	}
	if n, _ := a.Pending(ctx); n != total-100 {
		t.Fatalf("after the first acknowledged batch %d changes pending, want %d", n, total-100)
	}
	st := syncOK(t, a, srv, WithBatchSize(100))
	if st.Pushed != total-100 || st.Duplicates != 0 {
		t.Errorf("resumed sync pushed %+v, want the %d left", st, total-100)
	}
	checkLog(t, srv, a.ReplicaID(), total)
	if n, _ := a.Pending(ctx); n != 0 {
		t.Errorf("%d changes still pending", n)
	}
}

// lostAck is a connection whose first n Push calls reach the server, which
// stores the batch, but whose answers are lost on the way back.
type lostAck struct {
	grpc.ClientConnInterface
	n atomic.Int32
}

func (l *lostAck) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	err := l.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
	if err == nil && method == rasoatv1.SyncService_Push_FullMethodName && l.n.Add(-1) >= 0 {
		return status.Error(codes.Unavailable, "connection reset (test)")
	}
	return err
}

func TestPushWhoseAnswerIsLostIsResentWithoutDuplicates(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	a := tablet(t)
	fill(t, a, 3, 4)
	total := 3 * changesOf(4)
	conn := &lostAck{ClientConnInterface: srv.conn}
	conn.n.Store(1)
	if _, err := a.Sync(ctx, conn, WithBatchSize(100)); status.Code(err) != codes.Unavailable {
		t.Fatalf("sync with a lost answer = %v, want Unavailable", err)
	}
	if n, _ := a.Pending(ctx); n != total {
		t.Fatalf("%d changes pending after a lost answer, want all %d", n, total)
	}
	st, err := a.Sync(ctx, conn, WithBatchSize(100))
	if err != nil {
		t.Fatal(err)
	}
	if st.Duplicates != 100 || st.Pushed != total-100 {
		t.Errorf("resent sync = %+v, want 100 duplicates and %d new", st, total-100)
	}
	checkLog(t, srv, a.ReplicaID(), total)
}

func TestPullResumesFromTheStoredCursor(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	a, b := tablet(t), tablet(t)
	first := fill(t, a, 2, 2)
	syncOK(t, a, srv)
	if st := syncOK(t, b, srv); st.Snapshot != 2*3 {
		t.Fatalf("first sync of B took %d entity states, want 6", st.Snapshot)
	}
	more := fill(t, a, 4, 4)
	syncOK(t, a, srv)
	newChanges := 4 * changesOf(4)

	cctx, cancel := context.WithCancel(ctx)
	_, err := b.Sync(cctx, srv.conn, WithBatchSize(50), WithProgress(func(p Progress) {
		if p.Phase == PhasePull && p.Received >= 50 {
			cancel()
		}
	}))
	if err == nil {
		t.Fatal("interrupted pull returned no error")
	}
	m, err := readMeta(ctx, b.r)
	if err != nil {
		t.Fatal(err)
	}
	st := syncOK(t, b, srv, WithBatchSize(50))
	if st.Pulled != newChanges-50 || st.Snapshot != 0 {
		t.Errorf("resumed pull from cursor %d got %+v, want the %d changes left", m.cursor, st, newChanges-50)
	}
	for _, id := range append(first, more...) {
		sameHousehold(t, a, b, id)
	}
	if st := syncOK(t, b, srv); st.Pulled != 0 {
		t.Errorf("a sync with nothing new pulled %d changes", st.Pulled)
	}
}

// stateRows returns every entity's id and encoded state.
func stateRows(t *testing.T, c *Client) map[string][]byte {
	t.Helper()
	rows, err := c.r.Query("SELECT id, state FROM entities")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var id string
		var b []byte
		rows.Scan(&id, &b)
		out[id] = b
	}
	return out
}

func TestSnapshotFirstSyncHoldsWhatReplayingTheLogHolds(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	a, b := tablet(t), tablet(t)
	ids := fill(t, a, 3, 3)
	syncOK(t, a, srv)
	syncOK(t, b, srv)
	// Concurrent edits, so the states hold several heads and seen stamps.
	a.SetField(ctx, ids[0], "address", []byte(`"Bản Phiêng"`))
	b.SetField(ctx, ids[0], "address", []byte(`"Bản Khuổi"`))
	b.SetField(ctx, ids[1], "housing.floorAreaM2", []byte(`40`))
	syncOK(t, a, srv)
	syncOK(t, b, srv)

	snap, replay := tablet(t), tablet(t)
	if st := syncOK(t, snap, srv); st.Snapshot == 0 || st.Pulled != 0 {
		t.Fatalf("first sync = %+v, want a snapshot", st)
	}
	if st := syncOK(t, replay, srv, WithoutSnapshot()); st.Snapshot != 0 || st.Pulled == 0 {
		t.Fatalf("first sync without snapshot = %+v", st)
	}
	s1, s2 := stateRows(t, snap), stateRows(t, replay)
	if len(s1) != len(s2) {
		t.Fatalf("%d entities from a snapshot, %d from the log", len(s1), len(s2))
	}
	for id, b1 := range s1 {
		if !bytes.Equal(b1, s2[id]) {
			t.Errorf("entity %s differs between snapshot and replay", id)
		}
	}
	if !reflect.DeepEqual(conflicts(t, snap), conflicts(t, replay)) || len(conflicts(t, snap)) != 1 {
		t.Errorf("conflicts differ: %+v vs %+v", conflicts(t, snap), conflicts(t, replay))
	}
	// The snapshot's stamps were observed: a write on top covers them.
	if err := snap.SetField(ctx, ids[0], "address", []byte(`"Bản Nà Pàn"`)); err != nil {
		t.Fatal(err)
	}
	if got := conflicts(t, snap); len(got) != 0 {
		t.Errorf("conflicts after resolving on the snapshot tablet: %+v", got)
	}
}

func TestClockDaysAheadIsRestampedWhenTheServerRefusesIt(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	clock := &skewClock{}
	a := tablet(t, WithClock(clock.now))
	b := tablet(t)
	// One household written with a right clock and acknowledged.
	id0 := fill(t, a, 1, 1)[0]
	syncOK(t, a, srv)
	acked := len(srv.log(t))

	// The tablet's clock jumps 3 days ahead: new writes, and edits on top.
	clock.set(72 * time.Hour)
	id, err := a.CreateHousehold(ctx, "001", fullHousehold(2))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []string{`"Nông Văn A"`, `"Nông Văn B"`} {
		if err := a.SetField(ctx, id, "headName", []byte(v)); err != nil {
			t.Fatalf("edit %d: %v", i, err)
		}
	}
	if err := a.SetField(ctx, id0, "address", []byte(`"Bản Mới"`)); err != nil {
		t.Fatal(err)
	}
	// Pushed now, the server refuses the stamps (3 days > 24h ahead).
	_, err = a.Sync(ctx, srv.conn)
	if status.Code(err) != codes.InvalidArgument || rpcerr.Reason(err) != rasoatv1.ErrorReason_CLOCK_AHEAD || firstIndex(err, rasoatv1.ErrorReason_CLOCK_AHEAD) < 0 {
		t.Fatalf("sync with the clock ahead = %v, want InvalidArgument about stamps ahead", err)
	}
	if n, _ := a.Pending(ctx); n != changesOf(2)+3 {
		t.Fatalf("%d changes pending after the refusal", n)
	}

	// The clock is corrected: the retry re-stamps and goes through.
	clock.set(0)
	st := syncOK(t, a, srv)
	if st.Restamped != changesOf(2)+3 || st.Pushed != changesOf(2)+3 {
		t.Fatalf("sync after correcting the clock = %+v", st)
	}
	limit := hlc.At(time.Now(), 0) + 1<<16
	log := srv.log(t)
	if len(log) != acked+changesOf(2)+3 {
		t.Fatalf("server log holds %d changes, want %d", len(log), acked+changesOf(2)+3)
	}
	var names []*rasoatv1.Change
	for _, c := range log {
		if hlc.Timestamp(c.Stamp.Hlc) >= limit {
			t.Errorf("change %d stored stamped %s, in the future", c.Seq, hlc.Timestamp(c.Stamp.Hlc).Wall())
		}
		if c.EntityId == id && c.Field == "headName" {
			names = append(names, c)
		}
	}
	// Each edit's Base names the re-stamped value it overwrote.
	if len(names) != 3 {
		t.Fatalf("server holds %d headName changes, want 3", len(names))
	}
	for i := 1; i < 3; i++ {
		base := names[i].Base
		if len(base) != 1 || base[0].Hlc != names[i-1].Stamp.Hlc || base[0].ReplicaId != a.ReplicaID() {
			t.Errorf("edit %d has base %v, want the re-stamped %d", i, base, names[i-1].Stamp.Hlc)
		}
	}
	syncOK(t, b, srv)
	for _, h := range []string{id0, id} {
		sameHousehold(t, a, b, h)
	}
	if h := household(t, a, id); h.HeadName != "Nông Văn B" {
		t.Errorf("headName = %q, want the last edit", h.HeadName)
	}
	if ca, cb := conflicts(t, a), conflicts(t, b); len(ca)+len(cb) != 0 {
		t.Errorf("re-stamping left conflicts: %+v / %+v", ca, cb)
	}
	// Writes go on from the corrected clock and beat B's concurrent-free edit.
	if err := b.SetField(ctx, id, "headName", []byte(`"Từ B"`)); err != nil {
		t.Fatal(err)
	}
	syncOK(t, b, srv)
	syncOK(t, a, srv)
	if err := a.SetField(ctx, id, "headName", []byte(`"Từ A"`)); err != nil {
		t.Fatal(err)
	}
	syncOK(t, a, srv)
	syncOK(t, b, srv)
	if h := sameHousehold(t, a, b, id); h.HeadName != "Từ A" {
		t.Errorf("headName = %q, want A's later edit", h.HeadName)
	}
	// The file keeps the corrected clock.
	m, _ := readMeta(ctx, a.r)
	if m.hlcLast >= limit+hlc.Timestamp(time.Minute.Milliseconds())<<16 {
		t.Errorf("stored clock %s still in the future", m.hlcLast.Wall())
	}
}

func TestSyncOfAnEmptyTabletWithAnEmptyServer(t *testing.T) {
	srv := newServer(t)
	a := tablet(t)
	st := syncOK(t, a, srv)
	if st != (SyncStats{}) {
		t.Errorf("stats = %+v", st)
	}
	if st := syncOK(t, a, srv); st != (SyncStats{}) {
		t.Errorf("second sync stats = %+v", st)
	}
}

// TestServerBehindTheTabletsCursorIsTakenAgainWhole: the commune server was
// restored from a backup older than what this tablet pulled (or the tablet
// now syncs with another server). The tablet is told, takes the server's
// state again and pulls on from the server's real end.
func TestServerBehindTheTabletsCursorIsTakenAgainWhole(t *testing.T) {
	ctx := context.Background()
	first, restored := newServer(t), newServer(t)
	a, b := tablet(t), tablet(t)
	for range 3 {
		if _, err := b.CreateHousehold(ctx, "001", fullHousehold(2)); err != nil {
			t.Fatal(err)
		}
	}
	syncOK(t, b, first)
	syncOK(t, a, first) // a's cursor is now at the end of first's log

	// The restored server holds less: one household another tablet pushed.
	c := tablet(t)
	id, err := c.CreateHousehold(ctx, "001", fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	syncOK(t, c, restored)
	st := syncOK(t, a, restored)
	if st.Snapshot == 0 {
		t.Fatalf("tablet did not take the restored server's state again: %+v", st)
	}
	if _, err := a.Household(ctx, id); err != nil {
		t.Fatalf("household on the restored server did not reach the tablet: %v", err)
	}
	// And it goes on from the restored server's end, not its old cursor.
	if err := c.SetField(ctx, id, "headName", []byte(`"Lò Văn Mới"`)); err != nil {
		t.Fatal(err)
	}
	syncOK(t, c, restored)
	syncOK(t, a, restored)
	h, err := a.Household(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.GetHeadName() != "Lò Văn Mới" {
		t.Fatalf("edit after the restore did not reach the tablet: head %q", h.GetHeadName())
	}
}

// copyIfExists copies src to dst if src exists.
func copyIfExists(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFirstSyncCutOffMidSnapshotLeavesNothing: a first sync writes a whole
// commune in one transaction, spilling pages to the WAL as it goes. The
// file as a power cut would leave it at that point (the main file and the
// WAL, no shared memory) opens with nothing of the snapshot and no cursor,
// and its next sync takes the commune whole; so does the tablet whose
// sync was cancelled there.
func TestFirstSyncCutOffMidSnapshotLeavesNothing(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	g := storetest.New("0190f0c2-0000-7000-8000-0000000000e1", "001")
	if _, err := g.Commune(1000, 4, func(batch []*rasoatv1.Change) error {
		_, err := srv.db.Push(ctx, store.Sender{Replica: g.Replica}, batch)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	const entities = 1000 * 5

	dir := t.TempDir()
	path := filepath.Join(dir, "tablet.db")
	c := open(t, path)
	crash := filepath.Join(t.TempDir(), "crash.db")
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var walBytes int64
	_, err := c.Sync(cctx, srv.conn, WithProgress(func(p Progress) {
		if p.Phase != PhaseSnapshot || walBytes != 0 || p.Received == entities {
			return
		}
		// Mid-transaction, once pages have spilled to the WAL.
		fi, err := os.Stat(path + "-wal")
		if err != nil || fi.Size() < 1<<20 {
			return
		}
		walBytes = fi.Size()
		copyIfExists(t, path, crash)
		copyIfExists(t, path+"-wal", crash+"-wal")
		cancel()
	}))
	if err == nil {
		t.Fatal("the cancelled sync returned no error")
	}
	if walBytes == 0 {
		t.Fatal("the WAL never held 1 MiB mid-snapshot: the transaction did not spill, so this test shows nothing")
	}

	for name, p := range map[string]string{"the cancelled tablet": path, "the file a power cut left": crash} {
		var tab *Client
		if p == path {
			tab = c
		} else {
			tab = open(t, p)
		}
		var n int
		if err := tab.r.QueryRowContext(ctx, "SELECT count(*) FROM entities").Scan(&n); err != nil {
			t.Fatal(err)
		}
		m, err := readMeta(ctx, tab.r)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 || m.cursor != 0 {
			t.Errorf("%s holds %d entities and cursor %d before syncing again; want nothing", name, n, m.cursor)
		}
		st := syncOK(t, tab, srv)
		if st.Snapshot != entities {
			t.Errorf("%s: the next sync took %d states, want %d", name, st.Snapshot, entities)
		}
		if err := tab.r.QueryRowContext(ctx, "SELECT count(*) FROM entities").Scan(&n); err != nil || n != entities {
			t.Errorf("%s holds %d entities after syncing again (%v), want %d", name, n, err, entities)
		}
	}
}
