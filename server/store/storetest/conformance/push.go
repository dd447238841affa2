package conformance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/protobuf/proto"
)

// pushThenPull: every accepted change is in the log once, in the order the
// pushes were acknowledged and, within a push, in batch order, at
// increasing positions; a push's ServerSeq is the log's end after it.
func pushThenPull(t *testing.T, open Open) {
	st, _ := open(t)
	if got := logOf(t, st); len(got) != 0 {
		t.Fatalf("a new store's log holds %d changes", len(got))
	}
	ga, gb := storetest.New("tab-a", "001"), storetest.New("tab-b", "002")
	var want []*rasoatv1.Change
	var ends []uint64
	for i := range 6 {
		g, replica := ga, "tab-a"
		if i%2 == 1 {
			g, replica = gb, "tab-b"
		}
		batch := storetest.Must(g.Household(i % 3))
		res := push(t, st, replica, batch...)
		if res.Accepted != len(batch) || res.Duplicates != 0 || res.ReplicaHighSeq != highSeq(batch) {
			t.Fatalf("push %d = %+v, want %d accepted, replica high seq %d", i, res, len(batch), highSeq(batch))
		}
		want = append(want, batch...)
		ends = append(ends, res.ServerSeq)
	}
	got := logOf(t, st)
	if len(got) != len(want) {
		t.Fatalf("log holds %d changes, want %d", len(got), len(want))
	}
	for i, l := range got {
		if !proto.Equal(l.c, want[i]) {
			t.Fatalf("log[%d] is %s #%d, want %s #%d", i, l.c.Stamp.ReplicaId, l.c.Seq, want[i].Stamp.ReplicaId, want[i].Seq)
		}
		if i > 0 && l.pos.Seq <= got[i-1].pos.Seq {
			t.Fatalf("log[%d] at %d after %d", i, l.pos.Seq, got[i-1].pos.Seq)
		}
	}
	if last := got[len(got)-1].pos.Seq; ends[len(ends)-1] != last {
		t.Fatalf("the last push's server seq is %d, the log ends at %d", ends[len(ends)-1], last)
	}
	if !slices.IsSorted(ends) {
		t.Fatalf("server seqs after each push %v do not grow", ends)
	}
}

// duplicates: a change whose (origin, seq) is stored with the same content
// is skipped and counted, whether stored by an earlier push or earlier in
// the same batch; a resend touches nothing.
func duplicates(t *testing.T, open Open) {
	st, _ := open(t)
	g := storetest.New("tab-a", "001")
	hh := storetest.Must(g.Household(2))
	first := push(t, st, "tab-a", hh...)
	t.Run("an identical resend", func(t *testing.T) {
		before := contentsOf(t, st)
		again := push(t, st, "tab-a", hh...)
		if again.Accepted != 0 || again.Duplicates != len(hh) || again.ServerSeq != first.ServerSeq || again.ReplicaHighSeq != first.ReplicaHighSeq {
			t.Fatalf("resend = %+v, want 0 accepted, %d duplicates, server seq %d, replica high seq %d", again, len(hh), first.ServerSeq, first.ReplicaHighSeq)
		}
		untouched(t, st, before, "an identical resend")
	})
	t.Run("a resend with new changes stores only the new ones", func(t *testing.T) {
		next := storetest.Must(g.Household(0))
		res := push(t, st, "tab-a", append(slices.Clone(hh[:4]), next...)...)
		if res.Accepted != len(next) || res.Duplicates != 4 {
			t.Fatalf("push = %+v, want %d accepted and 4 duplicates", res, len(next))
		}
		if got := logOf(t, st); len(got) != len(hh)+len(next) {
			t.Fatalf("log holds %d changes, want %d", len(got), len(hh)+len(next))
		}
	})
	t.Run("an identical repeat in one batch", func(t *testing.T) {
		c := newWriter("tab-b").household("001", "headName", `"Giàng Thị Mỷ"`)
		res := push(t, st, "tab-b", c, clone(c))
		if res.Accepted != 1 || res.Duplicates != 1 || res.ReplicaHighSeq != c.Seq {
			t.Fatalf("push of a change twice = %+v, want 1 accepted, 1 duplicate, replica high seq %d", res, c.Seq)
		}
	})
}

