package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/report"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/facts"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/proto"
)

// testdata/v2.db is a store written by schema version 2 (before log ids,
// chains and base checks): a household of two members from one tablet and
// an edit of its address. A server in the field holds such a file; the
// migration must keep every change and make it usable by the new checks.
func TestStoreOfSchema2OpensAndItsLogIsChecked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	in, err := os.Open(filepath.Join("testdata", "v2.db"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	in.Close()
	out.Close()

	db := open(t, path)
	if v, err := db.Version(ctx); err != nil || v != sqlite.SchemaVersion {
		t.Fatalf("Version = %d, %v; want %d", v, err, sqlite.SchemaVersion)
	}
	if db.LogID() == "" {
		t.Fatal("the migrated log has no id")
	}
	var log []*rasoatv1.Change
	var last store.Position
	_, _, err = db.Pull(ctx, store.AllVillages(), store.Position{}, 1000, func(c *rasoatv1.Change, pos store.Position) error {
		if pos.Check == 0 {
			t.Errorf("change %d has no chain after the migration", pos.Seq)
		}
		log, last = append(log, c), pos
		return nil
	})
	if err != nil || len(log) != 49 {
		t.Fatalf("pulled %d changes, %v; want the 49 the file holds", len(log), err)
	}
	// The migrated digest continues: a cursor from before a push still
	// counts in the log after it.
	if _, _, err := db.Pull(ctx, store.AllVillages(), last, 10, func(*rasoatv1.Change, store.Position) error { return nil }); err != nil {
		t.Fatalf("pull from the last migrated position: %v", err)
	}

	// A base naming the address the edit superseded: found by the stamp
	// and field the migration filled in.
	var original, edit *rasoatv1.Change
	for _, c := range log {
		if c.GetField() == "address" && c.GetKind() == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
			if original == nil {
				original = c
			} else {
				edit = c
			}
		}
	}
	if original == nil || edit == nil {
		t.Fatal("the file does not hold the address and its edit")
	}
	resolve := &rasoatv1.Change{
		EntityId: original.GetEntityId(), Kind: original.GetKind(), VillageCode: original.GetVillageCode(),
		Field: "address", Value: []byte(`"Thôn Nà Pàn"`),
		Stamp: &rasoatv1.Stamp{Hlc: edit.GetStamp().GetHlc() + 1<<16, ReplicaId: "0190f0c2-2222-7000-8000-0000000000bb"},
		Seq:   1,
		Base:  []*rasoatv1.Stamp{original.GetStamp()},
	}
	if _, err := db.Push(ctx, store.Sender{Replica: "0190f0c2-2222-7000-8000-0000000000bb"}, []*rasoatv1.Change{resolve}); err != nil {
		t.Fatalf("a base naming a migrated, superseded change: %v", err)
	}
	if _, _, err := db.Pull(ctx, store.AllVillages(), last, 10, func(*rasoatv1.Change, store.Position) error { return nil }); err != nil {
		t.Fatalf("pull from a migrated position after a push: %v", err)
	}
}

// testdata/v3.db is a store written by schema version 3 (before the
// directory and receipts): a household of two members, 48 changes, from
// one tablet. Its log and log id stay; its changes have no sender, and the
// directory starts empty.
func TestStoreOfSchema3OpensWithAnEmptyDirectory(t *testing.T) {
	ctx := context.Background()
	db := openTestdata(t, "v3.db")
	var log []*rasoatv1.Change
	if _, _, err := db.Pull(ctx, store.AllVillages(), store.Position{}, 1000, func(c *rasoatv1.Change, _ store.Position) error {
		log = append(log, c)
		return nil
	}); err != nil || len(log) != 48 {
		t.Fatalf("pulled %d changes, %v; want the 48 the file holds", len(log), err)
	}
	h, _, err := db.History(ctx, log[0].GetEntityId(), 0, 100)
	if err != nil || len(h) == 0 || h[0].SenderPerson != "" || !h[0].ReceivedAt.IsZero() {
		t.Fatalf("history of a change from before receipts: %+v, %v; want no sender, no time", h, err)
	}
	if people, err := db.People(ctx); err != nil || len(people) != 0 {
		t.Errorf("people = %v, %v; want none", people, err)
	}
	if ok, err := db.HasAdmin(ctx); err != nil || ok {
		t.Errorf("HasAdmin = %v, %v; want false", ok, err)
	}
}

