package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// Under pushes that never pause, the WAL is still restarted from its
// beginning now and then: it stays within a bound instead of growing for
// as long as tablets push.
func TestWALStaysBoundedUnderSteadyPushes(t *testing.T) {
	const maxPages = 256 // 1 MiB
	t.Cleanup(sqlite.SetWALBounds(maxPages, 500))
	path := filepath.Join(t.TempDir(), "rasoat.db")
	db := open(t, path)
	const tablets, batches = 8, 25 // about 12 MB of WAL without the bound
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		biggest int64
		errs    = make([]error, tablets)
	)
	for i := range tablets {
		wg.Go(func() {
			g := storetest.New(fmt.Sprintf("tab-%d", i), fmt.Sprintf("v%d", i))
			for range batches {
				batch := append(g.Household(1), g.Household(2)...)
				if _, err := db.Push(context.Background(), store.Sender{Replica: g.Replica}, batch); err != nil {
					errs[i] = err
					return
				}
				if fi, err := os.Stat(path + "-wal"); err == nil {
					mu.Lock()
					biggest = max(biggest, fi.Size())
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WAL at most %.1f MB; main file %.1f MB", float64(biggest)/(1<<20), float64(fi.Size())/(1<<20))
	// The bound and the group that crossed it.
	const limit = 4 * maxPages * 4096
	if biggest > limit {
		t.Errorf("WAL grew to %d bytes, over %d", biggest, limit)
	}
}
