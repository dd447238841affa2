package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rasoat/rasoat/internal/apply"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Sync phases reported in Progress.Phase.
const (
	PhasePush     = "push"
	PhaseSnapshot = "snapshot"
	PhasePull     = "pull"
)

// Progress is reported after each batch a Sync pushed or applied.
type Progress struct {
	Sent     int    // local changes acknowledged so far
	Received int    // changes pulled plus entity states taken from a snapshot, so far
	Phase    string // PhasePush, PhaseSnapshot or PhasePull
}

// SyncStats says what one Sync did.
type SyncStats struct {
	Pushed     int    // local changes the server newly stored
	Duplicates int    // local changes the server already held (a resend)
	Restamped  int    // local changes re-stamped after the server found them too far ahead
	Snapshot   int    // entity states taken whole from a snapshot (first sync)
	Pulled     int    // changes pulled
	Cursor     uint64 // the server log position this tablet now holds
	Refused    int    // local changes the server refused for good, set aside (see Client.Refused)
	Reissued   int    // local changes issued again under a fresh replica id (a restored file)
	Refreshed  int    // entities rebuilt from the server's state and the outbox
}

// DefaultBatchSize is how many changes one push (and one pull response)
// carries: about 1 MB on the wire, one server transaction.
const DefaultBatchSize = 5000

type syncConfig struct {
	progress func(Progress)
	batch    int
	snapshot bool
}

// SyncOption configures Sync.
type SyncOption func(*syncConfig)

// WithProgress calls fn after each batch (on the calling goroutine).
func WithProgress(fn func(Progress)) SyncOption { return func(c *syncConfig) { c.progress = fn } }

// WithBatchSize sets the changes per push and per pull response (default
// DefaultBatchSize; the server caps what it sends).
func WithBatchSize(n int) SyncOption {
	return func(c *syncConfig) {
		if n > 0 {
			c.batch = n
		}
	}
}

// WithoutSnapshot makes a first sync replay the server's change log instead
// of taking its entity states whole (SnapshotService): slower, for servers
// without Snapshot and for tests.
func WithoutSnapshot() SyncOption { return func(c *syncConfig) { c.snapshot = false } }

