package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// walMaxPages bounds the WAL, in pages (64 MiB of 4 KiB pages), under a
// steady stream of pushes. A WAL restarts from its beginning only when a
// write transaction begins with every frame copied into the main file;
// with checkpoints beside a writer that never pauses, that moment need not
// come, and the WAL would grow for as long as the tablets push. Past this
// size the committer finishes the checkpoint itself between two groups
// (typically the last group's pages: the rest were copied in the
// background), so that its next transaction restarts the WAL.
var walMaxPages int64 = 16384 // a variable only for a test to make it small

// checkpointer copies the WAL into the main file from its own connection,
// beside the committer, instead of inside the COMMIT that crossed SQLite's
// threshold: that COMMIT would copy the group's pages and sync the main
// file before any push of the group is answered, while the next group
// waits. The committer kicks it every checkpointEvery changes.
type checkpointer struct {
	db      *sql.DB
	kicks   chan struct{}
	mu      sync.Mutex   // one checkpoint at a time
	pages   atomic.Int64 // the WAL's length at the last checkpoint
	done    chan struct{}
	stopped chan struct{}
}

func newCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, kicks: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go c.run()
	return c
}

// kick asks for a checkpoint soon; kicks while one runs make one more.
func (c *checkpointer) kick() {
	select {
	case c.kicks <- struct{}{}:
	default:
	}
}

// bound runs a checkpoint now if the WAL has grown past walMaxPages; the
// committer calls it between two transactions.
func (c *checkpointer) bound() {
	if c.pages.Load() >= walMaxPages {
		c.checkpoint()
		// With no write transaction open, it copied everything (unless
		// a reader still needs a frame), and the next write transaction
		// starts the WAL over.
		c.pages.Store(0)
	}
}

func (c *checkpointer) run() {
	defer close(c.stopped)
	for {
		select {
		case <-c.kicks:
			c.checkpoint()
		case <-c.done:
			return
		}
	}
}

// checkpoint copies what it can of the WAL into the main file without
// waiting for readers or the writer (PASSIVE). An error (a file another
// process holds) leaves the WAL to the next one.
func (c *checkpointer) checkpoint() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var busy, log, copied int64 // copied < log: a reader still needs frames, or the writer wrote more
	if err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied); err != nil {
		return
	}
	c.pages.Store(log)
}

// close stops the background checkpoints; the caller closes db.
func (c *checkpointer) close() {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	<-c.stopped
}
