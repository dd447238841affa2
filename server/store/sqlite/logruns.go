package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/rasoat/rasoat/internal/apply"
	"github.com/rasoat/rasoat/internal/merge"
	"github.com/rasoat/rasoat/internal/sqlitedb"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/protobuf/proto"
)

// The log is kept in runs (schema 11): one row of log_runs holds changes
// that follow one another in the log, of one origin with seqs following
// one another, in one village — a tablet's push of a few hundred changes
// is one to three rows. A row per change wrote three B-tree entries for
// each (the table and its two indexes) and bound eight values, about half
// of what a push cost the one writer: with runs, a hundred tablets
// pushing at once get 1.4 times the changes a second, for 0.75 times the
// CPU (BenchmarkPushLoad, internal/systemtest). A run answers what the
// rows did: a change's
// position, chain and payload by server_seq (Pull, cursors), by origin and
// seq (duplicates, NextStamp), and per village in server order.
const logRunsSchema = `
CREATE TABLE log_runs (
	first_seq    INTEGER PRIMARY KEY, -- server_seq of its first change; the others follow one by one
	n            INTEGER NOT NULL,    -- its changes, 1 to maxRunChanges
	origin_id    INTEGER NOT NULL,    -- origins.id of every change's stamp.replica_id
	origin_seq   INTEGER NOT NULL,    -- the first change's seq; the others follow one by one
	village_code TEXT    NOT NULL,    -- every change's
	chain        INTEGER NOT NULL,    -- the log's digest up to its last change
	entries      BLOB    NOT NULL     -- per change: chain (8 bytes), hlc (uvarint), payload length (uvarint), payload
);
CREATE UNIQUE INDEX log_runs_origin ON log_runs (origin_id, origin_seq);
CREATE INDEX log_runs_village ON log_runs (village_code, first_seq);
`

// A run holds at most maxRunChanges changes and, past its first, at most
// maxRunBytes of entries: reading one change (a cursor's check, a
// duplicate's probe, the tail of a pull) reads its whole run, so a run
// stays a few pages; and a change's run starts at most maxRunChanges-1
// positions before it, which bounds every search by position to that
// window.
const (
	maxRunChanges = 256
	maxRunBytes   = 32 << 10
)

// logEntry is one change as the log stores it.
type logEntry struct {
	seq     uint64 // server_seq
	origin  int64  // origins.id
	oseq    uint64 // origin_seq
	village string
	hlc     uint64
	chain   uint64
	payload []byte
}

// run is a log_runs row being built.
type run struct {
	first, n uint64
	origin   int64
	oseq     uint64
	village  string
	chain    uint64
	entries  []byte
}

// takes reports whether e follows r's last change within r's bounds.
func (r *run) takes(e *logEntry) bool {
	return r.n > 0 && r.n < maxRunChanges && len(r.entries)+len(e.payload)+28 <= maxRunBytes &&
		e.origin == r.origin && e.village == r.village && e.seq == r.first+r.n && e.oseq == r.oseq+r.n
}

func (r *run) add(e *logEntry) {
	if r.n == 0 {
		r.first, r.origin, r.oseq, r.village = e.seq, e.origin, e.oseq, e.village
	}
	r.entries = binary.BigEndian.AppendUint64(r.entries, e.chain)
	r.entries = binary.AppendUvarint(r.entries, e.hlc)
	r.entries = binary.AppendUvarint(r.entries, uint64(len(e.payload)))
	r.entries = append(r.entries, e.payload...)
	r.chain = e.chain
	r.n++
}

// runWriter cuts entries, given in log order, into runs and writes each
// with put once it is full or the next entry cannot join it.
type runWriter struct {
	cur run
	put func(*run) error
}

func (w *runWriter) add(e *logEntry) error {
	if w.cur.n > 0 && !w.cur.takes(e) {
		if err := w.flush(); err != nil {
			return err
		}
	}
	w.cur.add(e)
	return nil
}

func (w *runWriter) flush() error {
	if w.cur.n == 0 {
		return nil
	}
	err := w.put(&w.cur)
	w.cur = run{entries: w.cur.entries[:0]}
	return err
}

var errCorruptRun = errors.New("corrupt log run")

