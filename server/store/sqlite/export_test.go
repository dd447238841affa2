package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/rasoat/rasoat/server/store"
)

// SetWALBounds sets walMaxPages and checkpointEvery for a test and
// returns the restore.
func SetWALBounds(pages int64, every int) (restore func()) {
	oldPages, oldEvery := walMaxPages, checkpointEvery
	walMaxPages, checkpointEvery = pages, every
	return func() { walMaxPages, checkpointEvery = oldPages, oldEvery }
}

// SlowSyncs adds d to every sync of the WAL and, with held, makes the
// committer wait for each group's sync before the next, as a
// synchronous=FULL COMMIT would (BenchmarkPushSlowDisk). Set before the
// first push.
func (db *DB) SlowSyncs(d time.Duration, held bool) (restore func()) {
	syncWAL := db.syncWAL
	db.syncWAL = func() error {
		time.Sleep(d)
		return syncWAL()
	}
	old := syncHeld
	syncHeld = held
	return func() { syncHeld, db.syncWAL = old, syncWAL }
}

// PutFacts stores report facts as a push would (for benchmarks of the
// report's queries).
func (db *DB) PutFacts(ctx context.Context, fs []store.HouseholdFacts) error {
	_, err := db.group.do(ctx, len(fs), func(ctx context.Context, tx *sql.Tx) (store.PushResult, error) {
		return store.PushResult{}, (&writer{tx, db.stmts}).PutFacts(ctx, fs)
	})
	return err
}

// DecidedFacts is the push transaction's Decided (store.View.Decided), for
// the quality suite.
func (db *DB) DecidedFacts(ctx context.Context, hh string) (out []store.DecidedFact, err error) {
	_, err = db.group.do(ctx, 1, func(ctx context.Context, tx *sql.Tx) (store.PushResult, error) {
		out, err = (&writer{tx, db.stmts}).Decided(ctx, hh)
		return store.PushResult{}, err
	})
	return out, err
}

// SamePeople is the push transaction's SamePeople, for the quality suite.
func (db *DB) SamePeople(ctx context.Context, hh string, keys []string) (out []store.PersonMatch, err error) {
	_, err = db.group.do(ctx, 1, func(ctx context.Context, tx *sql.Tx) (store.PushResult, error) {
		out, err = (&writer{tx, db.stmts}).SamePeople(ctx, hh, keys)
		return store.PushResult{}, err
	})
	return out, err
}

// WriterPlans returns SQLite's EXPLAIN QUERY PLAN of each of the push's
// lookups by origin, by name.
func (db *DB) WriterPlans(ctx context.Context) (map[string]string, error) {
	qs := map[string]string{
		"high seq":     highSeqSQL,
		"stored range": storedRangeSQL,
		"run at":       runAtSQL,
		"run after":    runAfterSQL,
		"superseded":   supersededSQL,
		"overlap":      runOverlapSQL,
		"log end":      logEndSQL,
		"history":      historySQL,
	}
	out := map[string]string{}
	for name, q := range qs {
		rows, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, "tab-a", 1, 2, 3)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var b strings.Builder
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				rows.Close()
				return nil, err
			}
			b.WriteString(detail + "\n")
		}
		rows.Close()
		out[name] = b.String()
	}
	return out, nil
}

// RunFloor is runFloor, for its table test.
var RunFloor = runFloor
