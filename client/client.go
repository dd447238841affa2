// Package client is the library a village collaborator's tablet embeds
// (cộng tác viên's máy tính bảng): a local SQLite file holding the
// households of the collaborator's villages, typed offline operations that
// record every write as a change, local scoring, and Sync, the only call
// that needs a network (DESIGN.md "Sync model").
//
// The exported API takes and returns plain values — strings, []byte, simple
// structs and the contract's proto messages — so that a thin gomobile facade
// can wrap it. The package is pure Go (modernc.org/sqlite) and builds for
// android/arm64 with CGO_ENABLED=0.
//
// # Durability
//
// The file is in WAL mode with synchronous=FULL: a call that returned nil
// has its write synced to disk, so it survives the app being killed or the
// battery dying. Every operation is one transaction: a crash mid-write
// leaves all of it or none.
//
// # Replica identity
//
// Every file is one replica, with an id (a UUIDv7 made when the file is
// created, unless WithReplicaID names one) stored in the file and never
// reused. A reinstalled app starts a new file and so gets a new id: the
// merge rule (internal/merge, "Coverage") needs a replica id never to be
// reused by a writer that has lost its state.
package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/sqlitedb"
	"github.com/rasoat/rasoat/survey"
)

// Errors callers branch on.
var (
	// ErrNotFound is wrapped by the error for an entity this file does not hold.
	ErrNotFound = errors.New("not found")
	// ErrExists is wrapped by the error for creating an entity whose id is taken.
	ErrExists = errors.New("already exists")
	// ErrReplicaMismatch is wrapped by Open's error when WithReplicaID names
	// another replica than the one the file belongs to.
	ErrReplicaMismatch = errors.New("file belongs to another replica")
	// ErrWorkflow is wrapped by the error for a review status change the
	// review's current status does not allow.
	ErrWorkflow = errors.New("not allowed in the review's status")
)

// FieldError is the error for bad input: Field names the field as the
// household's JSON form does ("members[1].birthDate", "housing.floorAreaM2")
// and Desc says what is wrong, so an app can point at the box on the form.
// Match it with errors.As.
type FieldError = entity.FieldError

// Client is an open tablet database. It is safe for concurrent use; writes
// are serialised by SQLite's single writer.
type Client struct {
	w, r    *sql.DB                // one writer connection; a pool of readers beside it (WAL)
	replica atomic.Pointer[string] // the id this file writes under now (see retire)
	now     func() time.Time
	clock   atomic.Pointer[hlc.Clock]
	log     *slog.Logger
	reg     *survey.Registry
	path    string

	syncMu sync.Mutex // one Sync at a time

	// hookWrite, when set (tests), runs after each change of a write is
	// added to the outbox inside the transaction; an error aborts it.
	hookWrite func(path string) error
}

type config struct {
	replica string
	now     func() time.Time
	log     *slog.Logger
	reg     *survey.Registry
}

// Option configures Open.
type Option func(*config)

// WithReplicaID sets the replica id of a new file, or checks that of an
// existing one (Open fails with ErrReplicaMismatch if it differs). Without
// it a new file gets a fresh UUIDv7.
func WithReplicaID(id string) Option { return func(c *config) { c.replica = id } }

// WithClock sets the wall clock the hybrid logical clock reads (default
// time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithLogger sets where the client logs (default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithStandards sets the poverty standards Assess chooses from (default
// survey.Builtin()).
func WithStandards(r *survey.Registry) Option { return func(c *config) { c.reg = r } }

// Open opens the tablet database at path, creating it or migrating its
// schema to this version, and restores the clock from it so that no new
// stamp goes below one already written.
func Open(ctx context.Context, path string, opts ...Option) (*Client, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	if cfg.reg == nil {
		cfg.reg = survey.Builtin()
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open %s: path must not contain ? or #", path)
	}
	w, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(path, sqlitedb.Options{Bulk: true}))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	m, err := initialise(ctx, w, cfg.replica)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(path, sqlitedb.Options{ReadOnly: true}))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	c := &Client{w: w, r: r, now: cfg.now, log: cfg.log, reg: cfg.reg, path: path}
	c.replica.Store(&m.replica)
	clock := hlc.New(cfg.now)
	clock.Restore(m.hlcLast)
	c.clock.Store(clock)
	return c, nil
}

