package robustness

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/rasoat/rasoat/client"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// fchange is one change of the server's final log, with what the model
// knows of it.
type fchange struct {
	c   *rasoatv1.Change
	idx int // position in the log
	op  *op // the acknowledged write that made it
	// alt are other writes that made it too: a file restored from a copy
	// whose clock runs ahead of its wall clock (set back since) may write
	// again, byte for byte, a change the restore threw away but the server
	// had stored (same seq, same stamp, same base), which is then the same
	// change.
	alt []*op
	tab *tablet
}

// ops returns every write that made f.
func (f *fchange) ops() []*op { return append([]*op{f.op}, f.alt...) }

func (f *fchange) stamp() merge.Stamp {
	return merge.Stamp{HLC: hlc.Timestamp(f.c.GetStamp().GetHlc()), Replica: f.c.GetStamp().GetReplicaId()}
}

func (f *fchange) String() string {
	return fmt.Sprintf("%s#%d %s=%s @%s (step %d: %s)", f.tab.name, f.c.GetSeq(), f.c.GetField(), f.c.GetValue(), f.stamp().HLC, f.op.step, f.op.desc)
}

// sawL reports whether the author of x had certainly applied c when
// writing x: an earlier change of its file's history, or one in the log
// before its last successful sync.
func sawL(x, c *fchange) bool {
	return own(x, c) || slices.ContainsFunc(x.ops(), func(o *op) bool { return c.idx < o.posL })
}

// sawU reports whether the author of x could have applied c: an earlier
// change of its file's history, or one in the log before its last sync.
func sawU(x, c *fchange) bool {
	return own(x, c) || slices.ContainsFunc(x.ops(), func(o *op) bool { return c.idx < o.posU })
}

// own reports whether c was written before x in the history of the file
// that wrote x: a write a restore threw away is not, even if the same
// tablet made it (it may still have come back through the log).
func own(x, c *fchange) bool {
	for _, xo := range x.ops() {
		for _, co := range c.ops() {
			if before(co, xo) || co == xo && c.c.GetSeq() < x.c.GetSeq() {
				return true
			}
		}
	}
	return false
}

// before reports whether c is an earlier write of the history of the file
// that made x.
func before(c, x *op) bool {
	for o := x.prev; o != nil && o.idx >= c.idx; o = o.prev {
		if o == c {
			return true
		}
	}
	return false
}

// covers is the rule of internal/merge, "Coverage": d's Base names c's
// replica at or after c's HLC.
func covers(d, c *fchange) bool {
	for _, b := range d.c.GetBase() {
		if b.GetReplicaId() == c.c.GetStamp().GetReplicaId() && b.GetHlc() >= c.c.GetStamp().GetHlc() {
			return true
		}
	}
	return false
}

// fieldWant is what one field must hold: the changes no other covers
// (heads, by stamp) and, per replica, the greatest HLC any Base names.
type fieldWant struct {
	heads []merge.Head
	seen  []merge.Stamp
}

func (f fieldWant) winner() merge.Head { return f.heads[len(f.heads)-1] }

// check runs the three checks of the package doc on the final state.
func (w *world) check() {
	w.t.Helper()
	w.checkLogOverGRPC()
	changes := w.checkAcknowledged()
	fields := w.checkFields(changes)
	w.checkStates(fields)
}

// checkLogOverGRPC pulls the whole log through the sync service, as a new
// replica of an officer of the world's villages would, and checks it is
// the log the test saw grow: entries never change or go.
func (w *world) checkLogOverGRPC() {
	stream, err := rasoatv1.NewSyncServiceClient(w.checker.conn).Pull(w.ctx, &rasoatv1.PullRequest{ReplicaId: w.checker.replica, BatchSize: 1})
	if err != nil {
		w.fatalf("pull the log: %v", err)
	}
	var got []logged
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			w.fatalf("pull the log: stream ended before done")
		}
		if err != nil {
			w.fatalf("pull the log: %v", err)
		}
		for _, c := range resp.GetChanges() {
			got = append(got, logged{resp.GetCursor(), c}) // one change per response: its cursor is its position
		}
		if resp.GetDone() {
			break
		}
	}
	if len(got) != len(w.log) {
		w.fatalf("the log pulled over gRPC has %d changes, the store's %d", len(got), len(w.log))
	}
	for i := range got {
		if got[i].seq != w.log[i].seq || !proto.Equal(got[i].c, w.log[i].c) {
			w.fatalf("log entry %d: pulled %d %v, stored %d %v", i, got[i].seq, got[i].c, w.log[i].seq, w.log[i].c)
		}
	}
}

