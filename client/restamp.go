package client

import (
	"context"
	"fmt"
	"slices"

	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/proto"
)

// restamp recovers from a wrong tablet clock. A tablet whose clock was set
// days ahead stamped its writes days ahead, and the server refuses them
// (hlc.CheckDrift), rightly: such a stamp would win every field until that
// day came. Once the clock is right again, restamp gives new stamps, from
// a clock reset to the wall clock, to the outbox changes from sequence
// number from on: the first change the server refused as too far ahead and
// every later one.
//
// No server holds any of them. The refused change was never stored: had a
// server taken it earlier, its clock was behind the refusing one's (a
// server clock only moves forward), so it would have refused it too. Every
// later change of this replica is stamped above it, so the same holds. The
// changes before it keep their stamps even though they are unacknowledged:
// a push whose answer was lost may have stored them.
//
// It keeps sequence numbers and order, and rewrites every reference to the
// old stamps consistently: the Base entries of later outbox changes that
// name them, and the heads and seen stamps of the entities they wrote. The
// rewritten set is the outbox's tail (stamps grow with sequence numbers),
// so the mapping from old to new stamps is increasing and stays above every
// stamp kept; each field's state is then exactly what applying the
// re-stamped changes would give.
//
// The reset clock starts above every stamp a server acknowledged or sent
// (meta.hlc_known) and every outbox stamp kept, so this replica's stamps
// still only grow. It returns how many changes it re-stamped.
func (c *Client) restamp(ctx context.Context, from uint64) (int, error) {
	var n int
	var clock *hlc.Clock
	err := c.write(ctx, "re-stamp", func(w *writeTx) error {
		var kept hlc.Timestamp
		if err := w.tx.QueryRowContext(ctx, "SELECT coalesce(max(hlc), 0) FROM outbox WHERE origin_seq < ?", int64(from)).Scan(&kept); err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		clock = hlc.New(c.now)
		clock.Restore(max(w.m.hlcKnown, kept))

		moved := map[fieldStamp]hlc.Timestamp{} // old stamp → new, this replica's
		entities, err := w.rewriteOutbox(int64(from)-1, func(seq int64, ch *rasoatv1.Change) (int64, bool, error) {
			base := make([]merge.Stamp, len(ch.Base))
			for j, b := range ch.Base {
				s := merge.Stamp{HLC: hlc.Timestamp(b.Hlc), Replica: b.ReplicaId}
				if nt, ok := moved[stampOf(ch, b.Hlc)]; ok && s.Replica == w.m.replica {
					s.HLC = nt
				} else {
					clock.Restore(s.HLC) // the new stamp must stay above it
				}
				base[j] = s
			}
			slices.SortFunc(base, merge.Stamp.Compare)
			nt := clock.Now()
			moved[stampOf(ch, ch.Stamp.Hlc)] = nt
			ch.Stamp.Hlc = uint64(nt)
			for j, s := range base {
				ch.Base[j] = &rasoatv1.Stamp{Hlc: uint64(s.HLC), ReplicaId: s.Replica}
			}
			n++
			return seq, true, nil
		})
		if err != nil {
			return err
		}
		for _, id := range entities {
			e, err := w.load(id)
			if err != nil {
				return err
			}
			for _, p := range e.state.Paths() {
				restampField(e.state.Field(p), w.m.replica, func(t hlc.Timestamp) (hlc.Timestamp, bool) {
					nt, ok := moved[fieldStamp{id, p, uint64(t)}]
					return nt, ok
				})
			}
			e.dirty = true
		}
		// flush stores max(meta, clock): the meta's hlc_last is the wrong
		// clock's, so lower it here and let flush take the new clock's.
		w.m.hlcLast = 0
		w.clock = clock
		return nil
	})
	if err != nil {
		return 0, err // the clock stays the one the file still holds
	}
	// Only now that the new stamps are durable: a clock swapped before a
	// commit that failed would stamp new writes below the outbox's own.
	c.clock.Store(clock)
	return n, nil
}

