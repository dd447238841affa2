package sqlite_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/server/store/sqlite"
)

// TestPullPlanMergesVillagesWithoutSorting pins the query plan of a pull
// over several villages: one search of changes_village per village, merged
// in server order, with no temporary B-tree (which sorted every remaining
// change of those villages on every batch). The README quotes the plan
// printed with -v.
func TestPullPlanMergesVillagesWithoutSorting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rasoat.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, n := range []int{0, 1, 3} {
		plan, err := db.ExplainPull(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("pull over %d villages (0: all):\n%s", n, plan)
		if strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("pull over %d villages sorts:\n%s", n, plan)
		}
		if n > 1 && !strings.Contains(plan, "MERGE") {
			t.Errorf("pull over %d villages does not merge:\n%s", n, plan)
		}
	}
}
