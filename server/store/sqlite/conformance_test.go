package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest/conformance"
)

// TestConformance runs the store conformance suite on SQLite: each store a
// file of its own, reopened by closing it and opening the file again.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) (conformance.Store, func(t *testing.T) conformance.Store) {
		path := filepath.Join(t.TempDir(), "rasoat.db")
		db, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, func(t *testing.T) conformance.Store {
			if err := db.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if db, err = sqlite.Open(t.Context(), path); err != nil {
				t.Fatalf("reopen: %v", err)
			}
			return db
		}
	})
}