// rewriteOutbox calls fn, in sequence order, for each outbox change after
// seq after (set aside or not); a change fn reports changed is written back
// in place, under the seq fn returns, with its stamp's HLC. It returns the
// entities of the changes written, in order of first appearance: what
// re-stamping, issuing again and renaming a base share.
func (w *writeTx) rewriteOutbox(after int64, fn func(seq int64, ch *rasoatv1.Change) (newSeq int64, changed bool, err error)) ([]string, error) {
	var entities []string
	for {
		batch, seqs, err := w.outboxAfter(after)
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			return entities, nil
		}
		for i, ch := range batch {
			after = seqs[i]
			seq, changed, err := fn(seqs[i], ch)
			if err != nil {
				return nil, err
			}
			if !changed {
				continue
			}
			payload, err := marshalChange.Marshal(ch)
			if err != nil {
				return nil, fmt.Errorf("encode change %d: %w", seqs[i], err)
			}
			if _, err := w.tx.ExecContext(w.ctx, "UPDATE outbox SET origin_seq = ?, hlc = ?, payload = ? WHERE origin_seq = ?",
				seq, int64(ch.GetStamp().GetHlc()), payload, seqs[i]); err != nil {
				return nil, fmt.Errorf("rewrite change %d: %w", seqs[i], err)
			}
			if !slices.Contains(entities, ch.GetEntityId()) {
				entities = append(entities, ch.GetEntityId())
			}
		}
	}
}

// markRefresh marks entity id to be rebuilt from the server's state and
// the outbox at the next sync.
func markRefresh(ctx context.Context, x execer, id string) error {
	if _, err := x.ExecContext(ctx, "INSERT INTO refresh (entity_id) VALUES (?) ON CONFLICT DO NOTHING", id); err != nil {
		return fmt.Errorf("mark entity %s to rebuild: %w", id, err)
	}
	return nil
}

// outboxAfter reads, in sequence order, up to a batch of outbox changes
// after sequence number after.
func (w *writeTx) outboxAfter(after int64) ([]*rasoatv1.Change, []int64, error) {
	rows, err := w.tx.QueryContext(w.ctx, "SELECT origin_seq, payload FROM outbox WHERE origin_seq > ? ORDER BY origin_seq LIMIT 500", after)
	if err != nil {
		return nil, nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []*rasoatv1.Change
	var seqs []int64
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return nil, nil, fmt.Errorf("read outbox: %w", err)
		}
		ch := &rasoatv1.Change{}
		if err := proto.Unmarshal(b, ch); err != nil {
			return nil, nil, fmt.Errorf("read outbox change %d: %w", seq, err)
		}
		out = append(out, ch)
		seqs = append(seqs, seq)
	}
	return out, seqs, rows.Err()
}

// fieldStamp is a stamp of one replica's as a base, a head or a seen stamp
// names it: with the entity and field it belongs to. A stamp names one
// change only within a field (a base names a change to its own field, and
// a field's state holds its own changes): two changes of one replica to
// different fields may carry one HLC. A file restored from a copy does,
// when it re-stamps its changes into the stamps the server holds for the
// history it lost; moving stamps by HLC alone would then move a base
// naming one of those stored changes along with the re-stamped one.
type fieldStamp struct {
	entity, field string
	hlc           uint64
}

// stampOf is ch's entity and field with the HLC t: ch's own stamp, or one
// of its base's.
func stampOf(ch *rasoatv1.Change, t uint64) fieldStamp {
	return fieldStamp{ch.GetEntityId(), ch.GetField(), t}
}

// restampField maps replica's moved stamps in f's heads and seen stamps,
// then restores the heads' order; moved is the field's own mapping.
func restampField(f *merge.Field, replica string, moved func(hlc.Timestamp) (hlc.Timestamp, bool)) {
	for i := range f.Seen {
		if s := &f.Seen[i]; s.Replica == replica {
			if nt, ok := moved(s.HLC); ok {
				s.HLC = nt
			}
		}
	}
	changed := false
	for i := range f.Heads {
		if h := &f.Heads[i]; h.Stamp.Replica == replica {
			if nt, ok := moved(h.Stamp.HLC); ok {
				h.Stamp.HLC = nt
				changed = true
			}
		}
	}
	if changed {
		slices.SortStableFunc(f.Heads, func(a, b merge.Head) int { return a.Stamp.Compare(b.Stamp) })
	}
}
