package conformance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/protobuf/proto"
)

// sameLog fails t unless got is want (changes and positions).
func sameLog(t *testing.T, got, want []logged, what string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d changes, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].pos != want[i].pos || !proto.Equal(got[i].c, want[i].c) {
			t.Fatalf("%s: change %d at %+v, want %+v", what, i, got[i].pos, want[i].pos)
		}
	}
}

// fills numbers the replicas of fill, so that no two calls write under
// one origin.
var fills atomic.Uint64

// fill pushes households to st in villages, round robin, each village's
// from a new replica, and returns them.
func fill(t *testing.T, st Store, households int, villages ...string) []*rasoatv1.Change {
	t.Helper()
	var all []*rasoatv1.Change
	gens := make([]*storetest.Gen, len(villages))
	for i, v := range villages {
		gens[i] = storetest.New(fmt.Sprintf("tab-%s-%d", v, fills.Add(1)), v)
	}
	for i := range households {
		g := gens[i%len(gens)]
		batch := storetest.Must(g.Household(i % 3))
		push(t, st, g.Replica, batch...)
		all = append(all, batch...)
	}
	return all
}

// pullBatches: a pull gives at most limit changes, says exactly whether
// more follow, and a pull from any position it returned gives the rest of
// the log, without gaps or repeats, whatever the batch size.
func pullBatches(t *testing.T, open Open) {
	st, _ := open(t)
	fill(t, st, 6, "001")
	all := logOf(t, st)
	for _, limit := range []int{1, 7, len(all) / 2, len(all) - 1, len(all), len(all) + 1, math.MaxInt} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			var got []logged
			from := store.Position{}
			for calls := 1; ; calls++ {
				n := 0
				next, more, err := st.Pull(t.Context(), store.AllVillages(), from, limit, func(c *rasoatv1.Change, pos store.Position) error {
					got = append(got, logged{pos, c})
					n++
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if wantN := min(limit, len(all)-len(got)+n); n != wantN {
					t.Fatalf("call %d gave %d changes, want %d", calls, n, wantN)
				}
				if more != (len(got) < len(all)) {
					t.Fatalf("call %d: more = %v with %d of %d changes read", calls, more, len(got), len(all))
				}
				if !more {
					break
				}
				from = next
			}
			sameLog(t, got, all, "the log in batches")
		})
	}
	for _, k := range []int{0, 1, len(all) / 2, len(all) - 2, len(all) - 1} {
		sameLog(t, pullAll(t, st, store.AllVillages(), all[k].pos, 13), all[k+1:], fmt.Sprintf("pull after change %d", k))
		// A position's check may be left out (0): it is then not checked.
		sameLog(t, pullAll(t, st, store.AllVillages(), store.Position{Seq: all[k].pos.Seq}, 13), all[k+1:], fmt.Sprintf("pull after change %d without its check", k))
	}
	// An error from fn stops the pull and is returned.
	stop := errors.New("stop")
	calls := 0
	_, _, err := st.Pull(t.Context(), store.AllVillages(), store.Position{}, 100, func(*rasoatv1.Change, store.Position) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("pull whose fn fails = %v after %d calls, want its error after 1", err, calls)
	}
}

// pullVillages: a pull reads the villages asked, in log order, at the
// positions of the whole log: every village, some, or none at all (a scope
// narrowed to nothing reads nothing, never everything).
func pullVillages(t *testing.T, open Open) {
	st, _ := open(t)
	fill(t, st, 9, "001", "002", "003")
	all := logOf(t, st)
	only := func(vs ...string) []logged {
		return slices.DeleteFunc(slices.Clone(all), func(l logged) bool { return !slices.Contains(vs, l.c.VillageCode) })
	}
	for _, tc := range []struct {
		name     string
		villages store.Villages
		want     []logged
	}{
		{"every village", store.AllVillages(), all},
		{"one village", store.OnlyVillages("002"), only("002")},
		{"two villages", store.OnlyVillages("003", "001"), only("001", "003")},
		{"a village listed twice", store.OnlyVillages("001", "001"), only("001")},
		{"a village with no change", store.OnlyVillages("999"), nil},
		{"no village", store.OnlyVillages(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 5, 1000} {
				sameLog(t, pullAll(t, st, tc.villages, store.Position{}, limit), tc.want, fmt.Sprintf("limit %d", limit))
			}
			if len(tc.want) > 1 {
				// Resuming from a position of the filtered pull.
				sameLog(t, pullAll(t, st, tc.villages, tc.want[0].pos, 3), tc.want[1:], "resumed")
			}
		})
	}
	t.Run("no village reads nothing and stays where it was", func(t *testing.T) {
		from := all[3].pos
		next, more, err := st.Pull(t.Context(), store.OnlyVillages(), from, 10, func(*rasoatv1.Change, store.Position) error {
			t.Fatal("a pull of no village gave a change")
			return nil
		})
		if err != nil || more || next != from {
			t.Fatalf("pull of no village = %+v, %v, %v; want %+v, false, nil", next, more, err, from)
		}
	})
}

