package postgres

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rasoat/rasoat/internal/pgtest"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// BenchmarkQualityFlags20000 is the SQLite store's, on PostgreSQL.
func BenchmarkQualityFlags20000(b *testing.B) {
	ctx := b.Context()
	db, err := Open(ctx, pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fs := storetest.SyntheticFacts(20000, 20, "06517", 1)
	storetest.QualityFacts(fs)
	for start := 0; start < len(fs); start += 2000 {
		if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			return pgTx{tx}.PutFacts(ctx, fs[start:min(start+2000, len(fs))])
		}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.pool.Exec(ctx, "ANALYZE"); err != nil {
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
