package client

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/sqlitedb"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite testdata/v<SchemaVersion>.db")

func TestCreateHouseholdMaterialisesEveryField(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	h := fullHousehold(4)
	id, err := c.CreateHousehold(ctx, "001", h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Household(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := withIDs(t, c, id, "001", h); !proto.Equal(got, want) {
		t.Fatalf("household materialised as\n%v\nwant\n%v", got, want)
	}
	n, err := c.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := changesOf(4); n != want {
		t.Errorf("Pending = %d changes, want %d", n, want)
	}
}

func TestReopenKeepsEverythingAndTheClockNeverGoesBack(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tablet.db")
	c, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	h := fullHousehold(2)
	id, err := c.CreateHousehold(ctx, "001", h)
	if err != nil {
		t.Fatal(err)
	}
	want := withIDs(t, c, id, "001", h)
	replica, before := c.ReplicaID(), dump(t, c)
	last := c.clock.Load().Last()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// The tablet's clock is set back a day: new stamps must still be above old ones.
	c = open(t, path, WithClock(func() time.Time { return time.Now().Add(-24 * time.Hour) }))
	if c.ReplicaID() != replica {
		t.Fatalf("replica id %s after reopening, was %s", c.ReplicaID(), replica)
	}
	if got := dump(t, c); got != before {
		t.Fatalf("file reads differently after reopening:\n%s\nwas\n%s", got, before)
	}
	got, err := c.Household(ctx, id)
	if err != nil || !proto.Equal(got, want) {
		t.Fatalf("Household after reopening = %v, %v; want %v", got, err, want)
	}
	if err := c.SetField(ctx, id, "headName", []byte(`"Nông Văn Dũng"`)); err != nil {
		t.Fatal(err)
	}
	var seq int64
	var stamp hlc.Timestamp
	if err := c.r.QueryRow("SELECT origin_seq, hlc FROM outbox ORDER BY origin_seq DESC LIMIT 1").Scan(&seq, &stamp); err != nil {
		t.Fatal(err)
	}
	if stamp <= last {
		t.Errorf("stamp after reopening with the clock set back is %s, not above %s", stamp, last)
	}
	if wantSeq := int64(changesOf(2) + 1); seq != wantSeq {
		t.Errorf("origin seq after reopening = %d, want %d", seq, wantSeq)
	}
}

func TestReplicaIDIsKeptAndChecked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tablet.db")
	const id = "0190f0c2-0000-7000-8000-000000000001"
	c, err := Open(ctx, path, WithReplicaID(id))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReplicaID() != id {
		t.Errorf("replica id = %s, want %s", c.ReplicaID(), id)
	}
	c.Close()
	if _, err := Open(ctx, path, WithReplicaID("another")); !errors.Is(err, ErrReplicaMismatch) {
		t.Errorf("Open with another replica id: %v, want ErrReplicaMismatch", err)
	}
	fresh := tablet(t)
	if !entity.ValidID(fresh.ReplicaID()) {
		t.Errorf("generated replica id %q is not a UUID", fresh.ReplicaID())
	}
}

// changesOf is how many changes enrolling fullHousehold(members) writes:
// 18 household fields; the head's 11 set fields and removed; 14 set fields
// and removed for each other member.
func changesOf(members int) int {
	if members == 0 {
		return 18
	}
	return 18 + 12 + 15*(members-1)
}

// fieldOf returns the field an error names, or fails.
func fieldOf(t *testing.T, err error) string {
	t.Helper()
	var fe *entity.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *entity.FieldError", err)
	}
	return fe.Field
}