// cursors: a position is checked against the log before anything is read:
// past the log's end is store.ErrCursorAhead (a backup restored since, or
// another server); a check that differs from the log's at that position is
// store.ErrLogChanged (another log, or one rewritten past the cursor).
func cursors(t *testing.T, open Open) {
	st, _ := open(t)
	errGave := errors.New("a refused pull gave a change")
	noFn := func(*rasoatv1.Change, store.Position) error { return errGave }
	if _, _, err := st.Pull(t.Context(), store.AllVillages(), store.Position{Seq: 1}, 10, noFn); !errors.Is(err, store.ErrCursorAhead) {
		t.Fatalf("pull after 1 from an empty log = %v, want ErrCursorAhead", err)
	}
	fill(t, st, 3, "001")
	all := logOf(t, st)
	end := all[len(all)-1].pos
	mid := all[len(all)/2].pos
	other, _ := open(t)
	fill(t, other, 3, "001")
	otherLog := logOf(t, other)
	for _, tc := range []struct {
		name string
		from store.Position
		want error
	}{
		{"one past the end", store.Position{Seq: end.Seq + 1}, store.ErrCursorAhead},
		{"far past the end", store.Position{Seq: end.Seq + 1<<40}, store.ErrCursorAhead},
		{"a wrong check", store.Position{Seq: mid.Seq, Check: mid.Check ^ 1}, store.ErrLogChanged},
		{"a position of another log", otherLog[len(all)/2].pos, store.ErrLogChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == store.ErrLogChanged && tc.from.Seq > end.Seq {
				t.Skip("the other log is longer: not a position here")
			}
			for _, vs := range []store.Villages{store.AllVillages(), store.OnlyVillages("001")} {
				if _, _, err := st.Pull(t.Context(), vs, tc.from, 10, noFn); !errors.Is(err, tc.want) {
					t.Fatalf("pull after %+v = %v, want %v", tc.from, err, tc.want)
				}
			}
		})
	}
	t.Run("the end and a snapshot's position are positions of the log", func(t *testing.T) {
		_, pos := snapshotOf(t, st, store.SnapshotQuery{Villages: store.AllVillages()})
		for _, from := range []store.Position{end, pos} {
			next, more, err := st.Pull(t.Context(), store.AllVillages(), from, 10, noFn)
			if err != nil || more || next != from {
				t.Fatalf("pull after the end %+v = %+v, %v, %v; want nothing more", from, next, more, err)
			}
		}
	})
}