// Sync exchanges changes with a server over conn (a rasoatv1.SyncService):
//
//  1. Push sends the outbox in origin-sequence order, in batches; each
//     batch leaves the outbox only once the server has acknowledged it
//     (durably stored). A dropped connection or killed app resends the
//     batch next time, which is harmless: the server skips changes it holds.
//  2. A first sync (pull cursor 0) takes the server's entity states whole
//     (Snapshot) and the log position they reflect, instead of replaying
//     every change.
//  3. Pull streams the changes after the stored cursor; each response's
//     changes are merged into the entities and the new cursor stored in the
//     same transaction, so an interrupted pull resumes without gaps or
//     duplicates. Each received stamp is observed by the clock, so later
//     local writes are stamped above what they overwrite.
//
// Memory stays flat: the outbox is read a batch at a time and each pulled
// batch is applied before the next is received.
//
// A server refuses a push whose stamps are too far ahead of its clock (a
// tablet whose clock was wrong when it wrote). Sync then re-stamps, once,
// the local changes not yet acknowledged whose stamps are ahead of the wall
// clock now, and retries: see restamp.
func (c *Client) Sync(ctx context.Context, conn grpc.ClientConnInterface, opts ...SyncOption) (SyncStats, error) {
	cfg := syncConfig{batch: DefaultBatchSize, snapshot: true}
	for _, o := range opts {
		o(&cfg)
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	s := &syncer{c: c, api: rasoatv1.NewSyncServiceClient(conn), proc: rasoatv1.NewProcedureServiceClient(conn), cfg: cfg}
	ctx, err := c.WithToken(ctx)
	if err != nil {
		return s.stats, fmt.Errorf("sync: %w", err)
	}
	err = s.run(ctx)
	return s.stats, err
}

type syncer struct {
	c     *Client
	api   rasoatv1.SyncServiceClient
	proc  rasoatv1.ProcedureServiceClient
	cfg   syncConfig
	stats SyncStats
	prog  Progress
}

func (s *syncer) report(phase string) {
	s.prog.Phase = phase
	if s.cfg.progress != nil {
		s.cfg.progress(s.prog)
	}
}

func (s *syncer) run(ctx context.Context) error {
	if err := s.push(ctx); err != nil {
		return err
	}
	m, err := readMeta(ctx, s.c.r)
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	cursor := m.cursor
	if cursor == 0 && s.cfg.snapshot {
		if cursor, err = s.takeSnapshot(ctx); err != nil {
			return err
		}
	}
	if err := s.refresh(ctx); err != nil {
		return err
	}
	defer s.procedure(ctx, s.fetchSettings(ctx))
	err = s.pull(ctx, cursor)
	if r := rpcerr.Reason(err); (r == rasoatv1.ErrorReason_CURSOR_AHEAD || r == rasoatv1.ErrorReason_LOG_CHANGED) && cursor > 0 {
		// The cursor does not count in the server's log: another server,
		// or this one restored from a backup (its log ends before the
		// cursor, or holds other changes up to it). What it holds is taken
		// again whole (merging is idempotent, and the outbox stays) and
		// pulling goes on from there; local changes it lost were pushed
		// again above only if still in the outbox, so say so.
		s.c.log.Warn("the cursor does not count in the server's log: taking its state again", "cursor", cursor, "reason", r.String(), "err", err)
		if !s.cfg.snapshot {
			return err
		}
		if cursor, err = s.takeSnapshot(ctx); err != nil {
			return err
		}
		return s.pull(ctx, cursor)
	}
	return err
}

// takeSnapshot takes the server's states whole, or returns cursor 0 to
// replay its log when the server has no Snapshot.
func (s *syncer) takeSnapshot(ctx context.Context) (uint64, error) {
	cursor, err := s.snapshot(ctx)
	if status.Code(err) == codes.Unimplemented {
		s.c.log.Info("server has no Snapshot: replaying its log", "err", err)
		return 0, nil
	}
	return cursor, err
}

// push sends the outbox in batches until it is empty. What a server
// refuses is handled by its reason, never its words:
//   - CLOCK_AHEAD: the changes from the first one refused on are re-stamped
//     once (restamp) and the batch sent again;
//   - CONTENT_MISMATCH on this replica's own change: the file was restored
//     from an older copy, and the server holds other changes under the same
//     seqs; the changes from that one on are issued again under a fresh
//     replica id (reissue) and sent again;
//   - a change refused for good (a field the server does not know, a
//     village out of scope, a base it does not hold, …) is set aside with
//     the server's reason (see Refused) and the rest is sent again.
func (s *syncer) push(ctx context.Context) error {
	restamped, rounds := false, 0
	for n := 1; ; n++ {
		batch, last, top, err := s.c.readOutbox(ctx, s.cfg.batch)
		if err != nil {
			return fmt.Errorf("push batch %d: %w", n, err)
		}
		if len(batch) == 0 {
			return nil
		}
		lineage, err := s.c.lineage(ctx)
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		res, err := s.api.Push(ctx, &rasoatv1.PushRequest{ReplicaId: s.c.ReplicaID(), Changes: batch, Lineage: lineage})
		if err != nil {
			if rounds++; rounds > maxRefusalRounds {
				return fmt.Errorf("push batch %d: still refused after %d rounds of recovery: %w", n, maxRefusalRounds, err)
			}
			retry, herr := s.refused(ctx, batch, err, &restamped)
			if herr != nil {
				return fmt.Errorf("push batch %d: %w (handling: %w)", n, err, herr)
			}
			if retry {
				n--
				continue
			}
			return fmt.Errorf("push batch %d: %w", n, err)
		}
		if err := s.c.acknowledge(ctx, last, top); err != nil {
			return fmt.Errorf("push batch %d: %w", n, err)
		}
		s.stats.Pushed += int(res.GetAccepted())
		s.stats.Duplicates += int(res.GetDuplicates())
		s.prog.Sent += len(batch)
		s.report(PhasePush)
		if err := s.c.checkRestored(ctx, res.GetReplicaHighSeq()); err != nil {
			return fmt.Errorf("push batch %d: %w", n, err)
		}
	}
}

// refused handles a refused push by its reasons and says whether to send
// again.
func (s *syncer) refused(ctx context.Context, batch []*rasoatv1.Change, err error, restamped *bool) (bool, error) {
	reason, meta := rpcerr.Info(err)
	switch reason {
	case rasoatv1.ErrorReason_CLOCK_AHEAD:
		i := firstIndex(err, rasoatv1.ErrorReason_CLOCK_AHEAD)
		if *restamped || i < 0 || i >= len(batch) {
			return false, nil
		}
		*restamped = true
		k, rerr := s.c.restamp(ctx, batch[i].GetSeq())
		if rerr != nil {
			return false, rerr
		}
		s.c.log.Warn("server refused stamps ahead of its clock: re-stamped local changes", "changes", k, "err", err)
		s.stats.Restamped += k
		return k > 0, nil
	case rasoatv1.ErrorReason_CONTENT_MISMATCH:
		i, ok := rpcerr.MetaInt(meta, "index")
		if !ok || i >= uint64(len(batch)) {
			break
		}
		ch := batch[i]
		own, oerr := s.c.ownReplica(ctx, ch.GetStamp().GetReplicaId())
		if oerr != nil {
			return false, oerr
		}
		if !own {
			break // another origin's change: set aside below
		}
		if stored, ok := rpcerr.MetaInt(meta, "stored_hlc"); ok && meta["same_write"] == "true" {
			// This very write is stored, re-stamped after a clock refusal,
			// from before the copy this file was restored from. The
			// history the file lost may have stored more changes of this
			// replica, stamped above it: what is re-stamped now must go
			// above those too.
			top, err := s.replicaTop(ctx, ch.GetStamp().GetReplicaId(), ch.GetSeq())
			if err != nil {
				return false, err
			}
			from, err := s.c.dropStored(ctx, ch, stored, uint64(top))
			if err != nil {
				return false, err
			}
			if from > 0 {
				k, err := s.c.restamp(ctx, from)
				if err != nil {
					return false, err
				}
				s.stats.Restamped += k
			}
			s.c.log.Warn("this file was restored from an older copy: a change it holds is stored already, re-stamped", "seq", ch.GetSeq())
			return true, s.refresh(ctx)
		}
		k, rerr := s.c.reissue(ctx, ch.GetSeq(), ch.GetStamp().GetReplicaId(), "the server holds other changes under this replica's seq "+strconv.FormatUint(ch.GetSeq(), 10)+": the file was restored from an older copy")
		if rerr != nil {
			return false, rerr
		}
		s.c.log.Warn("this file was restored from an older copy: its unacknowledged changes are issued again under a fresh replica id", "changes", k, "replica", s.c.ReplicaID())
		s.stats.Reissued += k
		if err := s.refresh(ctx); err != nil {
			return false, err
		}
		return true, nil
	}
	k, serr := s.c.setAside(ctx, batch, err)
	if serr != nil {
		return false, serr
	}
	if k > 0 {
		s.c.log.Warn("server refused changes for good: set aside for the collaborator to retry or discard", "changes", k, "err", err)
		s.stats.Refused += k
	}
	return k > 0, nil
}

// maxRefusalRounds bounds the recoveries one Sync makes (each sets changes
// aside, re-stamps, drops or issues again at least one change), so that a
// server answering wrongly cannot keep a tablet in a loop.
const maxRefusalRounds = 1000

// permanent reports whether a change refused with reason will be refused
// whenever it is sent again, so that it must be set aside rather than block
// the outbox.
func permanent(reason rasoatv1.ErrorReason) bool {
	switch reason {
	case rasoatv1.ErrorReason_INVALID_FIELD, rasoatv1.ErrorReason_TOO_LARGE,
		rasoatv1.ErrorReason_CONTENT_MISMATCH, rasoatv1.ErrorReason_BASE_UNKNOWN,
		rasoatv1.ErrorReason_ENTITY_MISMATCH, rasoatv1.ErrorReason_ENTITY_TOO_LARGE,
		rasoatv1.ErrorReason_OUT_OF_SCOPE, rasoatv1.ErrorReason_ROLE_DENIED,
		rasoatv1.ErrorReason_REPLICA_NOT_BOUND, rasoatv1.ErrorReason_TRANSITION_REFUSED,
		rasoatv1.ErrorReason_REVIEW_LOCKED, rasoatv1.ErrorReason_QUALITY_UNACKNOWLEDGED:
		return true
	}
	return false
}

// firstIndex returns the smallest batch index among err's violations of
// reason, or -1.
func firstIndex(err error, reason rasoatv1.ErrorReason) int {
	first := -1
	for _, v := range rpcerr.Violations(err) {
		if v.Reason != reason {
			continue
		}
		if i, ok := rpcerr.ChangeIndex(v.Field); ok && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

// readOutbox returns the first limit changes of the outbox waiting to be
// pushed (not set aside), the last one's sequence number and their
// greatest stamp.
func (c *Client) readOutbox(ctx context.Context, limit int) (batch []*rasoatv1.Change, last uint64, top hlc.Timestamp, err error) {
	rows, err := c.r.QueryContext(ctx, "SELECT origin_seq, payload FROM outbox WHERE refused_reason IS NULL ORDER BY origin_seq LIMIT ?", limit)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var b sql.RawBytes
		if err := rows.Scan(&seq, &b); err != nil {
			return nil, 0, 0, fmt.Errorf("read outbox: %w", err)
		}
		ch := &rasoatv1.Change{}
		if err := proto.Unmarshal(b, ch); err != nil {
			return nil, 0, 0, fmt.Errorf("read outbox change %d: %w", seq, err)
		}
		batch = append(batch, ch)
		last = uint64(seq)
		top = max(top, hlc.Timestamp(ch.GetStamp().GetHlc()))
	}
	if err := rows.Err(); err != nil {
		return nil, 0, 0, fmt.Errorf("read outbox: %w", err)
	}
	return batch, last, top, nil
}

// acknowledge drops the outbox up to last, except what is set aside: the
// server holds those changes.
func (c *Client) acknowledge(ctx context.Context, last uint64, top hlc.Timestamp) error {
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("acknowledge: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, "DELETE FROM outbox WHERE origin_seq <= ? AND refused_reason IS NULL", int64(last)); err != nil {
		return fmt.Errorf("acknowledge: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE meta SET acked_seq = max(acked_seq, ?), hlc_known = max(hlc_known, ?) WHERE id = 1", int64(last), int64(top)); err != nil {
		return fmt.Errorf("acknowledge: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acknowledge: %w", err)
	}
	return nil
}

// snapshot takes the server's entity states whole and returns the cursor
// they reflect, in one transaction that stores the cursor too: an
// interrupted snapshot leaves nothing and is simply taken again. A
// goroutine receives and decodes the next responses while this one writes,
// so the network, the decoding and SQLite overlap; at most two decoded
// responses (about 1 MB each) wait, so memory stays flat.
func (s *syncer) snapshot(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.api.Snapshot(ctx, &rasoatv1.SnapshotRequest{ReplicaId: s.c.ReplicaID()})
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	batches := make(chan snapBatch, 2)
	go func() {
		defer close(batches)
		for {
			b := receiveSnapshot(stream)
			select {
			case batches <- b:
			case <-ctx.Done():
				return
			}
			if b.err != nil || b.done {
				return
			}
		}
	}()
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var empty bool
	if err := tx.QueryRowContext(ctx, "SELECT NOT EXISTS (SELECT 1 FROM entities)").Scan(&empty); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	w := &rowWriter{tx: tx}
	defer w.close()
	var top hlc.Timestamp
	for b := range batches {
		if b.err != nil {
			return 0, fmt.Errorf("snapshot: %w", b.err)
		}
		if err := applyStates(ctx, w, b.states, empty); err != nil {
			return 0, fmt.Errorf("snapshot: %w", err)
		}
		top = max(top, b.top)
		s.stats.Snapshot += len(b.states)
		s.prog.Received += len(b.states)
		if b.done {
			// The states are exactly the log up to b.cursor, so the cursor
			// is set, not raised: after a server was restored from a backup
			// older than this tablet's cursor, it goes back to what the
			// server really holds.
			if err := s.c.finishApply(ctx, tx, top, &logPos{b.cursor, b.check, b.logID}); err != nil {
				return 0, fmt.Errorf("snapshot: %w", err)
			}
			s.stats.Cursor = b.cursor
			s.report(PhaseSnapshot)
			return b.cursor, nil
		}
		s.report(PhaseSnapshot)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	return 0, errors.New("snapshot: stream ended before its last response")
}

// snapBatch is one Snapshot response, read.
type snapBatch struct {
	states []snapState
	top    hlc.Timestamp // greatest stamp in it
	cursor uint64
	check  uint64
	logID  string
	done   bool
	err    error
}

// snapState is one entity state of a snapshot, read but not decoded: a
// first sync stores it as it came.
type snapState struct {
	id, household, village string
	kind                   rasoatv1.EntityKind
	state                  []byte
	conflicted             bool
}

// receiveSnapshot receives and reads one response. Reading (entity.Summarise)
// checks each state as decoding would, without building it, and finds its
// identity, its greatest winning stamp and its conflict flag, so the
// writer only writes.
func receiveSnapshot(stream grpc.ServerStreamingClient[rasoatv1.SnapshotResponse]) snapBatch {
	resp, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return snapBatch{err: errors.New("stream ended before its last response")}
	}
	if err != nil {
		return snapBatch{err: err}
	}
	b := snapBatch{states: make([]snapState, len(resp.GetEntities())), cursor: resp.GetCursor(), check: resp.GetCursorCheck(), logID: resp.GetLogId(), done: resp.GetDone()}
	for i, e := range resp.GetEntities() {
		sum, err := entity.Summarise(e.GetState())
		if err != nil {
			return snapBatch{err: fmt.Errorf("entity %s: %w", e.GetEntityId(), err)}
		}
		household := e.GetHouseholdId()
		if sum.Kind == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
			household = e.GetEntityId()
		}
		if string(sum.ID) != e.GetEntityId() || sum.Kind != e.GetKind() || string(sum.VillageCode) != e.GetVillageCode() ||
			sum.Kind != rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD && string(sum.HouseholdID) != household {
			return snapBatch{err: fmt.Errorf("entity %s: state is of %s %s of household %s in village %s", e.GetEntityId(), entity.KindName(sum.Kind), sum.ID, sum.HouseholdID, sum.VillageCode)}
		}
		b.states[i] = snapState{id: e.GetEntityId(), household: household, village: e.GetVillageCode(), kind: sum.Kind, state: e.GetState(), conflicted: sum.Conflicted}
		b.top = max(b.top, sum.Top)
	}
	return b
}

// pull applies the log after cursor, one response per transaction.
func (s *syncer) pull(ctx context.Context, cursor uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m, err := readMeta(ctx, s.c.r)
	if err != nil {
		return fmt.Errorf("pull after %d: %w", cursor, err)
	}
	req := &rasoatv1.PullRequest{ReplicaId: s.c.ReplicaID(), Cursor: cursor, BatchSize: uint32(s.cfg.batch)}
	if cursor > 0 && cursor == m.cursor {
		req.LogId, req.CursorCheck = m.logID, m.check
	}
	stream, err := s.api.Pull(ctx, req)
	if err != nil {
		return fmt.Errorf("pull after %d: %w", cursor, err)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("pull after %d: stream ended before its last response", cursor)
		}
		if err != nil {
			return fmt.Errorf("pull after %d: %w", cursor, err)
		}
		if err := s.c.applyChanges(ctx, resp.GetChanges(), logPos{resp.GetCursor(), resp.GetCursorCheck(), resp.GetLogId()}); err != nil {
			return fmt.Errorf("pull after %d: %w", cursor, err)
		}
		cursor = max(cursor, resp.GetCursor())
		s.stats.Cursor = cursor
		s.stats.Pulled += len(resp.GetChanges())
		s.prog.Received += len(resp.GetChanges())
		s.report(PhasePull)
		if resp.GetDone() {
			return nil
		}
	}
}

// observe raises the clock to ts, the greatest stamp of a batch received.
// A stamp the server accepted but this clock finds too far ahead means
// this tablet's clock is behind: the clock is raised anyway (with a
// warning), since a local write must be stamped above the values it
// overwrites or it could not cover them.
func (c *Client) observe(ts hlc.Timestamp) {
	clock := c.clock.Load()
	if err := clock.Observe(ts); err != nil {
		c.log.Warn("server sent a stamp ahead of this tablet's clock: is the tablet's clock set right?", "err", err)
		clock.Restore(ts)
	}
}

// rowsPerStatement bounds multi-row statements (SQLite allows 32,766
// parameters).
const rowsPerStatement = 400

// txLoader reads stored states for apply.States in a transaction.
type txLoader struct{ tx *sql.Tx }

// LoadEntities is apply.Loader's.
func (l txLoader) LoadEntities(ctx context.Context, ids []string, fn func(string, []byte) error) error {
	args := make([]any, 0, rowsPerStatement)
	for start := 0; start < len(ids); start += rowsPerStatement {
		chunk := ids[start:min(start+rowsPerStatement, len(ids))]
		args = args[:0]
		for _, id := range chunk {
			args = append(args, id)
		}
		q := "SELECT id, state FROM entities WHERE id IN (?" + strings.Repeat(",?", len(chunk)-1) + ")"
		rows, err := l.tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("read entities: %w", err)
		}
		for rows.Next() {
			var id string
			var b []byte
			if err := rows.Scan(&id, &b); err != nil {
				rows.Close()
				return fmt.Errorf("read entities: %w", err)
			}
			if err := fn(id, b); err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("read entities: %w", err)
		}
	}
	return nil
}