// replicaHighSeq: a push reports the greatest seq stored from the pushing
// replica as origin, not from the changes' origin (a commune server
// relaying a tablet's changes).
func replicaHighSeq(t *testing.T, open Open) {
	st, _ := open(t)
	hh := storetest.Must(storetest.New("tab-a", "001").Household(0))
	if res := push(t, st, "commune-1", hh...); res.Accepted != len(hh) || res.ReplicaHighSeq != 0 {
		t.Fatalf("a relay of tab-a's changes by commune-1 = %+v, want %d accepted and replica high seq 0", res, len(hh))
	}
	if res := push(t, st, "tab-a", hh[:2]...); res.Duplicates != 2 || res.ReplicaHighSeq != highSeq(hh) {
		t.Fatalf("tab-a's own resend = %+v, want 2 duplicates and replica high seq %d", res, highSeq(hh))
	}
}

// contentMismatch: a change reusing a stored (origin, seq) with other
// content is refused with a *store.MismatchError saying what the replica
// needs to recover, and nothing of its batch is stored.
func contentMismatch(t *testing.T, open Open) {
	st, _ := open(t)
	hh := storetest.Must(storetest.New("tab-a", "001").Household(1))
	push(t, st, "tab-a", hh...)
	name := fieldOf(t, hh, "headName")
	fresh := newWriter("tab-b")
	for _, tc := range []struct {
		name   string
		modify func(c *rasoatv1.Change)
	}{
		{"other value", func(c *rasoatv1.Change) { c.Value = []byte(`"Lò Thị Dung"`) }},
		{"other stamp", func(c *rasoatv1.Change) { c.Stamp.Hlc++ }},
		{"other base", func(c *rasoatv1.Change) { c.Base = []*rasoatv1.Stamp{{Hlc: c.Stamp.Hlc - 1, ReplicaId: "tab-z"}} }},
		{"other field", func(c *rasoatv1.Change) { c.Field = "address" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forged := clone(name)
			tc.modify(forged)
			must(forged)
			ok := fresh.household("001", "headName", `"Vàng A Páo"`)
			ce := refused(t, st, "tab-a", store.ErrContentMismatch, 1, "seq", ok, forged)
			var me *store.MismatchError
			if !errors.As(ce, &me) {
				t.Fatalf("refusal %v holds no *store.MismatchError", ce)
			}
			if me.Origin != "tab-a" || me.Seq != name.Seq || me.ReplicaHighSeq != highSeq(hh) {
				t.Fatalf("mismatch %+v, want origin tab-a, seq %d, replica high seq %d", me, name.Seq, highSeq(hh))
			}
		})
	}
}

// contentMismatchInBatch: two changes with one (origin, seq) and other
// content in one batch are refused, the second named; the batch without
// its twin is stored.
func contentMismatchInBatch(t *testing.T, open Open) {
	st, _ := open(t)
	g := storetest.New("tab-a", "001")
	next := storetest.Must(g.Household(0))
	area := fieldOf(t, next, "area")
	twin := clone(area)
	twin.Value = []byte(`"AREA_URBAN"`)
	ce := refused(t, st, "tab-a", store.ErrContentMismatch, len(next), "seq", append(slices.Clone(next), must(twin))...)
	var me *store.MismatchError
	if !errors.As(ce, &me) || me.Origin != "tab-a" || me.Seq != area.Seq {
		t.Fatalf("refusal %v, want a mismatch of tab-a #%d", ce, area.Seq)
	}
	if res := push(t, st, "tab-a", next...); res.Accepted != len(next) || res.ReplicaHighSeq != highSeq(next) {
		t.Fatalf("the batch without its twin = %+v, want %d accepted, replica high seq %d", res, len(next), highSeq(next))
	}
}