// pullWhilePushing: a replica pulling while others push, from each
// position it was given, ends with every change of the log exactly once
// and in log order: a change is never made visible behind a position
// already handed out (as a sequence that commits out of order would).
func pullWhilePushing(t *testing.T, open Open) {
	st, _ := open(t)
	const pushers, rounds = 4, 12
	var done atomic.Bool
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			g := storetest.New(fmt.Sprintf("tab-%d", p), fmt.Sprintf("%03d", 1+p%2))
			for r := range rounds {
				if _, err := st.Push(context.Background(), store.Sender{Replica: g.Replica}, storetest.Must(g.Household(r%3))); err != nil {
					t.Errorf("push: %v", err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); done.Store(true) }()
	var got []logged
	from := store.Position{}
	for {
		last := done.Load() // read before the pull: a pull after the pushers ended reads to the end
		next, more, err := st.Pull(t.Context(), store.AllVillages(), from, 37, func(c *rasoatv1.Change, pos store.Position) error {
			got = append(got, logged{pos, c})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		from = next
		if last && !more {
			break
		}
	}
	wg.Wait()
	sameLog(t, got, logOf(t, st), "the changes pulled while pushing")
}

// snapshotThenPull: a replica that merges a snapshot and then pulls from
// the snapshot's position holds exactly what replaying the log gives.
func snapshotThenPull(t *testing.T, open Open) {
	st, _ := open(t)
	before := fill(t, st, 12, "001", "002")
	states, pos := snapshotOf(t, st, store.SnapshotQuery{Villages: store.AllVillages()})
	log := logOf(t, st)
	if pos != log[len(log)-1].pos {
		t.Fatalf("a quiet store's snapshot is at %+v, its log ends at %+v", pos, log[len(log)-1].pos)
	}
	g := storetest.New("tab-z", "001")
	var after []*rasoatv1.Change
	for _, c := range before[:40] {
		if c.Field == "headName" || c.Field == "address" || c.Field == "fullName" {
			after = append(after, g.Edit(c, `"Pá Hu, bản Nậm"`))
		}
	}
	if len(after) == 0 {
		t.Fatal("no edits")
	}
	push(t, st, "tab-z", storetest.Must(after)...)
	fill(t, st, 2, "002")
	rest := pullAll(t, st, store.AllVillages(), pos, 50)
	want := replay(t, nil, logOf(t, st))
	sameStates(t, replay(t, states, rest), want, "snapshot then pull")
	final, _ := snapshotOf(t, st, store.SnapshotQuery{Villages: store.AllVillages()})
	sameStates(t, encoded(final), want, "a snapshot after the writes")
}

// snapshotUnderPushes: a snapshot taken while others push reflects at
// least the position it returns (perhaps later changes too), and that
// position is one of the log: merging the snapshot and then pulling from
// it gives what replaying the log gives.
func snapshotUnderPushes(t *testing.T, open Open) {
	st, _ := open(t)
	fill(t, st, 4, "001", "002")
	const pushers, rounds = 4, 15
	var done atomic.Bool
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			g := storetest.New(fmt.Sprintf("tab-%d", p), fmt.Sprintf("%03d", 1+p%2))
			var last *rasoatv1.Change // edited each round, so states change under the snapshot
			for r := range rounds {
				batch := storetest.Must(g.Household(2))
				if last == nil {
					last = batch[slices.IndexFunc(batch, func(c *rasoatv1.Change) bool { return c.Field == "headName" })]
				} else {
					last = g.Edit(last, fmt.Sprintf(`"Tên %d-%d"`, p, r))
					batch = append(batch, last)
				}
				if _, err := st.Push(context.Background(), store.Sender{Replica: g.Replica}, storetest.Must(batch)); err != nil {
					t.Errorf("push: %v", err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); done.Store(true) }()
	type snap struct {
		states map[string]*rasoatv1.EntityState
		pos    store.Position
	}
	var snaps []snap
	for !done.Load() || len(snaps) < 2 {
		states, pos := snapshotOf(t, st, store.SnapshotQuery{Villages: store.AllVillages()})
		if len(snaps) == 0 || snaps[len(snaps)-1].pos != pos {
			snaps = append(snaps, snap{states, pos})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Checking a snapshot replays the log: check a few, spread out.
	const checked = 6
	if len(snaps) > checked {
		spread := make([]snap, checked)
		for i := range spread {
			spread[i] = snaps[i*(len(snaps)-1)/(checked-1)]
		}
		snaps = spread
	}
	log := logOf(t, st)
	want := replay(t, nil, log)
	for i, s := range snaps {
		k := slices.IndexFunc(log, func(l logged) bool { return l.pos == s.pos })
		if k < 0 {
			t.Fatalf("snapshot %d's position %+v is not one of the log", i, s.pos)
		}
		rest := pullAll(t, st, store.AllVillages(), s.pos, 100)
		sameLog(t, rest, log[k+1:], fmt.Sprintf("pull after snapshot %d", i))
		sameStates(t, replay(t, s.states, rest), want, fmt.Sprintf("snapshot %d of %d, then pull", i, len(snaps)))
	}
}

// snapshotQuery: a snapshot reads the entities of the villages asked, or
// the entities named within them; unknown ids and no villages read nothing.
func snapshotQuery(t *testing.T, open Open) {
	st, _ := open(t)
	if states, pos := snapshotOf(t, st, store.SnapshotQuery{Villages: store.AllVillages()}); len(states) != 0 || pos != (store.Position{}) {
		t.Fatalf("an empty store's snapshot holds %d entities at %+v", len(states), pos)
	}
	all := fill(t, st, 6, "001", "002")
	in := map[string][]string{} // entity ids by village
	for _, c := range all {
		if !slices.Contains(in[c.VillageCode], c.EntityId) {
			in[c.VillageCode] = append(in[c.VillageCode], c.EntityId)
		}
	}
	every, end := snapshotOf(t, st, store.SnapshotQuery{Villages: store.AllVillages()})
	a, b := in["001"][1], in["002"][0]
	unknown := uuid.Must(uuid.NewV7()).String()
	for _, tc := range []struct {
		name string
		q    store.SnapshotQuery
		want []string
	}{
		{"every village", store.SnapshotQuery{Villages: store.AllVillages()}, append(slices.Clone(in["001"]), in["002"]...)},
		{"one village", store.SnapshotQuery{Villages: store.OnlyVillages("002")}, in["002"]},
		{"no village", store.SnapshotQuery{Villages: store.OnlyVillages()}, nil},
		{"a village with no entity", store.SnapshotQuery{Villages: store.OnlyVillages("999")}, nil},
		{"entities named", store.SnapshotQuery{Villages: store.AllVillages(), EntityIDs: []string{b, unknown, a}}, []string{a, b}},
		{"entities named within a village", store.SnapshotQuery{Villages: store.OnlyVillages("001"), EntityIDs: []string{a, b}}, []string{a}},
		{"entities named within no village", store.SnapshotQuery{Villages: store.OnlyVillages(), EntityIDs: []string{a, b}}, nil},
		{"no entity named", store.SnapshotQuery{Villages: store.AllVillages(), EntityIDs: []string{}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, pos := snapshotOf(t, st, tc.q)
			if pos != end {
				t.Errorf("snapshot at %+v, want the quiet store's %+v", pos, end)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("snapshot holds %d entities, want %d", len(got), len(tc.want))
			}
			for _, id := range tc.want {
				e, ok := got[id]
				if !ok {
					t.Fatalf("snapshot lacks entity %s", id)
				}
				if !proto.Equal(e, every[id]) {
					t.Fatalf("entity %s differs from the whole snapshot's", id)
				}
			}
		})
	}
}

// logID: every store's log has an id of its own, kept across a restart.
func logID(t *testing.T, open Open) {
	st, reopen := open(t)
	other, _ := open(t)
	id := st.LogID()
	if id == "" || other.LogID() == "" {
		t.Fatalf("log ids %q and %q: want non-empty", id, other.LogID())
	}
	if id == other.LogID() {
		t.Fatalf("two stores share the log id %s", id)
	}
	fill(t, st, 1, "001")
	if again := reopen(t).LogID(); again != id {
		t.Fatalf("log id %s after a reopen, %s before", again, id)
	}
}

// durability: what a store acknowledged is there after a reopen, byte for
// byte and at the same positions; a refused push left nothing; positions
// handed out before still count; the log goes on after them; and what is
// stored is still checked against (duplicates, mismatches).
func durability(t *testing.T, open Open) {
	st, reopen := open(t)
	g := storetest.New("tab-a", "001")
	var pushed []*rasoatv1.Change
	for i := range 4 {
		batch := storetest.Must(g.Household(i))
		push(t, st, "tab-a", batch...)
		pushed = append(pushed, batch...)
	}
	twin := clone(fieldOf(t, pushed, "headName"))
	twin.Value = []byte(`"Kẻ Gian"`)
	refused(t, st, "tab-b", store.ErrContentMismatch, 1, "seq", newWriter("tab-b").household("002", "headName", `"Vàng A Páo"`), must(twin))
	before := contentsOf(t, st)
	log := logOf(t, st)
	end := log[len(log)-1].pos

	st = reopen(t)
	untouched(t, st, before, "a reopen")
	if next, more, err := st.Pull(t.Context(), store.AllVillages(), end, 10, func(*rasoatv1.Change, store.Position) error { return nil }); err != nil || more || next != end {
		t.Fatalf("pull after the end before the reopen = %+v, %v, %v; want nothing more", next, more, err)
	}
	if res := push(t, st, "tab-a", pushed...); res.Accepted != 0 || res.Duplicates != len(pushed) || res.ReplicaHighSeq != highSeq(pushed) {
		t.Fatalf("a resend after the reopen = %+v, want all %d duplicates, replica high seq %d", res, len(pushed), highSeq(pushed))
	}
	refused(t, st, "tab-a", store.ErrContentMismatch, 0, "seq", twin)
	more := storetest.Must(g.Household(1))
	if res := push(t, st, "tab-a", more...); res.Accepted != len(more) || res.ServerSeq <= end.Seq {
		t.Fatalf("a push after the reopen = %+v, want %d accepted after %d", res, len(more), end.Seq)
	}
	rest := pullAll(t, st, store.AllVillages(), end, 100)
	if len(rest) != len(more) || !proto.Equal(rest[0].c, more[0]) {
		t.Fatalf("pull after the old end gives %d changes, want the %d pushed since", len(rest), len(more))
	}
	before = contentsOf(t, st)
	st = reopen(t)
	untouched(t, st, before, "a second reopen")
}