// checkAcknowledged is check 2: the log holds every acknowledged write
// exactly once, with its value, and nothing else; each replica's stamps
// grow with its sequence numbers.
func (w *world) checkAcknowledged() []*fchange {
	byReplica := map[string]*tablet{}
	for _, o := range w.ops {
		byReplica[o.replica] = o.tab
	}
	where := map[originKey][]int{} // → op indexes: see fchange.alt
	for i, o := range w.ops {
		for s := o.seq0; s < o.seq0+uint64(o.n); s++ {
			if !o.lost[s] {
				k := originKey{o.replica, s}
				where[k] = append(where[k], i)
			}
		}
	}
	found := map[originKey][]int{} // → log positions
	var out []*fchange
	for i, l := range w.log {
		k := originKey{l.c.GetStamp().GetReplicaId(), l.c.GetSeq()}
		tb := byReplica[k.replica]
		if tb == nil {
			w.errorf("log entry %d is from replica %s, which is no tablet: %v", l.seq, k.replica, l.c)
			continue
		}
		found[k] = append(found[k], i)
		ois, ok := where[k]
		if !ok {
			w.errorf("log entry %d is change %d of %s (replica %s), which it never acknowledged or lost with a restored file: %s.%s = %s", l.seq, l.c.GetSeq(), tb.name, k.replica, w.name(l.c.GetEntityId()), l.c.GetField(), l.c.GetValue())
			continue
		}
		if len(found[k]) == 1 {
			f := &fchange{c: l.c, idx: i, op: w.ops[ois[0]], tab: w.ops[ois[0]].tab}
			for _, oi := range ois[1:] {
				f.alt = append(f.alt, w.ops[oi])
			}
			out = append(out, f)
		}
	}
	for _, o := range w.ops {
		tb := o.tab
		left := slices.Clone(o.want)
		for s := o.seq0; s < o.seq0+uint64(o.n); s++ {
			if o.lost[s] {
				continue
			}
			at := found[originKey{o.replica, s}]
			switch {
			case len(at) == 0:
				w.errorf("change %d of %s is lost: acknowledged at step %d (%s), not in the server log", s, tb.name, o.step, o.desc)
				continue
			case len(at) > 1:
				w.errorf("change %d of %s (step %d, %s) is in the log %d times", s, tb.name, o.step, o.desc, len(at))
			}
			c := w.log[at[0]].c
			j := slices.IndexFunc(left, func(x want) bool {
				return x.entity == c.GetEntityId() && x.field == c.GetField() && bytes.Equal(x.value, c.GetValue())
			})
			if j < 0 {
				w.errorf("change %d of %s (step %d, %s) is stored as %s.%s = %s, which the write did not make", s, tb.name, o.step, o.desc, w.name(c.GetEntityId()), c.GetField(), c.GetValue())
				continue
			}
			left = slices.Delete(left, j, j+1)
			e := w.ents[c.GetEntityId()]
			if c.GetKind() != entity.KindOf(e.kind) || entity.HouseholdOf(c) != e.household || c.GetVillageCode() != e.village {
				w.errorf("change %d of %s names %v of household %s in village %s; the entity is a %s of %s in %s", s, tb.name,
					c.GetKind(), entity.HouseholdOf(c), c.GetVillageCode(), e.kind, e.household, e.village)
			}
		}
	}
	// Each replica's stamps grow with its sequence numbers.
	slices.SortFunc(out, func(a, b *fchange) int {
		return cmp.Or(strings.Compare(a.op.replica, b.op.replica), cmp.Compare(a.c.GetSeq(), b.c.GetSeq()))
	})
	for i := 1; i < len(out); i++ {
		if a, b := out[i-1], out[i]; a.op.replica == b.op.replica && a.c.GetStamp().GetHlc() >= b.c.GetStamp().GetHlc() {
			w.errorf("%s: change %d is stamped %s, not after change %d's %s", a.tab.name, b.c.GetSeq(), b.stamp().HLC, a.c.GetSeq(), a.stamp().HLC)
		}
	}
	slices.SortFunc(out, func(a, b *fchange) int { return cmp.Compare(a.idx, b.idx) })
	return out
}

type fieldKey struct{ entity, field string }