// sameWrite: a change pushed under an (origin, seq) stored with another
// stamp is the stored write re-stamped (MismatchError.SameWrite: the origin
// drops its copy) only when it writes the same value over the same base.
// The same value over another base is a new write of a file restored from
// a copy, made after seeing other writes, which the origin must issue
// again (internal/robustness TestRestoredFileWritesTheSameValueAgain).
func sameWrite(t *testing.T, open Open) {
	st, _ := open(t)
	a, b := storetest.New("tab-a", "001"), storetest.New("tab-b", "001")
	hh := storetest.Must(a.Household(0))
	mine := a.Edit(fieldOf(t, hh, "headName"), `"Lò Văn Pọm"`)
	push(t, st, "tab-a", append(hh, mine)...)
	theirs := b.Edit(mine, `"Lò Văn Pặn"`)
	push(t, st, "tab-b", theirs)
	for _, tc := range []struct {
		name string
		base []*rasoatv1.Stamp
		same bool
	}{
		{"the same value over the same base, re-stamped, is the same write", mine.Base, true},
		{"the same value over another base is another write", []*rasoatv1.Stamp{theirs.Stamp}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			again := clone(mine)
			again.Stamp.Hlc = theirs.Stamp.Hlc + 1000
			again.Base = tc.base
			ce := refused(t, st, "tab-a", store.ErrContentMismatch, 0, "seq", must(again))
			var me *store.MismatchError
			if !errors.As(ce, &me) {
				t.Fatalf("refusal %v holds no *store.MismatchError", ce)
			}
			if me.SameWrite != tc.same || tc.same && me.StoredHLC != mine.Stamp.Hlc {
				t.Errorf("SameWrite = %v (stored stamp %d), want %v (stored stamp %d)", me.SameWrite, me.StoredHLC, tc.same, mine.Stamp.Hlc)
			}
		})
	}
}

// bases: a base stamp names a change to the same field of the same entity
// that the store holds (even if superseded since) or that comes earlier in
// the batch (store.ErrBaseUnknown otherwise, on base[j]).
func bases(t *testing.T, open Open) {
	st, _ := open(t)
	hh := storetest.Must(storetest.New("tab-a", "001").Household(0))
	push(t, st, "tab-a", hh...)
	other := storetest.Must(storetest.New("tab-b", "001").Household(0))
	push(t, st, "tab-b", other...)
	name, addr := fieldOf(t, hh, "headName"), fieldOf(t, hh, "address")
	otherName := fieldOf(t, other, "headName")
	w := newWriter("tab-c")
	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			batch func() []*rasoatv1.Change
			index int
			field string
		}{
			{"a base naming a stamp no change has", func() []*rasoatv1.Change {
				e := w.edit(name, `"Lò Văn Pọm"`)
				e.Base = []*rasoatv1.Stamp{{Hlc: name.Stamp.Hlc, ReplicaId: "tab-z"}}
				return []*rasoatv1.Change{w.edit(addr, `"Bản Nà Pàn"`), must(e)}
			}, 1, "base[0]"},
			{"a second base naming a stamp no change has", func() []*rasoatv1.Change {
				e := w.edit(name, `"Lò Văn Pọm"`)
				e.Base = []*rasoatv1.Stamp{name.Stamp, {Hlc: name.Stamp.Hlc + 1, ReplicaId: "tab-a"}}
				e.Stamp.Hlc = max(e.Stamp.Hlc, name.Stamp.Hlc+2)
				return []*rasoatv1.Change{must(e)}
			}, 0, "base[1]"},
			{"a base naming a stored change of another field", func() []*rasoatv1.Change {
				e := w.edit(name, `"Lò Văn Pọm"`)
				e.Base = []*rasoatv1.Stamp{addr.Stamp}
				return []*rasoatv1.Change{must(e)}
			}, 0, "base[0]"},
			{"a base naming a stored change of another entity's same field", func() []*rasoatv1.Change {
				return []*rasoatv1.Change{w.write(name, "headName", `"Lò Văn Pọm"`, otherName.Stamp)}
			}, 0, "base[0]"},
			{"a base naming a change of another field earlier in the batch", func() []*rasoatv1.Change {
				a := w.edit(addr, `"Bản Nà Pàn"`)
				return []*rasoatv1.Change{a, w.write(name, "headName", `"Lò Văn Pọm"`, name.Stamp, a.Stamp)}
			}, 1, "base[1]"},
			{"a base naming a change later in the batch", func() []*rasoatv1.Change {
				a := w.edit(name, `"Lò Văn Pọm"`)
				b := w.edit(a, `"Lò Văn Pọng"`)
				return []*rasoatv1.Change{b, a}
			}, 0, "base[0]"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				refused(t, st, "tab-c", store.ErrBaseUnknown, tc.index, tc.field, tc.batch()...)
			})
		}
	})
	t.Run("accepted", func(t *testing.T) {
		a := w.edit(name, `"Lò Văn Pọm"`)
		b := w.edit(a, `"Lò Văn Pọng"`)
		if res := push(t, st, "tab-c", a, b); res.Accepted != 2 {
			t.Fatalf("a base naming a change earlier in the batch: %+v, want 2 accepted", res)
		}
		late := newWriter("tab-d").edit(name, `"Lò Văn Pọm"`)
		if res := push(t, st, "tab-d", late); res.Accepted != 1 {
			t.Fatalf("a base naming a superseded stored change: %+v, want 1 accepted", res)
		}
		// Two concurrent edits over one base in one batch: the first
		// supersedes the base the second names.
		d := newWriter("tab-d")
		d.seq = late.Seq
		if res := push(t, st, "x", d.edit(addr, `"Bản Nà Pàn"`), w.edit(addr, `"Bản Nà Phạ"`)); res.Accepted != 2 {
			t.Fatalf("a base naming a change superseded earlier in the batch: %+v, want 2 accepted", res)
		}
	})
	t.Run("covered on arrival", func(t *testing.T) {
		// tab-e's first change reaches the server after an edit that saw
		// its second: stored, it is no head, yet a base may name it.
		e := newWriter("tab-e")
		first := e.write(name, "headName", `"Lò Văn Pên"`)
		second := e.write(name, "headName", `"Lò Văn Pến"`)
		over := newWriter("tab-f").edit(second, `"Lò Văn Phên"`)
		for _, c := range []*rasoatv1.Change{second, over, first} {
			if res := push(t, st, "x", c); res.Accepted != 1 {
				t.Fatalf("push %s: %+v, want 1 accepted", c.Stamp, res)
			}
		}
		if res := push(t, st, "tab-g", newWriter("tab-g").edit(first, `"Lò Văn Pênh"`)); res.Accepted != 1 {
			t.Fatalf("a base naming a change covered when it arrived: %+v, want 1 accepted", res)
		}
	})
}

