package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// BenchmarkQualityFlags20000 lists the quality flags of a commune of
// 20,000 households in 20 villages (a flag on one in eight, one person in
// a hundred on another roster too), as QualityService.Flags reads them:
// the stored flags and the same people across households.
func BenchmarkQualityFlags20000(b *testing.B) {
	ctx := b.Context()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "rasoat.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fs := storetest.SyntheticFacts(20000, 20, "06517", 1)
	storetest.QualityFacts(fs)
	if err := db.PutFacts(ctx, fs); err != nil {
		b.Fatal(err)
	}
	var villages []string
	for v := 1; v <= 20; v++ {
		villages = append(villages, fmt.Sprintf("06517-%02d", v))
	}
	q := store.FlagsQuery{Villages: store.OnlyVillages(villages...)}
	n := 0
	for b.Loop() {
		rows, err := db.Flags(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		n = len(rows)
	}
	b.ReportMetric(float64(n), "flags")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/list")
}
