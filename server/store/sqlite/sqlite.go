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
// a pool would only queue on the lock with busy timeouts); reads use a
// separate pool that WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/sqlitedb"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/protobuf/proto"
	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// DB is an open sync store. It is safe for concurrent use.
type DB struct {
	w, r *sql.DB
}

// Open opens the store at path, creating the file or migrating its schema
// to the current version.
func Open(ctx context.Context, path string) (*DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open store %s: path must not contain ? or #", path)
	}
	w, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(path, sqlitedb.Options{}))
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
	return &DB{w: w, r: r}, nil
}

// Close closes the file.
func (db *DB) Close() error {
	return errors.Join(db.r.Close(), db.w.Close())
}

// migrations[v-1] takes the schema from version v-1 to v. Append only: a
// released version's statements never change, since tablets and servers in
// the field hold files at every version.
var migrations = []string{
	// 1: the change log and the entities' merged state.
	`
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
`,
	// 2: a first sync reads the entities of some villages whole.
	`CREATE INDEX entities_village ON entities (village_code, id);`,
}

// SchemaVersion is the schema version Open migrates to (PRAGMA user_version).
const SchemaVersion = 2

func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program's %d", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate to schema %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to schema %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to schema %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to schema %d: %w", v+1, err)
		}
	}
	return nil
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

// Pull calls fn, in server order, for each stored change after the cursor
// after in the given villages (every village if none), at most limit of them,
// reading rows one at a time so memory does not grow with the log. It
// returns the cursor after the last change passed to fn (after if none) and
// whether more changes follow. An error from fn stops the iteration and is
// returned.
func (db *DB) Pull(ctx context.Context, villages []string, after uint64, limit int, fn func(*rasoatv1.Change, uint64) error) (next uint64, more bool, err error) {
	next, more, err = db.pull(ctx, villages, after, limit, fn)
	return next, more, classify(err)
}

func (db *DB) pull(ctx context.Context, villages []string, after uint64, limit int, fn func(*rasoatv1.Change, uint64) error) (next uint64, more bool, err error) {
	var q strings.Builder
	args := make([]any, 0, len(villages)+2)
	q.WriteString("SELECT server_seq, payload FROM changes WHERE server_seq > ?")
	args = append(args, after)
	if len(villages) > 0 {
		q.WriteString(" AND ")
		args = inVillages(&q, args, villages)
	}
	q.WriteString(" ORDER BY server_seq LIMIT ?")
	args = append(args, limit+1) // one more, to tell whether more follow
	rows, err := db.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return after, false, fmt.Errorf("pull after %d: %w", after, err)
	}
	defer rows.Close()
	next = after
	n := 0
	var payload sql.RawBytes
	for rows.Next() {
		if n == limit {
			return next, true, nil
		}
		var seq uint64
		if err := rows.Scan(&seq, &payload); err != nil {
			return next, false, fmt.Errorf("pull after %d: %w", after, err)
		}
		c := &rasoatv1.Change{}
		if err := proto.Unmarshal(payload, c); err != nil {
			return next, false, fmt.Errorf("pull: change %d: %w", seq, err)
		}
		if err := fn(c, seq); err != nil {
			return next, false, err
		}
		next = seq
		n++
	}
	if err := rows.Err(); err != nil {
		return next, false, fmt.Errorf("pull after %d: %w", after, err)
	}
	if n == 0 && after > 0 {
		// Nothing after the cursor: is the cursor past the log's end?
		var end uint64
		if err := db.r.QueryRowContext(ctx, "SELECT COALESCE(MAX(server_seq), 0) FROM changes").Scan(&end); err != nil {
			return next, false, fmt.Errorf("pull after %d: %w", after, err)
		}
		if after > end {
			return next, false, fmt.Errorf("pull after %d: the log ends at %d: %w", after, end, store.ErrCursorAhead)
		}
	}
	return next, false, nil
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

// Snapshot calls fn for every entity of villages (all if empty) as stored,
// with the log cursor the states reflect (the same in every call), and
// returns that cursor. Both are read in one read
// transaction, so the states are exactly the log up to the cursor: a replica
// that merges them and then pulls after the cursor misses nothing.
func (db *DB) Snapshot(ctx context.Context, villages []string, fn func(cursor uint64, e *rasoatv1.EntityState) error) (cursor uint64, err error) {
	cursor, err = db.snapshot(ctx, villages, fn)
	return cursor, classify(err)
}

func (db *DB) snapshot(ctx context.Context, villages []string, fn func(uint64, *rasoatv1.EntityState) error) (uint64, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var cursor uint64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(server_seq), 0) FROM changes").Scan(&cursor); err != nil {
		return 0, fmt.Errorf("snapshot cursor: %w", err)
	}
	var q strings.Builder
	args := make([]any, 0, len(villages))
	q.WriteString("SELECT id, kind, household_id, village_code, state FROM entities")
	if len(villages) > 0 {
		q.WriteString(" WHERE ")
		args = inVillages(&q, args, villages)
	}
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e := &rasoatv1.EntityState{}
		var kind int32
		if err := rows.Scan(&e.EntityId, &kind, &e.HouseholdId, &e.VillageCode, &e.State); err != nil {
			return 0, fmt.Errorf("snapshot: %w", err)
		}
		e.Kind = rasoatv1.EntityKind(kind)
		if err := fn(cursor, e); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	return cursor, nil
}

// inVillages writes "village_code IN (?,…)" to q and appends the villages
// to args.
func inVillages(q *strings.Builder, args []any, villages []string) []any {
	q.WriteString("village_code IN (")
	for i, v := range villages {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('?')
		args = append(args, v)
	}
	q.WriteByte(')')
	return args
}
