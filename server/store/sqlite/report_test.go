package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
)

func TestReportQueriesAgreeWithTheFacts(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rasoat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.ReportSuite(t, func(fs []store.HouseholdFacts) error { return db.PutFacts(t.Context(), fs) },
		func(q store.ReportQuery) (store.ReportRows, error) { return db.Report(t.Context(), q) })
}
