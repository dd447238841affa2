package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/protobuf/proto"
)

// rowsPerInsert is how many rows one multi-row INSERT writes. One statement
// per row costs a round trip through database/sql and the VDBE per row;
// a few hundred rows per statement amortise that while staying far below
// SQLite's 32,766 bound variables.
const rowsPerInsert = 400

// maxRefused bounds the changes a refused push lists.
const maxRefused = 100

// Push stores a batch of changes that have passed entity.Validate, all or
// nothing, durable when it returns nil. Concurrent pushes are coalesced
// into one transaction (committer), each in a savepoint of its own, so a
// hundred tablets pay one fsync together and a refused push leaves the
// others untouched.
//
// What it checks against what is stored (store.Refused lists each refused
// change, and nothing of the batch is stored):
//   - a change whose origin (stamp.replica_id, seq) is stored, or earlier in
//     the batch, with the same bytes is a duplicate, skipped; with other
//     bytes it is refused (store.ErrContentMismatch), never counted as a
//     duplicate: the author's tablet shows it, so it must reach everyone;
//   - every base stamp names a change to the same field stored in the log
//     (even if superseded) or earlier in the batch (store.ErrBaseUnknown);
//   - a change's kind, household and village are its entity's, and a member
//     or review belongs to a household held here, in the same village
//     (store.ErrEntityMismatch);
//   - no field keeps more than entity.MaxHeads concurrent values, no state
//     grows past entity.MaxStateSize (store.ErrEntityTooLarge).
//
// The cost is in proportion to the batch: stored changes are looked up by
// their (origin, seq) and stamps by index, never by scanning a range of the
// log. replica is the pushing replica (a tablet, or a commune server), not
// necessarily the changes' origin.
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
	p, err := preparePush(by.Replica, changes)
	if p != nil {
		p.guard = by.Guard
	}
	if err != nil {
		return store.PushResult{}, err
	}
	at := time.Now().Unix()
	res, err := db.group.do(ctx, len(changes), func(ctx context.Context, tx *sql.Tx) (store.PushResult, error) {
		res, err := p.apply(ctx, &writer{tx, db.stmts})
		if err == nil && res.Accepted > 0 {
			err = insertReceipt(ctx, tx, by, res, at)
		}
		return res, err
	})
	return res, classify(err)
}

// push is one batch prepared outside the writer: encoded once, for storing
// and for comparing with what is stored.
type push struct {
	replica  string
	guard    store.Guard
	changes  []*rasoatv1.Change
	payloads [][]byte
	merges   []merge.Change
}

var marshal = proto.MarshalOptions{Deterministic: true}

func preparePush(replica string, changes []*rasoatv1.Change) (*push, error) {
	p := &push{replica: replica, changes: changes, payloads: make([][]byte, len(changes)), merges: make([]merge.Change, len(changes))}
	var buf []byte
	for i, c := range changes {
		start := len(buf)
		var err error
		if buf, err = marshal.MarshalAppend(buf, c); err != nil {
			return nil, fmt.Errorf("push: encode changes[%d]: %w", i, err)
		}
		p.payloads[i] = buf[start:len(buf):len(buf)]
		p.merges[i] = entity.MergeOf(c)
	}
	return p, nil
}

// apply runs the push inside tx; an error leaves tx to be rolled back (to
// the push's savepoint).
func (p *push) apply(ctx context.Context, w *writer) (res store.PushResult, err error) {
	fresh, refused, err := p.newChanges(ctx, w)
	if err != nil {
		return res, err
	}
	if len(refused) > 0 {
		return res, refused
	}
	res.Accepted = len(fresh)
	res.Duplicates = len(p.changes) - len(fresh)
	states, ids, refused, err := p.merge(ctx, w, fresh)
	if err != nil {
		return res, err
	}
	if len(refused) > 0 {
		return res, refused
	}
	if res.ServerSeq, err = p.insertLog(ctx, w, fresh); err != nil {
		return res, err
	}
	// The state's size is known once it is encoded, after the log rows
	// went in: a refusal here rolls them back with the rest.
	if err := storeEntities(ctx, w, ids, states); err != nil {
		return res, err
	}
	if err := w.queryRow(ctx, highSeqSQL, p.replica).Scan(&res.ReplicaHighSeq); err != nil {
		return res, fmt.Errorf("push: read the replica's last seq: %w", err)
	}
	return res, nil
}

type originKey struct {
	origin string
	seq    uint64
}

