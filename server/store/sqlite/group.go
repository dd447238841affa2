package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/rasoat/rasoat/server/store"
)

// maxGroup bounds the pushes one transaction takes: enough that every
// tablet of a busy commune (a hundred syncing at once) shares one fsync
// rather than waiting a group for the next, few enough that the first of
// them is not kept waiting long behind the last.
const maxGroup = 128

// maxGroupChanges bounds the changes one transaction takes, so that a push
// waits behind at most about half a second of others' work, however large
// their batches: a hundred tablets' batches of a few hundred changes share
// one transaction, but a hundred first uploads of client.DefaultBatchSize
// (5,000) each would make one of half a million, holding every small push
// behind it for seconds. A push larger than this alone is a group of its
// own.
const maxGroupChanges = 40_000

// checkpointEvery is how many changes the committer commits between two
// kicks of the checkpointer: about 1,000 pages of WAL (a change takes about
// a kilobyte, with its index entries and its entity's state), SQLite's own
// threshold, so that a tablet pushing alone does not pay a checkpoint, and
// the sync of the main file with it, for every push.
var checkpointEvery = 4_000 // a variable only for a test to make it small

// committer coalesces concurrent pushes (group commit). SQLite has one
// writer and durability costs an fsync per commit; with a transaction per
// push, a hundred tablets queue for a hundred fsyncs and throughput falls
// as tablets are added. The committer's one goroutine takes every push
// waiting, runs each in a savepoint of one transaction, and commits once:
// a push that fails is rolled back to its savepoint alone.
//
// The COMMIT writes the WAL without syncing it (sqlitedb.Options.OwnSync),
// and a second goroutine, the syncer, fsyncs the WAL and only then answers
// the group's pushes: every push is answered only once what it stored is
// on disk, as with synchronous=FULL, but the writer starts the next group
// while the disk syncs the last one (early lock release), where a FULL
// COMMIT held the write lock, and every tablet, for the fsync: about a
// sixth of the writer's time under a hundred tablets. Groups committed
// while a sync runs share the next one. Readers may see a group's changes
// before its sync returns; should the power fail in between, the log
// loses changes nobody was told were stored: their tablets send them
// again, and a replica that pulled them finds its cursor past the log's
// end or on other changes (store.ErrCursorAhead, store.ErrLogChanged) and
// takes a fresh snapshot, as after a restored backup.
type committer struct {
	db      *sql.DB
	ck      *checkpointer
	sync    func() error // makes the WAL durable (sqlitedb.SyncWAL)
	queue   chan *job
	synced  chan []*job           // committed groups, for the syncer to answer
	broken  atomic.Pointer[error] // a failed sync (errSync): nothing more is written
	done    chan struct{}         // closed by close: take no more pushes
	stopped chan struct{}         // closed when the syncer has answered the last group
	closing sync.Once
	prelude prelude // when not nil, writes in each group's transaction first
}

// A prelude writes in each group's transaction before its pushes.
type prelude interface {
	// write reports whether it wrote anything: the group then commits
	// even if every push is refused.
	write(context.Context, *sql.Tx) bool
	// done follows a write that wrote, once the group committed or not.
	done(committed bool)
}

type job struct {
	ctx  context.Context
	n    int // changes
	fn   func(context.Context, *sql.Tx) (store.PushResult, error)
	res  store.PushResult
	err  error
	done chan struct{}
}

// syncBacklog bounds the groups committed and waiting for their sync: the
// writer runs at most this far ahead of the disk.
const syncBacklog = 8

func newCommitter(db *sql.DB, ck *checkpointer, sync func() error, prelude prelude) *committer {
	c := &committer{db: db, ck: ck, sync: sync, prelude: prelude, queue: make(chan *job, maxGroup), synced: make(chan []*job, syncBacklog),
		done: make(chan struct{}), stopped: make(chan struct{})}
	go c.run()
	go c.syncs()
	return c
}

// errSync is wrapped by what a push answers once a sync of the WAL has
// failed: what the store holds on disk is then not known, and it takes
// nothing more until the server restarts and SQLite recovers the file.
var errSync = errors.New("the store could not sync its log to disk; restart the server")

var errClosed = errors.New("store closed")

// do runs fn in the next group's transaction and returns once that
// transaction committed and its WAL is synced (or fn failed). A push
// whose context ends while it waits is not run; none is once a sync has
// failed.
func (c *committer) do(ctx context.Context, n int, fn func(context.Context, *sql.Tx) (store.PushResult, error)) (store.PushResult, error) {
	if err := c.failed(); err != nil {
		return store.PushResult{}, err
	}
	j := &job{ctx: ctx, n: n, fn: fn, done: make(chan struct{})}
	select {
	case c.queue <- j:
	case <-c.done:
		return store.PushResult{}, errClosed
	case <-ctx.Done():
		return store.PushResult{}, ctx.Err()
	}
	// Not on ctx: once queued, the push is answered after its sync or
	// rollback.
	select {
	case <-j.done:
	case <-c.stopped:
		select {
		case <-j.done: // run answered it before returning
		default:
			return store.PushResult{}, errClosed // queued after the last drain
		}
	}
	return j.res, j.err
}

