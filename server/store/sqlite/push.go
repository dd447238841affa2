package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/protobuf/proto"
)

// rowsPerInsert is how many rows one multi-row INSERT writes. One statement
// per row costs a round trip through database/sql and the VDBE per row;
// a few hundred rows per statement amortise that while staying far below
// SQLite's 32,766 bound variables.
const rowsPerInsert = 400

// Push stores a batch of changes that have passed entity.Validate, in one
// transaction: all or nothing, durable when it returns nil. A change whose
// origin (stamp.replica_id, seq) is already stored — or earlier in the same
// batch — is skipped and counted as a duplicate. Each entity the new changes
// touch is read once, merged and written once.
//
// A change whose kind, household or village differs from its entity's
// stored (or earlier in the batch) identity fails the whole batch with a
// *store.ChangeError naming its index. replica is the pushing replica (a
// tablet or a commune server), not necessarily the changes' origin; it is
// not stored yet.
func (db *DB) Push(ctx context.Context, replica string, changes []*rasoatv1.Change) (store.PushResult, error) {
	res, err := db.push(ctx, changes)
	return res, classify(err)
}

func (db *DB) push(ctx context.Context, changes []*rasoatv1.Change) (res store.PushResult, err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("push: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()

	fresh, err := newChanges(ctx, tx, changes)
	if err != nil {
		return res, err
	}
	res.Accepted = len(fresh)
	res.Duplicates = len(changes) - len(fresh)

	if err := insertLog(ctx, tx, changes, fresh); err != nil {
		return res, err
	}
	if err := mergeEntities(ctx, tx, changes, fresh); err != nil {
		return res, err
	}
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(server_seq), 0) FROM changes").Scan(&res.ServerSeq); err != nil {
		return res, fmt.Errorf("push: read log position: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("push: commit: %w", err)
	}
	return res, nil
}

type originKey struct {
	origin string
	seq    uint64
}

// newChanges returns the indexes of the changes not yet stored, in batch
// order, skipping repeats within the batch. It reads the log once per origin
// replica in the batch, over the range of that origin's sequence numbers:
// a tablet's batch is usually one origin with consecutive numbers, so a new
// batch costs one index probe that finds nothing.
func newChanges(ctx context.Context, tx *sql.Tx, changes []*rasoatv1.Change) ([]int, error) {
	type span struct{ lo, hi uint64 }
	spans := map[string]*span{}
	var origins []string
	for _, c := range changes {
		o, s := c.GetStamp().GetReplicaId(), c.GetSeq()
		sp := spans[o]
		if sp == nil {
			spans[o] = &span{s, s}
			origins = append(origins, o)
			continue
		}
		sp.lo, sp.hi = min(sp.lo, s), max(sp.hi, s)
	}
	stored := map[originKey]bool{}
	for _, o := range origins {
		sp := spans[o]
		rows, err := tx.QueryContext(ctx, "SELECT origin_seq FROM changes WHERE origin = ? AND origin_seq BETWEEN ? AND ?", o, sp.lo, sp.hi)
		if err != nil {
			return nil, fmt.Errorf("push: look up stored changes of %s: %w", o, err)
		}
		for rows.Next() {
			var s uint64
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return nil, fmt.Errorf("push: look up stored changes of %s: %w", o, err)
			}
			stored[originKey{o, s}] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("push: look up stored changes of %s: %w", o, err)
		}
	}
	fresh := make([]int, 0, len(changes))
	for i, c := range changes {
		k := originKey{c.GetStamp().GetReplicaId(), c.GetSeq()}
		if stored[k] {
			continue
		}
		stored[k] = true // a repeat later in the batch is a duplicate
		fresh = append(fresh, i)
	}
	return fresh, nil
}

var marshal = proto.MarshalOptions{Deterministic: true}

