package sqlite_test

import (
	"context"
	"github.com/rasoat/rasoat/server/store"
	"path/filepath"
	"testing"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// BenchmarkPushIngest pushes batches of 5,000 field changes — new
// households of 4 members, every field filled (18 household fields, 15 per
// member) — into a file in WAL mode with synchronous=FULL, one durable
// transaction per batch, and reports field changes per second. The issue's
// target is over 100,000/s.
func BenchmarkPushIngest(b *testing.B) {
	const batchSize = 5000
	ctx := context.Background()
	db := open(b, filepath.Join(b.TempDir(), "rasoat.db"))
	g := storetest.New("tab-a", "001")
	var pending []*rasoatv1.Change
	next := func() []*rasoatv1.Change {
		for len(pending) < batchSize {
			pending = append(pending, g.Household(4)...)
		}
		batch := pending[:batchSize:batchSize]
		pending = append([]*rasoatv1.Change(nil), pending[batchSize:]...)
		return batch
	}
	total, elapsed := 0, time.Duration(0)
	for b.Loop() {
		b.StopTimer()
		batch := next()
		b.StartTimer()
		start := time.Now()
		res, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, batch)
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if res.Accepted != batchSize {
			b.Fatalf("accepted %d of %d", res.Accepted, batchSize)
		}
		total += batchSize
	}
	b.ReportMetric(storetest.Since(total, elapsed), "changes/s")
}
