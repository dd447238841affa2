package merge_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
)

func st(ts uint64, replica string) merge.Stamp {
	return merge.Stamp{HLC: hlc.Timestamp(ts), Replica: replica}
}

// ch is a change to the one field under test, written having seen the heads
// stamped base.
func ch(replica string, seq, ts uint64, value string, base ...merge.Stamp) merge.Change {
	return merge.Change{
		Entity: "0192f0c1-0000-7000-8000-000000000001", Kind: "household", Field: "headName",
		Value: []byte(value), Stamp: st(ts, replica), Seq: seq, Base: base,
	}
}

func encode(t testing.TB, f merge.Field) []byte {
	t.Helper()
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStamp(t *testing.T) {
	for _, tc := range []struct {
		a, b merge.Stamp
		want int
	}{
		{st(1, "z"), st(2, "a"), -1},
		{st(2, "a"), st(2, "b"), -1},
		{st(2, "b"), st(2, "b"), 0},
		{st(3, "a"), st(2, "b"), 1},
		{merge.Stamp{}, st(0, "a"), -1},
	} {
		if got := tc.a.Compare(tc.b); got != tc.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := tc.a.Less(tc.b); got != (tc.want < 0) {
			t.Errorf("%s.Less(%s) = %v", tc.a, tc.b, got)
		}
	}
	if !(merge.Stamp{}).IsZero() || st(0, "a").IsZero() || st(1, "").IsZero() {
		t.Error("IsZero wrong")
	}
	if got := st(0x2a, "tab-1").String(); got != "000000000000002a@tab-1" {
		t.Errorf("String() = %q", got)
	}
}

// head is the expected (value, stamp) of a visible change.
type head struct {
	value string
	stamp merge.Stamp
}

func heads(hs []merge.Head) []head {
	var out []head
	for _, h := range hs {
		out = append(out, head{string(h.Value), h.Stamp})
	}
	return out
}

func TestApply(t *testing.T) {
	a1 := ch("tab-a", 1, 100, "Nguyễn Văn An")
	type step struct {
		c       merge.Change
		changed bool
	}
	for _, tc := range []struct {
		name      string
		steps     []step
		winner    head
		conflicts []head // heads whose value differs from the winner's; nil: no conflict
		nHeads    int
	}{
		{
			name: "later HLC wins",
			steps: []step{
				{ch("tab-a", 1, 200, "An"), true},
				{ch("tab-z", 1, 100, "Anh"), true}, // greater replica id, earlier HLC
			},
			winner:    head{"An", st(200, "tab-a")},
			conflicts: []head{{"Anh", st(100, "tab-z")}},
			nHeads:    2,
		},
		{
			name: "equal HLC: greater replica id wins",
			steps: []step{
				{ch("tab-b", 1, 100, "An"), true},
				{ch("tab-a", 1, 100, "Bình"), true}, // greater value, lesser replica id
			},
			winner:    head{"An", st(100, "tab-b")},
			conflicts: []head{{"Bình", st(100, "tab-a")}},
			nHeads:    2,
		},
		{
			name: "duplicate change is a no-op",
			steps: []step{
				{a1, true},
				{a1, false},
				{ch("tab-b", 1, 150, "An (b)"), true},
				{a1, false},
			},
			winner:    head{"An (b)", st(150, "tab-b")},
			conflicts: []head{{"Nguyễn Văn An", st(100, "tab-a")}},
			nHeads:    2,
		},
		{
			name: "concurrent edits with different values are a conflict",
			steps: []step{
				{a1, true},
				{ch("tab-a", 2, 200, "Nguyễn Văn Ân", a1.Stamp), true},
				{ch("tab-b", 1, 210, "Nguyễn Văn Anh", a1.Stamp), true},
			},
			winner:    head{"Nguyễn Văn Anh", st(210, "tab-b")},
			conflicts: []head{{"Nguyễn Văn Ân", st(200, "tab-a")}},
			nHeads:    2,
		},
		{
			name: "concurrent edits with the same value are not a conflict",
			steps: []step{
				{a1, true},
				{ch("tab-a", 2, 200, "Nguyễn Văn Ân", a1.Stamp), true},
				{ch("tab-b", 1, 210, "Nguyễn Văn Ân", a1.Stamp), true},
			},
			winner: head{"Nguyễn Văn Ân", st(210, "tab-b")},
			nHeads: 2,
		},
		{
			name: "sequential edit by one author is not a conflict",
			steps: []step{
				{a1, true},
				{ch("tab-a", 2, 200, "Nguyễn Văn Ân", a1.Stamp), true},
			},
			winner: head{"Nguyễn Văn Ân", st(200, "tab-a")},
			nHeads: 1,
		},
		{
			name: "sequential edit by another author who saw the value is not a conflict",
			steps: []step{
				{a1, true},
				{ch("tab-b", 1, 90, "Nguyễn Văn Ân", a1.Stamp), false}, // impossible stamp below base: ignored
				{ch("tab-b", 1, 101, "Nguyễn Văn Ân", a1.Stamp), true},
			},
			winner: head{"Nguyễn Văn Ân", st(101, "tab-b")},
			nHeads: 1,
		},
		{
			name: "a second edit by one author does not hide a concurrent edit by another",
			steps: []step{
				{ch("tab-a", 1, 150, "Ánh"), true},
				{ch("tab-b", 1, 200, "Ân"), true},                   // without having seen tab-a's edit
				{ch("tab-b", 2, 250, "Ấn", st(200, "tab-b")), true}, // tab-b corrects its own typo
			},
			winner:    head{"Ấn", st(250, "tab-b")},
			conflicts: []head{{"Ánh", st(150, "tab-a")}},
			nHeads:    2,
		},
		{
			name: "an old edit from a replica no author has seen stays visible",
			steps: []step{
				{ch("tab-c", 1, 150, "Ánh"), true},
				{ch("tab-a", 2, 200, "Ân", a1.Stamp), true},
				{ch("tab-b", 1, 90, "Anh"), true}, // below a1's stamp, but nobody saw it
			},
			winner:    head{"Ân", st(200, "tab-a")},
			conflicts: []head{{"Anh", st(90, "tab-b")}, {"Ánh", st(150, "tab-c")}},
			nHeads:    3,
		},
		{
			name: "resolving with all heads as base closes the conflict",
			steps: []step{
				{a1, true},
				{ch("tab-a", 2, 200, "Ân", a1.Stamp), true},
				{ch("tab-b", 1, 210, "Anh", a1.Stamp), true},
				{ch("tab-c", 1, 205, "Ánh", a1.Stamp), true},
				{ch("officer", 1, 300, "Ân", st(200, "tab-a"), st(205, "tab-c"), st(210, "tab-b")), true},
			},
			winner: head{"Ân", st(300, "officer")},
			nHeads: 1,
		},
		{
			name: "base naming only the winner leaves a third concurrent head open",
			steps: []step{
				{a1, true},
				{ch("tab-a", 2, 200, "Ân", a1.Stamp), true},
				{ch("tab-b", 1, 210, "Anh", a1.Stamp), true},
				{ch("tab-c", 1, 205, "Ánh", a1.Stamp), true},
				{ch("officer", 1, 300, "Ân", st(210, "tab-b")), true},
			},
			winner:    head{"Ân", st(300, "officer")},
			conflicts: []head{{"Ánh", st(205, "tab-c")}},
			nHeads:    3, // tab-a's "Ân" is a head too, with the winner's value
		},
		{
			name: "writing with an older head as base does not resolve the conflict",
			steps: []step{
				{a1, true},
				{ch("tab-a", 2, 200, "Ân", a1.Stamp), true},
				{ch("tab-b", 1, 210, "Anh", a1.Stamp), true},
				{ch("officer", 1, 300, "Ân", st(200, "tab-a")), true},
			},
			winner:    head{"Ân", st(300, "officer")},
			conflicts: []head{{"Anh", st(210, "tab-b")}},
			nHeads:    2,
		},
		{
			name: "covered stale change is dropped",
			steps: []step{
				{ch("tab-a", 2, 200, "Ân", a1.Stamp), true}, // arrives before the change it was based on
				{a1, false},
			},
			winner: head{"Ân", st(200, "tab-a")},
			nHeads: 1,
		},
		{
			name: "a later base entry of one replica covers its earlier writes",
			steps: []step{
				{a1, true},
				{ch("tab-a", 2, 200, "Ân", a1.Stamp), true},
				{ch("tab-b", 1, 300, "Anh", st(200, "tab-a")), true}, // names only tab-a's latest write
			},
			winner: head{"Anh", st(300, "tab-b")},
			nHeads: 1,
		},
		{
			name: "edit based on a superseded value is a conflict",
			steps: []step{
				{a1, true},
				{ch("tab-a", 2, 200, "Ân", a1.Stamp), true},
				{ch("tab-b", 1, 300, "Anh", a1.Stamp), true}, // tab-b had not seen tab-a's second edit
			},
			winner:    head{"Anh", st(300, "tab-b")},
			conflicts: []head{{"Ân", st(200, "tab-a")}},
			nHeads:    2,
		},
		{
			name: "base entries count in any order",
			steps: []step{
				{a1, true},
				{ch("tab-b", 1, 110, "Anh"), true},
				{ch("officer", 1, 300, "Ân", st(110, "tab-b"), a1.Stamp), true}, // unsorted: Validate refuses it, Apply needn't care
			},
			winner: head{"Ân", st(300, "officer")},
			nHeads: 1,
		},
		{
			name: "change whose base is not before its stamp is ignored",
			steps: []step{
				{a1, true},
				{ch("tab-b", 1, 500, "Bình", st(500, "tab-b")), false},
				{ch("tab-b", 2, 500, "Bình", st(900, "tab-z")), false},
				{ch("tab-b", 3, 500, "Bình", a1.Stamp, st(500, "tab-a")), false}, // equal HLC, lesser replica id
				{ch("tab-b", 4, 500, "Bình", merge.Stamp{Replica: "tab-a"}), false},
				{ch("tab-b", 5, 500, "Bình", merge.Stamp{HLC: 1}), false},
			},
			winner: head{"Nguyễn Văn An", a1.Stamp},
			nHeads: 1,
		},
		{
			name: "one stamp on two different changes (a faulty replica): both kept, in a fixed order",
			steps: []step{
				{ch("tab-a", 2, 100, "Y"), true},
				{ch("tab-a", 1, 100, "Z"), true},
				{ch("tab-a", 1, 100, "X"), true},
			},
			winner:    head{"Y", st(100, "tab-a")},
			conflicts: []head{{"X", st(100, "tab-a")}, {"Z", st(100, "tab-a")}},
			nHeads:    3,
		},
		{
			name: "a change re-sent with a newer base (a faulty replica) still reports what it covers",
			steps: []step{
				{a1, true},
				{ch("tab-b", 1, 200, "Bình"), true},
				{ch("tab-b", 1, 200, "Bình", a1.Stamp), true},
			},
			winner: head{"Bình", st(200, "tab-b")},
			nHeads: 1,
		},
		{
			name: "empty and nil values are equal",
			steps: []step{
				{merge.Change{Stamp: st(1, "a"), Seq: 1, Value: nil}, true},
				{merge.Change{Stamp: st(2, "b"), Seq: 1, Value: []byte{}}, true},
			},
			winner: head{"", st(2, "b")},
			nHeads: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f merge.Field
			for i, s := range tc.steps {
				if got := f.Apply(s.c); got != s.changed {
					t.Errorf("step %d: Apply(%s %q) = %v, want %v", i, s.c.Stamp, s.c.Value, got, s.changed)
				}
			}
			w, ok := f.Winner()
			if !ok || (head{string(w.Value), w.Stamp}) != tc.winner {
				t.Errorf("Winner() = %q %s, %v; want %q %s", w.Value, w.Stamp, ok, tc.winner.value, tc.winner.stamp)
			}
			cw, others, conflict := f.Conflict()
			if conflict != (tc.conflicts != nil) || !slices.Equal(heads(others), tc.conflicts) {
				t.Errorf("Conflict() = %v %v, want %v", conflict, heads(others), tc.conflicts)
			}
			if conflict && cw.Stamp != w.Stamp {
				t.Errorf("Conflict() winner %s, Winner() %s", cw.Stamp, w.Stamp)
			}
			if len(f.Heads) != tc.nHeads {
				t.Errorf("len(Heads) = %d, want %d: %v", len(f.Heads), tc.nHeads, heads(f.Heads))
			}

			// The state depends only on the set: every order gives the same bytes.
			want := encode(t, f)
			for p := range permutations(len(tc.steps)) {
				var g merge.Field
				for _, i := range p {
					g.Apply(tc.steps[i].c)
				}
				if got := encode(t, g); !bytes.Equal(got, want) {
					t.Fatalf("order %v: encoding %x, want %x", p, got, want)
				}
			}
		})
	}
}

