package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/protobuf/proto"
)

func open(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type logged struct {
	seq uint64
	c   *rasoatv1.Change
}

func pullAll(t testing.TB, db *sqlite.DB, villages []string, after uint64, limit int) []logged {
	t.Helper()
	var out []logged
	for {
		vs := store.AllVillages()
		if villages != nil {
			vs = store.OnlyVillages(villages...)
		}
		next, more, err := db.Pull(context.Background(), vs, store.Position{Seq: after}, limit, func(c *rasoatv1.Change, pos store.Position) error {
			out = append(out, logged{pos.Seq, c})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			return out
		}
		after = next.Seq
	}
}

func TestSchemaVersionIsSet(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	v, err := db.Version(context.Background())
	if err != nil || v != sqlite.SchemaVersion {
		t.Fatalf("Version = %d, %v; want %d", v, err, sqlite.SchemaVersion)
	}
}

func TestPushIsIdempotent(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	changes := storetest.Must(storetest.New("tab-a", "001").Household(2))
	first, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, changes)
	if err != nil {
		t.Fatal(err)
	}
	if first.Accepted != len(changes) || first.Duplicates != 0 || first.ServerSeq != uint64(len(changes)) {
		t.Fatalf("first push = %+v, want %d accepted", first, len(changes))
	}
	before := pullAll(t, db, nil, 0, 1000)
	second, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, changes)
	if err != nil {
		t.Fatal(err)
	}
	if second.Accepted != 0 || second.Duplicates != len(changes) || second.ServerSeq != first.ServerSeq {
		t.Fatalf("second push = %+v, want all %d duplicates", second, len(changes))
	}
	if after := pullAll(t, db, nil, 0, 1000); len(after) != len(before) {
		t.Fatalf("log grew from %d to %d on a retried push", len(before), len(after))
	}
}

func TestRepeatWithinABatchIsADuplicate(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	changes := storetest.Must(storetest.New("tab-a", "001").Household(0))
	res, err := db.Push(context.Background(), store.Sender{Replica: "tab-a"}, append(changes, changes[0]))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != len(changes) || res.Duplicates != 1 {
		t.Fatalf("push = %+v, want %d accepted and 1 duplicate", res, len(changes))
	}
}

func TestChangeOfAnotherVillageStoresNothing(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	g := storetest.New("tab-a", "001")
	hh := storetest.Must(g.Household(0))
	if _, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, hh); err != nil {
		t.Fatal(err)
	}
	edit := g.Edit(hh[0], `"x"`)
	edit.VillageCode = "002"
	batch := append(storetest.Must(g.Household(1)), edit)
	_, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, batch)
	var ce *store.ChangeError
	if !errors.As(err, &ce) || ce.Index != len(batch)-1 || ce.Field != "village_code" {
		t.Fatalf("Push = %v, want a ChangeError on changes[%d].village_code", err, len(batch)-1)
	}
	if got := pullAll(t, db, nil, 0, 1000); len(got) != len(hh) {
		t.Fatalf("log holds %d changes after a refused batch, want %d", len(got), len(hh))
	}
}

func TestPullResumesFromAnyCursorWithoutGapsOrRepeats(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	g := storetest.New("tab-a", "001")
	for range 3 {
		if _, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, storetest.Must(g.Household(2))); err != nil {
			t.Fatal(err)
		}
	}
	all := pullAll(t, db, nil, 0, 7)
	for i := 1; i < len(all); i++ {
		if all[i].seq <= all[i-1].seq {
			t.Fatalf("pull out of order at %d: %d after %d", i, all[i].seq, all[i-1].seq)
		}
	}
	for _, k := range []int{0, 1, 50, len(all) - 1} {
		rest := pullAll(t, db, nil, all[k].seq, 13)
		if len(rest) != len(all)-k-1 {
			t.Fatalf("pull after cursor %d gave %d changes, want %d", all[k].seq, len(rest), len(all)-k-1)
		}
		for i, l := range rest {
			if want := all[k+1+i]; l.seq != want.seq || !proto.Equal(l.c, want.c) {
				t.Fatalf("pull after %d: change %d is %d, want %d", all[k].seq, i, l.seq, want.seq)
			}
		}
	}
}

func TestPullFiltersByVillage(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	a, b := storetest.Must(storetest.New("tab-a", "001").Household(1)), storetest.Must(storetest.New("tab-b", "002").Household(1))
	for _, batch := range [][]*rasoatv1.Change{a, b} {
		if _, err := db.Push(ctx, store.Sender{Replica: "x"}, batch); err != nil {
			t.Fatal(err)
		}
	}
	got := pullAll(t, db, []string{"002"}, 0, 1000)
	if len(got) != len(b) {
		t.Fatalf("pull of village 002 gave %d changes, want %d", len(got), len(b))
	}
	for _, l := range got {
		if l.c.VillageCode != "002" {
			t.Fatalf("pull of village 002 gave a change of %s", l.c.VillageCode)
		}
	}
	if got := pullAll(t, db, []string{"001", "002"}, 0, 5); len(got) != len(a)+len(b) {
		t.Fatalf("pull of both villages gave %d, want %d", len(got), len(a)+len(b))
	}
}