// insertLog appends the fresh changes to the log with multi-row INSERTs.
func insertLog(ctx context.Context, tx *sql.Tx, changes []*rasoatv1.Change, fresh []int) error {
	const cols = 5
	args := make([]any, 0, cols*rowsPerInsert)
	var buf []byte
	for start := 0; start < len(fresh); start += rowsPerInsert {
		chunk := fresh[start:min(start+rowsPerInsert, len(fresh))]
		args = args[:0]
		// One buffer per chunk holds every payload: the driver binds each
		// blob before the next statement, so they may share an array.
		buf = buf[:0]
		offs := make([]int, 0, len(chunk)+1)
		for _, i := range chunk {
			var err error
			offs = append(offs, len(buf))
			buf, err = marshal.MarshalAppend(buf, changes[i])
			if err != nil {
				return fmt.Errorf("push: encode changes[%d]: %w", i, err)
			}
		}
		offs = append(offs, len(buf))
		for j, i := range chunk {
			c := changes[i]
			args = append(args, c.GetStamp().GetReplicaId(), c.GetSeq(), c.GetVillageCode(), c.GetEntityId(), buf[offs[j]:offs[j+1]:offs[j+1]])
		}
		q := insertSQL("INSERT INTO changes (origin, origin_seq, village_code, entity_id, payload) VALUES ", cols, len(chunk), "")
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("push: append %d changes to the log: %w", len(chunk), err)
		}
	}
	return nil
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

type pending struct {
	state entity.State
	dirty bool
	found bool
}

// mergeEntities reads each entity the fresh changes touch once, applies the
// changes and writes each changed entity once.
func mergeEntities(ctx context.Context, tx *sql.Tx, changes []*rasoatv1.Change, fresh []int) error {
	states := map[string]*pending{}
	var ids []string
	for _, i := range fresh {
		id := changes[i].GetEntityId()
		if states[id] == nil {
			states[id] = &pending{}
			ids = append(ids, id)
		}
	}
	if err := loadEntities(ctx, tx, ids, states); err != nil {
		return err
	}
	for _, i := range fresh {
		c := changes[i]
		p := states[c.GetEntityId()]
		if err := p.state.Check(c); err != nil {
			var fe *entity.FieldError
			field := "entity_id"
			if errors.As(err, &fe) {
				field = fe.Field
			}
			return &store.ChangeError{Index: i, Field: field, Err: err}
		}
		if p.state.ID == "" {
			p.state.ID, p.state.Kind, p.state.HouseholdID, p.state.VillageCode = c.GetEntityId(), c.GetKind(), entity.HouseholdOf(c), c.GetVillageCode()
		}
		if p.state.ApplyMerge(entity.MergeOf(c)) {
			p.dirty = true
		}
	}
	return storeEntities(ctx, tx, ids, states)
}

func loadEntities(ctx context.Context, tx *sql.Tx, ids []string, states map[string]*pending) error {
	args := make([]any, 0, rowsPerInsert)
	for start := 0; start < len(ids); start += rowsPerInsert {
		chunk := ids[start:min(start+rowsPerInsert, len(ids))]
		args = args[:0]
		for _, id := range chunk {
			args = append(args, id)
		}
		q := insertSQL("SELECT id, state FROM entities WHERE id IN (", 1, len(chunk), ")")
		q = strings.ReplaceAll(q, "(?)", "?")
		rows, err := tx.QueryContext(ctx, q, args...)
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

func storeEntities(ctx context.Context, tx *sql.Tx, ids []string, states map[string]*pending) error {
	const cols = 5
	dirty := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !states[id].dirty })
	args := make([]any, 0, cols*rowsPerInsert)
	var buf []byte
	for start := 0; start < len(dirty); start += rowsPerInsert {
		chunk := dirty[start:min(start+rowsPerInsert, len(dirty))]
		args = args[:0]
		buf = buf[:0]
		offs := make([]int, 0, len(chunk)+1)
		for _, id := range chunk {
			var err error
			offs = append(offs, len(buf))
			if buf, err = states[id].state.AppendBinary(buf); err != nil {
				return fmt.Errorf("push: encode entity %s: %w", id, err)
			}
		}
		offs = append(offs, len(buf))
		for j, id := range chunk {
			s := &states[id].state
			args = append(args, id, int64(s.Kind), s.HouseholdID, s.VillageCode, buf[offs[j]:offs[j+1]:offs[j+1]])
		}
		q := insertSQL("INSERT INTO entities (id, kind, household_id, village_code, state) VALUES ", cols, len(chunk),
			" ON CONFLICT (id) DO UPDATE SET state = excluded.state")
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("push: write %d entities: %w", len(chunk), err)
		}
	}
	return nil
}
