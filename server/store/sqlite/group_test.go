package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rasoat/rasoat/server/store"
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