// permutations yields every ordering of 0..n-1 (Heap's algorithm).
func permutations(n int) func(func([]int) bool) {
	return func(yield func([]int) bool) {
		p := make([]int, n)
		for i := range p {
			p[i] = i
		}
		c := make([]int, n)
		if !yield(p) {
			return
		}
		for i := 0; i < n; {
			if c[i] < i {
				if i%2 == 0 {
					p[0], p[i] = p[i], p[0]
				} else {
					p[c[i]], p[i] = p[i], p[c[i]]
				}
				if !yield(p) {
					return
				}
				c[i]++
				i = 0
			} else {
				c[i] = 0
				i++
			}
		}
	}
}

func TestEmptyField(t *testing.T) {
	var f merge.Field
	if _, ok := f.Winner(); ok {
		t.Error("Winner() ok on an unset field")
	}
	if _, _, ok := f.Conflict(); ok {
		t.Error("Conflict() ok on an unset field")
	}
	if b := f.Base(); b != nil {
		t.Errorf("Base() = %v on an unset field", b)
	}
	if f.Apply(merge.Change{Value: []byte("x")}) {
		t.Error("Apply of a change with a zero stamp changed the field")
	}
	if f.Apply(merge.Change{Value: []byte("x"), Stamp: st(5, "")}) {
		t.Error("Apply of a change with no replica changed the field")
	}
}

