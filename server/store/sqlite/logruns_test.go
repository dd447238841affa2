package sqlite_test

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// TestAPullOverManyVillagesIsThePullOfAll: a pull over 300 villages (two
// statements, merged) gives what a pull of every village gives, from every
// seventh position, over runs short and interleaved and one long.
func TestAPullOverManyVillagesIsThePullOfAll(t *testing.T) {
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	var codes []string
	for v := range 300 {
		codes = append(codes, fmt.Sprintf("%03d", v+1))
	}
	// Three tablets, each pushing households round-robin over villages
	// so runs are short and interleave; plus one long run in village 300.
	for r := range 3 {
		g := storetest.New(fmt.Sprintf("tab-%d", r), "001")
		var batch []*rasoatv1.Change
		for k := range 40 {
			g.Village = codes[(k*7+r*101)%300]
			batch = append(batch, storetest.Must(g.Household(0))...)
		}
		if _, err := db.Push(ctx, store.Sender{Replica: g.Replica}, batch); err != nil {
			t.Fatal(err)
		}
	}
	long := storetest.New("tab-long", "300")
	if _, err := db.Push(ctx, store.Sender{Replica: "tab-long"}, storetest.Must(long.Household(20))); err != nil {
		t.Fatal(err)
	}
	type row struct {
		pos store.Position
		id  string
	}
	pull := func(v store.Villages, from store.Position, limit int) []row {
		var out []row
		if _, _, err := db.Pull(ctx, v, from, limit, func(c *rasoatv1.Change, p store.Position) error {
			out = append(out, row{p, c.GetEntityId() + c.GetField()})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	all := pull(store.AllVillages(), store.Position{}, 1<<20)
	some := store.OnlyVillages(codes...)
	for k := 0; k < len(all); k += 7 {
		from := store.Position{}
		if k > 0 {
			from = all[k-1].pos
		}
		got := pull(some, from, 13)
		want := all[k:min(k+13, len(all))]
		if len(got) != len(want) {
			t.Fatalf("pull of 300 villages after %d: %d changes, want %d", from.Seq, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("pull of 300 villages after %d: change %d is %v, want %v", from.Seq, i, got[i], want[i])
			}
		}
	}
}

// TestSeqsUpToTheTopAreStoredAndFound: an origin's seqs up to 2^63-1 are
// stored, found again as duplicates (dense and sparse), and followed by an
// earlier seq with an earlier stamp; a run's last seq there is 2^63-1.
func TestSeqsUpToTheTopAreStoredAndFound(t *testing.T) {
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	g := storetest.New("tab-top", "001")
	hh := storetest.Must(g.Household(1))
	top := uint64(math.MaxInt64)
	n := uint64(len(hh))
	// hh[0] kept aside for an earlier seq with an earlier stamp.
	early := hh[0]
	rest := hh[1:]
	for i, c := range rest {
		c.Seq = top - (n - 2) + uint64(i)
	}
	res, err := db.Push(ctx, store.Sender{Replica: "tab-top"}, rest)
	if err != nil || res.Accepted != len(rest) {
		t.Fatalf("push at the top: %+v, %v", res, err)
	}
	if res.ReplicaHighSeq != top {
		t.Fatalf("ReplicaHighSeq = %d, want %d", res.ReplicaHighSeq, top)
	}
	res, err = db.Push(ctx, store.Sender{Replica: "tab-top"}, rest)
	if err != nil || res.Duplicates != len(rest) {
		t.Fatalf("resend at the top: %+v, %v", res, err)
	}
	picks := []*rasoatv1.Change{rest[0], rest[len(rest)-1]}
	res, err = db.Push(ctx, store.Sender{Replica: "tab-top"}, picks)
	if err != nil || res.Duplicates != len(picks) {
		t.Fatalf("sparse resend at the top: %+v, %v", res, err)
	}
	early.Seq = top - 1000
	res, err = db.Push(ctx, store.Sender{Replica: "tab-top"}, []*rasoatv1.Change{early})
	if err != nil || res.Accepted != 1 {
		t.Fatalf("earlier seq with an earlier stamp: %+v, %v", res, err)
	}
}

// TestRunFloorIsTheLeastStartOfARunThatCanHoldASeq pins the window every
// search by position reads: a run holds at most 256 changes, and a seq no
// int64 holds (none is stored) selects no run rather than every one.
func TestRunFloorIsTheLeastStartOfARunThatCanHoldASeq(t *testing.T) {
	for _, tc := range []struct {
		s    uint64
		want int64
	}{
		{0, 0}, {1, 0}, {255, 0}, {256, 1}, {1000, 745},
		{math.MaxInt64, math.MaxInt64 - 255},
		{math.MaxInt64 + 1, math.MaxInt64},
		{math.MaxUint64, math.MaxInt64},
	} {
		if got := sqlite.RunFloor(tc.s); got != tc.want {
			t.Errorf("runFloor(%d) = %d, want %d", tc.s, got, tc.want)
		}
	}
}
