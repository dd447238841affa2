package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/sqlitedb"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/directory/directorytest"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
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

type guardFunc func(context.Context, *rasoatv1.Change, store.View) error

func (f guardFunc) Check(ctx context.Context, c *rasoatv1.Change, v store.View) error {
	return f(ctx, c, v)
}

// TestATouchNeverWaitsForTheWriter: TouchDevice returns at once while a
// push holds the writer's transaction open, its time shows in reads at
// once, and the committer writes it to the file: in a group of its own
// when no push follows, and at Close.
func TestATouchNeverWaitsForTheWriter(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "rasoat.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	if _, _, err := db.PutPeople(ctx, []directory.Person{authtest.Collaborator("col1", "001")}); err != nil {
		t.Fatal(err)
	}
	code, tok := auth.NewCode(), auth.NewToken()
	if err := db.IssueCode(ctx, directory.Code{ID: code.ID, Hash: code.Hash, PersonID: "col1", ExpiresAt: time.Now().Add(time.Hour), Attempts: directory.CodeAttempts}); err != nil {
		t.Fatal(err)
	}
	e, err := db.Enrol(ctx, directory.Enrolment{CodeID: code.ID, CodeHash: code.Hash, DeviceID: "dev-1", DeviceName: "tablet",
		TokenID: tok.ID, TokenHash: tok.Hash, Replica: "tab-a", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	stored := func() time.Time {
		t.Helper()
		ro, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(path, sqlitedb.Options{ReadOnly: true}))
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		var s int64
		if err := ro.QueryRow("SELECT last_seen FROM devices WHERE id = ?", e.Device.ID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return time.Unix(s, 0)
	}

	var once sync.Once
	held, release := make(chan struct{}), make(chan struct{})
	let := sync.OnceFunc(func() { close(release) })
	defer let() // before Close: a failed check must not leave the push held
	hold := guardFunc(func(context.Context, *rasoatv1.Change, store.View) error {
		once.Do(func() { close(held); <-release })
		return nil
	})
	pushed := make(chan error, 1)
	go func() {
		_, err := db.Push(ctx, store.Sender{Replica: "tab-a", Guard: hold}, storetest.Must(storetest.New("tab-a", "001").Household(1)))
		pushed <- err
	}()
	<-held
	at := time.Unix(time.Now().Unix()+60, 0)
	tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := db.TouchDevice(tctx, e.Device.ID, at); err != nil {
		t.Fatalf("a touch while a push holds the writer: %v", err)
	}
	if devs, err := db.Devices(ctx, "col1"); err != nil || len(devs) != 1 || !devs[0].LastSeen.Equal(at) {
		t.Fatalf("Devices after the touch = %+v, %v; want last seen %v", devs, err, at)
	}
	let()
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	// No push follows: the committer, nudged by the touch, writes it.
	deadline := time.Now().Add(10 * time.Second)
	for !stored().Equal(at) {
		if time.Now().After(deadline) {
			t.Fatalf("the file's last seen is %v 10 s after the touch, want %v", stored(), at)
		}
		time.Sleep(10 * time.Millisecond)
	}
	later := at.Add(time.Hour)
	if err := db.TouchDevice(ctx, e.Device.ID, later); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := stored(); !got.Equal(later) {
		t.Fatalf("after Close the file's last seen is %v, want %v", got, later)
	}
}
