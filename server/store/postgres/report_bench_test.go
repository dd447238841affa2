package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rasoat/rasoat/internal/pgtest"
	"github.com/rasoat/rasoat/internal/reporttest"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// BenchmarkReport20000 is BenchmarkReport20000 of the SQLite store on
// PostgreSQL: a commune of 20,000 households in 20 villages.
func BenchmarkReport20000(b *testing.B) {
	ctx := b.Context()
	db, err := Open(ctx, pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fs := storetest.SyntheticFacts(20000, 20, "06517", 1)
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
	q := storetest.ServiceQuery(store.OnlyVillages(villages...))
	for b.Loop() {
		rows, err := db.Report(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(rows.Groups) == 0 {
			b.Fatal("no groups")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/report")
}

// BenchmarkReportProvince200000 is the SQLite store's, on PostgreSQL:
// checked once against the facts counted in Go, then timed, the store's
// queries alone and ReportService on a real gRPC server.
func BenchmarkReportProvince200000(b *testing.B) {
	ctx := b.Context()
	db, err := Open(ctx, pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fs, villages := storetest.SyntheticProvince(100, 2000, 10)
	for start := 0; start < len(fs); start += 5000 {
		if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			return pgTx{tx}.PutFacts(ctx, fs[start:min(start+5000, len(fs))])
		}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.pool.Exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	q := storetest.ServiceQuery(store.OnlyVillages(villages...))
	rows, err := db.Report(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	storetest.CheckReport(b, rows, storetest.ExpectReport(fs, q))
	svc := reporttest.Serve(b, db, villages)
	b.Logf("ReportService, the province's 200,000 households, checked: %v", svc.Check(b, fs, villages, 2026).Round(time.Millisecond))
	b.Run("service", func(b *testing.B) {
		for b.Loop() {
			if _, err := svc.Report(ctx, 2026); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/report")
	})
	b.Run("villages=named", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Report(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/report")
	})
}