// newChanges returns the indexes of the changes not yet stored, in batch
// order, and refuses those whose (origin, seq) is stored or earlier in the
// batch with other content. Per origin it reads the stored payloads of the
// batch's seqs: one range read when they are dense (a tablet's batch is
// consecutive, and usually finds nothing), point reads otherwise, so a
// batch naming seqs 1 and 2^63 costs two probes, not a scan between.
func (p *push) newChanges(ctx context.Context, w *writer) ([]int, store.Refused, error) {
	bySeq := map[string][]uint64{}
	var origins []string
	for _, c := range p.changes {
		o := c.GetStamp().GetReplicaId()
		if bySeq[o] == nil {
			origins = append(origins, o)
		}
		bySeq[o] = append(bySeq[o], c.GetSeq())
	}
	stored := map[originKey][]byte{}
	for _, o := range origins {
		if err := readStored(ctx, w, o, bySeq[o], stored); err != nil {
			return nil, nil, err
		}
	}
	var refused store.Refused
	var high *uint64
	fresh := make([]int, 0, len(p.changes))
	for i, c := range p.changes {
		k := originKey{c.GetStamp().GetReplicaId(), c.GetSeq()}
		prev, ok := stored[k]
		if !ok {
			stored[k] = p.payloads[i] // a repeat later in the batch is a duplicate
			fresh = append(fresh, i)
			continue
		}
		if bytes.Equal(prev, p.payloads[i]) {
			continue
		}
		if high == nil {
			high = new(uint64)
			if err := w.queryRow(ctx, highSeqSQL, p.replica).Scan(high); err != nil {
				return nil, nil, fmt.Errorf("push: read the replica's last seq: %w", err)
			}
		}
		refused = append(refused, &store.ChangeError{Index: i, Field: "seq", Err: mismatch(k, *high, prev, c)})
		if len(refused) == maxRefused {
			break
		}
	}
	return fresh, refused, nil
}

// mismatch is the refusal of c, whose (origin, seq) k is stored as the
// payload stored, saying whether the stored change is the same write as c,
// re-stamped: the same entity, kind, field and value, over the same base.
// Re-stamping keeps the base (the origin renames only its own moved
// stamps, and renames those to the stored ones before it sends a later
// change), so a change with another base is another write, even with the
// same value: one a restored file made after seeing other writes, which
// must be issued again, not dropped as stored.
func mismatch(k originKey, high uint64, stored []byte, c *rasoatv1.Change) *store.MismatchError {
	e := &store.MismatchError{Origin: k.origin, Seq: k.seq, ReplicaHighSeq: high}
	s := &rasoatv1.Change{}
	if err := proto.Unmarshal(stored, s); err == nil &&
		s.GetEntityId() == c.GetEntityId() && s.GetKind() == c.GetKind() && s.GetField() == c.GetField() && bytes.Equal(s.GetValue(), c.GetValue()) &&
		slices.EqualFunc(s.GetBase(), c.GetBase(), func(a, b *rasoatv1.Stamp) bool {
			return a.GetHlc() == b.GetHlc() && a.GetReplicaId() == b.GetReplicaId()
		}) {
		e.SameWrite, e.StoredHLC = true, s.GetStamp().GetHlc()
	}
	return e
}

// readStored adds to stored the payloads of origin's changes among seqs.
func readStored(ctx context.Context, w *writer, origin string, seqs []uint64, stored map[originKey][]byte) error {
	lo, hi := slices.Min(seqs), slices.Max(seqs)
	scan := func(rows *sql.Rows, err error) error {
		if err != nil {
			return fmt.Errorf("push: look up stored changes of %s: %w", origin, err)
		}
		defer rows.Close()
		for rows.Next() {
			var s uint64
			var b []byte
			if err := rows.Scan(&s, &b); err != nil {
				return fmt.Errorf("push: look up stored changes of %s: %w", origin, err)
			}
			stored[originKey{origin, s}] = b
		}
		return rows.Err()
	}
	if hi-lo < uint64(2*len(seqs)) {
		return scan(w.query(ctx, storedRangeSQL, origin, lo, hi))
	}
	seqs = slices.Compact(slices.Sorted(slices.Values(seqs)))
	for start := 0; start < len(seqs); start += rowsPerInsert {
		chunk := seqs[start:min(start+rowsPerInsert, len(seqs))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, origin)
		for _, s := range chunk {
			args = append(args, s)
		}
		q := "SELECT origin_seq, payload FROM changes WHERE origin = ? AND origin_seq IN (?" + strings.Repeat(",?", len(chunk)-1) + ")"
		if err := scan(w.query(ctx, q, args...)); err != nil {
			return err
		}
	}
	return nil
}

type pending struct {
	state entity.State
	dirty bool
	found bool
	last  int // the last fresh change applied to it, for a size refusal
}

// stampKey is one change's stamp on one field of one entity.
type stampKey struct {
	entity, field string
	stamp         merge.Stamp
}