// everyChangeNameable: whatever became of a stored change (a head still,
// superseded by a later base, covered when it arrived, stored by a push
// that shared its group with a refused one), a later write may name it in
// its base. Three tablets edit two fields of a household, each over what
// it has seen, learning the others' stored changes at random, and push
// random parts of their outboxes in random orders, a later change before
// an earlier one (a part naming a change not yet stored is refused whole,
// and stays in the outbox); then a new writer names each change of the log
// in a base of its own.
func everyChangeNameable(t *testing.T, open Open) {
	st, _ := open(t)
	origin := storetest.New("tab-o", "001")
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 3))
		hh := storetest.Must(origin.Household(1))
		push(t, st, "tab-o", hh...)
		var fields []*rasoatv1.Change
		for _, c := range hh {
			if len(fields) < 2 && c.Kind == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
				fields = append(fields, c)
			}
		}
		type tablet struct {
			g      *storetest.Gen
			seen   []*rasoatv1.Change // per field, the latest change it knows
			outbox []*rasoatv1.Change
		}
		var tabs []*tablet
		for i := range 3 {
			tabs = append(tabs, &tablet{g: storetest.New(fmt.Sprintf("tab-%d-%d", seed, i), "001"), seen: slices.Clone(fields)})
		}
		var stored []*rasoatv1.Change // pushed and accepted, per field in any order
		for range 150 {
			tab := tabs[rng.IntN(len(tabs))]
			f := rng.IntN(len(fields))
			switch rng.IntN(3) {
			case 0: // an edit over what it has seen
				e := tab.g.Edit(tab.seen[f], string(tab.seen[f].Value))
				tab.seen[f] = e
				tab.outbox = append(tab.outbox, e)
			case 1: // a sync: it learns a stored change of the field
				var of []*rasoatv1.Change
				for _, c := range stored {
					if c.Field == fields[f].Field {
						of = append(of, c)
					}
				}
				if len(of) > 0 {
					tab.seen[f] = of[rng.IntN(len(of))]
				}
			case 2: // a push of part of its outbox, in any order
				if len(tab.outbox) == 0 {
					continue
				}
				var part []*rasoatv1.Change
				for _, c := range tab.outbox {
					if rng.IntN(2) == 0 {
						part = append(part, c)
					}
				}
				if len(part) == 0 {
					continue
				}
				rng.Shuffle(len(part), func(i, j int) { part[i], part[j] = part[j], part[i] })
				if _, err := st.Push(t.Context(), store.Sender{Replica: tab.g.Replica}, part); err != nil {
					if !errors.Is(err, store.ErrBaseUnknown) {
						t.Fatalf("seed %d: push: %v", seed, err)
					}
					continue
				}
				stored = append(stored, part...)
				tab.outbox = slices.DeleteFunc(tab.outbox, func(c *rasoatv1.Change) bool { return slices.Contains(part, c) })
			}
		}
		for _, tab := range tabs {
			if len(tab.outbox) > 0 { // in the order written, which always passes
				push(t, st, tab.g.Replica, tab.outbox...)
			}
		}
	}
	// Each probe names one stored change and the probe before it on the
	// same field, so that the probes add one concurrent value, not one each.
	w := newWriter("tab-z")
	last := map[[2]string]*rasoatv1.Change{}
	for _, l := range logOf(t, st) {
		c := l.c
		base := []*rasoatv1.Stamp{c.Stamp}
		if p := last[[2]string{c.EntityId, c.Field}]; p != nil {
			base = append(base, p.Stamp)
		}
		probe := w.write(c, c.Field, string(c.Value), base...)
		if res := push(t, st, "tab-z", probe); res.Accepted != 1 {
			t.Fatalf("a base naming stored change %s (%s %s): %+v, want accepted", c.Stamp, c.EntityId, c.Field, res)
		}
		last[[2]string{c.EntityId, c.Field}] = probe
	}
}