// testdata/v5.db is a store written by schema version 5 (report facts,
// before the quality checks), by the code of that version: household A of
// village 06517-01 whose head (born 2015) is younger than a child (born
// 2012), decided for 2026 in review 0190f0c2-5555-7000-8000-0000000000f1;
// household B of village 06517-02 with the same girl (Hoàng Thị Mai,
// 2012-04-09) on its roster. Opening it adds the quality facts, and the
// server's Deriver derives every household's again: flags, people and the
// decided figures (A's answers are still as decided, so its figures are
// its answers').
func TestStoreOfSchema5GetsItsQualityFacts(t *testing.T) {
	ctx := t.Context()
	db := openTestdata(t, "v5.db")
	if err := db.SetDeriver(ctx, report.Deriver{Standards: survey.Builtin()}, false); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Flags(ctx, store.FlagsQuery{Villages: store.AllVillages()})
	if err != nil {
		t.Fatal(err)
	}
	byVillage := map[string][]string{}
	for _, r := range rows {
		byVillage[r.Village] = append(byVillage[r.Village], r.Code)
		// Schema 10 keeps the head's name, derived again with the rest.
		if r.Village == "06517-02" && r.HeadName != "Hoàng Văn Thắng" {
			t.Errorf("household B's flag names its head %q; want Hoàng Văn Thắng", r.HeadName)
		}
	}
	// A is decided: its flags are derived but not listed (a decided
	// review takes no acknowledgement).
	if got := byVillage["06517-01"]; len(got) != 0 {
		t.Errorf("household A, decided, is listed with flags %v", got)
	}
	if got := byVillage["06517-02"]; !slices.Equal(got, []string{"DUPLICATE_PERSON"}) {
		t.Errorf("household B's flags after the migration: %v", got)
	}
	rep, err := db.Report(ctx, store.ReportQuery{Villages: store.AllVillages(), ListYear: 2026, Today: "2025-12-20"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rep.Groups {
		n += g.Households
	}
	if n != 2 || len(rep.Transitions) != 1 {
		t.Errorf("the report after the migration: %d households, transitions %+v; want 2 and A's decision", n, rep.Transitions)
	}
	var hhA string
	if _, _, err := db.Pull(ctx, store.OnlyVillages("06517-01"), store.Position{}, 1, func(c *rasoatv1.Change, _ store.Position) error {
		hhA = entity.HouseholdOf(c)
		return nil
	}); err != nil || hhA == "" {
		t.Fatalf("household A's id: %v", err)
	}
	d, err := db.DecidedFacts(ctx, hhA)
	if err != nil || len(d) != 1 || d[0].FloorAreaM2 != 36.5 || d[0].IncomePerCapita <= 0 {
		t.Errorf("A's decided figures after the migration: %+v, %v; want 36.5 m² and its income", d, err)
	}
}

// TestLatestDecisionMarkedOnUpgrade: version 7 marks, among a household's
// decisions of a year, the latest (greatest review id) as its result for
// that year, on decisions stored before.
func TestLatestDecisionMarkedOnUpgrade(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "v6.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{facts.Schema, facts.QualitySchema,
		`INSERT INTO household_decided (household_id, list_year, review_id, standard, result, deprivations) VALUES
			('h1', 2025, '01900000-0000-7000-8000-000000000001', 's', 'POOR', 3),
			('h1', 2025, '01900000-0000-7000-8000-000000000002', 's', 'NEAR_POOR', 2),
			('h1', 2026, '01900000-0000-7000-8000-000000000003', 's', 'NOT_POOR', 0),
			('h2', 2025, '01900000-0000-7000-8000-000000000004', 's', 'POOR', 4)`,
		facts.LatestSchema} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.QueryContext(ctx, "SELECT review_id FROM household_decided WHERE latest = 1 ORDER BY review_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id[len(id)-1:])
	}
	if want := []string{"2", "3", "4"}; !slices.Equal(got, want) {
		t.Fatalf("latest decisions %v; want the reviews ending %v", got, want)
	}
}

// testdata/v7.db is a store written by schema version 7 (before origins):
// two tablets' households (82 changes, the first tablet's last an edit of
// its address over the value it replaced), their receipts, and the
// replicas bound to two people. Migration 8 rebuilds the log with origin
// ids: every change, position and chain stays, the duplicate and base
// checks find the migrated changes by their origin (the base check through
// superseded, which migration 9 fills with every change of the log), and
// History still names each change's author.
func TestStoreOfSchema7KeepsItsLogUnderOriginIDs(t *testing.T) {
	ctx := context.Background()
	db := openTestdata(t, "v7.db")
	if db.LogID() == "" {
		t.Fatal("the migrated log has no id")
	}
	var log []*rasoatv1.Change
	var positions []store.Position
	if _, _, err := db.Pull(ctx, store.AllVillages(), store.Position{}, 1000, func(c *rasoatv1.Change, pos store.Position) error {
		log, positions = append(log, c), append(positions, pos)
		return nil
	}); err != nil || len(log) != 82 {
		t.Fatalf("pulled %d changes, %v; want the 82 the file holds", len(log), err)
	}
	for i, p := range positions {
		if p.Seq != uint64(i+1) || p.Check == 0 {
			t.Fatalf("change %d at %+v after the migration; want seq %d with its chain", i, p, i+1)
		}
	}
	// A cursor from before the migration still counts in the log.
	last := positions[len(positions)-1]
	if _, _, err := db.Pull(ctx, store.AllVillages(), last, 10, func(*rasoatv1.Change, store.Position) error { return nil }); err != nil {
		t.Fatalf("pull from the last migrated position: %v", err)
	}

	const lan, minh = "0190f0c2-5555-7000-8000-0000000000aa", "0190f0c2-5555-7000-8000-0000000000bb"
	var first *rasoatv1.Change // the first tablet's first change
	var address, edit *rasoatv1.Change
	for _, c := range log {
		if c.GetStamp().GetReplicaId() != lan {
			continue
		}
		if first == nil {
			first = c
		}
		if c.GetField() == "address" && c.GetKind() == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
			if address == nil {
				address = c
			} else {
				edit = c
			}
		}
	}
	if first == nil || address == nil || edit == nil {
		t.Fatal("the file does not hold the first tablet's household, address and edit")
	}
	// Resent, a migrated change is a duplicate; with other content under
	// its (origin, seq), refused.
	res, err := db.Push(ctx, store.Sender{Replica: lan}, []*rasoatv1.Change{first})
	if err != nil || res.Accepted != 0 || res.Duplicates != 1 || res.ReplicaHighSeq != edit.GetSeq() {
		t.Fatalf("resending a migrated change: %+v, %v; want a duplicate, the replica's last seq %d", res, err, edit.GetSeq())
	}
	forged := proto.Clone(first).(*rasoatv1.Change)
	forged.Value = []byte(`"other"`)
	if _, err := db.Push(ctx, store.Sender{Replica: lan}, []*rasoatv1.Change{forged}); !errors.Is(err, store.ErrContentMismatch) {
		t.Fatalf("other content under a migrated (origin, seq): %v; want ErrContentMismatch", err)
	}
	// A base naming the superseded address, found by its migrated stamp.
	resolve := &rasoatv1.Change{
		EntityId: address.GetEntityId(), Kind: address.GetKind(), VillageCode: address.GetVillageCode(),
		Field: "address", Value: []byte(`"Thôn Nà Pàn"`),
		Stamp: &rasoatv1.Stamp{Hlc: edit.GetStamp().GetHlc() + 1<<16, ReplicaId: minh},
		Seq:   uint64(len(log)), // past the second tablet's last seq
		Base:  []*rasoatv1.Stamp{address.GetStamp()},
	}
	res, err = db.Push(ctx, store.Sender{Replica: minh}, []*rasoatv1.Change{resolve})
	if err != nil || res.Accepted != 1 || res.ServerSeq != last.Seq+1 {
		t.Fatalf("a base naming a migrated, superseded change: %+v, %v; want accepted at %d", res, err, last.Seq+1)
	}
	// History: the migrated changes keep their authors (through origins)
	// and senders (receipts); the new one is the second tablet's.
	h, _, err := db.History(ctx, address.GetEntityId(), 0, 1000)
	if err != nil || len(h) == 0 {
		t.Fatalf("history: %d entries, %v", len(h), err)
	}
	for _, e := range h {
		want := "p-lan"
		if e.Change.GetStamp().GetReplicaId() == minh {
			want = "p-minh"
		}
		if e.AuthorPerson != want {
			t.Errorf("history entry %d by %s: author %q, want %q", e.ServerSeq, e.Change.GetStamp().GetReplicaId(), e.AuthorPerson, want)
		}
		if e.ServerSeq <= last.Seq && e.SenderPerson != want {
			t.Errorf("history entry %d: sender %q, want %q", e.ServerSeq, e.SenderPerson, want)
		}
	}
}

