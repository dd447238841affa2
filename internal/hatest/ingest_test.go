package hatest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var ingestBatches = flag.Int("ingest.batches", 8, "batches of 390 changes each commune server pushes in BenchmarkProvinceIngest")

// ingestResult is one engine's run of BenchmarkProvinceIngest.
type ingestResult struct {
	engine        string
	changes       int
	rate          float64 // changes/s
	p50, p99, max time.Duration
	cpuPerChange  float64 // the server's CPU, µs a change
	bytes         int64   // the store's growth on disk
}

// BenchmarkProvinceIngest: the province ingesting 65 commune servers'
// pushes at once, against a real rasoatd over loopback TCP, on three
// stores in one run: SQLite (the peer: the embedded default,
// synchronous=FULL), PostgreSQL alone, and PostgreSQL with a synchronous
// standby (the high-availability setup of TestFailoverLosesNoAcknowledgedChange).
// Each commune server is enrolled with the COMMUNE_SERVER role for its
// own commune, has its own connection, and pushes -ingest.batches batches
// of 390 new changes (5 villages' tablets, a household of 4 members each),
// one after the other as each is acknowledged. All changes are made, and
// every device enrolled and connected, before the clock starts.
//
//	RASOAT_TEST_POSTGRES=… go test -run '^$' -bench ProvinceIngest -benchtime 1x ./internal/hatest/
//
// changes/s is the changes acknowledged over the wall time from the start
// to the last answer; p50-ms and p99-ms one push's latency as the commune
// server sees it; server-cpu-µs/change rasoatd's CPU (the database's is
// not counted); store-B/change the store's growth on disk (the SQLite file
// after a graceful stop; pg_database_size, tables and indexes, not the
// WAL) per change. Without RASOAT_TEST_POSTGRES the PostgreSQL runs are
// skipped, saying so. One summary line per store, then the ratios, go to
// stdout.
func BenchmarkProvinceIngest(b *testing.B) {
	var results []ingestResult
	for _, engine := range []string{"sqlite", "postgres", "postgres+sync-standby"} {
		b.Run("store="+engine, func(b *testing.B) {
			if engine != "sqlite" {
				needPostgres(b)
			}
			for b.Loop() {
				r := ingest(b, engine, *ingestBatches)
				b.ReportMetric(r.rate, "changes/s")
				b.ReportMetric(ms(r.p50), "p50-ms")
				b.ReportMetric(ms(r.p99), "p99-ms")
				b.ReportMetric(r.cpuPerChange, "server-cpu-µs/change")
				b.ReportMetric(float64(r.bytes)/float64(r.changes), "store-B/change")
				results = append(results, r)
				fmt.Printf("province ingest, %s: %d commune servers × %d pushes of %d changes: %d in %.1f s = %.0f changes/s; push p50 %.0f ms, p99 %.0f ms, max %.0f ms; rasoatd CPU %.1f µs a change; store %.1f MB, %.0f B a change, %.0f B a household of %d members\n",
					r.engine, communes, *ingestBatches, changesPerBatch, r.changes, float64(r.changes)/r.rate, r.rate,
					ms(r.p50), ms(r.p99), ms(r.max), r.cpuPerChange, float64(r.bytes)/1e6,
					float64(r.bytes)/float64(r.changes), float64(r.bytes)/float64(r.changes)*changesPerHH, membersPerHH)
			}
		})
	}
	// The ratios of the means, each store against SQLite, over the runs of
	// this one invocation (-count), measured interleaved with it.
	type sum struct {
		rate, p99 float64
		n         int
	}
	by := map[string]*sum{}
	for _, r := range results {
		if by[r.engine] == nil {
			by[r.engine] = &sum{}
		}
		s := by[r.engine]
		s.rate, s.p99, s.n = s.rate+r.rate, s.p99+float64(r.p99), s.n+1
	}
	if base := by["sqlite"]; base != nil {
		for _, engine := range []string{"postgres", "postgres+sync-standby"} {
			if s := by[engine]; s != nil {
				fmt.Printf("province ingest, %s against sqlite in the same run (means of %d and %d): %.2f× the rate, %.2f× the p99\n",
					engine, s.n, base.n, (s.rate/float64(s.n))/(base.rate/float64(base.n)), (s.p99/float64(s.n))/(base.p99/float64(base.n)))
			}
		}
	}
}

// ingest runs one store's round: a fresh store and rasoatd, the province
// set up, then every commune server's pushes at once, measured.
func ingest(b *testing.B, engine string, batches int) ingestResult {
	b.StopTimer()
	ctx, cancel := context.WithTimeout(b.Context(), 15*time.Minute)
	defer cancel()
	var (
		db      string
		size    func() int64
		cluster *Cluster
	)
	switch engine {
	case "sqlite":
		db = filepath.Join(b.TempDir(), "province.db")
		size = func() int64 {
			var n int64
			for _, suffix := range []string{"", "-wal"} {
				if fi, err := os.Stat(db + suffix); err == nil {
					n += fi.Size()
				}
			}
			return n
		}
	default:
		cluster = New(b)
		if _, err := cluster.StartPrimary(ctx); err != nil {
			b.Fatal(err)
		}
		db = cluster.Primary.URL(Database)
		if engine == "postgres+sync-standby" {
			if _, err := cluster.StartStandby(ctx); err != nil {
				b.Fatal(err)
			}
			db = cluster.URL()
		}
		size = func() int64 {
			conn, err := pgx.Connect(ctx, cluster.Primary.URL(Database))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(ctx)
			var n int64
			if err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n); err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	css := newCommuneServers(communes, batches)
	srv := startServer(b, db)
	setupProvince(b, ctx, srv, css)
	before := size()
	c0, ok0 := procCPU(srv.cmd.Process.Pid)
	b.StartTimer()
	r, err := pushAll(ctx, css, false, nil)
	b.StopTimer()
	c1, ok1 := procCPU(srv.cmd.Process.Pid)
	if err != nil {
		b.Fatalf("%v\nrasoatd's log:\n%s", err, srv.log())
	}
	srv.stop()
	out := ingestResult{engine: engine, bytes: size() - before}
	lat := make([]time.Duration, len(r.acks))
	for i, a := range r.acks {
		lat[i] = a.answer.Sub(a.start)
		out.changes += a.accepted
	}
	if want := communes * batches * changesPerBatch; out.changes != want {
		b.Fatalf("%d changes acknowledged as new, %d pushed", out.changes, want)
	}
	slices.Sort(lat)
	out.rate = float64(out.changes) / r.wall.Seconds()
	out.p50, out.p99, out.max = percentile(lat, 0.5), percentile(lat, 0.99), lat[len(lat)-1]
	if ok0 && ok1 {
		out.cpuPerChange = float64((c1 - c0).Microseconds()) / float64(out.changes)
	}
	b.StartTimer()
	return out
}