func TestInvalidSetFieldNamesTheFieldAndLeavesTheFileUnchanged(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	id, err := c.CreateHousehold(ctx, "001", fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Household(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	member := h.Members[0].Id
	before := dump(t, c)
	for _, tc := range []struct {
		name, entity, path, value, field string
	}{
		{"floor area is not a number", id, "housing.floorAreaM2", `"big"`, "housing.floorAreaM2"},
		{"unknown enum", id, "area", `"AREA_MOON"`, "area"},
		{"not JSON", id, "headName", `Nông`, "headName"},
		{"unknown path", id, "housing.colour", `"red"`, "housing.colour"},
		{"identity is not a field", id, "villageCode", `"002"`, "villageCode"},
		{"member field on a household", id, "birthDate", `"2001-01-01"`, "birthDate"},
		{"member sex", member, "sex", `3`, "sex"},
		{"income with two bases", id, "income", `{"annual":{},"scoreA":3}`, "income"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.SetField(ctx, tc.entity, tc.path, []byte(tc.value))
			if got := fieldOf(t, err); got != tc.field {
				t.Errorf("error %v names %q, want %q", err, got, tc.field)
			}
		})
	}
	if err := c.SetField(ctx, "0190f0c2-0000-7000-8000-00000000dead", "headName", []byte(`"x"`)); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetField on an unknown entity: %v, want ErrNotFound", err)
	}
	if err := c.RemoveMember(ctx, member, rasoatv1.Removal_REMOVAL_UNSPECIFIED); fieldOf(t, err) != "removed" {
		t.Errorf("RemoveMember without a reason: %v", err)
	}
	if got := dump(t, c); got != before {
		t.Fatalf("refused writes changed the file:\n%s\nwas\n%s", got, before)
	}
}

func TestCreateHouseholdNamesTheBadField(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	before := dump(t, c)
	noHead := fullHousehold(1)
	noHead.HeadName = ""
	badMember := fullHousehold(3)
	badMember.Members[1].Id = "not-a-uuid"
	otherVillage := fullHousehold(0)
	otherVillage.VillageCode = "002"
	for _, tc := range []struct {
		name  string
		h     *rasoatv1.Household
		field string
	}{
		{"head name is required", noHead, "headName"},
		{"member id must be a UUID", badMember, "members[1].id"},
		{"village must match", otherVillage, "villageCode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateHousehold(ctx, "001", tc.h)
			if got := fieldOf(t, err); got != tc.field {
				t.Errorf("error %v names %q, want %q", err, got, tc.field)
			}
		})
	}
	if got := dump(t, c); got != before {
		t.Fatalf("refused creations changed the file:\n%s", got)
	}
}

func TestWriteFailingHalfwayLeavesNothing(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	if _, err := c.CreateHousehold(ctx, "001", fullHousehold(1)); err != nil {
		t.Fatal(err)
	}
	before := dump(t, c)
	boom := errors.New("battery died")
	writes := 0
	c.hookWrite = func(string) error {
		if writes++; writes == 40 { // about half of 18 + 4×15 changes
			return boom
		}
		return nil
	}
	if _, err := c.CreateHousehold(ctx, "001", fullHousehold(4)); !errors.Is(err, boom) {
		t.Fatalf("CreateHousehold = %v, want the injected failure", err)
	}
	if writes != 40 {
		t.Fatalf("hook ran %d times, want 40", writes)
	}
	if got := dump(t, c); got != before {
		t.Fatalf("a write failing halfway changed the file:\n%s\nwas\n%s", got, before)
	}
	c.hookWrite = nil
	// The next write takes the sequence numbers the failed one did not use.
	if _, err := c.CreateHousehold(ctx, "001", fullHousehold(0)); err != nil {
		t.Fatal(err)
	}
	var seqs, maxSeq int
	c.r.QueryRow("SELECT count(*), max(origin_seq) FROM outbox").Scan(&seqs, &maxSeq)
	if seqs != maxSeq {
		t.Errorf("outbox holds %d changes numbered up to %d: a gap", seqs, maxSeq)
	}
}

