package merge_test

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
)

var seeds = flag.Int("merge.seeds", 500, "number of random histories TestConvergence checks")

// sim is a history of writes to one field by several replicas that sync at
// random (any subset of what another replica holds, in any order), each with
// its own skewed clock. It tracks what each author really knew, apart from
// the merge rule.
type sim struct {
	r        *rand.Rand
	wall     time.Time
	replicas []*replica
	changes  []merge.Change
	// past[i][j]: the author of change i had seen change j when writing it:
	// had applied it, or a change whose author had seen it (happened-before).
	past [][]bool
	// Some histories have authors who sometimes name only the winner as
	// Base rather than every head they hold.
	winnerOnly bool
}

// saw reports whether the author of change i had seen change j.
func (s *sim) saw(i, j int) bool { return j < len(s.past[i]) && s.past[i][j] }

type replica struct {
	id      string
	skew    time.Duration
	clock   *hlc.Clock
	field   merge.Field
	applied []bool // by change index: applied to field
	knows   []bool // by change index: applied, or seen by the author of a change applied
	seq     uint64
}

func newSim(seed uint64) *sim {
	s := &sim{r: rand.New(rand.NewPCG(seed, 0x6d65726765)), wall: time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)}
	s.winnerOnly = s.r.IntN(4) == 0
	for i := range 2 + s.r.IntN(4) {
		rp := &replica{id: fmt.Sprintf("tab-%d", i), skew: time.Duration(s.r.IntN(7)-3) * time.Millisecond}
		// Small skews and steps make equal HLCs across replicas common.
		rp.clock = hlc.New(func() time.Time { return s.wall.Add(rp.skew) })
		s.replicas = append(s.replicas, rp)
	}
	return s
}

var values = [][]byte{[]byte("An"), []byte("Ân"), []byte("Anh")}

func (s *sim) run(t *testing.T, steps int) {
	for range steps {
		s.wall = s.wall.Add(time.Duration(s.r.IntN(3)) * time.Millisecond)
		rp := s.replicas[s.r.IntN(len(s.replicas))]
		if s.r.IntN(10) < 6 || len(s.changes) == 0 {
			s.write(t, rp)
		} else {
			from := s.replicas[s.r.IntN(len(s.replicas))]
			for _, i := range s.r.Perm(len(s.changes)) {
				if from.applied[i] && s.r.IntN(2) == 0 {
					s.deliver(t, rp, i)
				}
			}
		}
		// Each replica holds exactly what the rule says for what it has applied.
		want := expected(s.changes, rp.applied)
		if got := encode(t, rp.field); !bytes.Equal(got, encode(t, want)) {
			t.Fatalf("%s holds %v, want %v", rp.id, rp.field, want)
		}
	}
}

// write makes a change the way a client does: based on every head it holds.
func (s *sim) write(t *testing.T, rp *replica) {
	base := rp.field.Base()
	if s.winnerOnly && len(base) > 1 && s.r.IntN(2) == 0 {
		w, _ := rp.field.Winner()
		base = []merge.Stamp{w.Stamp}
	}
	rp.seq++
	c := merge.Change{
		Entity: "e", Kind: "household", Field: "headName",
		Value: values[s.r.IntN(len(values))],
		Stamp: merge.Stamp{HLC: rp.clock.Now(), Replica: rp.id},
		Seq:   rp.seq,
		Base:  base,
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("%s wrote an invalid change: %v", rp.id, err)
	}
	s.changes = append(s.changes, c)
	for _, r := range s.replicas {
		r.applied = append(r.applied, false)
		r.knows = append(r.knows, false)
	}
	i := len(s.changes) - 1
	s.past = append(s.past, slices.Clone(rp.knows))
	rp.applied[i], rp.knows[i] = true, true
	if !rp.field.Apply(c) {
		t.Fatalf("%s: own write %d did not change its field", rp.id, i)
	}
}

func (s *sim) deliver(t *testing.T, rp *replica, i int) {
	c := s.changes[i]
	if err := rp.clock.Observe(c.Stamp.HLC); err != nil {
		t.Fatal(err)
	}
	before := encode(t, rp.field)
	changed := rp.field.Apply(c)
	if changed != !bytes.Equal(before, encode(t, rp.field)) || changed && rp.applied[i] {
		t.Fatalf("%s: Apply of change %d (applied %v) returned changed=%v", rp.id, i, rp.applied[i], changed)
	}
	rp.applied[i], rp.knows[i] = true, true
	for j, k := range s.past[i] {
		rp.knows[j] = rp.knows[j] || k
	}
}

