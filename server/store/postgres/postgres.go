// Package postgres is the sync store on PostgreSQL (pgx v5), for a
// province server: the same change log, entity states and directory as
// server/store/sqlite, checked by the same loop (internal/apply) and the
// same conformance suites (server/store/storetest/conformance,
// server/directory/directorytest).
//
// Ordering: a pull reads "changes after cursor N", so a change must never
// become visible after one with a greater server_seq. Pushes therefore take
// one transaction-scoped advisory lock before reading anything: they give
// out server_seq in the order they commit, and the checks that depend on
// stored state (duplicates, bases, the Guard) see every push before them.
// A province takes a few hundred pushes a second at most (issue 11's
// figures), which one writer at a time serves; reads never wait on it.
//
// Durability is PostgreSQL's: a push is acknowledged after its COMMIT,
// which with the default synchronous_commit = on has reached the WAL on
// disk (and, with a synchronous standby, the standby).
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/facts"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open store. It is safe for concurrent use.
type DB struct {
	pool  *pgxpool.Pool
	logID string
	cache directory.Cache // the directory as calls read it
	// derive makes the report facts pushes keep (SetDeriver).
	derive atomic.Pointer[store.Deriver]
}

// IsURL reports whether a --db value names a PostgreSQL database rather
// than a SQLite file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at url (postgres://…), applying the
// schema's migrations (migrations/*.sql, goose) up to the current version.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db := &DB{pool: pool}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store %s: %w", redact(cfg), err)
	}
	if err := pool.QueryRow(ctx, "SELECT log_id FROM log_meta WHERE id = 1").Scan(&db.logID); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store %s: read log id: %w", redact(cfg), err)
	}
	return db, nil
}

// redact names the database without its password.
func redact(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// migrate applies the migrations goose has not yet recorded in the
// database (its goose_db_version table), each in a transaction.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, goose.WithGoMigrations(
		// 2: the report facts (server/store/facts), with the statements the
		// SQLite store runs for its version 5: one schema for both.
		goose.NewGoMigration(2, &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, facts.Schema)
			return err
		}}, nil),
		// 3: the quality checks' facts (server/store/facts/quality.sql),
		// as the SQLite store's version 6; every household's facts are
		// derived again when the server sets its Deriver.
		goose.NewGoMigration(3, &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, facts.QualitySchema)
			return err
		}}, nil),
		// 4: household_decided.latest (facts.LatestSchema), as the SQLite
		// store's version 7.
		goose.NewGoMigration(4, &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, facts.LatestSchema)
			return err
		}}, nil),
		// 6: household_facts.head_name (facts.HeadNameSchema), as the
		// SQLite store's version 10.
		goose.NewGoMigration(6, &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, facts.HeadNameSchema)
			return err
		}}, nil),
	))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for the pushes in flight.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// LogID is the id of this store's log, made with the store.
func (db *DB) LogID() string { return db.logID }

// Version returns the schema version goose recorded.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := db.pool.QueryRow(ctx, "SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&v)
	return v, err
}

// Entity returns the merged state of one entity; ok is false if no change
// to it is stored.
func (db *DB) Entity(ctx context.Context, id string) (s entity.State, ok bool, err error) {
	var b []byte
	err = db.pool.QueryRow(ctx, "SELECT state FROM entities WHERE id = $1", id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return entity.State{}, false, nil
	}
	if err == nil {
		err = s.UnmarshalBinary(b)
	}
	if err != nil {
		return entity.State{}, false, fmt.Errorf("read entity %s: %w", id, classify(err))
	}
	return s, true, nil
}

// End returns the log's last position.
func (db *DB) End(ctx context.Context) (store.Position, error) {
	var seq, chain int64
	err := db.pool.QueryRow(ctx, "SELECT server_seq, chain FROM changes ORDER BY server_seq DESC LIMIT 1").Scan(&seq, &chain)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Position{}, nil
	}
	if err != nil {
		return store.Position{}, fmt.Errorf("read the log's end: %w", classify(err))
	}
	return store.Position{Seq: uint64(seq), Check: uint64(chain)}, nil
}

