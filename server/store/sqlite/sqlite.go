// Package sqlite is the sync store on an embedded SQLite file
// (modernc.org/sqlite, pure Go): an append-only change log, numbered by the
// server, that Pull reads by cursor, and one row per entity holding its
// merged state (entity.State encoding).
//
// Durability: the file is in WAL mode with synchronous=FULL, so a commit
// returns only after the WAL is synced to disk and a push acknowledged after
// its COMMIT survives a power cut (DESIGN.md "Principles"). synchronous=NORMAL
// would sync only at checkpoints and lose the last commits on power loss —
// still consistent, but losing acknowledged data, which a tablet that has
// since dropped its copy could never resend. FULL costs one fsync per push,
// which a batch of thousands of changes pays once.
//
// Writes go through one connection (SQLite has one writer anyway, and
// a pool would only queue on the lock with busy timeouts), with a large
// page cache (sqlitedb.Options.BigCache): a group commit of many tablets'
// pushes is one large transaction, and a small cache would spill it to the
// WAL page by page before it commits. Reads use a separate pool that WAL
// lets run beside the writer, and checkpoints a connection of their own
// (checkpoint.go), beside the writer too.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/sqlitedb"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/facts"
	"google.golang.org/protobuf/proto"
	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// DB is an open sync store. It is safe for concurrent use.
type DB struct {
	cache directory.Cache // the directory as calls read it
	path  string
	w, r  *sql.DB
	logID string
	group *committer // coalesces concurrent pushes into one transaction
	stmts *stmtCache // statements prepared on w
	ckdb  *sql.DB    // the checkpointer's connection
	reads *stmtCache // statements prepared on r
	wal   *sqlitedb.WAL
	// syncWAL makes durable what w committed (wal.Sync): its commits do
	// not sync (sqlitedb.Options.OwnSync). Every write on w is followed by
	// it before it is acknowledged (durable), and none is made once one
	// failed (writable). A variable for a test to watch it.
	syncWAL func() error
	// derive makes the report facts pushes keep (SetDeriver); none until
	// set, as in the store's own tests.
	derive atomic.Pointer[store.Deriver]
	seen   lastSeen // devices' last-seen times for the committer to write (TouchDevice)
}

// Open opens the store at path, creating the file or migrating its schema
// to the current version.
func Open(ctx context.Context, path string) (*DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open store %s: path must not contain ? or #", path)
	}
	// The writer's commits do not sync: its owner does (syncWAL), the
	// committer's syncer after releasing the write lock.
	w, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(path, sqlitedb.Options{BigCache: true, ManualCheckpoint: true, OwnSync: true}))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	r, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(path, sqlitedb.Options{ReadOnly: true}))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	db := &DB{path: path, w: w, r: r}
	if db.wal, err = sqlitedb.OpenWAL(ctx, w); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.syncWAL = db.wal.Sync
	if err := db.syncWAL(); err != nil { // the migrations' commits
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := w.QueryRowContext(ctx, "SELECT log_id FROM log_meta WHERE id = 1").Scan(&db.logID); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: read log id: %w", path, err)
	}
	if db.stmts, err = prepareStmts(ctx, w, writerQueries()...); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if db.reads, err = prepareStmts(ctx, r, snapshotAllSQL, snapshotVillageSQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// FULL, as every connection but the writer: a checkpoint syncs the WAL
	// before it copies a frame into the file, so it never copies a group
	// the syncer has not synced yet.
	ck, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(path, sqlitedb.Options{}))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	ck.SetMaxOpenConns(1)
	ck.SetMaxIdleConns(1)
	db.ckdb = ck
	db.group = newCommitter(w, newCheckpointer(ck), func() error { return db.syncWAL() }, seenWriter{db})
	return db, nil
}