// covers reports whether d covers c, by the rule's definition.
func covers(d, c merge.Change) bool {
	return slices.ContainsFunc(d.Base, func(b merge.Stamp) bool {
		return b.Replica == c.Stamp.Replica && b.HLC >= c.Stamp.HLC
	})
}

// expected computes the state straight from the definition, for the changes
// with include[i]: Seen is each replica's greatest HLC in any Base, and the
// heads are the changes no change covers.
func expected(changes []merge.Change, include []bool) merge.Field {
	var f merge.Field
	seen := map[string]hlc.Timestamp{}
	for i, c := range changes {
		if !include[i] {
			continue
		}
		for _, b := range c.Base {
			seen[b.Replica] = max(seen[b.Replica], b.HLC)
		}
		covered := false
		for j, d := range changes {
			covered = covered || include[j] && covers(d, c)
		}
		if !covered {
			f.Heads = append(f.Heads, merge.Head{Value: c.Value, Stamp: c.Stamp, Seq: c.Seq})
		}
	}
	for _, r := range slices.Sorted(maps.Keys(seen)) {
		f.Seen = append(f.Seen, merge.Stamp{HLC: seen[r], Replica: r})
	}
	slices.SortFunc(f.Heads, func(a, b merge.Head) int { return a.Stamp.Compare(b.Stamp) })
	return f
}

// superseded counts, over all histories, concurrent pairs (a, b) with
// different values where a is hidden only by changes whose authors saw a
// but not b: a's author, or someone who saw a, replaced it before seeing b.
var superseded atomic.Int64

func TestConvergence(t *testing.T) {
	n := *seeds
	if testing.Short() {
		n = min(n, 50)
	}
	superseded.Store(0)
	for seed := range uint64(n) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			checkHistory(t, seed)
		})
	}
	t.Logf("concurrent pairs with one side superseded by a change not having seen the other: %d", superseded.Load())
}

