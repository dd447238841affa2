package postgres_test

import (
	"testing"

	"github.com/rasoat/rasoat/internal/pgtest"
	"github.com/rasoat/rasoat/server/directory/directorytest"
	"github.com/rasoat/rasoat/server/store/postgres"
	"github.com/rasoat/rasoat/server/store/storetest/conformance"
)

// open opens a store on a database of t's own.
func open(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestConformance runs the store conformance suite on PostgreSQL: each
// store a database of its own, reopened by closing the pool and connecting
// again.
func TestConformance(t *testing.T) {
	pgtest.URL(t) // skips without a server
	conformance.Run(t, func(t *testing.T) (conformance.Store, func(t *testing.T) conformance.Store) {
		url := pgtest.URL(t)
		db := open(t, url)
		t.Cleanup(func() { db.Close() })
		return db, func(t *testing.T) conformance.Store {
			db.Close()
			db = open(t, url)
			return db
		}
	})
}

// TestDirectory runs the directory conformance suite on PostgreSQL.
func TestDirectory(t *testing.T) {
	pgtest.URL(t)
	directorytest.Run(t, func(t *testing.T) directorytest.Store {
		db := open(t, pgtest.URL(t))
		t.Cleanup(func() { db.Close() })
		return db
	})
}