// Close stops taking pushes, waits for those in flight, writes the
// devices' last-seen times still waiting (a touch after that fails), and
// closes the file.
func (db *DB) Close() error {
	if db.group != nil {
		db.group.close()
	}
	errs := []error{db.writeSeenAtClose(db.seen.close())}
	for _, c := range []*stmtCache{db.stmts, db.reads} {
		if c != nil {
			errs = append(errs, c.close())
		}
	}
	if db.ckdb != nil {
		errs = append(errs, db.ckdb.Close())
	}
	if db.wal != nil {
		errs = append(errs, db.wal.Close())
	}
	// The writer last: closing the file's last connection checkpoints it.
	return errors.Join(append(errs, db.r.Close(), db.w.Close())...)
}

// writable returns the failure of an earlier sync of the WAL, after
// which nothing more is written (what the file holds on disk is not
// known until the server restarts and SQLite recovers it), nil if none.
func (db *DB) writable() error { return db.group.failed() }

// durable syncs what the writer committed, outside the committer (the
// directory's and settings' writes); a failure stops every write.
func (db *DB) durable() error {
	if err := db.syncWAL(); err != nil {
		return db.group.fail(err)
	}
	return nil
}

// Path is the store's file.
func (db *DB) Path() string { return db.path }

// LogID is the id of this store's log, made with the store: a cursor
// counts in one log only, and a replica that finds another id takes a
// fresh snapshot.
func (db *DB) LogID() string { return db.logID }

// migration takes the schema from one version to the next: SQL, then Go
// for what SQL cannot compute (fn may be nil).
type migration struct {
	sql string
	fn  func(ctx context.Context, tx *sql.Tx) error
}

// migrations[v-1] takes the schema from version v-1 to v. Append only: a
// released version's statements never change, since servers in the field
// hold files at every version (testdata/ keeps one of each).
var migrations = []migration{
	// 1: the change log and the entities' merged state.
	{sql: `
CREATE TABLE changes (
	server_seq   INTEGER PRIMARY KEY, -- rowid: one writer and no deletes, so it only grows
	origin       TEXT    NOT NULL,    -- stamp.replica_id
	origin_seq   INTEGER NOT NULL,    -- seq
	village_code TEXT    NOT NULL,
	entity_id    TEXT    NOT NULL,
	payload      BLOB    NOT NULL     -- rasoatv1.Change, deterministic proto encoding
);
CREATE UNIQUE INDEX changes_origin ON changes (origin, origin_seq);
CREATE INDEX changes_village ON changes (village_code, server_seq);
CREATE TABLE entities (
	id           TEXT    PRIMARY KEY,
	kind         INTEGER NOT NULL,    -- rasoatv1.EntityKind
	household_id TEXT    NOT NULL,    -- its own id for a household
	village_code TEXT    NOT NULL,
	state        BLOB    NOT NULL     -- entity.State encoding
);
CREATE INDEX entities_household ON entities (household_id);
`},
	// 2: a first sync reads the entities of some villages whole.
	{sql: `CREATE INDEX entities_village ON entities (village_code, id);`},
	// 3: the log's id and its running digest, so a cursor names its log; each
	// change's stamp and field, so a base can be checked against the log.
	{sql: `
CREATE TABLE log_meta (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	log_id TEXT    NOT NULL
);
ALTER TABLE changes ADD COLUMN hlc   INTEGER NOT NULL DEFAULT 0; -- stamp.hlc
ALTER TABLE changes ADD COLUMN field TEXT    NOT NULL DEFAULT '';
ALTER TABLE changes ADD COLUMN chain INTEGER NOT NULL DEFAULT 0; -- digest of the log up to this change (chain.go)
`, fn: migrateLog},
	// 4: who may use the server (directory.go), and who sent each push.
	{sql: directorySchema},
	// 5: the report facts of each household (server/store/facts), derived
	// for the households already stored when the server sets its Deriver.
	{sql: facts.Schema},
	// 6: the quality checks' facts (internal/quality): flags, the
	// acknowledgements, the members for finding one person in two
	// households, and the decided figures; every household's facts are
	// derived again when the server sets its Deriver.
	{sql: facts.QualitySchema},
	// 7: household_decided.latest, each household's result for a year as
	// one row (facts.LatestSchema).
	{sql: facts.LatestSchema},
	// 8: the log names a change's origin by a number (origins), not by its
	// replica id. Every change adds an entry to the two indexes that lead
	// with the origin, each at its origin's own place in the index; keyed
	// by a 36-byte UUID those entries filled and split pages several times
	// as often as keyed by a small integer, and compared as strings on
	// every step down the tree: about a quarter of what appending a change
	// cost. The table is rebuilt once, in log order, with its indexes.
	{sql: logOriginsSchema},
	// 9: a base is checked against the changes that are no longer heads
	// (superseded), not against an index of every change's stamp, which
	// cost a sixth of appending a change; the log's changes so far are all
	// recorded, a superset of those no longer heads, which the check
	// allows.
	{sql: supersededSchema},
	// 10: household_facts.head_name (facts.HeadNameSchema); every
	// household's facts are derived again when the server sets its
	// Deriver.
	{sql: facts.HeadNameSchema},
	// 11: the log kept in runs of changes (logruns.go), not a row a
	// change.
	{sql: logRunsSchema, fn: migrateRuns},
}

