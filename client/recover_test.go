package client

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/syncsvc"
)

// restoreFile copies a closed SQLite file over another (its WAL was
// checkpointed at close), as a collaborator restoring a backup would.
func restoreFile(t *testing.T, from, to string) {
	t.Helper()
	copyFile(t, from, to)
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(to + suffix)
	}
}

func TestRestoredTabletMovesToAFreshReplicaIDAndLosesNothing(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	dir := t.TempDir()
	path, backup := filepath.Join(dir, "tablet.db"), filepath.Join(dir, "backup.db")

	a := open(t, path)
	id := fill(t, a, 1, 2)[0]
	syncOK(t, a, srv)
	original := a.ReplicaID()
	a.Close()
	restoreFile(t, path, backup) // the collaborator's backup

	a = open(t, path)
	if err := a.SetField(ctx, id, "headName", []byte(`"Written after the backup"`)); err != nil {
		t.Fatal(err)
	}
	syncOK(t, a, srv) // acknowledged: the server must keep it
	a.Close()

	restoreFile(t, backup, path) // the tablet is restored from the backup
	a = open(t, path)
	if err := a.SetField(ctx, id, "address", []byte(`"Written after the restore"`)); err != nil {
		t.Fatal(err)
	}
	st := syncOK(t, a, srv)
	if st.Reissued != 1 {
		t.Fatalf("sync after the restore = %+v, want 1 change issued again", st)
	}
	if a.ReplicaID() == original {
		t.Fatal("the restored tablet still writes under its old replica id")
	}
	// Its old id is still its own.
	a.Close()
	a = open(t, path, WithReplicaID(original))

	// Every write reached the server, each once, and both show on another
	// tablet.
	b := tablet(t)
	syncOK(t, b, srv)
	h := household(t, b, id)
	if h.GetHeadName() != "Written after the backup" || h.GetAddress() != "Written after the restore" {
		t.Fatalf("another tablet holds head name %q, address %q", h.GetHeadName(), h.GetAddress())
	}
	seen := map[[2]any]int{}
	for _, c := range srv.log(t) {
		seen[[2]any{c.GetStamp().GetReplicaId(), c.GetSeq()}]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("change %v stored %d times", k, n)
		}
	}
	syncOK(t, a, srv)
	sameStates(t, a, b)
}

// scopeRefusing refuses writes to some villages: a collaborator whose
// village was reassigned while offline.
type scopeRefusing struct{ villages []string }

func (s *scopeRefusing) Writer(_ context.Context, req *rasoatv1.PushRequest) (store.Sender, func(*rasoatv1.Change) error, error) {
	return store.Sender{Replica: req.GetReplicaId()}, s.checkWrite, nil
}

func (s *scopeRefusing) checkWrite(c *rasoatv1.Change) error {
	if slices.Contains(s.villages, c.GetVillageCode()) {
		return errors.New("village " + c.GetVillageCode() + " is not assigned to this collaborator")
	}
	return nil
}

func (s *scopeRefusing) Villages(_ context.Context, _ string, requested []string) (store.Villages, error) {
	if len(requested) == 0 {
		return store.AllVillages(), nil
	}
	return store.OnlyVillages(requested...), nil
}