// storeStates encodes the dirty states and writes them.
func storeStates(ctx context.Context, w *rowWriter, states *apply.States) error {
	encoded, err := states.Encode(nil)
	if err != nil {
		return err
	}
	rows := make([]snapState, len(encoded))
	for i, r := range encoded {
		rows[i] = snapState{id: r.ID, household: r.HouseholdID, village: r.VillageCode, kind: r.Kind, state: r.State, conflicted: conflicted(r.Entity)}
	}
	return w.write(ctx, rows)
}

// rowWriter writes encoded states into one transaction with multi-row
// upserts of rowsPerStatement rows, the statement for a full one prepared
// once for the transaction: parsing its 2,400 parameters for each of the
// 25 a commune's first sync takes cost about a tenth of that sync.
type rowWriter struct {
	tx   *sql.Tx
	full *sql.Stmt // prepared on first use
	args []any
}

const upsertRowsHead = "INSERT INTO entities (id, kind, household_id, village_code, state, conflicted) VALUES (?,?,?,?,?,?)"
const upsertRowsTail = " ON CONFLICT (id) DO UPDATE SET state = excluded.state, conflicted = excluded.conflicted"

func upsertRowsSQL(n int) string {
	return upsertRowsHead + strings.Repeat(",(?,?,?,?,?,?)", n-1) + upsertRowsTail
}