// supersededSchema is migration 9.
const supersededSchema = `
CREATE TABLE superseded (
	origin_id  INTEGER NOT NULL, -- origins.id
	hlc        INTEGER NOT NULL, -- stamp.hlc
	origin_seq INTEGER NOT NULL, -- the change's row: changes (origin_id, origin_seq)
	PRIMARY KEY (origin_id, hlc, origin_seq)
) WITHOUT ROWID;
INSERT OR IGNORE INTO superseded (origin_id, hlc, origin_seq) SELECT origin_id, hlc, origin_seq FROM changes;
DROP INDEX changes_stamp;
`

// logOriginsSchema is migration 8: origins, and changes rebuilt with
// origin_id in place of origin.
const logOriginsSchema = `
CREATE TABLE origins (
	id         INTEGER PRIMARY KEY,   -- what changes.origin_id holds
	replica_id TEXT    NOT NULL UNIQUE -- stamp.replica_id
);
INSERT INTO origins (replica_id) SELECT DISTINCT origin FROM changes ORDER BY origin;
CREATE TABLE changes_v8 (
	server_seq   INTEGER PRIMARY KEY, -- rowid: one writer and no deletes, so it only grows
	origin_id    INTEGER NOT NULL,    -- origins.id of stamp.replica_id
	origin_seq   INTEGER NOT NULL,    -- seq
	village_code TEXT    NOT NULL,
	entity_id    TEXT    NOT NULL,
	payload      BLOB    NOT NULL,    -- rasoatv1.Change, deterministic proto encoding
	hlc          INTEGER NOT NULL,    -- stamp.hlc
	field        TEXT    NOT NULL,
	chain        INTEGER NOT NULL     -- digest of the log up to this change (store.NextChain)
);
INSERT INTO changes_v8 (server_seq, origin_id, origin_seq, village_code, entity_id, payload, hlc, field, chain)
SELECT c.server_seq, o.id, c.origin_seq, c.village_code, c.entity_id, c.payload, c.hlc, c.field, c.chain
FROM changes c JOIN origins o ON o.replica_id = c.origin ORDER BY c.server_seq;
DROP TABLE changes;
ALTER TABLE changes_v8 RENAME TO changes;
CREATE UNIQUE INDEX changes_origin ON changes (origin_id, origin_seq);
CREATE INDEX changes_village ON changes (village_code, server_seq);
CREATE INDEX changes_stamp ON changes (origin_id, hlc);
`

