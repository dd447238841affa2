// Package merge is the per-field merge rule shared by the tablet client and
// the sync server: a multi-value register whose deterministic winner is the
// last writer, and which hides an edit only once some author has seen it.
//
// # Changes
//
// Every write is a Change carrying its Stamp (HLC, then replica id as
// tie-break) and its Base: the stamps of all the heads of the field (see
// below) that its author's replica held when writing, which is what
// Field.Base returns. That is normally one stamp, the value being
// overwritten; several when the author resolves a conflict; none for the
// first write. Every Base entry's HLC is strictly below the change's own HLC
// (the author's clock has observed them, so hlc.Clock.Now is above them);
// Change.Validate rejects a change breaking this and Apply ignores it.
//
// # Coverage
//
// A change c is covered when some applied change d has a Base entry b with
// b.Replica == c.Stamp.Replica and b.HLC >= c.Stamp.HLC.
//
// The reason is that a replica is one sequential writer: each of its writes
// to a field is made on top of its own local state of that field, which
// already holds its previous writes, and its HLC only increases (hlc.Clock,
// with Clock.Restore after a restart). So the author of d, having seen
// replica R's write at t, has seen every write R made to the field at or
// before t, each either shown to it or replaced by R itself. A covered
// change was therefore seen by the author of a later change and replaced,
// either by R itself or by someone who saw it: coverage follows knowledge,
// not clocks. An earlier version of this rule compared whole stamps (c is
// covered when c.Stamp <= d.Base) and so hid, say, tablet A's edit at HLC
// 150 as soon as tablet B, which never saw it, edited its own value of HLC
// 200 a second time; per replica, B's Base names only B@200, which says
// nothing about A.
//
// Conversely, when every author writes with Field.Base, a replica that holds,
// with each change, every change its author had applied (as after a full
// sync) hides a change exactly when some author has seen it: if the author
// of x had applied c, then c was either one of its heads, and so in x.Base,
// or covered by a change it had applied, which the replica holds too. The
// heads are then exactly the changes no author has seen. Before that, a
// replica may also show as heads some changes an author has seen, but it
// never hides one that no author of a change it holds has seen.
//
// The rule needs replica ids never to be reused by a writer that has lost
// its state: a tablet reinstalled under its old id with a clock behind its
// old writes would have its new writes covered by stamps of its old ones.
//
// # State and convergence
//
// A field's state is
//
//   - Seen: for each replica, the greatest HLC of that replica named in the
//     Base of any applied change (one Stamp per replica, sorted by replica);
//   - Heads: the applied changes not covered, i.e. with Stamp.HLC >
//     Seen[Stamp.Replica], sorted by Stamp ascending; the last is the winner.
//
// Both are pure functions of the set of changes applied (a change Apply
// ignores is not in the set): Seen is a
// per-replica maximum over the union of their Bases, and Heads is that union
// filtered by Seen. Merging is therefore commutative, associative and
// idempotent: replicas that have applied the same changes, in any order and
// with any repetitions, hold the same Field, byte for byte once encoded.
// Apply keeps the state incrementally because Seen only grows as changes
// arrive, so a covered change stays covered and the heads only lose members
// to coverage or gain the newly applied change.
//
// The winner always exists once a change has been applied, and is the
// applied change with the greatest Stamp: call it m. If some applied d
// covered m, d.Base would hold an entry b with b.HLC >= m.Stamp.HLC; every
// Base entry is strictly below its own change's HLC, so d.Stamp.HLC > b.HLC
// >= m.Stamp.HLC and d.Stamp > m.Stamp, contradicting the choice of m. So m
// is a head, and the greatest one.
//
// # Conflicts
//
// The field is in conflict (a concurrent edit, DESIGN.md "Sync model") while
// some head's value differs from the winner's: two authors wrote different
// values and neither saw the other's. The winner still stands. A write with
// Base = Field.Base, the stamps of all current heads, covers every one of
// them and so resolves the conflict; a write naming only the winner leaves
// the other heads open, since its author does not claim to have seen them.
package merge

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rasoat/rasoat/internal/hlc"
)

// Stamp identifies a write totally: HLC then replica id as tie-break.
type Stamp struct {
	HLC     hlc.Timestamp
	Replica string
}

// Compare returns -1, 0 or +1 as s is before, equal to or after o.
func (s Stamp) Compare(o Stamp) int {
	if c := cmp.Compare(s.HLC, o.HLC); c != 0 {
		return c
	}
	return strings.Compare(s.Replica, o.Replica)
}