func TestBase(t *testing.T) {
	var f merge.Field
	a := ch("tab-a", 1, 100, "An")
	f.Apply(a)
	if got := f.Base(); !slices.Equal(got, []merge.Stamp{a.Stamp}) {
		t.Fatalf("Base() = %v, want the one head", got)
	}
	f.Apply(ch("tab-c", 1, 205, "Ánh", a.Stamp))
	f.Apply(ch("tab-b", 1, 210, "Anh", a.Stamp))
	f.Apply(ch("tab-b", 2, 210, "Anh?", a.Stamp)) // a faulty replica reusing a stamp
	f.Apply(ch("tab-a", 2, 205, "Ân", a.Stamp))
	want := []merge.Stamp{st(205, "tab-a"), st(205, "tab-c"), st(210, "tab-b")}
	base := f.Base()
	if !slices.Equal(base, want) {
		t.Fatalf("Base() = %v, want %v", base, want)
	}
	if _, _, ok := f.Conflict(); !ok {
		t.Fatal("no conflict before resolving")
	}
	r := ch("officer", 1, 300, "Ân", base...)
	if err := r.Validate(); err != nil {
		t.Fatalf("a write with Base() is invalid: %v", err)
	}
	// Base() is a copy: changing f afterwards leaves r alone.
	if !f.Apply(r) || !slices.Equal(r.Base, want) {
		t.Fatalf("Apply(resolution) changed r.Base to %v", r.Base)
	}
	if w, others, ok := f.Conflict(); ok || len(f.Heads) != 1 || w.Stamp != r.Stamp {
		t.Fatalf("after resolving: winner %s, conflict %v %v, %d heads", w.Stamp, others, ok, len(f.Heads))
	}
	if got := f.Base(); !slices.Equal(got, []merge.Stamp{r.Stamp}) {
		t.Fatalf("Base() after resolving = %v", got)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    merge.Change
		want string // empty: valid
	}{
		{"first write", ch("tab-a", 1, 100, "x"), ""},
		{"edit", ch("tab-a", 2, 200, "x", st(100, "tab-b")), ""},
		{"resolution", ch("tab-a", 2, 200, "x", st(100, "tab-b"), st(150, "tab-a"), st(150, "tab-c")), ""},
		{"zero hlc", ch("tab-a", 1, 0, "x"), "invalid change: stamp: hlc is zero"},
		{"no replica", ch("", 1, 100, "x"), "invalid change: stamp: replica is empty"},
		{"base equals stamp", ch("tab-a", 1, 100, "x", st(100, "tab-a")), "invalid change: base: 0000000000000064@tab-a is not before stamp 0000000000000064@tab-a"},
		{"base hlc equals stamp's, lesser replica", ch("tab-b", 1, 100, "x", st(100, "tab-a")), "invalid change: base: 0000000000000064@tab-a is not before stamp 0000000000000064@tab-b"},
		{"base after stamp", ch("tab-a", 1, 100, "x", st(50, "tab-c"), st(101, "tab-b")), "invalid change: base: 0000000000000065@tab-b is not before stamp 0000000000000064@tab-a"},
		{"base hlc zero", ch("tab-a", 1, 100, "x", st(0, "tab-b")), "invalid change: base: 0000000000000000@tab-b: hlc is zero"},
		{"base replica empty", ch("tab-a", 1, 100, "x", st(5, "")), "invalid change: base: 0000000000000005@: replica is empty"},
		{"base not sorted", ch("tab-a", 1, 100, "x", st(50, "tab-c"), st(50, "tab-b")), "invalid change: base: 0000000000000032@tab-b is not after 0000000000000032@tab-c (entries must be sorted and distinct)"},
		{"base duplicate", ch("tab-a", 1, 100, "x", st(50, "tab-c"), st(50, "tab-c")), "invalid change: base: 0000000000000032@tab-c is not after 0000000000000032@tab-c (entries must be sorted and distinct)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want || !errors.Is(err, merge.ErrInvalidChange) {
				t.Fatalf("Validate() = %v, want %q wrapping ErrInvalidChange", err, tc.want)
			}
		})
	}
}