// initialise migrates the schema and makes or checks the meta row.
func initialise(ctx context.Context, db *sql.DB, replica string) (meta, error) {
	var server bool
	// A server's log: changes up to its schema 10, log_runs since.
	if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name IN ('changes', 'log_runs'))").Scan(&server); err != nil {
		return meta{}, fmt.Errorf("read schema: %w", err)
	}
	if server {
		return meta{}, errors.New("this is a server's store (rasoatd --db), not a tablet file")
	}
	if err := migrate(ctx, db); err != nil {
		return meta{}, err
	}
	fresh := replica
	if fresh == "" {
		fresh = uuid.Must(uuid.NewV7()).String()
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO meta (id, replica_id, next_seq, hlc_last, hlc_known, pull_cursor, acked_seq)
		VALUES (1, ?, 1, 0, 0, 0, 0) ON CONFLICT (id) DO NOTHING`, fresh); err != nil {
		return meta{}, fmt.Errorf("write replica id: %w", err)
	}
	m, err := readMeta(ctx, db)
	if err != nil {
		return meta{}, err
	}
	if replica != "" && m.replica != replica {
		// A file restored from an older copy writes under a fresh id since;
		// the id it was made with is still its own.
		var retired bool
		if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM retired_replicas WHERE replica_id = ?)", replica).Scan(&retired); err != nil {
			return meta{}, fmt.Errorf("read retired replica ids: %w", err)
		}
		if !retired {
			return meta{}, fmt.Errorf("%w: file is replica %s, not %s", ErrReplicaMismatch, m.replica, replica)
		}
	}
	return m, nil
}

// Close closes the file. Calls after Close fail.
func (c *Client) Close() error {
	return errors.Join(c.r.Close(), c.w.Close())
}

// ReplicaID returns the replica id this file writes under: the one it was
// made with, or a fresh one if a server found the file restored from an
// older copy of itself (see Sync).
func (c *Client) ReplicaID() string { return *c.replica.Load() }

// Pending returns how many local changes wait to be acknowledged by a server.
func (c *Client) Pending(ctx context.Context) (int, error) {
	var n int
	if err := c.r.QueryRowContext(ctx, "SELECT count(*) FROM outbox WHERE refused_reason IS NULL").Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending changes: %w", err)
	}
	return n, nil
}

// meta is the file's one meta row.
type meta struct {
	replica  string
	nextSeq  uint64        // the next origin sequence number
	hlcLast  hlc.Timestamp // greatest stamp issued or observed here
	hlcKnown hlc.Timestamp // greatest stamp a server acknowledged or sent
	cursor   uint64        // pull cursor: the server log position applied
	ackedSeq uint64        // greatest origin sequence a server acknowledged
	logID    string        // the server log the cursor counts in
	check    uint64        // the cursor's check in that log
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readMeta(ctx context.Context, q queryer) (meta, error) {
	var m meta
	var next, last, known, cursor, acked, check int64
	err := q.QueryRowContext(ctx, "SELECT replica_id, next_seq, hlc_last, hlc_known, pull_cursor, acked_seq, log_id, cursor_check FROM meta WHERE id = 1").
		Scan(&m.replica, &next, &last, &known, &cursor, &acked, &m.logID, &check)
	if err != nil {
		return meta{}, fmt.Errorf("read meta: %w", err)
	}
	m.nextSeq, m.hlcLast, m.hlcKnown, m.cursor, m.ackedSeq = uint64(next), hlc.Timestamp(last), hlc.Timestamp(known), uint64(cursor), uint64(acked)
	m.check = uint64(check)
	return m, nil
}
