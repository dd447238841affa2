package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/facts"
)

// Flags reads the quality flags of q's villages' households (facts.FlagsSQL
// and facts.DuplicatesSQL), in one read transaction.
func (db *DB) Flags(ctx context.Context, q store.FlagsQuery) ([]store.FlagRow, error) {
	if q.Villages.Empty() {
		return nil, nil
	}
	where, vargs := "", []any{}
	if !q.Villages.All() {
		codes := q.Villages.Codes()
		where = "village_code IN (?" + strings.Repeat(",?", len(codes)-1) + ")"
		for _, c := range codes {
			vargs = append(vargs, c)
		}
	}
	args := vargs
	if q.ListYear != 0 {
		args = append([]any{q.ListYear}, vargs...)
	}
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("quality flags: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	var out []store.FlagRow
	var dups []facts.Duplicate
	err = func() error {
		rows, err := tx.QueryContext(ctx, facts.FlagsSQL(where, q.ListYear != 0), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r store.FlagRow
			var acked int
			if err := rows.Scan(&r.HouseholdID, &r.HeadName, &r.Village, &r.Code, &r.Detail, &acked, &r.Comment); err != nil {
				return err
			}
			r.Acked = acked == 1
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, facts.DuplicatesSQL(where, q.ListYear != 0), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d facts.Duplicate
			var acked int
			if err := rows.Scan(&d.HouseholdID, &d.HeadName, &d.Village, &d.FullName, &d.BirthDate, &d.OtherHousehold, &d.OtherVillage, &d.OtherHead, &acked, &d.Comment); err != nil {
				return err
			}
			d.Acked = acked == 1
			dups = append(dups, d)
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("quality flags: %w", err)
	}
	return facts.WithDuplicates(out, dups, q.Villages), nil
}