// The common cases: an author edits its own value, or another author edits
// it, replacing the one head. Once f has capacity, Apply allocates nothing.
func TestApplyDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas []string
	}{
		{"same replica", []string{"tab-a"}},
		{"replicas taking turns", []string{"tab-a", "tab-b", "tab-c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f merge.Field
			c := merge.Change{Value: []byte("x"), Stamp: st(1, tc.replicas[0]), Seq: 1, Base: make([]merge.Stamp, 1)}
			c.Base = c.Base[:0]
			f.Apply(c)
			c.Base = c.Base[:1]
			i := 0
			next := func() {
				c.Base[0] = c.Stamp
				i++
				c.Stamp = merge.Stamp{HLC: c.Stamp.HLC + 1, Replica: tc.replicas[i%len(tc.replicas)]}
				c.Seq++
				if !f.Apply(c) || len(f.Heads) != 1 {
					t.Fatalf("not applied, or %d heads", len(f.Heads))
				}
			}
			for range len(tc.replicas) {
				next() // let Seen reach its size
			}
			if allocs := testing.AllocsPerRun(1000, next); allocs != 0 {
				t.Fatalf("Apply allocates %v times per call", allocs)
			}
			if allocs := testing.AllocsPerRun(100, func() { f.Apply(c) }); allocs != 0 {
				t.Fatalf("Apply of a duplicate allocates %v times per call", allocs)
			}
		})
	}
}