// eachEntry calls fn with the index, chain, hlc and payload of each change
// of a run's entries, in order, until fn returns false. The payload is a
// slice of entries.
func eachEntry(entries []byte, fn func(k uint64, chain, hlc uint64, payload []byte) bool) error {
	for k := uint64(0); len(entries) > 0; k++ {
		if len(entries) < 8 {
			return errCorruptRun
		}
		chain := binary.BigEndian.Uint64(entries)
		entries = entries[8:]
		hlc, n := binary.Uvarint(entries)
		if n <= 0 {
			return errCorruptRun
		}
		entries = entries[n:]
		size, n := binary.Uvarint(entries)
		if n <= 0 || size > uint64(len(entries)-n) {
			return errCorruptRun
		}
		entries = entries[n:]
		if !fn(k, chain, hlc, entries[:size:size]) {
			return nil
		}
		entries = entries[size:]
	}
	return nil
}

// entryAt returns the chain, hlc and payload of a run's k-th change.
func entryAt(entries []byte, k uint64) (chain, hlc uint64, payload []byte, err error) {
	found := false
	err = eachEntry(entries, func(i, c, h uint64, p []byte) bool {
		if i == k {
			chain, hlc, payload, found = c, h, p, true
		}
		return i < k
	})
	if err == nil && !found {
		err = errCorruptRun
	}
	return chain, hlc, payload, err
}

// eachLogged calls fn with the position, chain and payload of each change
// of the runs rows holds (first_seq, entries), in order, until fn returns
// false or an error, and closes rows. The payload is valid during fn only,
// unless keep is set: each run is then copied once, and its payloads stay.
func eachLogged(rows *sql.Rows, keep bool, fn func(seq, chain uint64, payload []byte) (bool, error)) error {
	defer rows.Close()
	var raw sql.RawBytes
	for more := true; more && rows.Next(); {
		var first uint64
		var entries []byte
		var err error
		if keep {
			err = rows.Scan(&first, &entries)
		} else {
			err = rows.Scan(&first, &raw)
			entries = raw
		}
		if err != nil {
			return err
		}
		var ferr error
		err = eachEntry(entries, func(k, chain, _ uint64, p []byte) bool {
			more, ferr = fn(first+k, chain, p)
			return more && ferr == nil
		})
		if err != nil {
			return fmt.Errorf("log run at %d: %w", first, err)
		}
		if ferr != nil {
			return ferr
		}
	}
	return rows.Err()
}

// runFloor is the least first_seq (or origin_seq) of a run that can hold
// position s: a run holds at most maxRunChanges. Past what an int64 holds
// (nothing stored is), it is the greatest, not a negative that would
// select every run.
func runFloor(s uint64) int64 {
	switch {
	case s < maxRunChanges:
		return 0
	case s > math.MaxInt64:
		return math.MaxInt64
	}
	return int64(s - (maxRunChanges - 1))
}

// The writer's statements on runs, prepared with the store.
const (
	insertRunSQL = "INSERT INTO log_runs (first_seq, n, origin_id, origin_seq, village_code, chain, entries) VALUES (?, ?, ?, ?, ?, ?, ?)"
	// runOverlapSQL is the last seq of the origin's run starting last at
	// or before ?2: runs of one origin do not overlap, so it is the
	// greatest seq stored at or before ?2.
	runOverlapSQL = "SELECT origin_seq + (n - 1) FROM log_runs WHERE origin_id = ?1 AND origin_seq <= ?2 ORDER BY origin_seq DESC LIMIT 1"
	highSeqSQL    = "SELECT coalesce((SELECT origin_seq + (n - 1) FROM log_runs WHERE " + originIs + " ORDER BY origin_seq DESC LIMIT 1), 0)"
	// storedRangeSQL reads the runs of an origin that can hold a seq in
	// [lo, hi]: those starting in [runFloor(lo), hi].
	storedRangeSQL = "SELECT origin_seq, entries FROM log_runs WHERE " + originIs + " AND origin_seq BETWEEN ? AND ? ORDER BY origin_seq"
	// runAtSQL is the origin's run that can hold seq ?2, its entries only
	// if it does (not read from disk otherwise).
	runAtSQL = "SELECT origin_seq, n, CASE WHEN origin_seq + (n - 1) >= ?2 THEN entries END FROM log_runs" +
		" WHERE origin_id = (SELECT id FROM origins WHERE replica_id = ?1) AND origin_seq BETWEEN ?3 AND ?2 ORDER BY origin_seq DESC LIMIT 1"
	runAfterSQL   = "SELECT entries FROM log_runs WHERE " + originIs + " AND origin_seq > ? ORDER BY origin_seq LIMIT 1"
	supersededSQL = "SELECT origin_seq FROM superseded WHERE " + originIs + " AND hlc = ?"
	logEndSQL     = "SELECT first_seq + (n - 1), chain FROM log_runs ORDER BY first_seq DESC LIMIT 1"
)