func TestMembersAndRemoval(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	id, err := c.CreateHousehold(ctx, "001", &rasoatv1.Household{HeadName: "Lò Văn Pọm"})
	if err != nil {
		t.Fatal(err)
	}
	// A member with no answers yet still exists.
	m1, err := c.AddMember(ctx, id, &rasoatv1.Member{})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := c.AddMember(ctx, id, &rasoatv1.Member{FullName: "Lò Thị Ín"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveMember(ctx, m1, rasoatv1.Removal_REMOVAL_MOVED_OUT); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddMember(ctx, m2, &rasoatv1.Member{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddMember to a member: %v, want ErrNotFound", err)
	}
	h, err := c.Household(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := []*rasoatv1.Member{{Id: m1, Removed: rasoatv1.Removal_REMOVAL_MOVED_OUT}, {Id: m2, FullName: "Lò Thị Ín"}}
	if len(h.Members) != 2 || !proto.Equal(h.Members[0], want[0]) || !proto.Equal(h.Members[1], want[1]) {
		t.Fatalf("members = %v, want %v", h.Members, want)
	}
}

func TestReviewIsDraftedThenSubmittedOnce(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	id, err := c.CreateHousehold(ctx, "001", fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartReview(ctx, id, "15/11/2025"); fieldOf(t, err) != "reviewDate" {
		t.Errorf("StartReview with a bad date: %v", err)
	}
	r, err := c.StartReview(ctx, id, "2025-11-15")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetField(ctx, r, "status", []byte(`"approved"`)); fieldOf(t, err) != "status" {
		t.Errorf("SetField status: %v, want refused", err)
	}
	if err := c.SetField(ctx, r, "comment", []byte(`"hộ mới tách"`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Submit(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := c.Submit(ctx, r); !errors.Is(err, ErrWorkflow) {
		t.Errorf("second Submit: %v, want ErrWorkflow", err)
	}
	if err := c.Submit(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Submit of a household: %v, want ErrNotFound", err)
	}
}

func TestAssessScoresLocally(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	id, err := c.CreateHousehold(ctx, "001", fullHousehold(4))
	if err != nil {
		t.Fatal(err)
	}
	a, h, err := c.Assess(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.GetId() != id || a.Standard == nil || a.Members != 4 {
		t.Fatalf("Assess = %+v for %v", a, h)
	}
	// 42.5M VND a year for 4 people is 885,416 a month: under the rural line.
	if a.Classification != rasoatv1.Classification_CLASSIFICATION_POOR && a.Classification != rasoatv1.Classification_CLASSIFICATION_NEAR_POOR {
		t.Errorf("classification = %v, want poor or near-poor (deprived in %v)", a.Classification, a.Deprived())
	}
}

func TestHouseholdsIteratesOneVillage(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	var want []string
	for i := range 5 {
		village := "001"
		if i%2 == 1 {
			village = "002"
		}
		id, err := c.CreateHousehold(ctx, village, &rasoatv1.Household{HeadName: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if village == "001" {
			want = append(want, id)
		}
	}
	var got []string
	err := c.Households(ctx, "001", func(id string) error {
		// fn may read the tablet while iterating.
		if _, err := c.Household(ctx, id); err != nil {
			return err
		}
		got = append(got, id)
		return nil
	})
	if err != nil || len(got) != len(want) {
		t.Fatalf("Households = %v, %v; want %v", got, err, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Households = %v, want %v", got, want)
		}
	}
	stop := errors.New("stop")
	if err := c.Households(ctx, "", func(string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Households returned %v, want fn's error", err)
	}
}

// v1Household is the household testdata/v1.db holds.
const v1Household = "0190f0c2-1111-7000-8000-000000000001"

// TestOpensFileOfSchemaV1 opens a copy of a file written by schema version
// 1, so a later migration cannot strand a tablet in the field. Rewrite it
// (only while version 1 is current) with go test ./client -run V1 -update.
func TestOpensFileOfSchemaV1(t *testing.T) {
	ctx := context.Background()
	golden := filepath.Join("testdata", "v1.db")
	want := fullHousehold(3)
	want.Id = v1Household
	for i, m := range want.Members {
		m.Id = []string{"0190f0c2-1111-7000-8000-000000000002", "0190f0c2-1111-7000-8000-000000000003", "0190f0c2-1111-7000-8000-000000000004"}[i]
	}
	if *update {
		if SchemaVersion != 1 {
			t.Fatal("testdata/v1.db is written by schema version 1 only: add a v<N>.db for the new version instead")
		}
		os.MkdirAll("testdata", 0o755)
		os.Remove(golden)
		c, err := Open(ctx, golden, WithReplicaID("0190f0c2-1111-7000-8000-0000000000aa"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateHousehold(ctx, "001", want); err != nil {
			t.Fatal(err)
		}
		if _, err := c.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		os.Remove(golden + "-wal")
		os.Remove(golden + "-shm")
	}
	path := filepath.Join(t.TempDir(), "v1.db")
	copyFile(t, golden, path)
	c := open(t, path)
	var v int
	if err := c.r.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version %d, %v after opening; want %d", v, err, SchemaVersion)
	}
	got, err := c.Household(ctx, v1Household)
	if err != nil {
		t.Fatal(err)
	}
	want.VillageCode = "001"
	if !proto.Equal(got, want) {
		t.Fatalf("household in v1.db reads as %v, want %v", got, want)
	}
	if n, _ := c.Pending(ctx); n != changesOf(3) {
		t.Errorf("v1.db has %d pending changes, want %d", n, changesOf(3))
	}
	// Written with 4 KiB pages before new files got sqlitedb.BulkPageSize:
	// an existing file keeps its page size.
	if ps := pageSize(t, c); ps != 4096 {
		t.Errorf("v1.db has pages of %d bytes after opening, want 4096 as written", ps)
	}
	if err := c.SetField(ctx, v1Household, "headName", []byte(`"Đinh Văn Tú"`)); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatalf("%v (run go test ./client -run V1 -update to create it)", err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestANewReviewRoundDatesTheAssessment: the next annual review (from
// 1 September 2026) decides the 2027 list under Decree 351/2025; starting
// it moves the household's review date, so local scoring follows.
func TestANewReviewRoundDatesTheAssessment(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	id, err := c.CreateHousehold(ctx, "001", fullHousehold(2))
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := c.Assess(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Standard.ID != "2021-2025" {
		t.Fatalf("review of 2025-11-15 scored under %s", a.Standard.ID)
	}
	if _, err := c.StartReview(ctx, id, "2026-10-20"); err != nil {
		t.Fatal(err)
	}
	// 2026-2030 counts an elderly member as a dependant only with a
	// monthly social allowance: the household needs the answer.
	h, err := c.Household(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range h.GetMembers() {
		if err := c.SetField(ctx, m.GetId(), "receivesMonthlySocialAllowance", []byte("false")); err != nil {
			t.Fatal(err)
		}
	}
	a, h, err = c.Assess(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.GetReviewDate() != "2026-10-20" || a.Standard.ID != "2026-2030" {
		t.Fatalf("after starting the 2026 periodic round: review date %s, standard %s; want 2026-10-20 under 2026-2030", h.GetReviewDate(), a.Standard.ID)
	}
	// A regular review of another household a day later changes the 2026
	// list, under Decree 07/2021's standard, which Decree 351/2025 keeps
	// through 2026: the round's kind, not the calendar, chooses. (On the
	// first household the periodic review, deciding 2027, stays the latest:
	// workflow.Order puts the later list year first.)
	other, err := c.CreateHousehold(ctx, "001", fullHousehold(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartRound(ctx, other, Round{Date: "2026-10-21", Regular: true, Request: "form04"}); err != nil {
		t.Fatal(err)
	}
	if a, _, err = c.Assess(ctx, other); err != nil {
		t.Fatal(err)
	}
	if a.Standard.ID != "2021-2025" {
		t.Fatalf("a regular review of 2026-10-21 scored under %s; want 2021-2025", a.Standard.ID)
	}
}

func pageSize(t *testing.T, c *Client) int {
	t.Helper()
	var ps int
	if err := c.r.QueryRow("PRAGMA page_size").Scan(&ps); err != nil {
		t.Fatal(err)
	}
	return ps
}

// A new file gets sqlitedb.BulkPageSize pages (fewer, larger WAL frames for
// a first sync), and stays in WAL mode.
func TestNewFileHasBulkPages(t *testing.T) {
	c := tablet(t)
	if ps := pageSize(t, c); ps != sqlitedb.BulkPageSize {
		t.Errorf("a new file has pages of %d bytes, want %d", ps, sqlitedb.BulkPageSize)
	}
	var mode string
	if err := c.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal mode %q, %v; want wal", mode, err)
	}
}
