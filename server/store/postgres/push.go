package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rasoat/rasoat/internal/apply"
	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
)

// pushLock is the advisory lock every push holds for its transaction (see
// the package comment): the key is arbitrary, "rasoat" in ASCII.
const pushLock = 0x7261736f6174

// Push stores a batch of changes that have passed entity.Validate, all or
// nothing, durable when it returns nil, with the checks apply.Batch.Apply
// makes against what is stored, and a receipt saying who sent it.
func (db *DB) Push(ctx context.Context, by store.Sender, changes []*rasoatv1.Change) (store.PushResult, error) {
	b, err := apply.Prepare(by.Replica, changes)
	if err != nil {
		return store.PushResult{}, err
	}
	at := time.Now().Unix()
	var res store.PushResult
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(pushLock)); err != nil {
			return fmt.Errorf("push: take the push lock: %w", err)
		}
		var err error
		if res, err = b.Apply(ctx, pgTx{tx}, by.Guard, db.deriver()); err != nil {
			return err
		}
		if res.Accepted > 0 {
			if _, err := tx.Exec(ctx, "INSERT INTO receipts (last_seq, first_seq, replica, person_id, device_id, at) VALUES ($1, $2, $3, $4, $5, $6)",
				int64(res.ServerSeq), int64(res.ServerSeq)-int64(res.Accepted)+1, by.Replica, by.PersonID, by.DeviceID, at); err != nil {
				return fmt.Errorf("push: record who sent it: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return store.PushResult{}, classify(err)
	}
	return res, nil
}

// pgTx is apply.Tx over a push's transaction: each read and write is one
// round trip whatever the batch's size (arrays, COPY).
type pgTx struct{ tx pgx.Tx }

var _ apply.Tx = pgTx{}

func scanPayloads(rows pgx.Rows, err error, fn func(uint64, []byte)) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return err
		}
		fn(uint64(seq), b)
	}
	return rows.Err()
}

// i64 is v as PostgreSQL's bigint: seqs are at most 2^63-1 (entity.Validate)
// and stamps are milliseconds shifted by 16 bits, far below.
func i64(v uint64) int64 { return int64(v) }

func (t pgTx) StoredRange(ctx context.Context, origin string, lo, hi uint64, fn func(uint64, []byte)) error {
	rows, err := t.tx.Query(ctx, "SELECT origin_seq, payload FROM changes WHERE origin = $1 AND origin_seq BETWEEN $2 AND $3", origin, i64(lo), i64(hi))
	return scanPayloads(rows, err, fn)
}

func (t pgTx) StoredSeqs(ctx context.Context, origin string, seqs []uint64, fn func(uint64, []byte)) error {
	s := make([]int64, len(seqs))
	for i, v := range seqs {
		s[i] = i64(v)
	}
	rows, err := t.tx.Query(ctx, "SELECT origin_seq, payload FROM changes WHERE origin = $1 AND origin_seq = ANY($2)", origin, s)
	return scanPayloads(rows, err, fn)
}

func (t pgTx) ReplicaHighSeq(ctx context.Context, replica string) (uint64, error) {
	var n int64
	err := t.tx.QueryRow(ctx, "SELECT coalesce(max(origin_seq), 0) FROM changes WHERE origin = $1", replica).Scan(&n)
	return uint64(n), err
}

func (t pgTx) NextStamp(ctx context.Context, origin string, seq uint64) (uint64, bool, error) {
	var h int64
	err := t.tx.QueryRow(ctx, "SELECT hlc FROM changes WHERE origin = $1 AND origin_seq > $2 ORDER BY origin_seq LIMIT 1", origin, int64(seq)).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return uint64(h), err == nil, err
}

// BaseStored is apply.Tx's: superseded, then the change's row for its
// entity and field.
func (t pgTx) BaseStored(ctx context.Context, b merge.Stamp, entity, field string) (bool, error) {
	var ok bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM superseded s
JOIN changes c ON c.origin = s.origin AND c.origin_seq = s.origin_seq
WHERE s.origin = $1 AND s.hlc = $2 AND c.entity_id = $3 AND c.field = $4)`,
		b.Replica, i64(uint64(b.HLC)), entity, field).Scan(&ok)
	return ok, err
}

// PutDropped is apply.Tx's: one statement from arrays. A change recorded
// twice (the log's changes before migration 5 are all recorded) is kept
// once.
func (t pgTx) PutDropped(ctx context.Context, dropped []apply.Dropped) error {
	origins, hlcs, seqs := make([]string, len(dropped)), make([]int64, len(dropped)), make([]int64, len(dropped))
	for i, d := range dropped {
		origins[i], hlcs[i], seqs[i] = d.Stamp.Replica, i64(uint64(d.Stamp.HLC)), i64(d.Seq)
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO superseded (origin, hlc, origin_seq)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) ON CONFLICT DO NOTHING`, origins, hlcs, seqs)
	return err
}

func (t pgTx) LogEnd(ctx context.Context) (uint64, uint64, error) {
	var seq, chain int64
	err := t.tx.QueryRow(ctx, "SELECT server_seq, chain FROM changes ORDER BY server_seq DESC LIMIT 1").Scan(&seq, &chain)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, nil
	}
	return uint64(seq), uint64(chain), err
}

var logColumns = []string{"server_seq", "origin", "origin_seq", "village_code", "entity_id", "payload", "hlc", "field", "chain"}

// AppendLog copies the rows in (COPY: one stream, no statement per row).
func (t pgTx) AppendLog(ctx context.Context, rows []apply.LogRow) error {
	_, err := t.tx.CopyFrom(ctx, pgx.Identifier{"changes"}, logColumns, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := &rows[i]
		c := r.Change
		return []any{i64(r.Seq), c.GetStamp().GetReplicaId(), i64(c.GetSeq()), c.GetVillageCode(), c.GetEntityId(), r.Payload,
			i64(c.GetStamp().GetHlc()), c.GetField(), int64(r.Chain)}, nil
	}))
	return err
}

func (t pgTx) LoadEntities(ctx context.Context, ids []string, fn func(string, []byte) error) error {
	rows, err := t.tx.Query(ctx, "SELECT id, state FROM entities WHERE id = ANY($1)", ids)
	if err != nil {
		return fmt.Errorf("read entities: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return fmt.Errorf("read entities: %w", err)
		}
		if err := fn(id, b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PutEntities upserts the rows from arrays: one statement for the batch.
func (t pgTx) PutEntities(ctx context.Context, rows []apply.Row) error {
	ids, hhs, villages, states := make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows)), make([][]byte, len(rows))
	kinds := make([]int16, len(rows))
	for i, r := range rows {
		ids[i], hhs[i], villages[i], states[i], kinds[i] = r.ID, r.HouseholdID, r.VillageCode, r.State, int16(r.Kind)
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO entities (id, kind, household_id, village_code, state)
SELECT * FROM unnest($1::text[], $2::smallint[], $3::text[], $4::text[], $5::bytea[])
ON CONFLICT (id) DO UPDATE SET state = excluded.state`, ids, kinds, hhs, villages, states)
	return err
}

func (t pgTx) Entity(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := t.tx.QueryRow(ctx, "SELECT state FROM entities WHERE id = $1", id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return b, err
}

func (t pgTx) Household(ctx context.Context, hh string, fn func([]byte) error) error {
	rows, err := t.tx.Query(ctx, "SELECT state FROM entities WHERE household_id = $1", hh)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (t pgTx) PersonOf(ctx context.Context, replica string) (string, error) {
	var p string
	err := t.tx.QueryRow(ctx, "SELECT person_id FROM replicas WHERE replica_id = $1", replica).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return p, err
}
