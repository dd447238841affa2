package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// A group takes every push waiting, up to maxGroupChanges changes: large
// batches commit in groups of their own, small ones together.
func TestGroupTakesPushesUpToItsBound(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "rasoat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name   string
		sizes  []int
		groups int
	}{
		{"small pushes share a group", []int{390, 390, 390, 390}, 1},
		{"large pushes each commit alone", []int{maxGroupChanges * 3 / 4, maxGroupChanges * 3 / 4, maxGroupChanges * 3 / 4}, 3},
		{"a large push after small ones starts the next group", []int{100, 100, maxGroupChanges}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A first push holds the writer until every other one is queued.
			held, hold := make(chan struct{}), make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				db.group.do(context.Background(), 1, func(context.Context, *sql.Tx) (store.PushResult, error) {
					close(held)
					<-hold
					return store.PushResult{}, nil
				})
			})
			<-held
			var (
				mu  sync.Mutex
				txs = map[*sql.Tx]bool{}
			)
			for i, n := range tc.sizes {
				wg.Go(func() {
					db.group.do(context.Background(), n, func(_ context.Context, tx *sql.Tx) (store.PushResult, error) {
						mu.Lock()
						txs[tx] = true
						mu.Unlock()
						return store.PushResult{}, nil
					})
				})
				for len(db.group.queue) < i+1 { // queued in order
					time.Sleep(time.Millisecond)
				}
			}
			close(hold)
			wg.Wait()
			if len(txs) != tc.groups {
				t.Errorf("pushes of %v ran in %d transactions, want %d", tc.sizes, len(txs), tc.groups)
			}
		})
	}
}

// A push is answered only once the WAL holding it is synced, and the
// writer does not wait for that sync: the next group commits meanwhile.
func TestPushAnsweredAfterItsSyncWhileTheNextGroupCommits(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "rasoat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	entered, release := make(chan struct{}, 4), make(chan struct{})
	var releasing sync.Once
	unhold := func() { releasing.Do(func() { close(release) }) }
	defer unhold() // before Close, which waits for the syncer
	syncWAL := db.syncWAL
	db.syncWAL = func() error {
		entered <- struct{}{}
		<-release
		return syncWAL()
	}
	g := storetest.New("tab-a", "001")
	a, b := g.Household(1), g.Household(1)
	first, second := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, a)
		first <- err
	}()
	<-entered // the first group is committed, its sync held
	go func() {
		_, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, b)
		second <- err
	}()
	// The second push commits while the first group's sync is held: the
	// log's end, as readers see it, moves past both.
	deadline := time.Now().Add(10 * time.Second)
	for {
		end, err := db.End(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if end.Seq == uint64(len(a)+len(b)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second push did not commit while the first group's sync was held: the log ends at %d", end.Seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-first:
		t.Fatalf("the first push was answered (%v) before its sync returned", err)
	case err := <-second:
		t.Fatalf("the second push was answered (%v) before its sync returned", err)
	case <-time.After(50 * time.Millisecond):
	}
	unhold()
	for _, c := range []chan error{first, second} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
}

// A failed sync fails the pushes it was to make durable, and the store
// takes no push after it: what it holds on disk is not known.
func TestFailedSyncStopsThePushes(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "rasoat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	broken := errors.New("disk on fire")
	db.syncWAL = func() error { return broken }
	g := storetest.New("tab-a", "001")
	if _, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, g.Household(1)); !errors.Is(err, errSync) || !errors.Is(err, broken) || !errors.Is(err, store.ErrBusy) {
		t.Fatalf("push over a failed sync: %v; want errSync and store.ErrBusy wrapping the cause", err)
	}
	end, err := db.End(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, g.Household(1)); !errors.Is(err, errSync) {
		t.Fatalf("push after a failed sync: %v; want errSync", err)
	}
	if after, err := db.End(ctx); err != nil || after != end {
		t.Fatalf("a push after a failed sync moved the log from %v to %v (%v)", end, after, err)
	}
}

// Every write outside the committer (the directory's, the settings') is
// synced before it returns, and none is made after a sync failed.
func TestWritesBesidePushesSyncAndStopAfterAFailedSync(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "rasoat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var syncs int
	var fail error
	syncWAL := db.syncWAL
	db.syncWAL = func() error {
		syncs++
		if fail != nil {
			return fail
		}
		return syncWAL()
	}
	if err := db.PutSettings(ctx, map[string]string{"k": "v"}, nil); err != nil || syncs != 1 {
		t.Fatalf("PutSettings: %v, %d syncs; want nil and 1", err, syncs)
	}
	unit := &rasoatv1.Unit{Code: "06517", Name: "Xã Mường Lói", Level: rasoatv1.UnitLevel_UNIT_LEVEL_COMMUNE, Kind: "xã"}
	if _, _, err := db.PutUnits(ctx, []*rasoatv1.Unit{unit}, ""); err != nil || syncs != 2 {
		t.Fatalf("PutUnits: %v, %d syncs; want nil and 2", err, syncs)
	}
	fail = errors.New("disk on fire")
	if err := db.PutSettings(ctx, map[string]string{"k": "w"}, nil); !errors.Is(err, errSync) || !errors.Is(err, fail) {
		t.Fatalf("PutSettings over a failed sync: %v; want errSync wrapping the cause", err)
	}
	fail = nil
	if err := db.PutSettings(ctx, map[string]string{"k": "x"}, nil); !errors.Is(err, errSync) {
		t.Fatalf("PutSettings after a failed sync: %v; want errSync", err)
	}
	if _, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, storetest.New("tab-a", "001").Household(0)); !errors.Is(err, errSync) {
		t.Fatalf("a push after a failed sync: %v; want errSync", err)
	}
	if v, ok, err := db.Setting(ctx, "k"); err != nil || !ok || v != "w" {
		t.Fatalf("setting k = %q, %v, %v; want the value written before the failed sync and nothing after", v, ok, err)
	}
}

// A store opened through a symbolic link syncs the WAL SQLite keeps
// beside the link's target, not a file beside the link that nobody
// writes.
func TestStoreThroughASymlinkSyncsTheTargetsWAL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	real, link := filepath.Join(dir, "data", "real.db"), filepath.Join(dir, "rasoat.db")
	db, err := Open(ctx, real)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Symlink(filepath.Join("data", "real.db"), link); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.wal.Path(); got != real+"-wal" {
		t.Fatalf("the store syncs %s; want %s, beside the link's target", got, real+"-wal")
	}
	if _, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, storetest.New("tab-a", "001").Household(1)); err != nil {
		t.Fatal(err)
	}
}
