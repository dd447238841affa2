package postgres

import (
	"errors"
	"slices"
	"testing"

	"github.com/rasoat/rasoat/internal/pgtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/report"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
	"github.com/rasoat/rasoat/survey"
)

// TestADatabaseOfMigration2GetsItsQualityFacts: a database at migration
// 2 (report facts, before the quality checks), holding household A of
// village 01 whose head is younger than a child and household B of
// village 02 with the same girl on its roster, is migrated to 3 when
// opened, and the server's Deriver derives every household's facts
// again, flags and people included. (Migration 2's schema is made here by
// undoing 3 to 6 on a new database: the statements of 3 to 6 are the
// ones undone.) Migration 6 on the way names each flagged household's
// head.
func TestADatabaseOfMigration2GetsItsQualityFacts(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetDeriver(ctx, report.Deriver{Standards: survey.Builtin()}, false); err != nil {
		t.Fatal(err)
	}
	g := storetest.New("0190f0c2-5555-7000-8000-0000000000a1", "06517-01")
	a := g.Household(2)
	for _, c := range a {
		if c.Kind == rasoatv1.EntityKind_ENTITY_KIND_MEMBER && c.EntityId == a[len(a)-1].EntityId {
			switch c.Field {
			case "relation":
				a = append(a, g.Edit(c, `"RELATION_HEAD"`))
			case "birthDate":
				a = append(a, g.Edit(c, `"2015-01-01"`))
			case "fullName":
				a = append(a, g.Edit(c, `"Hoàng Văn Thắng"`))
			}
		}
	}
	if _, err := db.Push(ctx, store.Sender{Replica: g.Replica}, storetest.Must(a)); err != nil {
		t.Fatal(err)
	}
	g2 := storetest.New("0190f0c2-5555-7000-8000-0000000000a2", "06517-02")
	if _, err := db.Push(ctx, store.Sender{Replica: g2.Replica}, storetest.Must(g2.Household(1))); err != nil {
		t.Fatal(err)
	}
	db = migrateAgain(t, db, url, 2, `DROP TABLE household_flags, household_acks, household_people;
ALTER TABLE household_decided DROP COLUMN floor_area_m2, DROP COLUMN income_per_capita, DROP COLUMN latest;
DROP TABLE superseded; CREATE INDEX changes_stamp ON changes (origin, hlc);
ALTER TABLE household_facts DROP COLUMN head_name;
DELETE FROM goose_db_version WHERE version_id IN (3, 4, 5, 6)`)
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
		if r.HeadName != "Hoàng Văn Thắng" { // the form's headName, as storetest fills it
			t.Errorf("household %s's flag names its head %q; want Hoàng Văn Thắng", r.HouseholdID, r.HeadName)
		}
	}
	if got := byVillage["06517-01"]; !slices.Equal(got, []string{"CHILD_OLDER_THAN_PARENT", "DUPLICATE_PERSON"}) {
		t.Errorf("household A's flags after the migration: %v", got)
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
	if n != 2 {
		t.Errorf("the report after the migration counts %d households; want 2", n)
	}
}

// TestADatabaseOfMigration4ChecksBasesOfItsLog: a database at migration 4
// (bases checked against changes_stamp), holding a household whose
// address was edited over its first value, is migrated to 5 when opened:
// every change logged before is recorded in superseded, so a base naming
// the address's first value, superseded before the migration, is taken,
// and one naming a stamp nobody wrote is still refused. (Migration 4's
// schema is made here by undoing 5 and 6 on a new database.)
func TestADatabaseOfMigration4ChecksBasesOfItsLog(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	g := storetest.New("0190f0c2-5555-7000-8000-0000000000a1", "06517-01")
	hh := g.Household(0)
	var address *rasoatv1.Change
	for _, c := range hh {
		if c.Field == "address" {
			address = c
		}
	}
	edit := g.Edit(address, `"Bản Nà Phạ"`)
	if _, err := db.Push(ctx, store.Sender{Replica: g.Replica}, storetest.Must(append(hh, edit))); err != nil {
		t.Fatal(err)
	}
	db = migrateAgain(t, db, url, 4, `DROP TABLE superseded; CREATE INDEX changes_stamp ON changes (origin, hlc);
ALTER TABLE household_facts DROP COLUMN head_name;
DELETE FROM goose_db_version WHERE version_id IN (5, 6)`)
	other := storetest.New("0190f0c2-5555-7000-8000-0000000000a2", "06517-01")
	late := other.Edit(address, `"Bản Nà Pàn"`)
	if res, err := db.Push(ctx, store.Sender{Replica: other.Replica}, storetest.Must([]*rasoatv1.Change{late})); err != nil || res.Accepted != 1 {
		t.Fatalf("a base naming a change superseded before the migration: %+v, %v; want accepted", res, err)
	}
	forged := other.Edit(address, `"Bản Nà Pàn"`)
	forged.Base = []*rasoatv1.Stamp{{ReplicaId: g.Replica, Hlc: edit.Stamp.Hlc + 1}}
	if _, err := db.Push(ctx, store.Sender{Replica: other.Replica}, []*rasoatv1.Change{forged}); !errors.Is(err, store.ErrBaseUnknown) {
		t.Fatalf("a base naming a stamp nobody wrote: %v; want ErrBaseUnknown", err)
	}
}

// latestMigration is the version goose records once every migration ran.
const latestMigration = 6

// migrateAgain takes db back to migration back by undo's statements (the
// later migrations' own, undone), closes it and opens url again, which
// migrates it to the latest: the store as a server of that older
// version left it, opened by this one. The store returned is closed when
// t ends.
func migrateAgain(t *testing.T, db *DB, url string, back int, undo string) *DB {
	t.Helper()
	ctx := t.Context()
	if _, err := db.pool.Exec(ctx, undo); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Version(ctx); err != nil || v != back {
		t.Fatalf("Version after undoing = %d, %v; want %d", v, err, back)
	}
	db.Close()
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if v, err := db.Version(ctx); err != nil || v != latestMigration {
		t.Fatalf("Version = %d, %v; want %d", v, err, latestMigration)
	}
	return db
}