// write upserts rows.
func (w *rowWriter) write(ctx context.Context, rows []snapState) error {
	for start := 0; start < len(rows); start += rowsPerStatement {
		chunk := rows[start:min(start+rowsPerStatement, len(rows))]
		w.args = w.args[:0]
		for i := range chunk {
			r := &chunk[i]
			w.args = append(w.args, r.id, int64(r.kind), r.household, r.village, r.state, r.conflicted)
		}
		var err error
		if len(chunk) == rowsPerStatement {
			if w.full == nil {
				if w.full, err = w.tx.PrepareContext(ctx, upsertRowsSQL(rowsPerStatement)); err != nil {
					return fmt.Errorf("write entities: %w", err)
				}
			}
			_, err = w.full.ExecContext(ctx, w.args...)
		} else {
			_, err = w.tx.ExecContext(ctx, upsertRowsSQL(len(chunk)), w.args...)
		}
		if err != nil {
			return fmt.Errorf("write %d entities: %w", len(chunk), err)
		}
	}
	clear(w.args) // keep no state bytes alive
	return nil
}

// close releases the prepared statement, if any.
func (w *rowWriter) close() {
	if w.full != nil {
		w.full.Close()
	}
}

// applyChanges merges one pulled batch and stores cursor, in one
// transaction. The server validated every change at its door
// (entity.Validate); here each is checked only for what the merge relies
// on and for matching its entity.
func (c *Client) applyChanges(ctx context.Context, changes []*rasoatv1.Change, pos logPos) error {
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	states := apply.NewStates(len(changes) / 8)
	var top hlc.Timestamp
	for i, ch := range changes {
		if entity.KindName(ch.GetKind()) == "" {
			return fmt.Errorf("change %d: unknown kind %v", i, ch.GetKind())
		}
		if err := entity.MergeOf(ch).Validate(); err != nil {
			return fmt.Errorf("change %d: %w", i, err)
		}
		top = max(top, hlc.Timestamp(ch.GetStamp().GetHlc()))
		states.Want(ch.GetEntityId())
	}
	// The shared loop (internal/apply), without what only a server checks
	// (duplicates, bases, households: the server did, before it logged
	// them).
	if err := states.Load(ctx, txLoader{tx}); err != nil {
		return err
	}
	for i, ch := range changes {
		if _, err := states.Apply(ch, entity.MergeOf(ch)); err != nil {
			return fmt.Errorf("change %d: %w", i, err)
		}
	}
	w := &rowWriter{tx: tx}
	defer w.close()
	if err := storeStates(ctx, w, states); err != nil {
		return err
	}
	return c.finishApply(ctx, tx, top, &pos)
}

