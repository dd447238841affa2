package postgres

import (
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
// undoing 3 and 4 on a new database: the statements of 3 and 4 are the
// ones undone.)
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
	if _, err := db.pool.Exec(ctx, `DROP TABLE household_flags, household_acks, household_people;
ALTER TABLE household_decided DROP COLUMN floor_area_m2, DROP COLUMN income_per_capita, DROP COLUMN latest;
DELETE FROM goose_db_version WHERE version_id IN (3, 4)`); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Version(ctx); err != nil || v != 2 {
		t.Fatalf("Version after undoing 3 = %d, %v", v, err)
	}
	db.Close()

	db, err = Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.Version(ctx); err != nil || v != 4 {
		t.Fatalf("Version = %d, %v; want 4", v, err)
	}
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