func TestChangeRefusedForGoodIsSetAsideAndTheRestSyncs(t *testing.T) {
	ctx := context.Background()
	scope := &scopeRefusing{villages: []string{"002"}}
	srv := newServer(t, syncsvc.WithScope(scope))
	a := tablet(t)
	kept, err := a.CreateHousehold(ctx, "001", fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	moved, err := a.CreateHousehold(ctx, "002", fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetField(ctx, kept, "address", []byte(`"Bản Mới"`)); err != nil {
		t.Fatal(err)
	}

	st := syncOK(t, a, srv)
	refused, err := a.Refused(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Refused == 0 || len(refused) != st.Refused {
		t.Fatalf("sync = %+v, refused listed: %d", st, len(refused))
	}
	for _, r := range refused {
		if r.Reason != "OUT_OF_SCOPE" || r.Description == "" {
			t.Errorf("refused change %d: reason %q, description %q", r.Seq, r.Reason, r.Description)
		}
		if r.EntityID == kept {
			t.Errorf("a change of the household still in scope was set aside: %+v", r)
		}
	}
	if n, _ := a.Pending(ctx); n != 0 {
		t.Fatalf("%d changes still pending: the refused ones block the outbox", n)
	}
	b := tablet(t)
	syncOK(t, b, srv)
	if household(t, b, kept).GetAddress() != "Bản Mới" {
		t.Fatal("the change behind the refused ones did not reach the server")
	}

	// Retried while still out of scope: set aside again, nothing lost.
	for _, r := range refused {
		if err := a.Retry(ctx, r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if again := syncOK(t, a, srv); again.Refused != len(refused) {
		t.Fatalf("retry while still refused = %+v, want %d set aside again", again, len(refused))
	}

	// The village assigned again: a retry goes through.
	scope.villages = nil
	for _, r := range refused {
		if err := a.Retry(ctx, r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if st := syncOK(t, a, srv); st.Pushed != len(refused) {
		t.Fatalf("retry once in scope = %+v, want %d pushed", st, len(refused))
	}
	syncOK(t, b, srv)
	household(t, b, moved)
	if left, _ := a.Refused(ctx); len(left) != 0 {
		t.Fatalf("%d changes still set aside", len(left))
	}
}

func TestDiscardedChangeStopsShowingAfterTheNextSync(t *testing.T) {
	ctx := context.Background()
	scope := &scopeRefusing{}
	srv := newServer(t, syncsvc.WithScope(scope))
	a := tablet(t)
	id, err := a.CreateHousehold(ctx, "001", fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	syncOK(t, a, srv)
	scope.villages = []string{"001"} // reassigned
	if err := a.SetField(ctx, id, "address", []byte(`"Never taken"`)); err != nil {
		t.Fatal(err)
	}
	syncOK(t, a, srv)
	refused, err := a.Refused(ctx)
	if err != nil || len(refused) != 1 {
		t.Fatalf("Refused = %v, %v; want the one edit", refused, err)
	}
	if err := a.Discard(ctx, refused[0].Seq); err != nil {
		t.Fatal(err)
	}
	if err := a.Discard(ctx, refused[0].Seq); !errors.Is(err, ErrNotFound) {
		t.Fatalf("discarding twice = %v, want ErrNotFound", err)
	}
	scope.villages = nil
	if st := syncOK(t, a, srv); st.Refreshed != 1 {
		t.Fatalf("sync after the discard = %+v, want 1 entity rebuilt", st)
	}
	if got := household(t, a, id).GetAddress(); got == "Never taken" {
		t.Fatal("the discarded value still shows")
	}
	b := tablet(t)
	syncOK(t, b, srv)
	sameStates(t, a, b)
}

func TestAnotherLogTakesAFreshSnapshotKeepingTheOutbox(t *testing.T) {
	ctx := context.Background()
	first, second := newServer(t), newServer(t)
	other := tablet(t)
	fill(t, other, 2, 1)
	syncOK(t, other, second) // the second server holds households the tablet never saw

	a := tablet(t)
	fill(t, a, 1, 1)
	syncOK(t, a, first)
	mine, err := a.CreateHousehold(ctx, "001", fullHousehold(1)) // unsent when the tablet moves
	if err != nil {
		t.Fatal(err)
	}
	// The tablet is moved to the second server: its cursor counts in the
	// first one's log. Without the log id it would pull after it and skip
	// the second server's first changes in silence.
	st := syncOK(t, a, second)
	if st.Snapshot == 0 {
		t.Fatalf("sync with another server = %+v, want a fresh snapshot", st)
	}
	syncOK(t, other, second)
	household(t, other, mine) // the outbox went to the new server
	for _, h := range listIDs(t, other) {
		household(t, a, h) // and the tablet holds everything it holds
	}
}

func listIDs(t *testing.T, c *Client) []string {
	t.Helper()
	var ids []string
	if err := c.Households(context.Background(), "", func(id string) error { ids = append(ids, id); return nil }); err != nil {
		t.Fatal(err)
	}
	return ids
}

// sameStates fails unless a and b hold the same entities, byte for byte.
func sameStates(t *testing.T, a, b *Client) {
	t.Helper()
	sa, sb := stateRows(t, a), stateRows(t, b)
	if len(sa) != len(sb) {
		t.Fatalf("tablets hold %d and %d entities", len(sa), len(sb))
	}
	for id, st := range sa {
		if !bytes.Equal(st, sb[id]) {
			t.Fatalf("entity %s differs between the tablets", id)
		}
	}
}

func TestOpeningAServersStoreSaysSo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rasoat.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "server's store") {
		t.Fatalf("Open of a rasoatd store = %v, want an error saying it is a server's store", err)
	}
}