// Less reports whether s is before o.
func (s Stamp) Less(o Stamp) bool { return s.Compare(o) < 0 }

// IsZero reports whether s is unset.
func (s Stamp) IsZero() bool { return s.HLC == 0 && s.Replica == "" }

// String returns "HLC@replica".
func (s Stamp) String() string { return s.HLC.String() + "@" + s.Replica }

// Change is one immutable write to one field.
type Change struct {
	Entity string  // UUIDv7 text of the entity
	Kind   string  // entity type: "household", "member", ...
	Field  string  // field path, e.g. "headName", "housing.floorAreaM2"
	Value  []byte  // canonical encoded value (opaque bytes; compared with bytes.Equal)
	Stamp  Stamp   // when and where it was written
	Seq    uint64  // origin replica's sequence number; (Stamp.Replica, Seq) identifies the change globally
	Base   []Stamp // stamps of every head of the field its author saw (Field.Base), sorted and distinct; empty for a first write
}

// ErrInvalidChange is wrapped by Validate's errors.
var ErrInvalidChange = errors.New("invalid change")

// Validate checks what the merge rule relies on. A Base entry not below the
// Stamp's HLC would let a change cover itself, or hide a replica's later
// writes by naming a Base far in the future; bounding Base by Stamp also
// bounds it by the clock-drift check on Stamp. Base must be sorted by Stamp
// and distinct, so that a change has one form.
func (c Change) Validate() error {
	switch {
	case c.Stamp.HLC.IsZero():
		return fmt.Errorf("%w: stamp: hlc is zero", ErrInvalidChange)
	case c.Stamp.Replica == "":
		return fmt.Errorf("%w: stamp: replica is empty", ErrInvalidChange)
	}
	for i, b := range c.Base {
		switch {
		case b.HLC.IsZero():
			return fmt.Errorf("%w: base: %s: hlc is zero", ErrInvalidChange, b)
		case b.Replica == "":
			return fmt.Errorf("%w: base: %s: replica is empty", ErrInvalidChange, b)
		case b.HLC >= c.Stamp.HLC:
			return fmt.Errorf("%w: base: %s is not before stamp %s", ErrInvalidChange, b, c.Stamp)
		case i > 0 && !c.Base[i-1].Less(b):
			return fmt.Errorf("%w: base: %s is not after %s (entries must be sorted and distinct)", ErrInvalidChange, b, c.Base[i-1])
		}
	}
	return nil
}

// mergeable reports whether Apply may use c: what Validate checks, except the
// order of Base, which the rule treats as a set.
func (c *Change) mergeable() bool {
	if c.Stamp.HLC == 0 || c.Stamp.Replica == "" {
		return false
	}
	for _, b := range c.Base {
		if b.HLC == 0 || b.Replica == "" || b.HLC >= c.Stamp.HLC {
			return false
		}
	}
	return true
}

// Head is a change still visible in a field's state.
type Head struct {
	Value []byte
	Stamp Stamp
	Seq   uint64
}

// compareHeads orders heads by Stamp. Two changes with one Stamp are the same
// change unless a replica misbehaved; Seq and Value then break the tie so the
// state still depends only on the set of changes.
func compareHeads(a, b *Head) int {
	if c := a.Stamp.Compare(b.Stamp); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	return bytes.Compare(a.Value, b.Value)
}

// Field is the merged state of one field. The zero value is an unset field.
type Field struct {
	// Seen holds, for each replica named in the Base of an applied change,
	// the greatest HLC named for it: one Stamp per replica, sorted by
	// Replica. Every change of that replica at or below that HLC is covered.
	Seen []Stamp
	// Heads holds every applied change not covered, sorted by Stamp
	// ascending; the last is the winner.
	Heads []Head
}

// seen returns the index of replica's entry in f.Seen, or where it would go.
func (f *Field) seen(replica string) (int, bool) {
	return slices.BinarySearchFunc(f.Seen, replica, func(s Stamp, r string) int { return strings.Compare(s.Replica, r) })
}

// covers reports whether a change stamped s is covered by what f has seen.
func (f *Field) covers(s Stamp) bool {
	i, ok := f.seen(s.Replica)
	return ok && s.HLC <= f.Seen[i].HLC
}

// Apply merges c into f and reports whether f changed (and needs storing).
// A duplicate or covered change is a no-op, except that its Base still
// counts; a change Validate would reject for anything but the order of its
// Base is ignored. f keeps c.Value without copying it, and does not keep
// c.Base. Apply does not allocate unless f.Seen or f.Heads must grow.
func (f *Field) Apply(c Change) (changed bool) { return f.ApplyDropping(c, nil) }