// testdata/v10.db is a store written by schema version 10, its log a row
// a change: tablet A's upload of 312 changes (4 households of 4 members,
// village 06517-01) and two edits of its first household's address, each
// over the last; tablet B's 144 changes, its three households alternating
// between villages 06517-01 and 06517-02; each push's receipt. Migration
// 11 rewrites the log as runs (logruns.go), cutting A's upload at the
// run's bounds and B's at each change of village: every position, chain,
// duplicate, content check, base and history entry stays.
func TestStoreOfSchema10KeepsItsLogInRuns(t *testing.T) {
	ctx := context.Background()
	db := openTestdata(t, "v10.db")
	type logged struct {
		pos store.Position
		c   *rasoatv1.Change
	}
	pull := func(vs store.Villages, from store.Position, limit int) []logged {
		t.Helper()
		var out []logged
		if _, _, err := db.Pull(ctx, vs, from, limit, func(c *rasoatv1.Change, pos store.Position) error {
			out = append(out, logged{pos, c})
			return nil
		}); err != nil {
			t.Fatalf("pull after %+v: %v", from, err)
		}
		return out
	}
	all := pull(store.AllVillages(), store.Position{}, 1000)
	if len(all) != 458 {
		t.Fatalf("pulled %d changes; want the 458 the file holds", len(all))
	}
	var chain uint64
	for i, l := range all {
		chain = store.NextChain(chain, l.c.GetStamp().GetReplicaId(), l.c.GetSeq())
		if l.pos != (store.Position{Seq: uint64(i + 1), Check: chain}) {
			t.Fatalf("change %d at %+v after the migration; want seq %d, chain %d", i, l.pos, i+1, chain)
		}
	}
	// From every position, all villages and one: the changes that follow.
	for k := range all {
		for _, v := range []string{"", "06517-02"} {
			vs := store.AllVillages()
			if v != "" {
				vs = store.OnlyVillages(v)
			}
			var want []logged
			for _, l := range all[k+1:] {
				if v == "" || l.c.GetVillageCode() == v {
					want = append(want, l)
				}
			}
			got := pull(vs, all[k].pos, 3)
			want = want[:min(3, len(want))]
			if !slices.EqualFunc(got, want, func(a, b logged) bool { return a.pos == b.pos && proto.Equal(a.c, b.c) }) {
				t.Fatalf("pull of %q after change %d: %d changes, want %d", v, k, len(got), len(want))
			}
		}
	}
	const a, bb = "0190f0c2-aaaa-7000-8000-000000000001", "0190f0c2-bbbb-7000-8000-000000000002"
	var upload, picks, other []*rasoatv1.Change
	var address []*rasoatv1.Change // A's first household's, in order
	for _, l := range all {
		switch l.c.GetStamp().GetReplicaId() {
		case a:
			if l.c.GetSeq() <= 312 {
				upload = append(upload, l.c)
			}
			if l.c.GetField() == "address" && (len(address) == 0 || l.c.GetEntityId() == address[0].GetEntityId()) {
				address = append(address, l.c)
			}
		case bb:
			other = append(other, l.c)
		}
	}
	for _, i := range []int{0, 150, 200, 255, 256, 311} {
		picks = append(picks, upload[i])
	}
	for _, tc := range []struct {
		by      string
		changes []*rasoatv1.Change
	}{{a, upload}, {a, picks}, {bb, other}} {
		res, err := db.Push(ctx, store.Sender{Replica: tc.by}, tc.changes)
		if err != nil || res.Accepted != 0 || res.Duplicates != len(tc.changes) {
			t.Fatalf("resending %d migrated changes of %s: %+v, %v; want each a duplicate", len(tc.changes), tc.by, res, err)
		}
	}
	forged := proto.Clone(upload[200]).(*rasoatv1.Change)
	forged.Stamp.Hlc++
	if _, err := db.Push(ctx, store.Sender{Replica: a}, []*rasoatv1.Change{forged}); !errors.Is(err, store.ErrContentMismatch) {
		t.Fatalf("other content under a migrated (origin, seq): %v; want ErrContentMismatch", err)
	}
	if len(address) != 3 {
		t.Fatalf("A's first household has %d address changes, want its first and two edits", len(address))
	}
	// A base naming the first address, superseded twice: found in its run.
	resolve := proto.Clone(address[2]).(*rasoatv1.Change)
	resolve.Value = []byte(`"Thôn Nà Pàn"`)
	resolve.Stamp = &rasoatv1.Stamp{Hlc: address[2].GetStamp().GetHlc() + 1<<16, ReplicaId: bb}
	resolve.Seq = other[len(other)-1].GetSeq() + 1
	resolve.Base = []*rasoatv1.Stamp{address[0].GetStamp()}
	res, err := db.Push(ctx, store.Sender{Replica: bb}, []*rasoatv1.Change{resolve})
	if err != nil || res.Accepted != 1 || res.ServerSeq != 459 {
		t.Fatalf("a base naming a migrated, superseded change: %+v, %v; want accepted at 459", res, err)
	}
	h, _, err := db.History(ctx, address[0].GetEntityId(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range h {
		if e.Change.GetField() != "address" {
			continue
		}
		seqs = append(seqs, e.ServerSeq)
		if e.ServerSeq < 459 && e.SenderPerson != "p-lan" {
			t.Errorf("history entry %d: sender %q, want p-lan (its receipt)", e.ServerSeq, e.SenderPerson)
		}
	}
	if len(seqs) != 4 || seqs[3] != 459 {
		t.Fatalf("the address's history is at %v; want its 3 migrated changes and the new one at 459", seqs)
	}
}

// openTestdata opens a copy of testdata/name, a file an older version
// wrote, and checks that it migrated to the current schema.
func openTestdata(t *testing.T, name string) *sqlite.DB {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	db := open(t, path)
	if v, err := db.Version(context.Background()); err != nil || v != sqlite.SchemaVersion {
		t.Fatalf("%s: Version = %d, %v; want %d", name, v, err, sqlite.SchemaVersion)
	}
	return db
}
