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