// checkFields is check 3, from the changes alone. Per field it checks
// each change's Base against what its author could and must have seen,
// then derives the heads by the coverage rule and checks that a change
// some author certainly saw is hidden and one no author can have seen is
// not.
func (w *world) checkFields(changes []*fchange) map[fieldKey]fieldWant {
	groups := map[fieldKey][]*fchange{}
	var keys []fieldKey
	for _, c := range changes {
		k := fieldKey{c.c.GetEntityId(), c.c.GetField()}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], c)
	}
	out := map[fieldKey]fieldWant{}
	for _, k := range keys {
		g := groups[k]
		where := fmt.Sprintf("%s.%s", w.name(k.entity), k.field)
		for _, x := range g {
			// A Base names only values its author could have seen.
			for _, b := range x.c.GetBase() {
				if !slices.ContainsFunc(g, func(c *fchange) bool {
					return c != x && c.c.GetStamp().GetHlc() == b.GetHlc() && c.c.GetStamp().GetReplicaId() == b.GetReplicaId() && sawU(x, c)
				}) {
					w.errorf("%s: %v has Base %d@%s, which names no change its author could have seen", where, x, b.GetHlc(), b.GetReplicaId())
				}
			}
			// A write covers every value its author had applied, unless
			// something it had applied covered it already.
			for _, c := range g {
				if c == x || !sawL(x, c) || covers(x, c) {
					continue
				}
				if !slices.ContainsFunc(g, func(d *fchange) bool { return d != c && sawU(x, d) && covers(d, c) }) {
					w.errorf("%s: the author of %v had applied %v, yet neither that write nor any it had seen covers it", where, x, c)
				}
			}
		}
		var fw fieldWant
		seen := map[string]hlc.Timestamp{}
		for _, c := range g {
			for _, b := range c.c.GetBase() {
				seen[b.GetReplicaId()] = max(seen[b.GetReplicaId()], hlc.Timestamp(b.GetHlc()))
			}
			head := !slices.ContainsFunc(g, func(d *fchange) bool { return covers(d, c) })
			sawDef := slices.ContainsFunc(g, func(x *fchange) bool { return x != c && sawL(x, c) })
			sawPoss := slices.ContainsFunc(g, func(x *fchange) bool { return x != c && sawU(x, c) })
			switch {
			case head && sawDef:
				w.errorf("%s: %v stays visible, though a later author had certainly seen it", where, c)
			case !head && !sawPoss:
				w.errorf("%s: %v is hidden, though no author can have seen it", where, c)
			}
			if head {
				fw.heads = append(fw.heads, merge.Head{Value: c.c.GetValue(), Stamp: c.stamp(), Seq: c.c.GetSeq()})
			}
		}
		for _, r := range sortedKeys(seen) {
			fw.seen = append(fw.seen, merge.Stamp{HLC: seen[r], Replica: r})
		}
		slices.SortFunc(fw.heads, func(a, b merge.Head) int {
			return cmp.Or(a.Stamp.Compare(b.Stamp), cmp.Compare(a.Seq, b.Seq), bytes.Compare(a.Value, b.Value))
		})
		if len(fw.heads) == 0 {
			w.errorf("%s: every change is covered, which the coverage rule makes impossible", where)
			continue
		}
		out[k] = fw
	}
	return out
}

