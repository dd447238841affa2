package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	"github.com/rasoat/rasoat/internal/replica"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/proto"
)

// RefusedChange is a local change a server refused for good (bị từ chối):
// a field a newer app added, pushed to an older server; a village no longer
// assigned to this collaborator; a value the server's rules refuse. It is
// set aside, not lost and not blocking the rest, until the collaborator
// retries it (after the cause is mended: the server updated, the village
// assigned again) or discards it (the entity then takes the server's value
// again at the next sync).
type RefusedChange struct {
	Seq         uint64 // its sequence number in this file (what Retry and Discard take)
	EntityID    string
	Kind        string // "household", "member", "review"
	Field       string // the field path, e.g. "housing.floorAreaM2"
	Value       []byte // the value written (canonical JSON)
	Reason      string // the server's reason: a rasoatv1.ErrorReason name, e.g. "OUT_OF_SCOPE"
	Description string // the server's words, for people
	At          time.Time
}

// setAside marks the changes of batch that err refuses for good (by their
// violations' reasons) as refused, in one transaction, and returns how
// many.
func (c *Client) setAside(ctx context.Context, batch []*rasoatv1.Change, err error) (int, error) {
	type refusal struct {
		seq          uint64
		reason, desc string
		field        string
	}
	var out []refusal
	seen := map[int]bool{}
	for _, v := range rpcerr.Violations(err) {
		i, ok := rpcerr.ChangeIndex(v.Field)
		if !ok || i >= len(batch) || seen[i] || !permanent(v.Reason) {
			continue
		}
		seen[i] = true
		out = append(out, refusal{batch[i].GetSeq(), v.Reason.String(), v.Desc, v.Field})
	}
	if len(out) == 0 {
		return 0, nil
	}
	tx, terr := c.w.BeginTx(ctx, nil)
	if terr != nil {
		return 0, fmt.Errorf("set aside: %w", terr)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	now := c.now().Unix()
	for _, r := range out {
		if _, err := tx.ExecContext(ctx, "UPDATE outbox SET refused_reason = ?, refused_field = ?, refused_desc = ?, refused_at = ? WHERE origin_seq = ?",
			r.reason, r.field, r.desc, now, int64(r.seq)); err != nil {
			return 0, fmt.Errorf("set aside change %d: %w", r.seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("set aside: %w", err)
	}
	return len(out), nil
}

// Refused lists the local changes a server refused for good, oldest first.
func (c *Client) Refused(ctx context.Context) ([]RefusedChange, error) {
	rows, err := c.r.QueryContext(ctx, "SELECT origin_seq, payload, refused_reason, refused_desc, refused_at FROM outbox WHERE refused_reason IS NOT NULL ORDER BY origin_seq")
	if err != nil {
		return nil, fmt.Errorf("list refused changes: %w", err)
	}
	defer rows.Close()
	var out []RefusedChange
	for rows.Next() {
		var seq, at int64
		var payload []byte
		var r RefusedChange
		if err := rows.Scan(&seq, &payload, &r.Reason, &r.Description, &at); err != nil {
			return nil, fmt.Errorf("list refused changes: %w", err)
		}
		ch := &rasoatv1.Change{}
		if err := proto.Unmarshal(payload, ch); err != nil {
			return nil, fmt.Errorf("read refused change %d: %w", seq, err)
		}
		r.Seq, r.EntityID, r.Kind, r.Field, r.Value, r.At = uint64(seq), ch.GetEntityId(), entity.KindName(ch.GetKind()), ch.GetField(), ch.GetValue(), time.Unix(at, 0)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Retry puts a refused change back in the outbox: the next Sync sends it
// again (and sets it aside again if the server still refuses it).
func (c *Client) Retry(ctx context.Context, seq uint64) error {
	res, err := c.w.ExecContext(ctx, "UPDATE outbox SET refused_reason = NULL, refused_field = NULL, refused_desc = NULL, refused_at = NULL WHERE origin_seq = ? AND refused_reason IS NOT NULL", int64(seq))
	return refusedOne(res, err, "retry", seq)
}

// Discard drops a refused change for good. Its entity is rebuilt at the
// next Sync from the server's state and this file's other unsent changes,
// so the value the server never took stops showing here too.
func (c *Client) Discard(ctx context.Context, seq uint64) error {
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("discard change %d: %w", seq, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var id string
	err = tx.QueryRowContext(ctx, "SELECT entity_id FROM outbox WHERE origin_seq = ? AND refused_reason IS NOT NULL", int64(seq)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("discard change %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("discard change %d: %w", seq, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM outbox WHERE origin_seq = ?", int64(seq)); err != nil {
		return fmt.Errorf("discard change %d: %w", seq, err)
	}
	if err := markRefresh(ctx, tx, id); err != nil {
		return fmt.Errorf("discard change %d: %w", seq, err)
	}
	return tx.Commit()
}

func refusedOne(res sql.Result, err error, op string, seq uint64) error {
	if err != nil {
		return fmt.Errorf("%s change %d: %w", op, seq, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("%s change %d: no refused change with that number: %w", op, seq, ErrNotFound)
	}
	return nil
}

// checkRestored says when a server holds a seq of this file's replica
// that the file has not issued yet (high is the greatest it holds): the
// file is an older copy of itself. Nothing moves yet: the file's next write
// will reuse a seq the server holds with other content, the server will
// refuse it (CONTENT_MISMATCH), and only the changes from there on are
// issued again under a successor id (reissue); moving now could not tell
// the file's own waiting changes, which the server may hold already, from
// the new ones.
func (c *Client) checkRestored(ctx context.Context, high uint64) error {
	m, err := readMeta(ctx, c.r)
	if err != nil {
		return err
	}
	if high >= m.nextSeq {
		c.log.Warn("this file is an older copy of itself: the server holds later changes of its replica; its next writes will be issued under a successor replica id", "replica", m.replica, "server_high_seq", high, "next_seq", m.nextSeq)
	}
	return nil
}

// ownReplica reports whether id is the replica this file writes under now
// or one it wrote under before.
func (c *Client) ownReplica(ctx context.Context, id string) (bool, error) {
	if id == c.ReplicaID() {
		return true, nil
	}
	var retired bool
	err := c.r.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM retired_replicas WHERE replica_id = ?)", id).Scan(&retired)
	return retired, err
}

// dropStored drops from the outbox a change the server holds already,
// re-stamped at storedHLC, and makes the later changes whose bases named
// the dropped stamp name the stored one instead; their entities are
// rebuilt from the server's state at the next refresh. A later change whose
// stamp is then not above the stored stamp (the re-stamping moved it past
// this file's later writes) must be re-stamped in turn: restampFrom is the
// first such seq, 0 if none. top (at least storedHLC) is the greatest
// stamp of ch's replica the server is known to hold where the later
// changes write (replicaTop): a later change of that replica at or below
// it is re-stamped too, above it, so that no stamp of this file's can be
// one the server holds for another change of the same replica.
func (c *Client) dropStored(ctx context.Context, ch *rasoatv1.Change, storedHLC, top uint64) (restampFrom uint64, err error) {
	origin, dropped := ch.GetStamp().GetReplicaId(), ch.GetStamp().GetHlc()
	top = max(top, storedHLC)
	err = c.write(ctx, "drop a stored change", func(w *writeTx) error {
		if _, err := w.tx.ExecContext(ctx, "DELETE FROM outbox WHERE origin_seq = ?", int64(ch.GetSeq())); err != nil {
			return fmt.Errorf("drop stored change %d: %w", ch.GetSeq(), err)
		}
		// The server holds the stored stamp: what this file stamps or
		// re-stamps from now on goes above it (raising a clock is safe
		// before the commit: it never stamps lower for it), so no stamp of
		// this file's can be mistaken for it.
		if _, err := w.tx.ExecContext(ctx, "UPDATE meta SET hlc_known = max(hlc_known, ?) WHERE id = 1", int64(top)); err != nil {
			return fmt.Errorf("drop stored change %d: %w", ch.GetSeq(), err)
		}
		w.clock.Restore(hlc.Timestamp(top))
		renamed, err := w.rewriteOutbox(0, func(seq int64, later *rasoatv1.Change) (int64, bool, error) {
			// Another history of this file may have stamped one of its
			// own changes with the stored stamp: re-stamp it, or the two
			// could not be told apart. A later change at or below top is
			// re-stamped too: the server may hold, from the history this
			// file lost, changes of this replica stamped up to top (its
			// seqs after the dropped one), and such a stamp must stay on
			// its change alone; nor may a change of this replica go under
			// a stamp the server's states already cover.
			own := later.GetStamp().GetReplicaId() == origin
			if own && (later.GetStamp().GetHlc() == storedHLC || seq > int64(ch.GetSeq()) && later.GetStamp().GetHlc() <= top) && (restampFrom == 0 || uint64(seq) < restampFrom) {
				restampFrom = uint64(seq)
			}
			if seq <= int64(ch.GetSeq()) {
				return seq, false, nil
			}
			renamed := false
			for _, b := range later.Base {
				// A base names a change to its own field: only those name
				// the dropped change.
				if b.GetReplicaId() == origin && b.GetHlc() == dropped && later.GetEntityId() == ch.GetEntityId() && later.GetField() == ch.GetField() {
					b.Hlc, renamed = storedHLC, true
				}
			}
			if renamed {
				if storedHLC >= later.GetStamp().GetHlc() && (restampFrom == 0 || uint64(seq) < restampFrom) {
					restampFrom = uint64(seq)
				}
				sortBase(later.Base)
			}
			return seq, renamed, nil
		})
		if err != nil {
			return err
		}
		for _, id := range append([]string{ch.GetEntityId()}, renamed...) {
			if err := markRefresh(ctx, w.tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	return restampFrom, err
}

// replicaTop returns the greatest stamp of replica the server holds in the
// entities the outbox changes after seq write to: the heads and seen stamps
// of their fields in the server's states. A stored change of replica to a
// field is a head there or covered by a seen stamp of replica, so a stamp
// above top is none of them, in every field this file's changes write.
func (s *syncer) replicaTop(ctx context.Context, replica string, after uint64) (hlc.Timestamp, error) {
	ids, err := s.c.outboxEntities(ctx, after)
	if err != nil {
		return 0, err
	}
	var top hlc.Timestamp
	for start := 0; start < len(ids); start += refreshChunk {
		states, err := s.entityStates(ctx, ids[start:min(start+refreshChunk, len(ids))])
		if err != nil {
			return 0, fmt.Errorf("read the server's states: %w", err)
		}
		for _, st := range states {
			for _, p := range st.Paths() {
				f := st.Field(p)
				for _, h := range f.Heads {
					if h.Stamp.Replica == replica {
						top = max(top, h.Stamp.HLC)
					}
				}
				for _, sn := range f.Seen {
					if sn.Replica == replica {
						top = max(top, sn.HLC)
					}
				}
			}
		}
	}
	return top, nil
}

// outboxEntities lists the entities of the outbox changes after seq.
func (c *Client) outboxEntities(ctx context.Context, after uint64) ([]string, error) {
	rows, err := c.r.QueryContext(ctx, "SELECT DISTINCT entity_id FROM outbox WHERE origin_seq > ? ORDER BY entity_id", int64(after))
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// sortBase puts a base in its one order: by HLC, then replica.
func sortBase(base []*rasoatv1.Stamp) {
	slices.SortFunc(base, func(a, b *rasoatv1.Stamp) int {
		if a.GetHlc() != b.GetHlc() {
			if a.GetHlc() < b.GetHlc() {
				return -1
			}
			return 1
		}
		return strings.Compare(a.GetReplicaId(), b.GetReplicaId())
	})
}

// successor is the replica id a file moves to from old when the server
// holds other content under old's seq from (replica.Successor: derived,
// so that a file restored twice issues identical changes, and the server
// can check the new id descends from this device's).
func successor(old string, from uint64) string { return replica.Successor(old, from) }

// reissue issues the unsent changes of origin (this file's replica id, or
// one it retired) from seq from on again under the current id, after
// retiring the current id for a fresh one if origin is it: new seqs after
// every seq in the file, their stamps' replica changed, and every
// reference to the moved stamps (later changes' bases, the entities' heads
// and seen stamps) renamed in the same transaction, so that a write made
// before the next sync names only stamps a server can hold. They were never
// stored under origin (the server refused the first of them), so nobody
// has seen them; their entities are also marked to be rebuilt exactly from
// the server's state and the outbox at the next refresh. It returns how
// many changes it issued again.
func (c *Client) reissue(ctx context.Context, from uint64, origin, why string) (int, error) {
	fresh := c.ReplicaID()
	n := 0
	err := c.write(ctx, "issue changes again", func(w *writeTx) error {
		old := origin
		if old == w.m.replica {
			fresh = successor(old, from)
			if _, err := w.tx.ExecContext(ctx, "INSERT INTO retired_replicas (replica_id, retired_at, reason, successor, from_seq) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", old, c.now().Unix(), why, fresh, from); err != nil {
				return fmt.Errorf("retire replica %s: %w", old, err)
			}
		}
		moved := map[fieldStamp]uint64{} // old's moved stamp → new seq
		touched, err := w.rewriteOutbox(int64(from)-1, func(_ int64, ch *rasoatv1.Change) (int64, bool, error) {
			if ch.GetStamp().GetReplicaId() != old {
				return 0, false, nil // another id's, or issued again by this loop
			}
			seq := w.m.nextSeq
			w.m.nextSeq++
			moved[stampOf(ch, ch.GetStamp().GetHlc())] = seq
			ch.Stamp.ReplicaId, ch.Seq = fresh, seq
			for _, b := range ch.Base {
				if _, ok := moved[stampOf(ch, b.GetHlc())]; ok && b.GetReplicaId() == old {
					b.ReplicaId = fresh
				}
			}
			sortBase(ch.Base)
			n++
			return int64(seq), true, nil
		})
		if err != nil {
			return err
		}
		for _, id := range touched {
			if err := markRefresh(ctx, w.tx, id); err != nil {
				return err
			}
			e, err := w.load(id)
			if err != nil {
				return err
			}
			for _, p := range e.state.Paths() {
				renameField(e.state.Field(p), old, fresh, func(t hlc.Timestamp) (uint64, bool) {
					seq, ok := moved[fieldStamp{id, p, uint64(t)}]
					return seq, ok
				})
			}
			e.dirty = true
		}
		if _, err := w.tx.ExecContext(ctx, "UPDATE meta SET replica_id = ? WHERE id = 1", fresh); err != nil {
			return fmt.Errorf("write the fresh replica id: %w", err)
		}
		w.m.replica = fresh
		return nil
	})
	if err != nil {
		return 0, err
	}
	c.replica.Store(&fresh)
	return n, nil
}

// refreshChunk is how many entities one refresh asks the server for (the
// server's bound on SnapshotRequest.entity_ids is higher).
const refreshChunk = 500

// refresh rebuilds the entities marked for it (after a discard, or a
// reissue): each takes the server's state, and this file's unsent changes
// to it (outbox and refused alike) are applied again on top, which is what
// the entity would hold had the dropped or moved changes never been
// written. It runs inside Sync, before the pull.
func (s *syncer) refresh(ctx context.Context) error {
	for {
		ids, err := s.c.refreshIDs(ctx, refreshChunk)
		if err != nil || len(ids) == 0 {
			return err
		}
		server, err := s.entityStates(ctx, ids)
		if err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		if err := s.c.rebuild(ctx, ids, server); err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		s.stats.Refreshed += len(ids)
	}
}

func (c *Client) refreshIDs(ctx context.Context, limit int) ([]string, error) {
	rows, err := c.r.QueryContext(ctx, "SELECT entity_id FROM refresh ORDER BY entity_id LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("refresh: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// entityStates takes the server's states of ids. A server that does not
// know SnapshotRequest.entity_ids sends its whole snapshot: only ids are
// kept.
func (s *syncer) entityStates(ctx context.Context, ids []string) (map[string]*entity.State, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.api.Snapshot(ctx, &rasoatv1.SnapshotRequest{ReplicaId: s.c.ReplicaID(), EntityIds: ids})
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := map[string]*entity.State{}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetEntities() {
			if !want[e.GetEntityId()] {
				continue
			}
			st := &entity.State{}
			if err := st.UnmarshalBinary(e.GetState()); err != nil {
				return nil, fmt.Errorf("entity %s: %w", e.GetEntityId(), err)
			}
			out[e.GetEntityId()] = st
		}
		if resp.GetDone() {
			return out, nil
		}
	}
}

// rebuild stores, for each of ids, server's state (or none) with this
// file's unsent changes to it applied again, and unmarks it.
func (c *Client) rebuild(ctx context.Context, ids []string, server map[string]*entity.State) error {
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for _, id := range ids {
		st := server[id]
		if st == nil {
			st = &entity.State{}
		}
		rows, err := tx.QueryContext(ctx, "SELECT payload FROM outbox WHERE entity_id = ? ORDER BY origin_seq", id)
		if err != nil {
			return err
		}
		var local []*rasoatv1.Change
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return err
			}
			ch := &rasoatv1.Change{}
			if err := proto.Unmarshal(b, ch); err != nil {
				rows.Close()
				return err
			}
			local = append(local, ch)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
		for _, ch := range local {
			if err := st.Check(ch); err != nil {
				return fmt.Errorf("entity %s: %w", id, err)
			}
			if st.ID == "" {
				st.ID, st.Kind, st.HouseholdID, st.VillageCode = ch.GetEntityId(), ch.GetKind(), entity.HouseholdOf(ch), ch.GetVillageCode()
			}
			st.ApplyMerge(entity.MergeOf(ch))
		}
		if st.ID == "" {
			if _, err := tx.ExecContext(ctx, "DELETE FROM entities WHERE id = ?", id); err != nil {
				return err
			}
		} else if err := putState(ctx, tx, st); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM refresh WHERE entity_id = ?", id); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// renameField gives old's moved stamps to fresh in f's heads, and a seen
// stamp of old that names a moved change to fresh as well (old's entry
// stays: it may also cover old's stored changes, and the refresh that
// follows rebuilds the field exactly). moved is the field's own mapping,
// to the moved change's new seq.
func renameField(f *merge.Field, old, fresh string, moved func(hlc.Timestamp) (uint64, bool)) {
	renamed := false
	for i := range f.Heads {
		if h := &f.Heads[i]; h.Stamp.Replica == old {
			if seq, ok := moved(h.Stamp.HLC); ok {
				h.Stamp.Replica, h.Seq = fresh, seq
				renamed = true
			}
		}
	}
	if renamed {
		slices.SortStableFunc(f.Heads, func(a, b merge.Head) int { return a.Stamp.Compare(b.Stamp) })
	}
	for _, s := range f.Seen {
		if _, ok := moved(s.HLC); ok && s.Replica == old {
			f.Merge(&merge.Field{Seen: []merge.Stamp{{HLC: s.HLC, Replica: fresh}}})
			break
		}
	}
}