// checkPosition reports whether pos is a position of this log: 0, or the
// seq of a stored change whose chain is pos.Check (when not 0).
func (db *DB) checkPosition(ctx context.Context, pos store.Position) error {
	if pos.Seq == 0 {
		return nil
	}
	if pos.Seq > 1<<63-1 {
		return fmt.Errorf("pull after %d: %w", pos.Seq, store.ErrCursorAhead)
	}
	var chain int64
	err := db.pool.QueryRow(ctx, "SELECT chain FROM changes WHERE server_seq = $1", int64(pos.Seq)).Scan(&chain)
	if errors.Is(err, pgx.ErrNoRows) {
		end, err := db.End(ctx)
		if err != nil {
			return fmt.Errorf("pull after %d: %w", pos.Seq, err)
		}
		return fmt.Errorf("pull after %d: the log ends at %d: %w", pos.Seq, end.Seq, store.ErrCursorAhead)
	}
	if err != nil {
		return fmt.Errorf("pull after %d: %w", pos.Seq, err)
	}
	if pos.Check != 0 && uint64(chain) != pos.Check {
		return fmt.Errorf("pull after %d: the log holds other changes up to there: %w", pos.Seq, store.ErrLogChanged)
	}
	return nil
}

// villagesPerQuery bounds the villages one pull statement merges: one
// index scan each under a Merge Append, so a statement's planning stays
// short; a pull over more merges the statements' first rows in Go.
const villagesPerQuery = 250

// Pull calls fn, in server order, for each stored change after the
// position from in the given villages, at most limit of them. Over some
// villages it reads each village's index range in server order and merges
// them (a Merge Append of index scans: see the README's store section), so
// no batch sorts the rest of the log. It returns the position of the last
// change passed to fn (from if none) and whether more changes follow.
func (db *DB) Pull(ctx context.Context, villages store.Villages, from store.Position, limit int, fn func(*rasoatv1.Change, store.Position) error) (next store.Position, more bool, err error) {
	next, more, err = db.pull(ctx, villages, from, limit, fn)
	return next, more, classify(err)
}

func (db *DB) pull(ctx context.Context, villages store.Villages, from store.Position, limit int, fn func(*rasoatv1.Change, store.Position) error) (store.Position, bool, error) {
	if err := db.checkPosition(ctx, from); err != nil {
		return from, false, err
	}
	if villages.Empty() || limit <= 0 {
		return from, false, nil
	}
	limit = min(limit, store.MaxPullLimit)
	var rows []store.PullRow
	if villages.All() {
		q, args := pullQuery(nil, from.Seq, limit+1)
		r, err := db.readPull(ctx, q, args)
		if err != nil {
			return from, false, err
		}
		rows = r
	} else {
		codes := villages.Codes()
		for start := 0; start < len(codes); start += villagesPerQuery {
			q, args := pullQuery(codes[start:min(start+villagesPerQuery, len(codes))], from.Seq, limit+1)
			r, err := db.readPull(ctx, q, args)
			if err != nil {
				return from, false, err
			}
			rows = store.MergePull(rows, r, limit+1)
		}
	}
	return store.EmitPull(rows, from, limit, fn)
}

// pullQuery is the pull after seq over codes (every village if nil), at
// most n rows in server order: one index scan per village, merged.
func pullQuery(codes []string, seq uint64, n int) (string, []any) {
	if codes == nil {
		return "SELECT server_seq, chain, payload FROM changes WHERE server_seq > $1 ORDER BY server_seq LIMIT $2", []any{int64(seq), n}
	}
	var q strings.Builder
	args := []any{int64(seq), n}
	q.WriteString("SELECT server_seq, chain, payload FROM (")
	for i, c := range codes {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&q, "(SELECT server_seq, chain, payload FROM changes WHERE village_code = $%d AND server_seq > $1 ORDER BY server_seq LIMIT $2)", len(args)+1)
		args = append(args, c)
	}
	q.WriteString(") AS v ORDER BY server_seq LIMIT $2")
	return q.String(), args
}