func benchmarkApply(b *testing.B, replicas ...string) {
	c := merge.Change{Value: []byte("Nguyễn Văn An"), Stamp: st(1<<32, replicas[0]), Seq: 1, Base: make([]merge.Stamp, 1)}
	var f merge.Field
	c.Base = c.Base[:0]
	f.Apply(c)
	c.Base = c.Base[:1]
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		c.Base[0] = c.Stamp
		i++
		c.Stamp = merge.Stamp{HLC: c.Stamp.HLC + 1, Replica: replicas[i%len(replicas)]}
		c.Seq++
		f.Apply(c)
	}
	if len(f.Heads) != 1 {
		b.Fatalf("%d heads", len(f.Heads))
	}
}

// BenchmarkApply is one author editing its own value.
func BenchmarkApply(b *testing.B) {
	benchmarkApply(b, "0192f0c1-aaaa-7000-8000-000000000001")
}

// BenchmarkApplyOtherReplica is authors taking turns, each editing the
// other's value.
func BenchmarkApplyOtherReplica(b *testing.B) {
	benchmarkApply(b, "0192f0c1-aaaa-7000-8000-000000000001", "0192f0c1-bbbb-7000-8000-000000000002")
}

// BenchmarkApplyResolve is resolving a three-way conflict and then
// re-opening it, to measure a multi-entry Base.
func BenchmarkApplyResolve(b *testing.B) {
	reps := []string{"tab-0", "tab-1", "tab-2"}
	vals := [][]byte{[]byte("An"), []byte("Ân"), []byte("Anh")}
	var f merge.Field
	ts := uint64(1 << 32)
	base := make([]merge.Stamp, 0, 3)
	b.ReportAllocs()
	for b.Loop() {
		base = base[:0]
		for i := range f.Heads {
			base = append(base, f.Heads[i].Stamp)
		}
		ts++
		for i, r := range reps {
			f.Apply(merge.Change{Value: vals[i], Stamp: st(ts, r), Seq: ts, Base: base})
		}
	}
	if len(f.Heads) != 3 {
		b.Fatalf("%d heads", len(f.Heads))
	}
}