// migrateLog gives the log an id and fills the columns version 3 added,
// reading the log in order once.
func migrateLog(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, "INSERT INTO log_meta (id, log_id) VALUES (1, ?)", uuid.Must(uuid.NewV7()).String()); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, "SELECT server_seq, payload FROM changes ORDER BY server_seq")
	if err != nil {
		return err
	}
	type fill struct {
		seq, hlc uint64
		field    string
		chain    int64
	}
	var fills []fill
	var chain uint64
	for rows.Next() {
		var seq uint64
		var payload []byte
		if err := rows.Scan(&seq, &payload); err != nil {
			rows.Close()
			return err
		}
		c := &rasoatv1.Change{}
		if err := proto.Unmarshal(payload, c); err != nil {
			rows.Close()
			return fmt.Errorf("change %d: %w", seq, err)
		}
		chain = store.NextChain(chain, c.GetStamp().GetReplicaId(), c.GetSeq())
		fills = append(fills, fill{seq, c.GetStamp().GetHlc(), c.GetField(), int64(chain)})
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return err
	}
	for _, f := range fills {
		if _, err := tx.ExecContext(ctx, "UPDATE changes SET hlc = ?, field = ?, chain = ? WHERE server_seq = ?", f.hlc, f.field, f.chain, f.seq); err != nil {
			return err
		}
	}
	// Built after the fill: one pass over sorted rows, not an update per row.
	_, err = tx.ExecContext(ctx, "CREATE INDEX changes_stamp ON changes (origin, hlc)")
	return err
}

// SchemaVersion is the schema version Open migrates to (PRAGMA user_version).
const SchemaVersion = 11

func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program's %d", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		if err := migrateTo(ctx, db, v+1); err != nil {
			return fmt.Errorf("migrate to schema %d: %w", v+1, err)
		}
	}
	return nil
}

func migrateTo(ctx context.Context, db *sql.DB, v int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	m := migrations[v-1]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if m.fn != nil {
		if err := m.fn(ctx, tx); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
		return err
	}
	return tx.Commit()
}

// Version returns the file's schema version.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := db.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// Entity returns the merged state of one entity; ok is false if no change
// to it is stored.
func (db *DB) Entity(ctx context.Context, id string) (s entity.State, ok bool, err error) {
	var b []byte
	err = db.r.QueryRowContext(ctx, "SELECT state FROM entities WHERE id = ?", id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return entity.State{}, false, nil
	}
	if err == nil {
		err = s.UnmarshalBinary(b)
	}
	if err != nil {
		return entity.State{}, false, fmt.Errorf("read entity %s: %w", id, err)
	}
	return s, true, nil
}

// Pull calls fn, in server order, for each stored change after the
// position from in the given villages, at most limit of them, reading rows
// one at a time so memory does not grow with the log. It first checks that
// from is a position of this log (ErrCursorAhead past its end,
// ErrLogChanged when its check differs). It returns the position of the last
// change passed to fn (from if none) and whether more changes follow. An
// error from fn stops the iteration and is returned.
func (db *DB) Pull(ctx context.Context, villages store.Villages, from store.Position, limit int, fn func(*rasoatv1.Change, store.Position) error) (next store.Position, more bool, err error) {
	next, more, err = db.pull(ctx, villages, from, limit, fn)
	return next, more, classify(err)
}

func (db *DB) pull(ctx context.Context, villages store.Villages, from store.Position, limit int, fn func(*rasoatv1.Change, store.Position) error) (next store.Position, more bool, err error) {
	if err := db.checkPosition(ctx, from); err != nil {
		return from, false, err
	}
	if villages.Empty() || limit <= 0 {
		return from, false, nil
	}
	limit = min(limit, store.MaxPullLimit)
	var rows []store.PullRow
	floor := runFloor(from.Seq + 1)
	if villages.All() {
		if rows, err = db.readPull(ctx, from.Seq, limit+1, PullSQL(0), floor, pullRunLimit(limit)); err != nil {
			return from, false, err
		}
	} else {
		codes := villages.Codes()
		for start := 0; start < len(codes); start += villagesPerQuery {
			chunk := codes[start:min(start+villagesPerQuery, len(codes))]
			args := make([]any, 0, len(chunk)+2)
			for _, c := range chunk {
				args = append(args, c)
			}
			r, err := db.readPull(ctx, from.Seq, limit+1, PullSQL(len(chunk)), append(args, floor, pullRunLimit(limit))...)
			if err != nil {
				return from, false, err
			}
			rows = store.MergePull(rows, r, limit+1)
		}
	}
	return store.EmitPull(rows, from, limit, fn)
}

// villagesPerQuery bounds the villages one pull statement merges (SQLite
// takes at most 500 terms in a compound SELECT); a pull over more merges
// the statements' first rows in Go.
const villagesPerQuery = 250