// entityMismatch: a change's kind, household and village are its entity's
// (store.ErrEntityMismatch), and a refusal stores nothing of its batch.
func entityMismatch(t *testing.T, open Open) {
	st, _ := open(t)
	g := storetest.New("tab-a", "001")
	hh := storetest.Must(g.Household(1))
	push(t, st, "tab-a", hh...)
	member := hh[slices.IndexFunc(hh, func(c *rasoatv1.Change) bool { return c.Kind == rasoatv1.EntityKind_ENTITY_KIND_MEMBER })]
	for _, tc := range []struct {
		name   string
		change func() *rasoatv1.Change
		field  string
	}{
		{"another village than its entity's", func() *rasoatv1.Change {
			e := g.Edit(hh[1], `"AREA_URBAN"`)
			e.VillageCode = "002"
			return e
		}, "village_code"},
		{"another kind than its entity's", func() *rasoatv1.Change {
			e := newWriter("tab-x").write(&rasoatv1.Change{EntityId: hh[0].EntityId, Kind: rasoatv1.EntityKind_ENTITY_KIND_REVIEW, HouseholdId: hh[0].EntityId, VillageCode: "001"}, "status", `"draft"`)
			return e
		}, "kind"},
		{"another household than its entity's", func() *rasoatv1.Change {
			e := g.Edit(member, `"Lò Thị Dung"`)
			e.HouseholdId = uuid.Must(uuid.NewV7()).String()
			return e
		}, "household_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch := append(storetest.Must(g.Household(1)), must(tc.change()))
			refused(t, st, "tab-a", store.ErrEntityMismatch, len(batch)-1, tc.field, batch...)
		})
	}
}

