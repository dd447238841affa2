package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/syncsvc"
)

// reassigned refuses writes to village 002 while set: the collaborator's
// village was given to someone else while the tablet was offline.
type reassigned struct{ on atomic.Bool }

func (r *reassigned) Writer(_ context.Context, req *rasoatv1.PushRequest) (store.Sender, func(*rasoatv1.Change) error, error) {
	return store.Sender{Replica: req.GetReplicaId()}, r.checkWrite, nil
}

func (r *reassigned) checkWrite(c *rasoatv1.Change) error {
	if r.on.Load() && c.GetVillageCode() == "002" {
		return errors.New("village 002 is not assigned to this collaborator")
	}
	return nil
}

func (r *reassigned) Villages(_ context.Context, _ string, requested []string) (store.Villages, error) {
	if len(requested) == 0 {
		return store.AllVillages(), nil
	}
	return store.OnlyVillages(requested...), nil
}

func TestRefusedChangesAreListedRetriedAndDiscarded(t *testing.T) {
	scope := &reassigned{}
	scope.on.Store(true)
	addr := startServer(t, syncsvc.WithScope(scope))
	db := filepath.Join(t.TempDir(), "tablet.db")
	example, err := os.ReadFile(householdExample)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(example, &h); err != nil {
		t.Fatal(err)
	}
	for _, village := range []string{"001", "002"} {
		h["id"], h["villageCode"] = uuid.Must(uuid.NewV7()).String(), village
		for _, m := range h["members"].([]any) {
			m.(map[string]any)["id"] = uuid.Must(uuid.NewV7()).String()
		}
		doc, _ := json.Marshal(h)
		if _, stderr, code := rasoat(t, string(doc), "add", "--db", db, "--village", village, "-"); code != 0 {
			t.Fatalf("add in %s: exit %d: %s", village, code, stderr)
		}
	}
	out, stderr, code := rasoat(t, "", "sync", "--db", db, "--server", addr)
	if code != 0 || !strings.Contains(out, "refused by the server and set aside") {
		t.Fatalf("sync = exit %d, stdout %q, stderr %q; want the refused changes said", code, out, stderr)
	}
	out, _, code = rasoat(t, "", "refused", "--db", db, "--json")
	if code != 0 {
		t.Fatalf("refused --json: exit %d", code)
	}
	var listed []refusedJSON
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r refusedJSON
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if r.Reason != "OUT_OF_SCOPE" || !strings.Contains(r.Description, "village 002") {
			t.Fatalf("refused change %+v: want OUT_OF_SCOPE with the server's words", r)
		}
		listed = append(listed, r)
	}
	if len(listed) == 0 {
		t.Fatal("nothing listed")
	}
	if out, _, _ := rasoat(t, "", "refused", "--db", db); !strings.Contains(out, "OUT_OF_SCOPE") || !strings.Contains(out, "--retry SEQ") {
		t.Fatalf("refused prints %q", out)
	}
	if _, stderr, code := rasoat(t, "", "refused", "--db", db, "--retry", "999999"); code != exitInvalid || !strings.Contains(stderr, "999999") {
		t.Fatalf("retry of an unknown change: exit %d, %q", code, stderr)
	}

	// One discarded, the rest retried once the village is assigned again.
	first := strconv.FormatUint(listed[0].Seq, 10)
	if out, _, code := rasoat(t, "", "refused", "--db", db, "--discard", first); code != 0 || !strings.Contains(out, "discarded") {
		t.Fatalf("discard: exit %d, %q", code, out)
	}
	for _, r := range listed[1:] {
		if _, stderr, code := rasoat(t, "", "refused", "--db", db, "--retry", strconv.FormatUint(r.Seq, 10)); code != 0 {
			t.Fatalf("retry %d: exit %d, %s", r.Seq, code, stderr)
		}
	}
	scope.on.Store(false)
	if out, stderr, code := rasoat(t, "", "sync", "--db", db, "--server", addr); code != 0 || strings.Contains(out, "set aside") {
		t.Fatalf("sync after retrying: exit %d, %q, %q", code, out, stderr)
	}
	if out, _, _ := rasoat(t, "", "refused", "--db", db); !strings.Contains(out, "no refused change") {
		t.Fatalf("after the retry, refused prints %q", out)
	}
}
