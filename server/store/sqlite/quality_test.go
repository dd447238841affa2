package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
)

func TestQualityQueriesAgreeWithTheFacts(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rasoat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.QualitySuite(t, func(fs []store.HouseholdFacts) error { return db.PutFacts(ctx, fs) },
		func(q store.FlagsQuery) ([]store.FlagRow, error) { return db.Flags(ctx, q) },
		func(hh string) ([]store.DecidedFact, error) { return db.DecidedFacts(ctx, hh) },
		func(hh string, keys []string) ([]store.PersonMatch, error) { return db.SamePeople(ctx, hh, keys) })
}
