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

// heldPush starts a push of a household by replica that its guard holds
// inside the committer's transaction. held returns once the push is held;
// release lets it finish and returns its error (also at the test's end,
// before the store closes).
func heldPush(t *testing.T, db *sqlite.DB, replica string) (held func(), release func() error) {
	h, let := make(chan struct{}), make(chan struct{})
	var once sync.Once
	guard := guardFunc(func(context.Context, *rasoatv1.Change, store.View) error {
		once.Do(func() { close(h); <-let })
		return nil
	})
	pushed := make(chan error, 1)
	go func() {
		_, err := db.Push(context.Background(), store.Sender{Replica: replica, Guard: guard}, storetest.Must(storetest.New(replica, "001").Household(1)))
		pushed <- err
	}()
	var (
		done sync.Once
		err  error
	)
	release = func() error {
		done.Do(func() { close(let); err = <-pushed })
		return err
	}
	t.Cleanup(func() { release() })
	return func() { <-h }, release
}

// TestATouchNeverWaitsForTheWriter: TouchDevice returns at once while a
// push holds the writer's transaction open, its time shows in reads at
// once, and the committer writes it to the file: in a group of its own
// when no push follows, and at Close.
func TestATouchNeverWaitsForTheWriter(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "rasoat.db")
	db := open(t, path)
	dev, _ := enrolDevice(t, db)
	held, release := heldPush(t, db, "tab-a")
	held()
	at := time.Unix(time.Now().Unix()+60, 0)
	tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := db.TouchDevice(tctx, dev.ID, at); err != nil {
		t.Fatalf("a touch while a push holds the writer: %v", err)
	}
	if devs, err := db.Devices(ctx, "col1"); err != nil || len(devs) != 1 || !devs[0].LastSeen.Equal(at) {
		t.Fatalf("Devices after the touch = %+v, %v; want last seen %v", devs, err, at)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	// No push follows: the committer, nudged by the touch, writes it.
	deadline := time.Now().Add(10 * time.Second)
	for !storedLastSeen(t, path, dev.ID).Equal(at) {
		if time.Now().After(deadline) {
			t.Fatalf("the file's last seen is %v 10 s after the touch, want %v", storedLastSeen(t, path, dev.ID), at)
		}
		time.Sleep(10 * time.Millisecond)
	}
	later := at.Add(time.Hour)
	if err := db.TouchDevice(ctx, dev.ID, later); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := storedLastSeen(t, path, dev.ID); !got.Equal(later) {
		t.Fatalf("after Close the file's last seen is %v, want %v", got, later)
	}
}

// TestATouchShowsWhileItsGroupRuns: a touch shows in reads while the group
// writing it runs (its prelude took the time, its pushes are not done),
// and DeviceByToken does not cache the time before it. A review found
// both reading the old time then, and the cache keeping it.
func TestATouchShowsWhileItsGroupRuns(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "rasoat.db")
	db := open(t, path)
	dev, tokID := enrolDevice(t, db)
	held1, release1 := heldPush(t, db, "tab-a")
	held1()
	at := time.Unix(time.Now().Unix()+600, 0)
	if err := db.TouchDevice(ctx, dev.ID, at); err != nil { // its nudge queues behind push 1
		t.Fatal(err)
	}
	// The next group: the touch's time (its prelude) and push 2, held.
	held2, release2 := heldPush(t, db, "tab-b")
	time.Sleep(200 * time.Millisecond) // push 2 queued
	if err := release1(); err != nil {
		t.Fatal(err)
	}
	held2()
	devs, err := db.Devices(ctx, "col1")
	if err != nil || !devs[0].LastSeen.Equal(at) {
		t.Errorf("Devices while the touch's group runs: %+v, %v; want last seen %v", devs, err, at)
	}
	if d, _, err := db.DeviceByToken(ctx, tokID); err != nil || !d.LastSeen.Equal(at) {
		t.Errorf("DeviceByToken while the touch's group runs: last seen %v, %v; want %v", d.LastSeen, err, at)
	}
	if err := release2(); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := db.DeviceByToken(ctx, tokID); !d.LastSeen.Equal(at) {
		t.Errorf("DeviceByToken once the group committed: last seen %v, want %v (file: %v)", d.LastSeen, at, storedLastSeen(t, path, dev.ID))
	}
}

// TestATouchDuringCloseIsWritten: a touch that returns nil while Close
// waits for the group in flight is written (the committer may drain its
// nudge rather than run it: Close writes what waits once the committer
// stopped). A race, so tried 30 times; it failed most runs before the fix.
func TestATouchDuringCloseIsWritten(t *testing.T) {
	for i := range 30 {
		path := filepath.Join(t.TempDir(), "rasoat.db")
		db := open(t, path)
		dev, _ := enrolDevice(t, db)
		held, release := heldPush(t, db, "tab-a")
		held()
		closed := make(chan error, 1)
		go func() { closed <- db.Close() }()
		time.Sleep(100 * time.Millisecond) // Close waits for the group
		at := time.Unix(time.Now().Unix()+600, 0)
		terr := db.TouchDevice(context.Background(), dev.ID, at)
		if err := release(); err != nil {
			t.Fatal(err)
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if got := storedLastSeen(t, path, dev.ID); terr == nil && !got.Equal(at) {
			t.Fatalf("round %d: TouchDevice during Close returned nil, but the file's last seen is %v, want %v", i, got, at)
		}
	}
}

// TestATouchAfterCloseFails: a touch after Close fails, as the closed
// writer made it fail, rather than waiting for a group that never runs.
func TestATouchAfterCloseFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rasoat.db")
	db := open(t, path)
	dev, _ := enrolDevice(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(time.Now().Unix()+600, 0)
	if err := db.TouchDevice(context.Background(), dev.ID, at); err == nil {
		t.Fatalf("TouchDevice after Close = nil; the file's last seen stays %v (want an error, or %v)", storedLastSeen(t, path, dev.ID), at)
	}
}

// enrolDevice makes person col1 and device dev-1 in db, and returns the
// device and its token id.
func enrolDevice(t *testing.T, db *sqlite.DB) (directory.Device, string) {
	t.Helper()
	ctx := t.Context()
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
	return e.Device, tok.ID
}

// storedLastSeen reads device id's last-seen time from the file at path,
// through a read-only connection of its own.
func storedLastSeen(t *testing.T, path, id string) time.Time {
	t.Helper()
	ro, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(path, sqlitedb.Options{ReadOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var s int64
	if err := ro.QueryRow("SELECT last_seen FROM devices WHERE id = ?", id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return time.Unix(s, 0)
}
