package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rasoat/rasoat/internal/apply"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
)

// rowsPerInsert is how many rows one multi-row INSERT writes. One statement
// per row costs a round trip through database/sql and the VDBE per row;
// a few hundred rows per statement amortise that while staying far below
// SQLite's 32,766 bound variables.
const rowsPerInsert = 400

// Push stores a batch of changes that have passed entity.Validate, all or
// nothing, durable when it returns nil, with the checks apply.Batch.Apply
// makes against what is stored (content-checked duplicates, bases, entities
// bound to their household's village, size bounds, the Guard). Concurrent
// pushes are coalesced into one transaction (committer), each in a
// savepoint of its own, so a hundred tablets pay one fsync together and a
// refused push leaves the others untouched.
//
// A commune server relaying its log upward (the province tier) meets these
// rules by sending its log in server order, in batches or whole: it stored
// each change only after the change's bases and household, which it holds
// at lower log positions, so at the province each base names a change
// already relayed or earlier in the same batch, and each member follows its
// household. A relay must therefore never reorder its log nor leave out a
// village of the commune it relays (a base names a change of the same
// entity, so of the same village, and a member its household's village).
func (db *DB) Push(ctx context.Context, by store.Sender, changes []*rasoatv1.Change) (store.PushResult, error) {
	b, err := apply.Prepare(by.Replica, changes)
	if err != nil {
		return store.PushResult{}, err
	}
	at := time.Now().Unix()
	res, err := db.group.do(ctx, len(changes), func(ctx context.Context, tx *sql.Tx) (store.PushResult, error) {
		res, err := b.Apply(ctx, &writer{tx, db.stmts}, by.Guard, db.deriver())
		if err == nil && res.Accepted > 0 {
			err = insertReceipt(ctx, tx, by, res, at)
		}
		return res, err
	})
	return res, classify(err)
}

// PutDropped is apply.Tx's: multi-row inserts into superseded. A change
// recorded twice (the log's changes before schema 9 are all recorded) is
// kept once.
func (w *writer) PutDropped(ctx context.Context, dropped []apply.Dropped) error {
	args := make([]any, 0, 3*min(len(dropped), rowsPerInsert))
	ids := originIDs{w: w}
	for start, n := range chunks(len(dropped)) {
		args = args[:0]
		for _, d := range dropped[start : start+n] {
			o, err := ids.of(ctx, d.Stamp.Replica)
			if err != nil {
				return err
			}
			args = append(args, o, sqlInt(uint64(d.Stamp.HLC)), sqlInt(d.Seq))
		}
		if _, err := w.exec(ctx, insertSuperseded.sql(n), args...); err != nil {
			return err
		}
	}
	return nil
}

// originIDs looks up (or makes) each origin's id once for one call that
// writes rows naming origins: a tablet's push is of one origin, a relay's
// of a few.
type originIDs struct {
	w   *writer
	ids map[string]int64
}

func (o *originIDs) of(ctx context.Context, replica string) (int64, error) {
	if id, ok := o.ids[replica]; ok {
		return id, nil
	}
	id, err := o.w.originID(ctx, replica)
	if err != nil {
		return 0, err
	}
	if o.ids == nil {
		o.ids = map[string]int64{}
	}
	o.ids[replica] = id
	return id, nil
}

// sqlInt is u as database/sql takes it without reflection: an int64 when
// it fits (database/sql converts a uint64 through reflect, boxing it again
// for each of a log row's two), u itself otherwise, which database/sql
// refuses as it did before.
func sqlInt(u uint64) any {
	if u < 1<<63 {
		return int64(u)
	}
	return u
}

