package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// The engine-independent behaviour of the store (push, duplicates, bases,
// pull, snapshots, the log id, reopening) is pinned by the conformance
// suite (conformance_test.go); the tests here are SQLite's own.

func open(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSchemaVersionIsSet(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	v, err := db.Version(context.Background())
	if err != nil || v != sqlite.SchemaVersion {
		t.Fatalf("Version = %d, %v; want %d", v, err, sqlite.SchemaVersion)
	}
}

// TestEntityIsTheSnapshotsState: Entity (the admin service's read of one
// entity) gives the state Snapshot gives, and ok false for an unknown id.
func TestEntityIsTheSnapshotsState(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "rasoat.db"))
	changes := storetest.Must(storetest.New("tab-a", "001").Household(2))
	if _, err := db.Push(ctx, store.Sender{Replica: "tab-a"}, changes); err != nil {
		t.Fatal(err)
	}
	n := 0
	if _, err := db.Snapshot(ctx, store.SnapshotQuery{Villages: store.AllVillages()}, func(_ store.Position, e *rasoatv1.EntityState) error {
		n++
		s, ok, err := db.Entity(ctx, e.EntityId)
		if err != nil || !ok {
			return fmt.Errorf("Entity(%s) = %v, %v", e.EntityId, ok, err)
		}
		if b, _ := s.MarshalBinary(); !bytes.Equal(b, e.State) {
			return fmt.Errorf("Entity(%s) differs from the snapshot's state", e.EntityId)
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("snapshot of %d entities: %v; want 3", n, err)
	}
	if _, ok, err := db.Entity(ctx, uuid.Must(uuid.NewV7()).String()); ok || err != nil {
		t.Fatalf("Entity of an unknown id = %v, %v; want false, nil", ok, err)
	}
}