// checkStates is check 1, against the field states check 3 derived: the
// server's states, every tablet's states byte for byte (those of its
// person's villages, and no others), households and conflict lists.
func (w *world) checkStates(fields map[fieldKey]fieldWant) {
	server := map[string]*rasoatv1.EntityState{}
	if _, err := w.srv.db.Snapshot(w.ctx, store.SnapshotQuery{Villages: worldVillages()}, func(_ store.Position, e *rasoatv1.EntityState) error {
		server[e.GetEntityId()] = e
		return nil
	}); err != nil {
		w.fatalf("read server states: %v", err)
	}
	states := map[string]*entity.State{}
	for _, id := range sortedKeys(server) {
		if w.ents[id] == nil {
			w.errorf("the server holds entity %s, which no acknowledged write created", id)
		}
	}
	for _, id := range w.ids {
		e := w.ents[id]
		es := server[id]
		if es == nil {
			w.errorf("the server lacks %s %s", e.kind, e.name)
			continue
		}
		s := &entity.State{}
		if err := s.UnmarshalBinary(es.GetState()); err != nil {
			w.fatalf("server state of %s: %v", e.name, err)
		}
		if s.ID != id || s.Kind != entity.KindOf(e.kind) || s.HouseholdID != e.household || s.VillageCode != e.village {
			w.errorf("server state of %s is %v %s of %s in %s", e.name, s.Kind, s.ID, s.HouseholdID, s.VillageCode)
		}
		states[id] = s
		var paths []string
		for k := range fields {
			if k.entity == id {
				paths = append(paths, k.field)
			}
		}
		slices.Sort(paths)
		if got := s.Paths(); !slices.Equal(got, paths) {
			w.errorf("server state of %s has fields %v, the log %v", e.name, got, paths)
		}
		for _, p := range paths {
			f, fw := s.Field(p), fields[fieldKey{id, p}]
			if f == nil {
				continue
			}
			if !sameHeads(f.Heads, fw.heads) || !slices.Equal(f.Seen, fw.seen) {
				w.errorf("server state of %s.%s:\n heads %s seen %v\nwant:\n heads %s seen %v", e.name, p, headsString(f.Heads), f.Seen, headsString(fw.heads), fw.seen)
			}
		}
	}

	// Every tablet holds the server's states, byte for byte.
	for _, tb := range w.tabs {
		rows, err := tb.raw.QueryContext(w.ctx, "SELECT id, state FROM entities")
		if err != nil {
			w.fatalf("%s read states: %v", tb.name, err)
		}
		got := map[string][]byte{}
		for rows.Next() {
			var id string
			var b []byte
			if err := rows.Scan(&id, &b); err != nil {
				w.fatalf("%s read states: %v", tb.name, err)
			}
			got[id] = b
		}
		if err := rows.Close(); err != nil {
			w.fatalf("%s read states: %v", tb.name, err)
		}
		for _, id := range sortedKeys(server) {
			if !tb.reads(server[id].GetVillageCode()) {
				continue
			}
			if b, ok := got[id]; !ok {
				w.errorf("%s lacks entity %s of village %s", tb.name, w.name(id), server[id].GetVillageCode())
			} else if !bytes.Equal(b, server[id].GetState()) {
				var s entity.State
				_ = s.UnmarshalBinary(b)
				w.errorf("%s holds %s differently from the server:\n%s\nserver:\n%s", tb.name, w.name(id), stateString(&s), stateString(states[id]))
			}
		}
		for _, id := range sortedKeys(got) {
			switch {
			case server[id] == nil:
				w.errorf("%s holds entity %s, which the server does not", tb.name, w.name(id))
			case !tb.reads(server[id].GetVillageCode()):
				w.errorf("%s of %s (villages %v) holds entity %s of village %s", tb.name, tb.person.ID, tb.villages, w.name(id), server[id].GetVillageCode())
			}
		}
	}

	// Households: built here from the winners; the server's states
	// materialised; every tablet's.
	for _, id := range w.ids {
		e := w.ents[id]
		if e.kind != entity.KindHousehold {
			continue
		}
		want := w.household(e, fields)
		if want == nil {
			continue
		}
		var members []entity.State
		for _, m := range e.members {
			if states[m] != nil {
				members = append(members, *states[m])
			}
		}
		if states[id] != nil {
			srv, err := entity.Materialise(*states[id], members)
			if err != nil || !proto.Equal(srv, want) {
				w.errorf("household %s materialised from the server's states (%v):\n%v\nwant:\n%v", e.name, err, srv, want)
			}
		}
		for _, tb := range w.tabs {
			got, err := tb.c.Household(w.ctx, id)
			switch {
			case !tb.reads(e.village):
				if !errors.Is(err, client.ErrNotFound) {
					w.errorf("%s of %s (villages %v) shows household %s of village %s: %v", tb.name, tb.person.ID, tb.villages, e.name, e.village, err)
				}
			case err != nil || !proto.Equal(got, want):
				w.errorf("%s shows household %s (%v):\n%v\nwant:\n%v", tb.name, e.name, err, got, want)
			}
		}
	}

	// Conflicts: a field whose visible changes disagree, on every tablet.
	var want []client.Conflict
	for _, id := range sortedKeys(w.ents) {
		e := w.ents[id]
		var paths []string
		for k := range fields {
			if k.entity == id {
				paths = append(paths, k.field)
			}
		}
		slices.Sort(paths)
		for _, p := range paths {
			fw := fields[fieldKey{id, p}]
			win := fw.winner()
			var others []client.ConflictValue
			for _, h := range fw.heads[:len(fw.heads)-1] {
				if !bytes.Equal(h.Value, win.Value) {
					others = append(others, conflictValue(h))
				}
			}
			if len(others) > 0 {
				want = append(want, client.Conflict{EntityID: id, Kind: e.kind, HouseholdID: e.household, Field: p, Winner: conflictValue(win), Others: others})
			}
		}
	}
	for _, tb := range w.tabs {
		var got []client.Conflict
		if err := tb.c.Conflicts(w.ctx, func(c client.Conflict) error {
			got = append(got, c)
			return nil
		}); err != nil {
			w.fatalf("%s conflicts: %v", tb.name, err)
		}
		var mine []client.Conflict
		for _, c := range want {
			if tb.reads(w.ents[c.EntityID].village) {
				mine = append(mine, c)
			}
		}
		if !reflect.DeepEqual(got, mine) {
			w.errorf("%s lists %d conflicts:\n%s\nwant %d:\n%s", tb.name, len(got), w.conflictsString(got), len(mine), w.conflictsString(mine))
		}
	}
	stalled := fmt.Sprintf("%d stalled Snapshot streams on the world's villages", w.nstalls)
	if w.bulk {
		stalled = fmt.Sprintf("%d stalled Snapshot streams mid-way through a %d-entity bulk village", w.nstalls, bulkEntities)
	}
	var whose []string
	for _, tb := range w.tabs {
		whose = append(whose, fmt.Sprintf("%s of %s %v", tb.name, tb.person.ID, tb.villages))
	}
	w.t.Logf("seed %d: %d tablets (%s), %d operations, %d acknowledged writes, %d changes in the log, %d entities, %d open conflicts; %v; %s",
		w.seed, len(w.tabs), strings.Join(whose, ", "), w.step, len(w.ops), len(w.log), len(w.ids), len(want), w.n, stalled)
}

