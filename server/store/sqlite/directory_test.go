package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/rasoat/rasoat/server/directory/directorytest"
	"github.com/rasoat/rasoat/server/store/sqlite"
)

func TestDirectoryConformance(t *testing.T) {
	directorytest.Run(t, func(t *testing.T) directorytest.Store {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rasoat.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