func checkHistory(t *testing.T, seed uint64) {
	s := newSim(seed)
	s.run(t, 5+s.r.IntN(40))
	all := make([]bool, len(s.changes))
	for i := range all {
		all[i] = true
	}
	want := expected(s.changes, all)
	wantBytes := encode(t, want)

	// Any order, with duplicates, gives the same bytes.
	for range 20 {
		order := s.r.Perm(len(s.changes))
		for range s.r.IntN(len(s.changes) + 1) {
			order = slices.Insert(order, s.r.IntN(len(order)+1), s.r.IntN(len(s.changes)))
		}
		var f merge.Field
		for _, i := range order {
			f.Apply(s.changes[i])
		}
		if got := encode(t, f); !bytes.Equal(got, wantBytes) {
			t.Fatalf("order %v gives %v, want %v", order, f, want)
		}
	}

	// Replicas that finish syncing hold the same bytes.
	for _, rp := range s.replicas {
		for _, i := range s.r.Perm(len(s.changes)) {
			if !rp.applied[i] {
				s.deliver(t, rp, i)
			}
		}
		if got := encode(t, rp.field); !bytes.Equal(got, wantBytes) {
			t.Fatalf("%s after full sync holds %v, want %v", rp.id, rp.field, want)
		}
	}
	f := &s.replicas[0].field

	// The winner is the greatest stamp.
	maxStamp := slices.MaxFunc(s.changes, func(a, b merge.Change) int { return a.Stamp.Compare(b.Stamp) }).Stamp
	if w, ok := f.Winner(); !ok || w.Stamp != maxStamp {
		t.Fatalf("winner %s, want the greatest stamp %s", w.Stamp, maxStamp)
	}

	index := make(map[merge.Stamp]int, len(s.changes))
	for i, c := range s.changes {
		index[c.Stamp] = i
	}
	isHead := make([]bool, len(s.changes))
	for _, h := range f.Heads {
		isHead[index[h.Stamp]] = true
	}
	describe := func(i int) string {
		c := s.changes[i]
		return fmt.Sprintf("#%d %s %q base %v", i, c.Stamp, c.Value, c.Base)
	}

	// Coverage follows knowledge: whoever covers a change had seen it.
	for i := range s.changes {
		for j := range s.changes {
			if covers(s.changes[j], s.changes[i]) && !s.saw(j, i) {
				t.Fatalf("%s covers %s, whose author had not seen it", describe(j), describe(i))
			}
		}
	}

	// A change no author has seen is a head: nothing is dropped silently.
	// When every author names all the heads it holds, the converse holds
	// too: the heads are exactly the changes no author has seen.
	for i := range s.changes {
		seenBy := -1
		for j := range s.changes {
			if s.saw(j, i) {
				seenBy = j
			}
		}
		switch {
		case seenBy < 0 && !isHead[i]:
			t.Fatalf("%s is hidden, yet no author saw it", describe(i))
		case seenBy >= 0 && isHead[i] && !s.winnerOnly:
			t.Fatalf("%s is a head, yet the author of %s saw it", describe(i), describe(seenBy))
		}
	}

	// Every concurrent pair with different values is an open conflict
	// listing both, unless a later change hides one of them. The author of
	// such a change saw the one it hides (checked above), and either saw the
	// other too, which resolves the pair, or did not: then the pair it forms
	// with the other is concurrent itself and checked in its own right.
	winner, others, conflict := f.Conflict()
	listed := func(c merge.Change) bool {
		return bytes.Equal(c.Value, winner.Value) || slices.ContainsFunc(others, func(h merge.Head) bool { return h.Stamp == c.Stamp })
	}
	for i, a := range s.changes {
		for j, b := range s.changes[:i] {
			if s.saw(i, j) || s.saw(j, i) || bytes.Equal(a.Value, b.Value) {
				continue
			}
			if isHead[i] && isHead[j] {
				if !conflict || !listed(a) || !listed(b) {
					t.Fatalf("concurrent heads %s and %s: conflict %v %v", describe(i), describe(j), conflict, others)
				}
				continue
			}
			for _, p := range [][2]int{{i, j}, {j, i}} {
				x, y := p[0], p[1]
				if isHead[x] {
					continue
				}
				resolved, by := false, -1
				for e := range s.changes {
					if !covers(s.changes[e], s.changes[x]) {
						continue
					}
					by = e
					if s.saw(e, y) {
						resolved = true
					} else if s.saw(y, e) {
						t.Fatalf("%s hides %s and was seen by %s, which did not see %s", describe(e), describe(x), describe(y), describe(x))
					}
				}
				if by < 0 {
					t.Fatalf("%s is hidden, yet nothing covers it", describe(x))
				}
				if !resolved {
					superseded.Add(1)
				}
			}
		}
	}

	// Any two heads were written without seeing each other, unless an
	// author chose to name only the winner.
	if !s.winnerOnly {
		for x, h := range f.Heads {
			for _, g := range f.Heads[:x] {
				i, j := index[h.Stamp], index[g.Stamp]
				if s.saw(i, j) || s.saw(j, i) {
					t.Fatalf("heads %s and %s are causally ordered, yet both visible", h.Stamp, g.Stamp)
				}
			}
		}
	}
	if conflict != slices.ContainsFunc(f.Heads, func(h merge.Head) bool { return !bytes.Equal(h.Value, winner.Value) }) {
		t.Fatal("Conflict() disagrees with the heads")
	}
	if !slices.IsSortedFunc(f.Heads, func(a, b merge.Head) int { return cmp.Compare(a.Stamp.HLC, b.Stamp.HLC) }) {
		t.Fatal("heads not sorted")
	}
	// A write with Base() closes the conflict and leaves one head.
	g := *f
	g.Heads = slices.Clone(f.Heads)
	g.Seen = slices.Clone(f.Seen)
	r := merge.Change{Value: []byte("resolved"), Stamp: merge.Stamp{HLC: maxStamp.HLC + 1, Replica: "officer"}, Seq: 1, Base: g.Base()}
	if err := r.Validate(); err != nil || !g.Apply(r) || len(g.Heads) != 1 {
		t.Fatalf("resolving with Base() %v: %v, %d heads", r.Base, err, len(g.Heads))
	}
}

// TestForgedBases adds to random honest histories the changes a hostile
// replica pushes (DESIGN.md "Nothing a tablet sends is trusted"): bases a
// day ahead of their own change, and bases naming stamps nobody wrote. A
// server refuses both (Validate, and the store's BASE_UNKNOWN check), but
// the rule must stay deterministic should one get through:
//   - a change whose base is not before its own stamp is ignored: the state
//     with it, in any order and with repeats, is byte for byte the state
//     without it;
//   - with forged bases, any order with repeats gives the bytes the
//     definition gives (expected), and so does merging the states of any
//     two sets of changes that together hold them all (Field.Merge, as a
//     snapshot is taken);
//   - a forged base hides only changes of the replica it names: every head
//     of the honest history by another replica stays a head.
func TestForgedBases(t *testing.T) {
	n := *seeds
	if testing.Short() {
		n = min(n, 50)
	}
	for seed := range uint64(n) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			checkForged(t, seed)
		})
	}
}

