package apply_test

import (
	"testing"

	"github.com/rasoat/rasoat/internal/apply"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// BenchmarkPrepare encodes a tablet's batch of 390 changes (5 new
// households of 4 members), as every push does before it waits for the
// store's writer.
func BenchmarkPrepare(b *testing.B) {
	g := storetest.New("0190f0c2-5555-7000-8000-0000000000aa", "00001")
	var batch []*rasoatv1.Change
	for range 5 {
		batch = append(batch, g.Household(4)...)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := apply.Prepare("0190f0c2-5555-7000-8000-0000000000aa", batch); err != nil {
			b.Fatal(err)
		}
	}
}