// merge reads each entity the fresh changes touch (and each household a
// member or review names) once, checks and applies the changes in batch
// order, and returns the states to store.
func (p *push) merge(ctx context.Context, w *writer, fresh []int) (map[string]*pending, []string, store.Refused, error) {
	states := map[string]*pending{}
	var ids []string
	want := func(id string) {
		if states[id] == nil {
			states[id] = &pending{}
			ids = append(ids, id)
		}
	}
	for _, i := range fresh {
		want(p.changes[i].GetEntityId())
		if h := entity.HouseholdOf(p.changes[i]); h != p.changes[i].GetEntityId() {
			want(h)
		}
	}
	if err := loadEntities(ctx, w, ids, states); err != nil {
		return nil, nil, nil, err
	}
	// The stamps of the batch, so a base may name a change earlier in it.
	inBatch := make(map[stampKey]int, len(p.changes))
	var refused store.Refused
	refuse := func(i int, field string, err error) {
		if len(refused) < maxRefused {
			refused = append(refused, &store.ChangeError{Index: i, Field: field, Err: err})
		}
	}
	var v *view // made on the guard's first use
	isFresh := make(map[int]bool, len(fresh))
	for _, i := range fresh {
		isFresh[i] = true
	}
	for i, c := range p.changes {
		m := &p.merges[i]
		key := stampKey{m.Entity, m.Field, m.Stamp}
		if !isFresh[i] {
			inBatch[key] = i // a duplicate is stored: a later base may name it
			continue
		}
		st := states[c.GetEntityId()]
		if err := st.state.Check(c); err != nil {
			var fe *entity.FieldError
			field := "entity_id"
			if errors.As(err, &fe) {
				field = fe.Field
			}
			refuse(i, field, fmt.Errorf("%w: %w", store.ErrEntityMismatch, err))
			continue
		}
		if hh := entity.HouseholdOf(c); hh != c.GetEntityId() {
			h := states[hh]
			switch {
			case h.state.ID == "":
				refuse(i, "household_id", fmt.Errorf("%w: household %s is not held by this server: push the household first", store.ErrEntityMismatch, hh))
				continue
			case h.state.Kind != rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD:
				refuse(i, "household_id", fmt.Errorf("%w: %s is a %s, not a household", store.ErrEntityMismatch, hh, entity.KindName(h.state.Kind)))
				continue
			case h.state.VillageCode != c.GetVillageCode():
				refuse(i, "village_code", fmt.Errorf("%w: %q is not the village of household %s (%q)", store.ErrEntityMismatch, c.GetVillageCode(), hh, h.state.VillageCode))
				continue
			}
		}
		if j, err := p.checkBase(ctx, w, st, m, inBatch); err != nil {
			return nil, nil, nil, err
		} else if j >= 0 {
			refuse(i, fmt.Sprintf("base[%d]", j), fmt.Errorf("%w: %s", store.ErrBaseUnknown, m.Base[j]))
			continue
		}
		if p.guard != nil {
			if v == nil {
				v = newView(w, states)
			}
			if err := p.guard.Check(ctx, c, v); err != nil {
				field, ok := guardRefusal(err)
				if !ok {
					return nil, nil, nil, err
				}
				refuse(i, field, err)
				continue
			}
		}
		if st.state.ID == "" {
			st.state.ID, st.state.Kind, st.state.HouseholdID, st.state.VillageCode = c.GetEntityId(), c.GetKind(), entity.HouseholdOf(c), c.GetVillageCode()
		}
		if st.state.ApplyMerge(*m) {
			st.dirty = true
			if f := st.state.Field(m.Field); f != nil && len(f.Heads) > entity.MaxHeads {
				refuse(i, "field", fmt.Errorf("%w: %s would hold %d concurrent values, over the limit of %d: resolve its conflict first", store.ErrEntityTooLarge, m.Field, len(f.Heads), entity.MaxHeads))
				continue
			}
		}
		st.last = i
		inBatch[key] = i
	}
	return states, ids, refused, nil
}

// checkBase returns the index of the first base stamp of m that names no
// change to m's field held here (-1 if all do): one earlier in the batch, a
// current head of the field, or, failing both, one in the log. The log is
// only read for a base naming a value since superseded.
func (p *push) checkBase(ctx context.Context, w *writer, st *pending, m *merge.Change, inBatch map[stampKey]int) (int, error) {
	f := st.state.Field(m.Field)
	for j, b := range m.Base {
		if _, ok := inBatch[stampKey{m.Entity, m.Field, b}]; ok {
			continue
		}
		if f != nil && slices.ContainsFunc(f.Heads, func(h merge.Head) bool { return h.Stamp == b }) {
			continue
		}
		var n int
		err := w.queryRow(ctx, baseSQL, b.Replica, uint64(b.HLC), m.Entity, m.Field).Scan(&n)
		if err != nil {
			return -1, fmt.Errorf("push: look up base %s: %w", b, err)
		}
		if n == 0 {
			return j, nil
		}
	}
	return -1, nil
}