// PullSQL is the pull over n villages (every village if 0): the runs of
// the log that can hold a change after the cursor (those starting at ?n+1,
// runFloor of the cursor's next position, or later) in server order, at
// most ?n+2 of them; readPull stops reading at the changes it wants. Over
// villages it is a UNION ALL of one index range per village under the
// compound's ORDER BY, which SQLite runs as a merge of the ranges, each
// already in server order (log_runs_village is (village_code,
// first_seq)): a batch reads its own rows and stops, where "village_code
// IN (…) ORDER BY first_seq" sorted every remaining run of those villages
// in a temporary B-tree on every batch. The README's store section shows
// the plan.
func PullSQL(n int) string {
	if n == 0 {
		return "SELECT first_seq, entries FROM log_runs WHERE first_seq >= ?1 ORDER BY first_seq LIMIT ?2"
	}
	var q strings.Builder
	for i := range n {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&q, "SELECT first_seq, entries FROM log_runs WHERE village_code = ?%d AND first_seq >= ?%d", i+1, n+1)
	}
	fmt.Fprintf(&q, " ORDER BY first_seq LIMIT ?%d", n+2)
	return q.String()
}

// pullRunLimit bounds the runs a pull of limit changes reads: those
// before the cursor (fewer than maxRunChanges start in the window before
// it) and one a change after it.
func pullRunLimit(limit int) int { return limit + 1 + maxRunChanges }

// readPull returns the first want changes after position after of the
// runs q selects.
func (db *DB) readPull(ctx context.Context, after uint64, want int, q string, args ...any) ([]store.PullRow, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	out, err := readRuns(rows, after, want)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	return out, nil
}

// checkPosition reports whether pos is a position of this log: 0, or the
// seq of a stored change whose chain is pos.Check (when not 0).
func (db *DB) checkPosition(ctx context.Context, pos store.Position) error {
	if pos.Seq == 0 {
		return nil
	}
	first, entries, err := db.logAt(ctx, pos.Seq)
	if err != nil {
		return fmt.Errorf("pull after %d: %w", pos.Seq, err)
	}
	if entries == nil {
		end, err := db.End(ctx)
		if err != nil {
			return fmt.Errorf("pull after %d: %w", pos.Seq, err)
		}
		return fmt.Errorf("pull after %d: the log ends at %d: %w", pos.Seq, end.Seq, store.ErrCursorAhead)
	}
	chain, _, _, err := entryAt(entries, pos.Seq-first)
	if err != nil {
		return fmt.Errorf("pull after %d: %w", pos.Seq, err)
	}
	if pos.Check != 0 && chain != pos.Check {
		return fmt.Errorf("pull after %d: the log holds other changes up to there: %w", pos.Seq, store.ErrLogChanged)
	}
	return nil
}

// End returns the log's last position.
func (db *DB) End(ctx context.Context) (store.Position, error) {
	var pos store.Position
	var chain int64
	err := db.r.QueryRowContext(ctx, logEndSQL).Scan(&pos.Seq, &chain)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Position{}, nil
	}
	if err != nil {
		return store.Position{}, classify(fmt.Errorf("read the log's end: %w", err))
	}
	pos.Check = uint64(chain)
	return pos, nil
}

// classify wraps err with store.ErrBusy or store.ErrFull when SQLite says
// so, for the service to map to a status code.
func classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff { // primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w: %w", store.ErrBusy, err)
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", store.ErrFull, err)
	}
	return err
}

// snapshotPage is how many entity states one read of a Snapshot takes. A
// read holds a connection of the pool of four (and pins the WAL) only for
// the time of one page, never while the caller sends: a stalled client
// costs its own stream, not everyone's reads.
const snapshotPage = 256

// Snapshot's page reads, prepared with the store: a commune's snapshot
// reads 40 pages.
const (
	snapshotCols       = "SELECT id, kind, household_id, village_code, state FROM entities "
	snapshotAllSQL     = snapshotCols + "WHERE id > ? ORDER BY id LIMIT ?"
	snapshotVillageSQL = snapshotCols + "WHERE village_code = ? AND id > ? ORDER BY id LIMIT ?"
)

