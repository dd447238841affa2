package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rasoat/rasoat/internal/pgtest"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
)

func TestReportQueriesAgreeWithTheFacts(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.ReportSuite(t, func(fs []store.HouseholdFacts) error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return pgTx{tx}.PutFacts(ctx, fs) })
	}, func(q store.ReportQuery) (store.ReportRows, error) { return db.Report(ctx, q) })
}