// householdVillage: a member or review is written in its household's
// village, to a household the store holds or that comes before it in the
// same batch.
func householdVillage(t *testing.T, open Open) {
	st, _ := open(t)
	hh := storetest.Must(storetest.New("tab-a", "001").Household(1))
	push(t, st, "tab-a", hh...)
	member := hh[slices.IndexFunc(hh, func(c *rasoatv1.Change) bool { return c.Kind == rasoatv1.EntityKind_ENTITY_KIND_MEMBER })]
	householdFields := len(storetest.New("x", "004").Household(0))
	w := newWriter("tab-b")
	elsewhere := func(c *rasoatv1.Change) *rasoatv1.Change { c.VillageCode = "002"; return must(c) }
	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			batch func() []*rasoatv1.Change
			index int
			field string
		}{
			{"a member in another village than its household's", func() []*rasoatv1.Change {
				return []*rasoatv1.Change{w.edit(hh[1], `"AREA_URBAN"`), elsewhere(w.member(hh[0], "fullName", `"Lò Thị Dung"`))}
			}, 1, "village_code"},
			{"a review in another village than its household's", func() []*rasoatv1.Change {
				return []*rasoatv1.Change{elsewhere(w.review(hh[0], "status", `"draft"`))}
			}, 0, "village_code"},
			{"a member of a household the store does not hold", func() []*rasoatv1.Change {
				m := w.member(hh[0], "fullName", `"Lò Thị Dung"`)
				m.HouseholdId = uuid.Must(uuid.NewV7()).String()
				return []*rasoatv1.Change{must(m)}
			}, 0, "household_id"},
			{"a review of a household the store does not hold", func() []*rasoatv1.Change {
				r := w.review(hh[0], "status", `"draft"`)
				r.HouseholdId = uuid.Must(uuid.NewV7()).String()
				return []*rasoatv1.Change{w.edit(hh[1], `"AREA_URBAN"`), must(r)}
			}, 1, "household_id"},
			{"a member whose household is a member", func() []*rasoatv1.Change {
				m := w.member(hh[0], "fullName", `"Lò Thị Dung"`)
				m.HouseholdId = member.EntityId
				return []*rasoatv1.Change{must(m)}
			}, 0, "household_id"},
			{"a member before its household in the batch", func() []*rasoatv1.Change {
				h := storetest.Must(storetest.New("tab-c", "003").Household(1))
				slices.SortStableFunc(h, func(a, b *rasoatv1.Change) int { return int(b.Kind) - int(a.Kind) }) // members first
				if h[0].Kind != rasoatv1.EntityKind_ENTITY_KIND_MEMBER {
					t.Fatal("members do not sort first")
				}
				return h
			}, 0, "household_id"},
			{"a member in another village than its household earlier in the batch", func() []*rasoatv1.Change {
				h := storetest.Must(storetest.New("tab-d", "004").Household(0))
				return append(h, elsewhere(w.member(h[0], "fullName", `"Lò Thị Dung"`)))
			}, householdFields, "village_code"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				refused(t, st, "tab-b", store.ErrEntityMismatch, tc.index, tc.field, tc.batch()...)
			})
		}
	})
	t.Run("accepted", func(t *testing.T) {
		fresh := storetest.Must(storetest.New("tab-e", "005").Household(2))
		if res := push(t, st, "tab-e", fresh...); res.Accepted != len(fresh) {
			t.Fatalf("members after their household in one batch: %+v, want all %d accepted", res, len(fresh))
		}
		m, r := w.member(hh[0], "fullName", `"Lò Thị Dung"`), w.review(hh[0], "status", `"draft"`)
		if res := push(t, st, "tab-b", m, r); res.Accepted != 2 {
			t.Fatalf("a member and a review in their stored household's village: %+v, want 2 accepted", res)
		}
	})
}

// pushOrder: the states a store holds depend on the set of changes it
// took, not on the order nor on how they were batched.
func pushOrder(t *testing.T, open Open) {
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
	storetest.Must(edits)
	var want map[string][]byte
	for trial := range 4 {
		st, _ := open(t)
		// Any order a store can take: a household before its members,
		// a value before the edits that name it in their base.
		var perm []*rasoatv1.Change
		rng := rand.New(rand.NewPCG(uint64(trial), 1))
		isHousehold := func(c *rasoatv1.Change) bool { return c.Kind == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD }
		for _, group := range [][]*rasoatv1.Change{
			slices.DeleteFunc(slices.Clone(hh), func(c *rasoatv1.Change) bool { return !isHousehold(c) }),
			slices.DeleteFunc(slices.Clone(hh), isHousehold),
			slices.Clone(edits),
		} {
			rng.Shuffle(len(group), func(i, j int) { group[i], group[j] = group[j], group[i] })
			perm = append(perm, group...)
		}
		size := 1 + trial*5
		for start := 0; start < len(perm); start += size {
			push(t, st, "x", perm[start:min(start+size, len(perm))]...)
		}
		states, _ := snapshotOf(t, st, store.SnapshotQuery{Villages: store.AllVillages()})
		got := encoded(states)
		sameStates(t, got, replay(t, nil, logOf(t, st)), fmt.Sprintf("trial %d: snapshot against replaying the log", trial))
		if trial == 0 {
			want = got
			continue
		}
		sameStates(t, got, want, fmt.Sprintf("trial %d against trial 0", trial))
	}
}

// cancelled: a push whose context is done stores nothing.
func cancelled(t *testing.T, open Open) {
	st, _ := open(t)
	before := contentsOf(t, st)
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := st.Push(ctx, store.Sender{Replica: "tab-a"}, storetest.Must(storetest.New("tab-a", "001").Household(0))); err == nil {
		t.Fatal("push with an expired context succeeded")
	}
	untouched(t, st, before, "a cancelled push")
}