// AppendLog is apply.Tx's: the rows cut into runs. Runs of one origin
// never overlap, which apply.Batch ensures and each run checks once more,
// as a unique index on (origin, seq) did when the log had a row a change.
func (w *writer) AppendLog(ctx context.Context, rows []apply.LogRow) error {
	ids := originIDs{w: w}
	rw := runWriter{put: func(r *run) error {
		var end sql.NullInt64
		if err := w.queryRow(ctx, runOverlapSQL, r.origin, sqlInt(r.oseq+r.n-1)).Scan(&end); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if end.Valid && uint64(end.Int64) >= r.oseq {
			return fmt.Errorf("seqs %d to %d of origin %d: stored already", r.oseq, r.oseq+r.n-1, r.origin)
		}
		_, err := w.exec(ctx, insertRunSQL, int64(r.first), int64(r.n), r.origin, sqlInt(r.oseq), r.village, int64(r.chain), r.entries)
		return err
	}}
	for _, row := range rows {
		c := row.Change
		o, err := ids.of(ctx, c.GetStamp().GetReplicaId())
		if err != nil {
			return err
		}
		e := logEntry{seq: row.Seq, origin: o, oseq: c.GetSeq(), village: c.GetVillageCode(),
			hlc: c.GetStamp().GetHlc(), chain: row.Chain, payload: row.Payload}
		if err := rw.add(&e); err != nil {
			return err
		}
	}
	return rw.flush()
}

// StoredRange is apply.Tx's.
func (w *writer) StoredRange(ctx context.Context, origin string, lo, hi uint64, fn func(uint64, []byte)) error {
	rows, err := w.query(ctx, storedRangeSQL, origin, runFloor(lo), sqlInt(hi))
	if err != nil {
		return err
	}
	return eachLogged(rows, false, func(s, _ uint64, p []byte) (bool, error) {
		if s >= lo && s <= hi {
			fn(s, p)
		}
		return s < hi, nil
	})
}

// StoredSeqs is apply.Tx's: a probe of the run that can hold each seq,
// which reads the run only when it does, and once for the seqs it holds.
func (w *writer) StoredSeqs(ctx context.Context, origin string, seqs []uint64, fn func(uint64, []byte)) error {
	var (
		first, n uint64 // the run read last holds seqs first to first+n-1
		entries  []byte
	)
	for _, s := range seqs {
		if entries == nil || s < first || s-first >= n {
			var err error
			if first, n, entries, err = w.runAt(ctx, origin, s); err != nil {
				return err
			}
			if entries == nil {
				continue
			}
		}
		_, _, p, err := entryAt(entries, s-first)
		if err != nil {
			return fmt.Errorf("run at seq %d of %s: %w", first, origin, err)
		}
		fn(s, p)
	}
	return nil
}

// runAt returns the first seq, the length and the entries of origin's run
// holding seq s, nil entries if none does.
func (w *writer) runAt(ctx context.Context, origin string, s uint64) (first, n uint64, entries []byte, err error) {
	err = w.queryRow(ctx, runAtSQL, origin, sqlInt(s), runFloor(s)).Scan(&first, &n, &entries)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil, nil
	}
	return first, n, entries, err
}

// ReplicaHighSeq is apply.Tx's.
func (w *writer) ReplicaHighSeq(ctx context.Context, replica string) (uint64, error) {
	var n uint64
	err := w.queryRow(ctx, highSeqSQL, replica).Scan(&n)
	return n, err
}

// NextStamp is apply.Tx's: the run holding seq+1, or the origin's next.
func (w *writer) NextStamp(ctx context.Context, origin string, seq uint64) (uint64, bool, error) {
	first, _, entries, err := w.runAt(ctx, origin, seq+1)
	if err != nil {
		return 0, false, err
	}
	k := seq + 1 - first
	if entries == nil {
		err := w.queryRow(ctx, runAfterSQL, origin, sqlInt(seq)).Scan(&entries)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		k = 0
	}
	_, hlc, _, err := entryAt(entries, k)
	if err != nil {
		return 0, false, fmt.Errorf("next stamp of %s after %d: %w", origin, seq, err)
	}
	return hlc, true, nil
}