// insertLog appends the fresh changes to the log with multi-row INSERTs,
// each with the log's running digest, and returns the log's last position.
func (p *push) insertLog(ctx context.Context, w *writer, fresh []int) (uint64, error) {
	var last uint64
	var chain int64
	err := w.queryRow(ctx, logEndSQL).Scan(&last, &chain)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("push: read the log's end: %w", err)
	}
	args := make([]any, 0, 8*rowsPerInsert)
	for start, n := range chunks(len(fresh)) {
		chunk := fresh[start : start+n]
		args = args[:0]
		for _, i := range chunk {
			c := p.changes[i]
			chain = int64(nextChain(uint64(chain), c.GetStamp().GetReplicaId(), c.GetSeq()))
			args = append(args, c.GetStamp().GetReplicaId(), c.GetSeq(), c.GetVillageCode(), c.GetEntityId(), p.payloads[i],
				c.GetStamp().GetHlc(), c.GetField(), chain)
		}
		if _, err := w.exec(ctx, insertChanges.sql(len(chunk)), args...); err != nil {
			return 0, fmt.Errorf("push: append %d changes to the log: %w", len(chunk), err)
		}
	}
	return last + uint64(len(fresh)), nil
}

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

func loadEntities(ctx context.Context, w *writer, ids []string, states map[string]*pending) error {
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
			return fmt.Errorf("push: read entities: %w", err)
		}
		for rows.Next() {
			var id string
			var b []byte
			if err := rows.Scan(&id, &b); err != nil {
				rows.Close()
				return fmt.Errorf("push: read entities: %w", err)
			}
			p := states[id]
			if err := p.state.UnmarshalBinary(b); err != nil {
				rows.Close()
				return fmt.Errorf("push: read entity %s: %w", id, err)
			}
			p.found = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("push: read entities: %w", err)
		}
	}
	return nil
}

func storeEntities(ctx context.Context, w *writer, ids []string, states map[string]*pending) error {
	dirty := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !states[id].dirty })
	args := make([]any, 0, 5*rowsPerInsert)
	var buf []byte
	for start, n := range chunks(len(dirty)) {
		chunk := dirty[start : start+n]
		args = args[:0]
		buf = buf[:0]
		offs := make([]int, 0, len(chunk)+1)
		var refused store.Refused
		for _, id := range chunk {
			var err error
			start := len(buf)
			offs = append(offs, start)
			if buf, err = states[id].state.AppendBinary(buf); err != nil {
				return fmt.Errorf("push: encode entity %s: %w", id, err)
			}
			if n := len(buf) - start; n > entity.MaxStateSize && len(refused) < maxRefused {
				refused = append(refused, &store.ChangeError{Index: states[id].last, Field: "value",
					Err: fmt.Errorf("%w: entity %s would be %d bytes, over the limit of %d", store.ErrEntityTooLarge, id, n, entity.MaxStateSize)})
			}
		}
		if len(refused) > 0 {
			return refused
		}
		offs = append(offs, len(buf))
		for j, id := range chunk {
			s := &states[id].state
			args = append(args, id, int64(s.Kind), s.HouseholdID, s.VillageCode, buf[offs[j]:offs[j+1]:offs[j+1]])
		}
		if _, err := w.exec(ctx, upsertEntities.sql(len(chunk)), args...); err != nil {
			return fmt.Errorf("push: write %d entities: %w", len(chunk), err)
		}
	}
	return nil
}

// writer is a push's transaction with the store's prepared statements.
type writer struct {
	tx    *sql.Tx
	stmts *stmtCache
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
	highSeqSQL     = "SELECT coalesce(max(origin_seq), 0) FROM changes WHERE origin = ?"
	storedRangeSQL = "SELECT origin_seq, payload FROM changes WHERE origin = ? AND origin_seq BETWEEN ? AND ?"
	baseSQL        = "SELECT count(*) FROM changes WHERE origin = ? AND hlc = ? AND entity_id = ? AND field = ?"
	logEndSQL      = "SELECT server_seq, chain FROM changes ORDER BY server_seq DESC LIMIT 1"
)

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
	insertChanges = newFamily(func(n int) string {
		return insertSQL("INSERT INTO changes (origin, origin_seq, village_code, entity_id, payload, hlc, field, chain) VALUES ", 8, n, "")
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
	qs := []string{highSeqSQL, storedRangeSQL, baseSQL, logEndSQL}
	for _, f := range []*family{insertChanges, upsertEntities, selectEntities} {
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
