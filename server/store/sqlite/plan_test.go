package sqlite_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/server/store/sqlite"
)

// TestPullPlanMergesVillagesWithoutSorting pins the query plan of a pull
// over several villages: one search of log_runs_village per village, merged
// in server order, with no temporary B-tree (which sorted every remaining
// change of those villages on every batch). The README quotes the plan
// over three villages, and the test checks the quote.
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
		if n == 3 {
			readme, err := os.ReadFile("../../../README.md")
			if err != nil {
				t.Fatal(err)
			}
			const intro = "SQLite, three villages:\n\n```text\n"
			_, quoted, ok := strings.Cut(string(readme), intro)
			if quoted, _, _ = strings.Cut(quoted, "```"); !ok || quoted != plan {
				t.Errorf("README.md quotes the plan over three villages as\n%s\nwant\n%s", quoted, plan)
			}
		}
	}
}

// TestPushLookupsSearchTheOriginIndexes pins the plans of the push's
// lookups by origin since the log keys origins by number (schema 6): the
// origin's id is read once from origins and the rest is a search of
// log_runs_origin or superseded, never a scan of the log (a push costs
// in proportion to its own size); and that an entity's history reads its
// village's part of the log, not the whole log.
func TestPushLookupsSearchTheOriginIndexes(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rasoat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	plans, err := db.WriterPlans(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"high seq":     "SEARCH log_runs USING INDEX log_runs_origin (origin_id=?)",
		"stored range": "SEARCH log_runs USING INDEX log_runs_origin (origin_id=? AND origin_seq>? AND origin_seq<?)",
		"run at":       "SEARCH log_runs USING INDEX log_runs_origin (origin_id=? AND origin_seq>? AND origin_seq<?)",
		"run after":    "SEARCH log_runs USING INDEX log_runs_origin (origin_id=? AND origin_seq>?)",
		"superseded":   "SEARCH superseded USING PRIMARY KEY (origin_id=? AND hlc=?)",
		"overlap":      "SEARCH log_runs USING INDEX log_runs_origin (origin_id=? AND origin_seq<?)",
		"log end":      "SCAN log_runs",
		"history":      "SEARCH log_runs USING INDEX log_runs_village (village_code=? AND first_seq>?)",
	}
	for name, w := range want {
		p := plans[name]
		t.Logf("%s:\n%s", name, p)
		if !strings.Contains(p, w) || strings.Contains(p, "TEMP B-TREE") || (name != "log end" && strings.Contains(p, "SCAN log_runs")) {
			t.Errorf("%s: plan\n%s\nwant %q", name, p, w)
		}
	}
}