// BaseStored is apply.Tx's: the changes superseded with the stamp, each
// read from its run for its entity and field.
func (w *writer) BaseStored(ctx context.Context, b merge.Stamp, entity, field string) (bool, error) {
	rows, err := w.query(ctx, supersededSQL, b.Replica, sqlInt(uint64(b.HLC)))
	if err != nil {
		return false, err
	}
	var seqs []uint64
	for rows.Next() {
		var s uint64
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return false, err
		}
		seqs = append(seqs, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	found := false
	for _, s := range seqs {
		first, _, entries, err := w.runAt(ctx, b.Replica, s)
		if err != nil {
			return false, err
		}
		if entries == nil {
			continue
		}
		_, _, p, err := entryAt(entries, s-first)
		if err != nil {
			return false, fmt.Errorf("change %d of %s: %w", s, b.Replica, err)
		}
		c := &rasoatv1.Change{}
		if err := proto.Unmarshal(p, c); err != nil {
			return false, fmt.Errorf("change %d of %s: %w", s, b.Replica, err)
		}
		if found = c.GetEntityId() == entity && c.GetField() == field; found {
			break
		}
	}
	return found, nil
}

// LogEnd is apply.Tx's.
func (w *writer) LogEnd(ctx context.Context) (uint64, uint64, error) {
	var last uint64
	var chain int64
	err := w.queryRow(ctx, logEndSQL).Scan(&last, &chain)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return last, uint64(chain), err
}

// migrateRuns is migration 11: the log's rows, read in server order a
// page at a time, written as runs; then the rows' table goes.
func migrateRuns(ctx context.Context, tx *sql.Tx) error {
	rw := runWriter{put: func(r *run) error {
		_, err := tx.ExecContext(ctx, insertRunSQL, int64(r.first), int64(r.n), r.origin, sqlInt(r.oseq), r.village, int64(r.chain), r.entries)
		return err
	}}
	const page = 10_000
	var entries []logEntry
	for after := int64(0); ; {
		entries = entries[:0]
		rows, err := tx.QueryContext(ctx, "SELECT server_seq, origin_id, origin_seq, village_code, hlc, chain, payload FROM changes WHERE server_seq > ? ORDER BY server_seq LIMIT ?", after, page)
		if err != nil {
			return err
		}
		for rows.Next() {
			var e logEntry
			var chain int64
			if err := rows.Scan(&e.seq, &e.origin, &e.oseq, &e.village, &e.hlc, &chain, &e.payload); err != nil {
				rows.Close()
				return err
			}
			e.chain = uint64(chain)
			entries = append(entries, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range entries {
			if err := rw.add(&entries[i]); err != nil {
				return err
			}
		}
		if len(entries) < page {
			break
		}
		after = int64(entries[len(entries)-1].seq)
	}
	if err := rw.flush(); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "DROP TABLE changes")
	return err
}

// readRuns reads the changes after position after from the runs q selects
// (in server order, each starting at or after runFloor(after+1)), at most
// want of them, and stops reading rows there.
func readRuns(rows *sql.Rows, after uint64, want int) ([]store.PullRow, error) {
	var out []store.PullRow
	err := eachLogged(rows, true, func(s, chain uint64, p []byte) (bool, error) {
		if s > after {
			out = append(out, store.PullRow{Pos: store.Position{Seq: s, Check: chain}, Payload: p})
		}
		return len(out) < want, nil
	})
	return out, err
}

// logAt returns the run holding position seq, read on the readers: its
// first seq and its entries, nil if no run holds seq.
func (db *DB) logAt(ctx context.Context, seq uint64) (first uint64, entries []byte, err error) {
	err = db.r.QueryRowContext(ctx, "SELECT first_seq, CASE WHEN first_seq + (n - 1) >= ?1 THEN entries END FROM log_runs WHERE first_seq <= ?1 ORDER BY first_seq DESC LIMIT 1", sqlInt(seq)).
		Scan(&first, &entries)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	return first, entries, err
}

// ReadLog calls fn with each change of the log of the store file at path,
// in server order, with its position, through a read-only connection of
// its own: for checking what a file holds without opening the store (a
// test after killing its server, an operator's inspection).
func ReadLog(ctx context.Context, path string, fn func(seq uint64, c *rasoatv1.Change) error) error {
	db, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(path, sqlitedb.Options{ReadOnly: true}))
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT first_seq, entries FROM log_runs ORDER BY first_seq")
	if err != nil {
		return err
	}
	return eachLogged(rows, false, func(s, _ uint64, p []byte) (bool, error) {
		c := &rasoatv1.Change{}
		if err := proto.Unmarshal(p, c); err != nil {
			return false, fmt.Errorf("change %d: %w", s, err)
		}
		return true, fn(s, c)
	})
}