// ApplyDropping is Apply, calling dropped, when not nil, with every change
// that is no head of f afterwards though it went through it: a head that
// c's base covers, and c itself when it is covered on arrival. A store
// needs these alone to answer whether a stamp named a change to f, since
// the rest are f's heads.
func (f *Field) ApplyDropping(c Change, dropped func(Stamp, uint64)) (changed bool) {
	if !c.mergeable() {
		return false
	}
	changed = f.see(c.Base, dropped)
	if f.covers(c.Stamp) {
		if dropped != nil {
			dropped(c.Stamp, c.Seq)
		}
		return changed
	}
	h := Head{Value: c.Value, Stamp: c.Stamp, Seq: c.Seq}
	// A new change is usually the newest, so search from the end.
	i := len(f.Heads)
	for ; i > 0; i-- {
		d := compareHeads(&f.Heads[i-1], &h)
		if d == 0 {
			return changed // duplicate
		}
		if d < 0 {
			break
		}
	}
	f.Heads = slices.Insert(f.Heads, i, h)
	return true
}

// Winner returns the current value: the head with the greatest Stamp. ok is
// false if no change has been applied. The Value shares memory with f.
func (f *Field) Winner() (h Head, ok bool) {
	if len(f.Heads) == 0 {
		return Head{}, false
	}
	return f.Heads[len(f.Heads)-1], true
}

// Base returns the stamps of the current heads, sorted and distinct: the
// Base a local write to f must carry. Writing with it covers every head, and
// so resolves any open conflict. It is nil for an unset field.
func (f *Field) Base() []Stamp {
	if len(f.Heads) == 0 {
		return nil
	}
	b := make([]Stamp, 0, len(f.Heads))
	for i := range f.Heads {
		// Heads are sorted by Stamp; equal stamps (a faulty replica) are adjacent.
		if s := f.Heads[i].Stamp; len(b) == 0 || b[len(b)-1] != s {
			b = append(b, s)
		}
	}
	return b
}

// Conflict reports an open conflict: the winner and, in Stamp order, every
// other head whose value differs from the winner's. ok is false when there is
// no conflict. Values share memory with f.
func (f *Field) Conflict() (winner Head, others []Head, ok bool) {
	winner, ok = f.Winner()
	if !ok {
		return Head{}, nil, false
	}
	for _, h := range f.Heads[:len(f.Heads)-1] {
		if !bytes.Equal(h.Value, winner.Value) {
			others = append(others, h)
		}
	}
	return winner, others, len(others) > 0
}

// see raises Seen to cover stamps and drops the heads that become covered;
// it reports whether anything changed.
func (f *Field) see(stamps []Stamp, dropped func(Stamp, uint64)) bool {
	raised := false
	for _, b := range stamps {
		i, ok := f.seen(b.Replica)
		switch {
		case !ok:
			f.Seen = slices.Insert(f.Seen, i, b)
		case b.HLC > f.Seen[i].HLC:
			f.Seen[i].HLC = b.HLC
		default:
			continue
		}
		raised = true
	}
	if !raised {
		return false
	}
	// Drop the newly covered heads, keeping the rest in order.
	n := 0
	for i := range f.Heads {
		if !f.covers(f.Heads[i].Stamp) {
			f.Heads[n] = f.Heads[i]
			n++
		} else if dropped != nil {
			dropped(f.Heads[i].Stamp, f.Heads[i].Seq)
		}
	}
	clear(f.Heads[n:]) // release the dropped values
	f.Heads = f.Heads[:n]
	return true
}

// Merge folds another replica's state of the same field into f, as if every
// change applied to o had been applied to f. It is what a first sync uses to
// take a server's entity states whole instead of replaying their changes.
//
// It is exact because the state is a function of the set of changes: Seen
// of the union is the per-replica maximum of both Seens, and a change of the
// union is a head exactly when it is a head of the side that holds it and
// is not covered by the merged Seen.
func (f *Field) Merge(o *Field) (changed bool) {
	changed = f.see(o.Seen, nil)
	for _, h := range o.Heads {
		if f.covers(h.Stamp) {
			continue
		}
		i, found := slices.BinarySearchFunc(f.Heads, h, func(a, b Head) int { return compareHeads(&a, &b) })
		if found {
			continue
		}
		f.Heads = slices.Insert(f.Heads, i, h)
		changed = true
	}
	return changed
}
