package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rasoat/rasoat/internal/pgtest"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
)

func TestQualityQueriesAgreeWithTheFacts(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inTx := func(fn func(pgTx) error) error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return fn(pgTx{tx}) })
	}
	storetest.QualitySuite(t, func(fs []store.HouseholdFacts) error {
		return inTx(func(tx pgTx) error { return tx.PutFacts(ctx, fs) })
	}, func(q store.FlagsQuery) ([]store.FlagRow, error) { return db.Flags(ctx, q) },
		func(hh string) (out []store.DecidedFact, err error) {
			err = inTx(func(tx pgTx) error { out, err = tx.Decided(ctx, hh); return err })
			return out, err
		}, func(hh string, keys []string) (out []store.PersonMatch, err error) {
			err = inTx(func(tx pgTx) error { out, err = tx.SamePeople(ctx, hh, keys); return err })
			return out, err
		})
}