// Snapshot calls fn for every entity q selects, with the log position read
// before the first of them (the same in every call), and returns that
// position. The states are read in short pages, so each reflects at least
// the log up to that position and perhaps later changes too: a replica that
// merges them and then pulls from the position misses nothing, and what it
// pulls twice merges as once (merging is idempotent).
func (db *DB) Snapshot(ctx context.Context, q store.SnapshotQuery, fn func(store.Position, *rasoatv1.EntityState) error) (store.Position, error) {
	pos, err := db.snapshot(ctx, q, fn)
	return pos, classify(err)
}

func (db *DB) snapshot(ctx context.Context, q store.SnapshotQuery, fn func(store.Position, *rasoatv1.EntityState) error) (store.Position, error) {
	pos, err := db.End(ctx)
	if err != nil {
		return pos, fmt.Errorf("snapshot: %w", err)
	}
	emit := func(query string, args ...any) (last string, n int, err error) {
		var rows *sql.Rows
		if st := db.reads.m[query]; st != nil {
			rows, err = st.QueryContext(ctx, args...)
		} else {
			rows, err = db.r.QueryContext(ctx, query, args...)
		}
		if err != nil {
			return "", 0, err
		}
		var page []*rasoatv1.EntityState
		for rows.Next() {
			e := &rasoatv1.EntityState{}
			var kind int32
			if err := rows.Scan(&e.EntityId, &kind, &e.HouseholdId, &e.VillageCode, &e.State); err != nil {
				rows.Close()
				return "", 0, err
			}
			e.Kind = rasoatv1.EntityKind(kind)
			page = append(page, e)
		}
		err = rows.Err()
		rows.Close() // before fn: the caller's sends must not hold the read
		if err != nil {
			return "", 0, err
		}
		for _, e := range page {
			if !q.Villages.Has(e.VillageCode) {
				continue
			}
			if err := fn(pos, e); err != nil {
				return "", 0, err
			}
		}
		if len(page) > 0 {
			last = page[len(page)-1].EntityId
		}
		return last, len(page), nil
	}
	switch {
	case q.EntityIDs != nil:
		for start := 0; start < len(q.EntityIDs); start += snapshotPage {
			chunk := q.EntityIDs[start:min(start+snapshotPage, len(q.EntityIDs))]
			args := make([]any, len(chunk))
			for i, id := range chunk {
				args[i] = id
			}
			if _, _, err := emit(snapshotCols+"WHERE id IN (?"+strings.Repeat(",?", len(chunk)-1)+") ORDER BY id", args...); err != nil {
				return pos, fmt.Errorf("snapshot: %w", err)
			}
		}
	case q.Villages.All():
		for after := ""; ; {
			last, n, err := emit(snapshotAllSQL, after, snapshotPage)
			if err != nil {
				return pos, fmt.Errorf("snapshot: %w", err)
			}
			if n < snapshotPage {
				break
			}
			after = last
		}
	default:
		for _, v := range q.Villages.Codes() {
			for after := ""; ; {
				last, n, err := emit(snapshotVillageSQL, v, after, snapshotPage)
				if err != nil {
					return pos, fmt.Errorf("snapshot of village %s: %w", v, err)
				}
				if n < snapshotPage {
					break
				}
				after = last
			}
		}
	}
	return pos, nil
}

// ExplainPull returns SQLite's EXPLAIN QUERY PLAN of a pull over n
// villages (0: all), one line per step, indented by depth.
func (db *DB) ExplainPull(ctx context.Context, n int) (string, error) {
	args := make([]any, 0, n+2)
	for i := range n {
		args = append(args, fmt.Sprintf("v%d", i))
	}
	rows, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+PullSQL(n), append(args, 0, 5001)...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	depth := map[int]int{}
	var b strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", err
		}
		depth[id] = depth[parent] + 1
		b.WriteString(strings.Repeat("  ", depth[id]-1) + detail + "\n")
	}
	return b.String(), rows.Err()
}
