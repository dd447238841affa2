package robustness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rasoat/rasoat/internal/entity"

	"github.com/rasoat/rasoat/client"
)

// A restored tablet file: a collaborator copies the tablet's SQLite file
// (a backup), goes on writing and syncing, then puts the old copy back and
// goes on writing. The file then holds an older replica state than the
// server: its next sequence numbers are ones the server may already hold,
// from the writes the restore threw away. The client must find out at its
// next push (the server refuses a reused (origin, seq) with other content,
// CONTENT_MISMATCH, or says in PushResponse.replica_high_seq that it holds
// seqs the file has not issued) and move to a fresh replica id, issuing
// its unacknowledged changes again under it (client/refused.go, reissue
// and checkRestored).
//
// What the model expects:
//   - writes made before the copy are the file's own, as before;
//   - writes made after the copy and before the restore are lost, unless
//     the server stored them first (then they stay, under the old id);
//   - writes made after the restore keep their values and stamps' times,
//     and are acknowledged once, under the fresh replica id when the client
//     moved to one (with the same shift of sequence numbers for all), or
//     under the old id when the server held none of the seqs the copy had
//     not issued (nothing to collide with).
//
// A tablet holds one copy at a time, and no copy is taken while a restore
// waits to be found (tablet.restored): a copy of a file restored but not
// yet moved to a fresh id, put back after the move, re-issues the same
// writes a second time (TestRestoredTwice), which the model does not
// follow.

// originKey is a change's global identity.
type originKey struct {
	replica string
	seq     uint64
}

// fileCopy is a copy of a tablet's file, with what the model knew of the
// tablet when it was taken.
type fileCopy struct {
	path       string // the copy of the main file; its -wal beside it, if one was copied
	wal        bool
	hot        bool // copied while the client had the file open
	step       int
	replica    string
	next       uint64
	posL, posU int
	knownL     map[string]bool
	knownU     map[string]bool
	lastOp     *op
	wild       bool
}

// backupTablet copies tb's file: either closed (the client closed, the file
// copied, the client opened again) or open (the main file and its -wal as
// they are between two operations, as a file manager would copy them).
func (w *world) backupTablet(tb *tablet) {
	b := &fileCopy{
		path: filepath.Join(w.dir, fmt.Sprintf("%s-copy%d.db", strings.TrimSuffix(filepath.Base(tb.path), ".db"), w.n.backups)),
		hot:  w.r.IntN(2) == 0, step: w.step, replica: tb.c.ReplicaID(), next: tb.next,
		posL: tb.posL, posU: tb.posU, knownL: maps.Clone(tb.knownL), knownU: maps.Clone(tb.knownU),
		lastOp: tb.lastOp, wild: tb.wild,
	}
	if !b.hot {
		w.closeTablet(tb)
	}
	copyFile(w, tb.path, b.path)
	if _, err := os.Stat(tb.path + "-wal"); err == nil {
		b.wal = true
		copyFile(w, tb.path+"-wal", b.path+"-wal")
	}
	if !b.hot {
		w.openTablet(tb)
		w.openRaw(tb)
	}
	tb.backup = b
	w.n.backups++
	mode := "closed"
	if b.hot {
		mode = "open"
	}
	w.record("%s file copied (%s, wal %v): replica %s, next seq %d", tb.name, mode, b.wal, b.replica, b.next)
}

// restoreTablet puts tb's copy back in place of its file and tells the
// model what the restore threw away.
func (w *world) restoreTablet(tb *tablet) {
	b := tb.backup
	tb.backup = nil
	w.refresh()
	w.closeTablet(tb)
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(tb.path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.fatalf("restore %s: %v", tb.name, err)
		}
	}
	copyFile(w, b.path, tb.path)
	if b.wal {
		copyFile(w, b.path+"-wal", tb.path+"-wal")
	}
	w.openTablet(tb)
	w.openRaw(tb)
	if got := tb.c.ReplicaID(); got != b.replica {
		w.fatalf("%s restored from its copy of step %d writes under replica %s, the copy was %s", tb.name, b.step, got, b.replica)
	}

	// What the server holds decides what the restore lost.
	held := map[originKey]bool{}
	logged := map[string]bool{} // entities with a change in the log
	var high uint64             // the greatest seq of the copy's replica the server holds
	for _, l := range w.log {
		k := originKey{l.c.GetStamp().GetReplicaId(), l.c.GetSeq()}
		held[k] = true
		logged[l.c.GetEntityId()] = true
		if k.replica == b.replica {
			high = max(high, k.seq)
		}
	}
	lost, kept := 0, 0
	var gone []string
	o := tb.lastOp
	for ; o != nil && o != b.lastOp; o = o.prev {
		if o.replica != b.replica {
			w.fatalf("model: %s wrote under %s at step %d after its copy of step %d under %s", tb.name, o.replica, o.step, b.step, b.replica)
		}
		for s := o.seq0; s < o.seq0+uint64(o.n); s++ {
			if held[originKey{o.replica, s}] {
				kept++
				continue
			}
			if o.lost == nil {
				o.lost = map[uint64]bool{}
			}
			o.lost[s] = true
			lost++
		}
		for _, id := range o.created {
			if !logged[id] {
				gone = append(gone, id)
			}
		}
	}
	if o != b.lastOp {
		w.fatalf("model: %s's history does not reach its copy of step %d", tb.name, b.step)
	}
	var names []string
	for _, id := range gone {
		names = append(names, w.name(id))
		w.forget(id)
	}
	tb.next, tb.posL, tb.posU, tb.knownL, tb.knownU, tb.lastOp = b.next, b.posL, b.posU, b.knownL, b.knownU, b.lastOp
	tb.wild = tb.wild || b.wild
	tb.restored, tb.restoredAt = high >= b.next, b.next
	w.n.restores++
	w.n.lost += lost
	w.record("%s file restored from its copy of step %d (next seq %d; the server holds up to %d of %s): %d changes since are lost, %d on the server; entities gone: %v",
		tb.name, b.step, b.next, high, b.replica, lost, kept, names)
	removeCopy(w, b)
}