func checkForged(t *testing.T, seed uint64) {
	s := newSim(seed)
	s.run(t, 5+s.r.IntN(30))
	honest := s.changes
	r := rand.New(rand.NewPCG(seed, 0x666f72676564))
	top := slices.MaxFunc(honest, func(a, b merge.Change) int { return a.Stamp.Compare(b.Stamp) }).Stamp.HLC
	wrote := map[merge.Stamp]bool{}
	for _, c := range honest {
		wrote[c.Stamp] = true
	}
	var forged, future []merge.Change
	named := map[string]bool{}
	for i := range 1 + r.IntN(4) {
		stamp := merge.Stamp{HLC: top + hlc.Timestamp(1+r.IntN(1000)), Replica: "mallory"}
		victim := "ghost"
		if r.IntN(4) != 0 {
			victim = honest[r.IntN(len(honest))].Stamp.Replica
		}
		b := merge.Stamp{HLC: hlc.Timestamp(1 + r.Uint64N(uint64(stamp.HLC)-1)), Replica: victim}
		if wrote[b] {
			continue // named a real write after all
		}
		c := merge.Change{Entity: "e", Kind: "household", Field: "headName", Value: []byte("forged"), Stamp: stamp, Seq: uint64(i + 1), Base: []merge.Stamp{b}}
		if err := c.Validate(); err != nil {
			t.Fatalf("forged change %v: %v", c, err)
		}
		forged = append(forged, c)
		named[victim] = true
		f := c
		f.Stamp.Replica = "mallory-future"
		// Its own stamp's HLC, just after, or a day ahead.
		ahead := []hlc.Timestamp{stamp.HLC, stamp.HLC + 1, hlc.At(stamp.HLC.Wall().Add(24*time.Hour), 0)}
		f.Base = []merge.Stamp{{HLC: ahead[r.IntN(len(ahead))], Replica: victim}}
		if err := f.Validate(); err == nil {
			t.Fatalf("a change whose base %v is not before its stamp %v passes Validate", f.Base[0], f.Stamp)
		}
		future = append(future, f)
	}
	all := append(slices.Clone(honest), forged...)
	every := func(n int) []bool {
		b := make([]bool, n)
		for i := range b {
			b[i] = true
		}
		return b
	}
	wantHonest := encode(t, expected(honest, every(len(honest))))
	want := expected(all, every(len(all)))
	wantBytes := encode(t, want)
	apply := func(cs []merge.Change) merge.Field {
		order := r.Perm(len(cs))
		for range r.IntN(len(cs) + 1) {
			order = slices.Insert(order, r.IntN(len(order)+1), r.IntN(len(cs)))
		}
		var f merge.Field
		for _, i := range order {
			f.Apply(cs[i])
		}
		return f
	}
	for range 10 {
		if got := apply(append(slices.Clone(honest), future...)); !bytes.Equal(encode(t, got), wantHonest) {
			t.Fatalf("changes with a base not before their stamp changed the state: %v, want %v", got, expected(honest, every(len(honest))))
		}
		withAll := append(slices.Clone(all), future...)
		if got := apply(withAll); !bytes.Equal(encode(t, got), wantBytes) {
			t.Fatalf("with forged bases, an order gives %v, want %v", got, want)
		}
		var a, b []merge.Change
		for _, c := range withAll {
			switch r.IntN(3) {
			case 0:
				a = append(a, c)
			case 1:
				b = append(b, c)
			default:
				a, b = append(a, c), append(b, c)
			}
		}
		fa, fb := apply(a), apply(b)
		fa.Merge(&fb)
		if got := encode(t, fa); !bytes.Equal(got, wantBytes) {
			t.Fatalf("merging the states of two parts gives %v, want %v", fa, want)
		}
	}
	final := expected(all, every(len(all)))
	for _, h := range expected(honest, every(len(honest))).Heads {
		if !named[h.Stamp.Replica] && !slices.ContainsFunc(final.Heads, func(g merge.Head) bool { return g.Stamp == h.Stamp }) {
			t.Fatalf("a forged base naming %v hid %s, a head of another replica", slices.Sorted(maps.Keys(named)), h.Stamp)
		}
	}
}