// concurrentPushes: pushes running at once, some refused, are each stored
// whole or not at all: the log holds exactly the accepted batches, each
// once, and a refused one leaves nothing of its own nor of the others.
func concurrentPushes(t *testing.T, open Open) {
	st, _ := open(t)
	seed := storetest.Must(storetest.New("tab-0", "001").Household(0))
	push(t, st, "tab-0", seed...)
	forged := clone(fieldOf(t, seed, "headName"))
	forged.Value = []byte(`"Kẻ Gian"`)
	must(forged)
	const pushers, rounds = 8, 6
	type outcome struct {
		batch []*rasoatv1.Change
		ok    bool
	}
	results := make([][]outcome, pushers)
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			replica := fmt.Sprintf("tab-%d", p+1)
			g := storetest.New(replica, fmt.Sprintf("%03d", 1+p%3))
			for r := range rounds {
				batch := storetest.Must(g.Household(r % 3))
				bad := (p+r)%3 == 0
				if bad {
					batch = append(batch, forged)
				}
				res, err := st.Push(context.Background(), store.Sender{Replica: replica}, batch)
				switch {
				case bad && !errors.Is(err, store.ErrContentMismatch):
					t.Errorf("%s round %d: a batch with a forged change = %+v, %v; want a content mismatch", replica, r, res, err)
				case !bad && (err != nil || res.Accepted != len(batch)):
					t.Errorf("%s round %d: push = %+v, %v; want %d accepted", replica, r, res, err, len(batch))
				}
				results[p] = append(results[p], outcome{batch, !bad && err == nil})
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	type key struct {
		origin string
		seq    uint64
	}
	logged := map[key]int{}
	for _, l := range logOf(t, st) {
		logged[key{l.c.Stamp.ReplicaId, l.c.Seq}]++
	}
	want := len(seed)
	for _, rs := range results {
		for _, o := range rs {
			for _, c := range o.batch {
				if c == forged {
					continue
				}
				n := logged[key{c.Stamp.ReplicaId, c.Seq}]
				if o.ok && n != 1 || !o.ok && n != 0 {
					t.Fatalf("%s #%d is in the log %d times; its batch was accepted: %v", c.Stamp.ReplicaId, c.Seq, n, o.ok)
				}
			}
			if o.ok {
				want += len(o.batch)
			}
		}
	}
	if len(logged) != want {
		t.Fatalf("log holds %d changes, want %d", len(logged), want)
	}
	states, _ := snapshotOf(t, st, store.SnapshotQuery{Villages: store.AllVillages()})
	sameStates(t, encoded(states), replay(t, nil, logOf(t, st)), "snapshot against replaying the log")
}

// A seq below its origin's stored ones is taken only with a stamp below
// the next stored one's: a change set aside and retried keeps its earlier
// stamp and is taken; a restored copy of a file writing, later, into a seq
// the server never took (its change refused and discarded) is refused as
// a content mismatch, so the copy moves to a fresh replica id, and the
// origin's stamps keep growing with its seqs.
func outOfOrder(t *testing.T, open Open) {
	st, _ := open(t)
	w := newWriter("tab-a")
	hh := w.household("001", "headName", `"Lò Văn Páo"`) // seq 1
	early := w.edit(hh, `"Lò Văn Pao"`)                  // seq 2: set aside on the tablet
	later := w.write(hh, "address", `"Bản Nà Mò"`)       // seq 3
	push(t, st, "tab-a", hh, later)
	// The copy's write into seq 2, stamped after seq 3.
	copied := w.write(hh, "area", `"AREA_URBAN"`)
	copied.Seq = early.Seq
	must(copied)
	ce := refused(t, st, "tab-a", store.ErrContentMismatch, 0, "seq", copied)
	var me *store.MismatchError
	if !errors.As(ce, &me) || me.Origin != "tab-a" || me.Seq != early.Seq || me.SameWrite {
		t.Fatalf("refusal %v; want a mismatch of tab-a #%d, not the same write", ce, early.Seq)
	}
	// The retried change keeps its stamp, before seq 3's, and is taken.
	if res := push(t, st, "tab-a", early); res.Accepted != 1 {
		t.Fatalf("the retried change: %+v, want it taken", res)
	}
}
