package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rasoat/rasoat/internal/reporttest"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// recorder is a testing.TB that notes a failure instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// The check that the 200,000-household benchmarks run once is itself
// checked, small: the service's report of a province passes against its
// own facts, and fails against facts that differ by one household's
// class.
func TestProvinceReportCheckCatchesAWrongFigure(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "province.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs, villages := storetest.SyntheticProvince(3, 300, 2)
	if err := db.PutFacts(ctx, fs); err != nil {
		t.Fatal(err)
	}
	svc := reporttest.Serve(t, db, villages)
	svc.Check(t, fs, villages, 2026)

	wrong := slices.Clone(fs)
	i := slices.IndexFunc(wrong, func(f store.HouseholdFacts) bool { return f.Class == "NOT_POOR" })
	wrong[i].Class = "POOR"
	rec := &recorder{TB: t}
	svc.Check(rec, wrong, villages, 2026)
	if len(rec.errs) == 0 {
		t.Fatal("a report one poor household short passed the check")
	}
	t.Logf("caught: %s", rec.errs[0])
}