func conflictValue(h merge.Head) client.ConflictValue {
	return client.ConflictValue{Value: h.Value, Replica: h.Stamp.Replica, At: h.Stamp.HLC.Wall(), HLC: uint64(h.Stamp.HLC)}
}

// household builds what household e must materialise as, from first
// principles: each field's winner nested by the dots of its path (null
// leaves it unset), members by id.
func (w *world) household(e *ent, fields map[fieldKey]fieldWant) *rasoatv1.Household {
	obj := func(id string) map[string]string {
		m := map[string]string{}
		for k, fw := range fields {
			if k.entity == id {
				if v := string(fw.winner().Value); v != "null" {
					m[k.field] = v
				}
			}
		}
		return m
	}
	top := obj(e.id)
	top["id"], top["villageCode"] = jsonString(e.id), jsonString(e.village)
	var b bytes.Buffer
	b.WriteString(strings.TrimSuffix(string(nested(top)), "}"))
	ms := slices.Clone(e.members)
	slices.Sort(ms)
	if len(ms) > 0 {
		b.WriteString(`,"members":[`)
		for i, m := range ms {
			if i > 0 {
				b.WriteByte(',')
			}
			mo := obj(m)
			mo["id"] = jsonString(m)
			b.Write(nested(mo))
		}
		b.WriteString("]")
	}
	b.WriteString("}")
	h := &rasoatv1.Household{}
	if err := protojson.Unmarshal(b.Bytes(), h); err != nil {
		w.errorf("household %s: the winners do not make a household: %v\n%s", e.name, err, b.Bytes())
		return nil
	}
	return h
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func sameHeads(a, b []merge.Head) bool {
	return slices.EqualFunc(a, b, func(x, y merge.Head) bool {
		return x.Stamp == y.Stamp && x.Seq == y.Seq && bytes.Equal(x.Value, y.Value)
	})
}

func headsString(hs []merge.Head) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, fmt.Sprintf("%s#%d=%s", h.Stamp, h.Seq, h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func stateString(s *entity.State) string {
	if s == nil {
		return "<none>"
	}
	var b strings.Builder
	for _, p := range s.Paths() {
		f := s.Field(p)
		fmt.Fprintf(&b, "  %s: heads %s seen %v\n", p, headsString(f.Heads), f.Seen)
	}
	return b.String()
}

func (w *world) conflictsString(cs []client.Conflict) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "  %s.%s: %s@%d by %s over", w.name(c.EntityID), c.Field, c.Winner.Value, c.Winner.HLC, c.Winner.Replica)
		for _, o := range c.Others {
			fmt.Fprintf(&b, " %s@%d by %s", o.Value, o.HLC, o.Replica)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
