package postgres

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/internal/pgtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// sortNode is a Sort step of a plan (not a Merge Append's "Sort Key").
var sortNode = regexp.MustCompile(`(?m)^\s*(->\s+)?Sort\s+\(`)

// TestPullPlanMergesVillagesWithoutSorting pins the plan of a pull over
// several villages on a log of some size (each village past the batch),
// analysed: a Merge Append of one
// index scan of changes_village per village, stopped by the LIMIT, with no
// Sort of the remaining log. The README quotes the plan printed with -v.
func TestPullPlanMergesVillagesWithoutSorting(t *testing.T) {
	db, err := Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	villages := []string{"v01", "v02", "v03", "v04", "v05", "v06"}
	for _, v := range villages {
		g := storetest.New("tab-"+v, v)
		if _, err := g.Commune(150, 1, func(b []*rasoatv1.Change) error {
			_, err := db.Push(t.Context(), store.Sender{Replica: "tab-" + v}, b)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.pool.Exec(t.Context(), "ANALYZE changes"); err != nil {
		t.Fatal(err)
	}
	for _, codes := range [][]string{nil, villages[:1], villages[:3]} {
		q, args := pullQuery(codes, 100, 1001)
		rows, err := db.pool.Query(t.Context(), "EXPLAIN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&plan, line)
		}
		rows.Close()
		t.Logf("pull over %v:\n%s", codes, plan.String())
		if sortNode.MatchString(plan.String()) {
			t.Errorf("pull over %v sorts:\n%s", codes, plan.String())
		}
		if len(codes) > 1 && !strings.Contains(plan.String(), "Merge Append") {
			t.Errorf("pull over %v does not merge:\n%s", codes, plan.String())
		}
	}
}