func (db *DB) readPull(ctx context.Context, q string, args []any) ([]store.PullRow, error) {
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	defer rows.Close()
	var out []store.PullRow
	for rows.Next() {
		var seq, chain int64
		var payload []byte
		if err := rows.Scan(&seq, &chain, &payload); err != nil {
			return nil, fmt.Errorf("pull: %w", err)
		}
		out = append(out, store.PullRow{Pos: store.Position{Seq: uint64(seq), Check: uint64(chain)}, Payload: payload})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	return out, nil
}

// snapshotPage is how many entity states one read of a Snapshot takes: a
// read holds a pooled connection only for one page, never while the
// caller sends, so a stalled client costs its own stream alone.
const snapshotPage = 256

const snapshotCols = "SELECT id, kind, household_id, village_code, state FROM entities "

// Snapshot calls fn for every entity q selects, with the log position read
// before the first of them, and returns that position: each state reflects
// at least the log up to it, so a replica that merges them and pulls from
// there misses nothing.
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
		rows, err := db.pool.Query(ctx, query, args...)
		if err != nil {
			return "", 0, err
		}
		var page []*rasoatv1.EntityState
		for rows.Next() {
			e := &rasoatv1.EntityState{}
			var kind int16
			if err := rows.Scan(&e.EntityId, &kind, &e.HouseholdId, &e.VillageCode, &e.State); err != nil {
				rows.Close()
				return "", 0, err
			}
			e.Kind = rasoatv1.EntityKind(kind)
			page = append(page, e)
		}
		rows.Close() // before fn: the caller's sends must not hold the connection
		if err := rows.Err(); err != nil {
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
			if _, _, err := emit(snapshotCols+"WHERE id = ANY($1) ORDER BY id", chunk); err != nil {
				return pos, fmt.Errorf("snapshot: %w", err)
			}
		}
	case q.Villages.All():
		for after := ""; ; {
			last, n, err := emit(snapshotCols+"WHERE id > $1 ORDER BY id LIMIT $2", after, snapshotPage)
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
				last, n, err := emit(snapshotCols+"WHERE village_code = $1 AND id > $2 ORDER BY id LIMIT $3", v, after, snapshotPage)
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

// classify wraps err with store.ErrBusy or store.ErrFull when PostgreSQL
// says so, for the service to map to a status code. A database out of
// reach is busy too: the primary gone, a connection cut mid-call, or a
// standby not yet promoted answering read-only, which is what a failover
// looks like from here (README, "A primary that can fail"). The caller
// retries the same push; if its commit did reach the standby, the retry is
// answered as duplicates.
func classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		if unreachable(err) {
			return fmt.Errorf("%w: database out of reach: %w", store.ErrBusy, err)
		}
		return err
	}
	switch pe.Code {
	case "40001", "40P01", "55P03", "53300", "57014": // serialization, deadlock, lock not available, too many connections, cancelled by timeout
		return fmt.Errorf("%w: %w", store.ErrBusy, err)
	case "53100": // disk_full
		return fmt.Errorf("%w: %w", store.ErrFull, err)
	case "57P01", "57P02", "57P03", "25006": // admin or crash shutdown, cannot connect now, read-only transaction (a standby)
		return fmt.Errorf("%w: database out of reach: %w", store.ErrBusy, err)
	}
	if strings.HasPrefix(pe.Code, "08") { // connection exception
		return fmt.Errorf("%w: database out of reach: %w", store.ErrBusy, err)
	}
	return err
}

// unreachable reports whether err is a failure to reach the database or a
// connection lost under a call, rather than an answer from it.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}
