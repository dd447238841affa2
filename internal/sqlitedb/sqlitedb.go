// Package sqlitedb holds what the tablet's and the server's SQLite files
// share: how a connection is opened (modernc.org/sqlite, pure Go, so the
// tablet library builds for Android without cgo).
package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Driver is the database/sql driver name.
const Driver = "sqlite"

// BusyTimeout is how long, in milliseconds, a connection waits on a lock
// held by another connection or process (a sync beside a UI write, a backup
// tool) before failing with SQLITE_BUSY.
const BusyTimeout = 5000

// Options choose how a connection is opened.
type Options struct {
	// ReadOnly connections only query; a file has one writer connection.
	ReadOnly bool
	// Bulk tunes the writer for transactions of tens of megabytes (a first
	// sync writes a whole commune in one): a file it creates gets pages of
	// BulkPageSize, statement journals stay in memory, and the WAL is
	// checkpointed only past about 40 MB (BulkCheckpointPages), so a large
	// write does not also copy everything into the main file before it
	// returns (client's BenchmarkInitialSync measures the first sync this
	// is for). The page cache stays SQLite's default 2 MB:
	// a large transaction spills its dirty pages to the WAL as it goes
	// (uncommitted frames, which recovery ignores), reusing the cache's
	// pages, which costs less than allocating a page for every page written
	// (a 16 MiB cache made a first sync of a commune, about 2,100 pages,
	// take 1.6× the CPU time).
	Bulk bool
	// BigCache gives the writer a 16 MiB page cache and in-memory
	// statement journals but keeps SQLite's default checkpoint threshold
	// (1,000 pages): a server's group commits are large transactions too,
	// but its WAL must stay small while readers come and go. A server
	// allocates its cache once and keeps it for as long as it runs.
	BigCache bool
	// ManualCheckpoint turns off the checkpoint SQLite runs inside the
	// COMMIT that takes the WAL past 1,000 pages: the writer's owner
	// checkpoints from another connection (a server's committer, which
	// would otherwise copy a group's pages into the main file and sync it
	// before answering anyone, while every other push waits).
	ManualCheckpoint bool
	// OwnSync makes the writer's commits synchronous=NORMAL: a COMMIT
	// writes the WAL but does not fsync it, and the writer's owner syncs
	// the WAL itself (WAL.Sync) before it tells anyone a write is durable.
	// A server's committer syncs a group's WAL after releasing the write
	// lock, while the next group runs, instead of holding every tablet
	// behind the disk.
	OwnSync bool
}

// BulkPageSize is the page size of a file a Bulk writer creates: SQLite
// writes a WAL frame, with its own write, for each page, and a first sync
// of a commune (about 8.5 MB) writes about 2,100 frames of 4 KiB but 530 of
// 16 KiB, which took about a tenth less of its CPU time. The page size of
// an existing file stays what it is.
const BulkPageSize = 16384

// BulkCheckpointPages is the WAL size, in pages, past which a Bulk writer
// checkpoints: 40 MiB of BulkPageSize pages (10 MiB in a file made with
// 4 KiB pages before BulkPageSize).
const BulkCheckpointPages = 40 << 20 / BulkPageSize

// DSN is the data source name for path. Every connection but an OwnSync
// writer is synchronous=FULL: an acknowledged write must survive a power
// cut, not only a crash of the process. The writer uses WAL and BEGIN
// IMMEDIATE, so a write transaction never fails halfway upgrading a read
// lock.
func DSN(path string, o Options) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout))
	if o.OwnSync && !o.ReadOnly {
		q.Add("_pragma", "synchronous(NORMAL)")
	} else {
		q.Add("_pragma", "synchronous(FULL)")
	}
	if o.ReadOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		// The shorthand key, which the driver applies after every _pragma:
		// page_size must come first, since a file's page size is fixed once
		// it is in WAL mode.
		q.Set("_journal_mode", "WAL")
		q.Set("_txlock", "immediate")
	}
	if o.Bulk && !o.ReadOnly {
		q.Add("_pragma", fmt.Sprintf("page_size(%d)", BulkPageSize))
	}
	if (o.Bulk || o.BigCache) && !o.ReadOnly {
		q.Add("_pragma", "temp_store(MEMORY)")
	}
	if o.BigCache && !o.ReadOnly {
		q.Add("_pragma", "cache_size(-16384)")
	}
	switch {
	case o.ReadOnly:
	case o.ManualCheckpoint:
		q.Add("_pragma", "wal_autocheckpoint(0)")
	case o.Bulk:
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", BulkCheckpointPages))
	}
	return "file:" + path + "?" + q.Encode()
}

// WAL is a descriptor of a database file's WAL held for as long as the
// file is open, through which an OwnSync writer's owner syncs what the
// writer committed: an fsync of the WAL, as a synchronous=FULL COMMIT
// runs (fsync writes out a file's pages, whichever descriptor wrote
// them). Held open, not opened for each sync, so that a write-back error
// is reported to it: Linux reports one to every descriptor open when it
// happened, once, and a descriptor opened afterwards would be told
// nothing if another (a checkpoint's) had seen it first. SQLite removes
// the WAL only when the file's last connection closes, and its owner
// holds the writer open for as long as it holds this.
type WAL struct {
	path string
	f    *os.File
}

// OpenWAL opens the WAL of the database db has open as its main
// database, named as SQLite names it (PRAGMA database_list: a path through
// a symbolic link is the target's, where SQLite keeps the WAL). The WAL
// must exist: db has opened the file in WAL mode.
func OpenWAL(ctx context.Context, db *sql.DB) (*WAL, error) {
	var seq int
	var name, file string
	if err := db.QueryRowContext(ctx, "PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		return nil, fmt.Errorf("find the WAL: %w", err)
	}
	w := &WAL{path: file + "-wal"}
	var err error
	if w.f, err = os.OpenFile(w.path, os.O_RDWR, 0); err != nil {
		return nil, fmt.Errorf("open the WAL: %w", err)
	}
	return w, nil
}

// Path is the WAL's file.
func (w *WAL) Path() string { return w.path }

// Sync makes durable everything committed to the WAL so far.
func (w *WAL) Sync() error {
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync the WAL %s: %w", w.path, err)
	}
	return nil
}

// Close closes the descriptor.
func (w *WAL) Close() error { return w.f.Close() }