// BenchmarkApplyDuplicate is the cost of a change already applied, as when a
// push is retried.
func BenchmarkApplyDuplicate(b *testing.B) {
	c := merge.Change{Value: []byte("x"), Stamp: st(1<<32, "0192f0c1-aaaa-7000-8000-000000000001"), Seq: 1}
	var f merge.Field
	f.Apply(c)
	b.ReportAllocs()
	for b.Loop() {
		f.Apply(c)
	}
}

func conflictField() merge.Field {
	var f merge.Field
	a := merge.Change{Value: []byte("value"), Stamp: st(1<<32, "0192f0c1-aaaa-7000-8000-000000000000"), Seq: 1}
	f.Apply(a)
	for i := range 3 {
		f.Apply(merge.Change{
			Value: fmt.Appendf(nil, "value %d", i),
			Stamp: st(uint64(1<<32+1+i), fmt.Sprintf("0192f0c1-aaaa-7000-8000-00000000000%d", i+1)),
			Seq:   1, Base: []merge.Stamp{a.Stamp},
		})
	}
	return f
}

func BenchmarkMarshalBinary(b *testing.B) {
	f := conflictField()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalBinary(b *testing.B) {
	f := conflictField()
	data := encode(b, f)
	b.ReportAllocs()
	for b.Loop() {
		var g merge.Field
		if err := g.UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestApplyDroppingNamesEveryChangeThatIsNoHead pins what a store's base
// check rests on: every change that went through a field is a head of it
// or was reported dropped (covered by a later base, or covered on
// arrival), in whatever order the changes arrive.
func TestApplyDroppingNamesEveryChangeThatIsNoHead(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	covered := 0
	for round := range 500 {
		// A history: each change's base names some earlier ones.
		var history []merge.Change
		seqs := map[string]uint64{}
		for range 12 {
			r := []string{"a", "b", "c"}[rng.IntN(3)]
			seqs[r]++
			var base []merge.Stamp
			for _, c := range history {
				if rng.IntN(3) == 0 {
					base = append(base, c.Stamp)
				}
			}
			slices.SortFunc(base, merge.Stamp.Compare)
			base = slices.CompactFunc(base, func(x, y merge.Stamp) bool { return x.Replica == y.Replica })
			c := ch(r, seqs[r], uint64(rng.IntN(1000)+1000*int(seqs[r])), fmt.Sprint(round), base...)
			if c.Validate() == nil { // not a base naming a later stamp, which no writer sends
				history = append(history, c)
			}
		}
		// Arriving in any order, as relays and restored tablets deliver.
		rng.Shuffle(len(history), func(i, j int) { history[i], history[j] = history[j], history[i] })
		var f merge.Field
		dropped := map[merge.Stamp]bool{}
		for _, c := range history {
			f.ApplyDropping(c, func(s merge.Stamp, _ uint64) {
				if s == c.Stamp {
					covered++
				}
				dropped[s] = true
			})
		}
		for _, c := range history {
			isHead := slices.ContainsFunc(f.Heads, func(h merge.Head) bool { return h.Stamp == c.Stamp })
			if isHead == dropped[c.Stamp] {
				t.Fatalf("round %d: change %s is a head: %v, reported dropped: %v (heads %v)", round, c.Stamp, isHead, dropped[c.Stamp], f.Heads)
			}
		}
	}
	if covered == 0 {
		t.Fatal("no change arrived covered: the test does not reach that case")
	}
}