// dropBackup deletes tb's copy, if any.
func (w *world) dropBackup(tb *tablet) {
	if tb.backup != nil {
		removeCopy(w, tb.backup)
		tb.backup = nil
	}
}

func removeCopy(w *world, b *fileCopy) {
	for _, p := range []string{b.path, b.path + "-wal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.fatalf("remove copy: %v", err)
		}
	}
}

// forget removes an entity only a lost part of a restored file held.
func (w *world) forget(id string) {
	e := w.ents[id]
	if e == nil {
		return
	}
	delete(w.ents, id)
	w.ids = slices.DeleteFunc(w.ids, func(x string) bool { return x == id })
	if h := w.ents[e.household]; h != nil {
		h.members = slices.DeleteFunc(h.members, func(x string) bool { return x == id })
	}
	for _, tb := range w.tabs {
		delete(tb.knownL, id)
		delete(tb.knownU, id)
	}
}

// closeTablet closes the client and the raw reader of tb's file.
func (w *world) closeTablet(tb *tablet) {
	if err := errors.Join(tb.c.Close(), tb.raw.Close()); err != nil {
		w.fatalf("close %s: %v", tb.name, err)
	}
}

func copyFile(w *world, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		w.fatalf("copy %s: %v", from, err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		w.fatalf("copy to %s: %v", to, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		w.fatalf("copy %s: %v", from, err)
	}
	if err := out.Close(); err != nil {
		w.fatalf("copy to %s: %v", to, err)
	}
}

// afterSync checks what a Sync did to tb's identity and set aside, and
// moves the model's writes with a move to a fresh replica id: the client
// issues the outbox's changes from seq from on again, in order, with seqs
// from its next one on, so each moves by the count re-issued. A restored
// file moves only when one of its writes meets a seq the server holds with
// other content (client.checkRestored says why not sooner).
func (w *world) afterSync(tb *tablet, old string, st client.SyncStats, err error) {
	w.t.Helper()
	now := tb.c.ReplicaID()
	switch {
	case now == old && st.Reissued > 0:
		w.fatalf("%s re-issued %d changes but still writes under replica %s", tb.name, st.Reissued, now)
	case now != old && !tb.restored:
		w.fatalf("%s moved from replica %s to %s (re-issuing %d changes), though its file was not restored from a copy behind the server", tb.name, old, now, st.Reissued)
	case now != old:
		k := uint64(st.Reissued)
		from := tb.next - k
		if from < tb.restoredAt {
			// Changes made before the copy: the server holds them if the
			// part of the file the restore threw away pushed them.
			w.refresh()
			held := map[uint64]string{}
			for _, l := range w.log {
				if l.c.GetStamp().GetReplicaId() == old && l.c.GetSeq() >= from && l.c.GetSeq() < tb.restoredAt {
					held[l.c.GetSeq()] = fmt.Sprintf("%s.%s = %s @%x", w.name(l.c.GetEntityId()), l.c.GetField(), l.c.GetValue(), l.c.GetStamp().GetHlc())
				}
			}
			for s := from; s < tb.restoredAt; s++ {
				if h, ok := held[s]; ok {
					w.fatalf("%s re-issued its changes from seq %d under %s, but its copy was taken at seq %d and the server holds seq %d of %s (%s), pushed before the restore with another stamp (re-stamped): that write is now stored twice (see TestRestoredFileAfterRestamp)",
						tb.name, from, now, tb.restoredAt, s, old, h)
				}
			}
		}
		moved := 0
		var next *op // the write after o in tb's history
		for o := tb.lastOp; o != nil; next, o = o, o.prev {
			switch {
			case o.replica != old || o.seq0+uint64(o.n) <= from && o.seq0 < from:
			case o.seq0 < from:
				// A restored file's write can straddle the seq it moves
				// at: its first seqs were free on the server (a change
				// refused and discarded there never took them), the rest
				// met seqs the server holds. Those move; split the write.
				tail := w.splitOp(o, from)
				if next != nil {
					next.prev = tail
				} else {
					tb.lastOp = tail
				}
				tail.replica, tail.seq0 = now, tail.seq0+k
				moved += tail.n
			default:
				o.replica, o.seq0 = now, o.seq0+k
				moved += o.n
			}
		}
		if moved != int(k) {
			w.fatalf("%s re-issued %d changes from seq %d, the model has %d writes there", tb.name, k, from, moved)
		}
		tb.next += k
		tb.restored = false
		w.n.reissues++
		w.n.reissued += int(k)
		w.record("%s moved from replica %s to %s, re-issuing %d changes from seq %d as %d on", tb.name, old, now, k, from, from+k)
	}
	if tb.restoredAt > 0 {
		// The model's count of seqs, moved by restores and re-issues.
		var replica string
		var next uint64
		if err := tb.raw.QueryRowContext(w.ctx, "SELECT replica_id, next_seq FROM meta WHERE id = 1").Scan(&replica, &next); err != nil {
			w.fatalf("%s read meta: %v", tb.name, err)
		}
		if replica != now || next != tb.next {
			w.fatalf("%s's file writes under %s from seq %d; the client says %s, the model counts seq %d", tb.name, replica, next, now, tb.next)
		}
	}
	refused, rerr := tb.c.Refused(w.ctx)
	if rerr != nil {
		w.fatalf("%s refused: %v", tb.name, rerr)
	}
	refused = w.discardTransitions(tb, refused)
	if len(refused) > 0 {
		var lines []string
		for _, r := range refused {
			lines = append(lines, fmt.Sprintf("  #%d %s.%s = %s: %s (%s)", r.Seq, w.name(r.EntityID), r.Field, r.Value, r.Reason, r.Description))
		}
		hint := ""
		if tb.restoredAt > 0 {
			see := map[string]string{"CONTENT_MISMATCH": "; see TestRestoredFileDetectedMidPush", "BASE_UNKNOWN": "; see TestReissueThenRefreshFails"}[refused[0].Reason]
			hint = fmt.Sprintf(" (its file was restored from a copy at seq %d%s)", tb.restoredAt, see)
		}
		w.fatalf("%s set aside %d changes the server refused (sync err %v)%s:\n%s", tb.name, len(refused), err, hint, strings.Join(lines, "\n"))
	}
}

// discardTransitions discards, as a collaborator would after reading why,
// the review transitions the server's workflow refused (TRANSITION_REFUSED:
// a submit by an officer, who does not survey, or over a status another
// tablet moved meanwhile), which the model then counts as never made; it
// returns the other refusals.
func (w *world) discardTransitions(tb *tablet, refused []client.RefusedChange) []client.RefusedChange {
	var rest []client.RefusedChange
	for _, r := range refused {
		if r.Reason != "TRANSITION_REFUSED" || r.Kind != entity.KindReview || r.Field != "status" {
			rest = append(rest, r)
			continue
		}
		// The write it was, under this file's replica id or one it moved
		// from (a restored file sends its old changes again).
		o := tb.lastOp
		for ; o != nil; o = o.prev {
			if o.seq0 <= r.Seq && r.Seq < o.seq0+uint64(o.n) {
				x := o.want[r.Seq-o.seq0]
				if x.entity == r.EntityID && x.field == r.Field && bytes.Equal(x.value, r.Value) {
					break
				}
			}
		}
		if o == nil {
			w.fatalf("%s set aside transition #%d (%s), which the model never saw written", tb.name, r.Seq, r.Description)
		}
		if err := tb.c.Discard(w.ctx, r.Seq); err != nil {
			w.fatalf("%s discard #%d: %v", tb.name, r.Seq, err)
		}
		if o.lost == nil {
			o.lost = map[uint64]bool{}
		}
		o.lost[r.Seq] = true
		w.n.transitions++
		w.record("%s discards the transition #%d %s = %s the workflow refused: %s", tb.name, r.Seq, w.name(r.EntityID), r.Value, r.Description)
	}
	return rest
}

// splitOp cuts o's write at seq at: o keeps the seqs before it, and the
// returned op, after o in its tablet's history, holds the rest.
func (w *world) splitOp(o *op, at uint64) *op {
	cut := int(at - o.seq0)
	tail := &op{tab: o.tab, idx: len(w.ops), prev: o, replica: o.replica, step: o.step, desc: o.desc + " (its tail)",
		seq0: at, n: o.n - cut, want: o.want[cut:], posL: o.posL, posU: o.posU}
	for s := range o.lost {
		if s >= at {
			if tail.lost == nil {
				tail.lost = map[uint64]bool{}
			}
			tail.lost[s] = true
			delete(o.lost, s)
		}
	}
	o.n, o.want = cut, o.want[:cut:cut]
	w.ops = append(w.ops, tail)
	w.record("model: %s's write of step %d (%s) split at seq %d, where its file moves to a fresh replica id", o.tab.name, o.step, o.desc, at)
	return tail
}