// LoadEntities is apply.Tx's: IN lists padded to a prepared size.
func (w *writer) LoadEntities(ctx context.Context, ids []string, fn func(string, []byte) error) error {
	args := make([]any, 0, maxIn)
	for start := 0; start < len(ids); start += maxIn {
		chunk := ids[start:min(start+maxIn, len(ids))]
		args = args[:0]
		for _, id := range chunk {
			args = append(args, id)
		}
		args = padIn(args)
		rows, err := w.query(ctx, selectEntities.sql(len(args)), args...)
		if err != nil {
			return fmt.Errorf("read entities: %w", err)
		}
		var b sql.RawBytes
		for rows.Next() {
			var id string
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

// PutEntities is apply.Tx's: multi-row upserts of prepared sizes.
func (w *writer) PutEntities(ctx context.Context, rows []apply.Row) error {
	args := make([]any, 0, 5*rowsPerInsert)
	for start, n := range chunks(len(rows)) {
		args = args[:0]
		for _, r := range rows[start : start+n] {
			args = append(args, r.ID, int64(r.Kind), r.HouseholdID, r.VillageCode, r.State)
		}
		if _, err := w.exec(ctx, upsertEntities.sql(n), args...); err != nil {
			return err
		}
	}
	return nil
}

// Entity is apply.Tx's, for a Guard.
func (w *writer) Entity(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := w.queryRow(ctx, "SELECT state FROM entities WHERE id = ?", id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return b, err
}

// Household is apply.Tx's, for a Guard.
func (w *writer) Household(ctx context.Context, hh string, fn func([]byte) error) error {
	rows, err := w.query(ctx, "SELECT state FROM entities WHERE household_id = ?", hh)
	if err != nil {
		return err
	}
	defer rows.Close()
	var b sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&b); err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PersonOf is apply.Tx's, for a Guard.
func (w *writer) PersonOf(ctx context.Context, replica string) (string, error) {
	var p string
	err := w.queryRow(ctx, "SELECT person_id FROM replicas WHERE replica_id = ?", replica).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return p, err
}

var _ apply.Tx = (*writer)(nil)

// insertSQL returns prefix followed by rows groups of cols placeholders.
func insertSQL(prefix string, cols, rows int, suffix string) string {
	var b strings.Builder
	b.Grow(len(prefix) + rows*(cols*2+3) + len(suffix))
	b.WriteString(prefix)
	group := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteString(group)
	}
	b.WriteString(suffix)
	return b.String()
}

// writer is a push's transaction with the store's prepared statements.
type writer struct {
	tx    *sql.Tx
	stmts *stmtCache
}

// originID returns the id of origin in the log, creating it if the log
// holds no change of it yet.
func (w *writer) originID(ctx context.Context, origin string) (int64, error) {
	var id int64
	err := w.queryRow(ctx, originIDSQL, origin).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = w.queryRow(ctx, newOriginSQL, origin).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("origin %s: %w", origin, err)
	}
	return id, nil
}

// exec runs q in the transaction, with the store's prepared statement
// when there is one for it: parsing a 400-row INSERT of 3,200
// placeholders cost a quarter of appending to the log, and even a short
// query costs more to parse than to run.
func (w *writer) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := w.stmts.m[q]; st != nil {
		return w.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return w.tx.ExecContext(ctx, q, args...)
}

// query is exec for a query.
func (w *writer) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := w.stmts.m[q]; st != nil {
		return w.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return w.tx.QueryContext(ctx, q, args...)
}

// queryRow is exec for a query of one row.
func (w *writer) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := w.stmts.m[q]; st != nil {
		return w.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return w.tx.QueryRowContext(ctx, q, args...)
}

// The writer's queries, prepared with the store.
const (
	originIDSQL  = "SELECT id FROM origins WHERE replica_id = ?"
	newOriginSQL = "INSERT INTO origins (replica_id) VALUES (?) RETURNING id"
)

// originIs selects the changes of the origin (replica id) bound to it: a
// scalar subquery, run once per statement, so that the index on origin_id
// serves the rest as it would a number bound in its place.
const originIs = "origin_id = (SELECT id FROM origins WHERE replica_id = ?)"

// A family is a statement over a number of rows or values, prepared with
// the store for each of sizes, so that any count is a few prepared
// statements (chunks) and none is parsed per push.
type family struct {
	build  func(n int) string
	byRows map[int]string
}

func newFamily(build func(n int) string, sizes []int) *family {
	f := &family{build: build, byRows: map[int]string{}}
	for _, n := range sizes {
		f.byRows[n] = build(n)
	}
	return f
}

// sql is the statement over n rows, prepared if n is one of its sizes.
func (f *family) sql(n int) string {
	if q, ok := f.byRows[n]; ok {
		return q
	}
	return f.build(n)
}

var (
	insertSuperseded = newFamily(func(n int) string {
		return insertSQL("INSERT OR IGNORE INTO superseded (origin_id, hlc, origin_seq) VALUES ", 3, n, "")
	}, chunkSizes)
	upsertEntities = newFamily(func(n int) string {
		return insertSQL("INSERT INTO entities (id, kind, household_id, village_code, state) VALUES ", 5, n, " ON CONFLICT (id) DO UPDATE SET state = excluded.state")
	}, chunkSizes)
	selectEntities = newFamily(func(n int) string {
		return "SELECT id, state FROM entities WHERE id IN (?" + strings.Repeat(",?", n-1) + ")"
	}, chunkSizes[slices.Index(chunkSizes, maxIn):])
)

// chunkSizes are the row counts of the prepared statements of a family,
// largest first.
var chunkSizes = []int{rowsPerInsert, 256, 128, 64, 32, 16, 8, 4, 2, 1}

// maxIn is the most values one IN list of a prepared query takes.
const maxIn = 256

// chunks yields (start, length) of the chunks n rows are written in: as
// many of rowsPerInsert as fit, then the rest by powers of two (390 rows
// are 256 + 128 + 4 + 2), each a prepared statement.
func chunks(n int) func(yield func(int, int) bool) {
	return func(yield func(int, int) bool) {
		start := 0
		for _, size := range chunkSizes {
			for n-start >= size {
				if !yield(start, size) {
					return
				}
				start += size
			}
		}
	}
}

// padIn pads a non-empty IN list to the next power of two by repeating its
// last value (which selects nothing more), so that it takes a prepared
// statement.
func padIn(args []any) []any {
	n := 1
	for n < len(args) {
		n *= 2
	}
	for len(args) < n {
		args = append(args, args[len(args)-1])
	}
	return args
}

// stmtCache holds statements prepared when the store opens: on the
// writer's one connection, which is then free (a statement prepared later
// would wait for it behind the transaction that needs it), and on the
// readers, so that a snapshot's pages are not each parsed again.
type stmtCache struct {
	m map[string]*sql.Stmt
}

// writerQueries are the statements the writer prepares: its short
// queries and every size of its row families.
func writerQueries() []string {
	qs := []string{highSeqSQL, storedRangeSQL, runAtSQL, runAfterSQL, supersededSQL, logEndSQL, insertRunSQL, runOverlapSQL, originIDSQL, newOriginSQL}
	fams := []*family{insertSuperseded, upsertEntities, selectEntities, upsertFacts}
	for _, t := range factTables {
		fams = append(fams, factInserts[t.table], factDeletes[t.table])
	}
	for _, f := range fams {
		for _, q := range f.byRows {
			qs = append(qs, q)
		}
	}
	return qs
}

func prepareStmts(ctx context.Context, db *sql.DB, queries ...string) (*stmtCache, error) {
	c := &stmtCache{m: map[string]*sql.Stmt{}}
	for _, q := range queries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
		c.m[q] = st
	}
	return c, nil
}

func (c *stmtCache) close() error {
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