func TestEntityStateIsTheSameWhateverThePushOrder(t *testing.T) {
	ctx := context.Background()
	ga, gb := storetest.New("tab-a", "001"), storetest.New("tab-b", "001")
	hh := storetest.Must(ga.Household(1))
	var edits []*rasoatv1.Change
	for _, c := range hh[:10] { // concurrent edits from both tablets, on the same base
		cleared, err := entity.Canonical(c.Kind, c.Field, []byte(`null`))
		if err != nil {
			t.Fatal(err)
		}
		edits = append(edits, ga.Edit(c, string(cleared)), gb.Edit(c, string(c.Value)))
	}
	all := storetest.Must(append(slices.Clone(hh), edits...))
	var want map[string][]byte
	for trial := range 4 {
		db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
		// Any order a server can take: a household before its members,
		// a value before the edits that name it in their base.
		var perm []*rasoatv1.Change
		rng := rand.New(rand.NewPCG(uint64(trial), 1))
		for _, group := range [][]*rasoatv1.Change{
			slices.DeleteFunc(slices.Clone(hh), func(c *rasoatv1.Change) bool { return c.Kind != rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD }),
			slices.DeleteFunc(slices.Clone(hh), func(c *rasoatv1.Change) bool { return c.Kind == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD }),
			slices.Clone(edits),
		} {
			rng.Shuffle(len(group), func(i, j int) { group[i], group[j] = group[j], group[i] })
			perm = append(perm, group...)
		}
		for start := 0; start < len(perm); start += 7 { // several pushes
			if _, err := db.Push(ctx, store.Sender{Replica: "x"}, perm[start:min(start+7, len(perm))]); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string][]byte{}
		for _, c := range all {
			s, ok, err := db.Entity(ctx, c.EntityId)
			if err != nil || !ok {
				t.Fatalf("Entity(%s) = %v, %v", c.EntityId, ok, err)
			}
			got[c.EntityId], _ = s.MarshalBinary()
		}
		if trial == 0 {
			want = got
			continue
		}
		for id := range want {
			if !bytes.Equal(got[id], want[id]) {
				t.Fatalf("trial %d: entity %s encodes differently", trial, id)
			}
		}
	}
}

func TestReopeningKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rasoat.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	changes := storetest.Must(storetest.New("tab-a", "001").Household(4))
	res, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, changes)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := db.Entity(ctx, changes[0].EntityId)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path)
	got := pullAll(t, db, nil, 0, 1000)
	if len(got) != res.Accepted || got[len(got)-1].seq != res.ServerSeq {
		t.Fatalf("reopened log holds %d changes up to %d, want %d up to %d", len(got), got[len(got)-1].seq, res.Accepted, res.ServerSeq)
	}
	s, ok, err := db.Entity(ctx, changes[0].EntityId)
	wb, _ := want.MarshalBinary()
	gb, _ := s.MarshalBinary()
	if err != nil || !ok || !bytes.Equal(wb, gb) {
		t.Fatalf("reopened entity differs: %v %v", ok, err)
	}
	again, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, changes)
	if err != nil || again.Duplicates != len(changes) {
		t.Fatalf("retry after reopen = %+v, %v; want all duplicates", again, err)
	}
}

func TestPushHonoursCancellation(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, storetest.Must(storetest.New("tab-a", "001").Household(0))); err == nil {
		t.Fatal("Push with an expired context succeeded")
	}
	if got := pullAll(t, db, nil, 0, 10); len(got) != 0 {
		t.Fatalf("log holds %d changes after a cancelled push", len(got))
	}
}

// TestReusedSeqIsTheSameWriteOnlyOverTheSameBase: a change pushed under
// an (origin, seq) stored with another stamp is the stored write
// re-stamped (MismatchError.SameWrite: the origin drops its copy) only
// when it writes the same value over the same base. The same value over
// another base is a new write of a file restored from a copy, made after
// seeing other writes, which the origin must issue again; taken for the
// stored one, it was dropped and lost (TestConvergence seed 160, see
// internal/robustness TestRestoredFileWritesTheSameValueAgain).
func TestReusedSeqIsTheSameWriteOnlyOverTheSameBase(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	a, b := storetest.New("tab-a", "001"), storetest.New("tab-b", "001")
	hh := storetest.Must(a.Household(0))
	name := hh[slices.IndexFunc(hh, func(c *rasoatv1.Change) bool { return c.GetField() == "headName" })]
	mine := a.Edit(name, `"Lò Văn Pọm"`)
	if _, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, append(hh, mine)); err != nil {
		t.Fatal(err)
	}
	theirs := b.Edit(mine, `"Lò Văn Pặn"`)
	if _, err := db.Push(ctx, store.Sender{Replica: "tab-b"}, []*rasoatv1.Change{theirs}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		base []*rasoatv1.Stamp
		same bool
	}{
		{"the same value over the same base, re-stamped, is the same write", mine.Base, true},
		{"the same value over another base is another write", []*rasoatv1.Stamp{theirs.Stamp}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			again := proto.Clone(mine).(*rasoatv1.Change)
			again.Stamp.Hlc = theirs.Stamp.Hlc + 1000
			again.Base = tc.base
			_, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, []*rasoatv1.Change{again})
			var me *store.MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("Push = %v, want a MismatchError", err)
			}
			if me.SameWrite != tc.same || tc.same && me.StoredHLC != mine.Stamp.Hlc {
				t.Errorf("SameWrite = %v (stored stamp %d), want %v (stored stamp %d)", me.SameWrite, me.StoredHLC, tc.same, mine.Stamp.Hlc)
			}
		})
	}
}