// logPos is a position in a server's log as a Pull or Snapshot answered it.
type logPos struct {
	cursor, check uint64
	logID         string
}

// finishApply observes top, stores the clock, what the server is known to
// hold and the log position (when not nil), and commits. The position is
// set, not raised: the server answered it for the cursor this tablet sent
// (or, after a snapshot, for what it really holds, which goes back after a
// server was restored from a backup older than this tablet's cursor).
func (c *Client) finishApply(ctx context.Context, tx *sql.Tx, top hlc.Timestamp, pos *logPos) error {
	if top != 0 {
		c.observe(top)
	}
	last := c.clock.Load().Last()
	q := "UPDATE meta SET hlc_last = max(hlc_last, ?), hlc_known = max(hlc_known, ?) WHERE id = 1"
	args := []any{int64(last), int64(top)}
	if pos != nil {
		q = "UPDATE meta SET hlc_last = max(hlc_last, ?), hlc_known = max(hlc_known, ?), pull_cursor = ?, cursor_check = ?, log_id = ? WHERE id = 1"
		args = append(args, int64(pos.cursor), int64(pos.check), pos.logID)
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// applyStates merges snapshot states into tx. When the tablet held no
// entity at all before the snapshot (a first sync), there is nothing to
// merge with and each state is stored as received; otherwise each is
// decoded and merged into the local one.
func applyStates(ctx context.Context, w *rowWriter, in []snapState, empty bool) error {
	if empty {
		return w.write(ctx, in)
	}
	local := apply.NewStates(len(in))
	for i := range in {
		local.Want(in[i].id)
	}
	if err := local.Load(ctx, txLoader{w.tx}); err != nil {
		return err
	}
	for i := range in {
		var theirs entity.State
		if err := theirs.UnmarshalBinary(in[i].state); err != nil {
			return fmt.Errorf("entity %s: %w", in[i].id, err)
		}
		l := local.Get(in[i].id)
		changed, err := l.State.Merge(&theirs)
		if err != nil {
			return fmt.Errorf("entity %s: %w", in[i].id, err)
		}
		l.Dirty = l.Dirty || changed || !l.Found
	}
	return storeStates(ctx, w, local)
}