// nudge makes an idle committer run a group soon, for its prelude's
// sake, without waiting for it: a push of nothing, unless the queue is
// full, when a group follows anyway.
func (c *committer) nudge() {
	j := &job{ctx: context.Background(), fn: noPush, done: make(chan struct{})}
	select {
	case c.queue <- j:
	default:
	}
}

func noPush(context.Context, *sql.Tx) (store.PushResult, error) { return store.PushResult{}, nil }

// close stops taking pushes and returns once the group in flight is
// committed and those still queued are answered.
func (c *committer) close() {
	c.closing.Do(func() { close(c.done) })
	<-c.stopped
	c.ck.close()
}

func (c *committer) run() {
	defer close(c.synced)
	var (
		next  *job // taken from the queue, left for the next group
		since int  // changes committed since the last checkpoint
	)
	for {
		first := next
		if first == nil {
			select {
			case first = <-c.queue:
			case <-c.done:
				c.drain()
				return
			}
		}
		next = nil
		group, n := []*job{first}, first.n
	more:
		for len(group) < maxGroup {
			select {
			case j := <-c.queue:
				if n+j.n > maxGroupChanges {
					next = j
					break more
				}
				group = append(group, j)
				n += j.n
			default:
				break more
			}
		}
		c.ck.bound()
		if c.commit(group) {
			if since += n; since >= checkpointEvery {
				c.ck.kick()
				since = 0
			}
		}
	}
}

// drain answers the pushes still queued at close.
func (c *committer) drain() {
	for {
		select {
		case j := <-c.queue:
			j.err = errClosed
			close(j.done)
		default:
			return
		}
	}
}

// commit runs a group in one transaction, each push in its own savepoint,
// and reports whether it committed anything.
func (c *committer) commit(group []*job) (committed bool) {
	finish := func(err error) {
		for _, j := range group {
			if err != nil && j.err == nil {
				j.res, j.err = store.PushResult{}, err
			}
			close(j.done)
		}
	}
	if err := c.failed(); err != nil {
		finish(err)
		return false
	}
	// The transaction is not bound to any one push's context: one caller
	// going away must not roll back the others.
	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		finish(fmt.Errorf("push: begin: %w", err))
		return false
	}
	ran := 0
	if c.prelude != nil && c.prelude.write(ctx, tx) {
		ran++
		defer func() { c.prelude.done(committed) }()
	}
	for _, j := range group {
		if err := j.ctx.Err(); err != nil {
			j.err = err
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT push"); err != nil {
			tx.Rollback()
			finish(fmt.Errorf("push: savepoint: %w", err))
			return false
		}
		// Once running, a push finishes even if its caller goes away (its
		// answer is then lost, as on a dropped link, and a resend finds it
		// stored). Its statements run without a Done channel: the driver
		// starts a goroutine per statement to watch one, which cost 2% of
		// a push's CPU.
		j.res, j.err = j.fn(context.WithoutCancel(j.ctx), tx)
		if j.err != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO push"); err != nil {
				tx.Rollback()
				finish(fmt.Errorf("push: roll back: %w", err))
				return false
			}
		} else {
			ran++
		}
		if _, err := tx.ExecContext(ctx, "RELEASE push"); err != nil {
			tx.Rollback()
			finish(fmt.Errorf("push: release savepoint: %w", err))
			return false
		}
	}
	if ran == 0 {
		// Nothing stored, but a refusal may rest on what an earlier
		// group stored and the syncer has not yet synced: answered after
		// that sync too.
		tx.Rollback()
		c.synced <- group
		return false
	}
	if err := tx.Commit(); err != nil {
		finish(fmt.Errorf("push: commit: %w", err))
		return false
	}
	c.synced <- group // answered by the syncer
	if syncHeld {
		<-group[len(group)-1].done
	}
	return true
}

// syncHeld makes the committer wait for each group's sync before it takes
// the next, as a synchronous=FULL COMMIT would: a variable only for a
// benchmark to compare with (BenchmarkPushSlowDisk).
var syncHeld = false

// syncs answers the committed groups once the WAL holding them is synced:
// one fsync for every group committed while the last one ran.
func (c *committer) syncs() {
	defer close(c.stopped)
	for group := range c.synced {
		groups := [][]*job{group}
	more:
		for {
			select {
			case g, ok := <-c.synced:
				if !ok {
					break more
				}
				groups = append(groups, g)
			default:
				break more
			}
		}
		err := c.failed()
		if err == nil {
			if serr := c.sync(); serr != nil {
				err = c.fail(serr)
			}
		}
		for _, g := range groups {
			for _, j := range g {
				if err != nil && j.err == nil {
					j.res, j.err = store.PushResult{}, err
				}
				close(j.done)
			}
		}
	}
}

// failed returns the failure of an earlier sync, nil if none.
func (c *committer) failed() error {
	if p := c.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records that a sync of the WAL failed (the first failure stands)
// and returns it, wrapping errSync and store.ErrBusy: a caller is told
// the store is unavailable (UNAVAILABLE, STORE_BUSY: a tablet tries again
// at its next sync), and the operator is told, in the log, to restart.
func (c *committer) fail(err error) error {
	wrapped := fmt.Errorf("%w: %w: %w", store.ErrBusy, errSync, err)
	if c.broken.CompareAndSwap(nil, &wrapped) {
		slog.Error("store: a sync of the WAL failed; the store takes no more writes until the server restarts", "err", err)
	}
	return c.failed()
}
