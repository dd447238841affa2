package syncsvc_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// BenchmarkPull streams a whole commune — 2,000 households of 4 members,
// every field filled (2,000 × 78 = 156,000 changes) — from a real SQLite
// file to a client over loopback gRPC, decoding every change, as an empty
// tablet's first sync would (less applying them to the tablet's store).
// The target for that first sync is under 150 ms end to end.
func BenchmarkPull(b *testing.B) {
	c, total := commune(b)
	ctx := context.Background()
	var elapsed time.Duration
	for b.Loop() {
		start := time.Now()
		stream, err := c.Pull(ctx, &rasoatv1.PullRequest{ReplicaId: "tab-b", BatchSize: 20000})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += len(r.Changes)
		}
		elapsed += time.Since(start)
		if n != total {
			b.Fatalf("pulled %d changes, want %d", n, total)
		}
	}
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/pull")
	b.ReportMetric(float64(total), "changes/pull")
}

// BenchmarkSnapshot streams the same commune as entity states, what a first
// sync uses instead of Pull: 10,000 states instead of 156,000 changes.
func BenchmarkSnapshot(b *testing.B) {
	c, _ := commune(b)
	ctx := context.Background()
	var elapsed time.Duration
	for b.Loop() {
		start := time.Now()
		stream, err := c.Snapshot(ctx, &rasoatv1.SnapshotRequest{ReplicaId: "tab-b"})
		if err != nil {
			b.Fatal(err)
		}
		n, bytes := 0, 0
		for {
			r, err := stream.Recv()
			if err != nil {
				b.Fatal(err)
			}
			n += len(r.Entities)
			for _, e := range r.Entities {
				bytes += len(e.State)
			}
			if r.Done {
				break
			}
		}
		elapsed += time.Since(start)
		if n != 2000*5 {
			b.Fatalf("snapshot of %d entities, want %d", n, 2000*5)
		}
		b.ReportMetric(float64(bytes)/float64(n), "state-bytes/entity")
	}
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/snapshot")
}

// commune pushes 2,000 households of 4 members, every field filled.
func commune(b *testing.B) (rasoatv1.SyncServiceClient, int) {
	c := serve(b)
	g := storetest.New("tab-a", "001")
	var batch []*rasoatv1.Change
	total := 0
	for range 2000 {
		batch = append(batch, g.Household(4)...)
		if len(batch) >= 5000 {
			push(b, c, batch)
			total += len(batch)
			batch = nil
		}
	}
	push(b, c, batch)
	total += len(batch)
	return c, total
}
