package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/facts"
)

// Flags reads the quality flags of q's villages' households (facts.FlagsSQL
// and facts.DuplicatesSQL), in one repeatable-read transaction.
func (db *DB) Flags(ctx context.Context, q store.FlagsQuery) ([]store.FlagRow, error) {
	if q.Villages.Empty() {
		return nil, nil
	}
	where := ""
	var args []any
	if q.ListYear != 0 {
		args = append(args, int32(q.ListYear))
	}
	if !q.Villages.All() {
		where = inVillages
		args = append(args, q.Villages.Codes())
	}
	var out []store.FlagRow
	var dups []facts.Duplicate
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, facts.Rebind(facts.FlagsSQL(where, q.ListYear != 0)), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r store.FlagRow
			var acked int32
			if err := rows.Scan(&r.HouseholdID, &r.HeadName, &r.Village, &r.Code, &r.Detail, &acked, &r.Comment); err != nil {
				rows.Close()
				return err
			}
			r.Acked = acked == 1
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, facts.Rebind(facts.DuplicatesSQL(where, q.ListYear != 0)), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d facts.Duplicate
			var acked int32
			if err := rows.Scan(&d.HouseholdID, &d.HeadName, &d.Village, &d.FullName, &d.BirthDate, &d.OtherHousehold, &d.OtherVillage, &d.OtherHead, &acked, &d.Comment); err != nil {
				return err
			}
			d.Acked = acked == 1
			dups = append(dups, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("quality flags: %w", err)
	}
	return facts.WithDuplicates(out, dups, q.Villages), nil
}
