package hatest

import (
	"context"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rasoat/rasoat/internal/authtest"
)

var (
	// Small by default, to keep CI's run short: the steps are what is
	// tested; -rejoin.communes=65 -rejoin.batches=4 is TestFailover's load
	// in each round.
	rejoinCommunes = flag.Int("rejoin.communes", 10, "commune servers pushing in TestRejoin")
	rejoinBatches  = flag.Int("rejoin.batches", 1, "batches of 390 changes each commune server pushes in each of TestRejoin's three rounds")
	rejoinFresh    = flag.Bool("rejoin.basebackup", false, "TestRejoin rejoins the old primary with a fresh pg_basebackup instead of pg_rewind")
)

// phase is the commune servers with only their batches [from, from+n):
// one round of pushes of a test with several.
func phase(css []*communeServer, from, n int) []*communeServer {
	out := make([]*communeServer, len(css))
	for i, cs := range css {
		c := *cs
		c.batches = cs.batches[from : from+n]
		out[i] = &c
	}
	return out
}

// TestRejoinedOldPrimaryTakesNoWritesAndFailsBack is what an operator does
// after a failover, and a second failover back:
//
//  1. rasoatd on the multi-host URL (node a, then node b) of a primary a
//     with its synchronous standby b; the commune servers push; a is
//     killed in the middle, b promoted (as TestFailover);
//  2. a is fenced and rejoined as b's synchronous standby with pg_rewind
//     (Cluster.Rejoin, scripts/ha.sh rejoin): started again on its own
//     port, read-only: a read-write session to it alone is refused;
//  3. a rasoatd started afresh on the same URL, which names a first,
//     takes the second round of pushes with no failed try: every
//     connection passed a over (target_session_attrs=read-write) and
//     wrote to b, which waited for a's flush;
//  4. b is killed in the middle of the third round, a promoted: the
//     commune servers' retries land on a.
//
// At the end a's log holds every change acknowledged in the three rounds,
// once, nothing else, server positions 1..N without a gap.
//
//	go test -run TestRejoin -v ./internal/hatest/
//	go test -run TestRejoin -v ./internal/hatest/ -args -rejoin.communes=65 -rejoin.batches=4 -rejoin.basebackup
func TestRejoinedOldPrimaryTakesNoWritesAndFailsBack(t *testing.T) {
	needPostgres(t)
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	per := *rejoinBatches
	css := newCommuneServers(*rejoinCommunes, 3*per)
	c := New(t)
	a, err := c.StartPrimary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, c.URL())
	setupProvince(t, ctx, srv, css)
	round := len(css) * per
	t.Logf("a primary, its synchronous standby, rasoatd and %d commune servers set up in %.1f s", len(css), time.Since(t0).Seconds())

	// 1. The first failover, a → b.
	first := pushThroughFailover(t, ctx, srv, phase(css, 0, per), round/2, a, b)
	t.Logf("round 1: %d changes acknowledged (%d by a before its kill); kill → b promoted %.0f ms, → first push on b %.0f ms",
		first.ackedAll, first.ackedBefore, ms(first.failover.promoted.Sub(first.failover.kill)), ms(first.firstAfter.Sub(first.failover.kill)))

	// 2. a fenced and rejoined as b's synchronous standby.
	start := time.Now()
	if err := c.Rejoin(ctx, a, b, *rejoinFresh); err != nil {
		t.Fatalf("%v\na's log:\n%s", err, readFile(a.Log))
	}
	how := "pg_rewind"
	if *rejoinFresh {
		how = "pg_basebackup"
	}
	t.Logf("a rejoined as b's synchronous standby with %s in %.0f ms", how, ms(time.Since(start)))
	fenced(t, ctx, a)

	// 3. A rasoatd started afresh: its pool knows nothing of the failover.
	srv.kill()
	srv = startServer(t, c.URL())
	for _, cs := range css {
		old := cs.conn
		if cs.conn, err = dialReady(ctx, srv.addr, authtest.Bearer(cs.token)); err != nil {
			t.Fatal(err)
		}
		old.Close()
	}
	second := phase(css, per, per)
	r, err := pushAll(ctx, second, false, nil)
	if err != nil {
		t.Fatalf("a push failed with a, read-only, first in the URL: %v\nrasoatd's log:\n%s\na's log:\n%s\nb's log:\n%s", err, srv.log(), tail(readFile(a.Log)), tail(readFile(b.Log)))
	}
	fenced(t, ctx, a)
	var onA int64
	if err := queryRow(ctx, a, "SELECT count(*) FROM changes", &onA); err != nil {
		t.Fatal(err)
	}
	t.Logf("round 2: %d batches acknowledged on the first try, none by a (in recovery); a replayed %d changes of b's log", len(r.acks), onA)

	// 4. The second failover, b → a.
	third := pushThroughFailover(t, ctx, srv, phase(css, 2*per, per), round/2, b, a)
	srv.kill()
	t.Logf("round 3: %d changes acknowledged (%d by b before its kill); kill → a promoted %.0f ms, → first push on a %.0f ms",
		third.ackedAll, third.ackedBefore, ms(third.failover.promoted.Sub(third.failover.kill)), ms(third.firstAfter.Sub(third.failover.kill)))

	acked := first.acked
	for _, m := range []map[string]map[int64]bool{third.acked} {
		for o, seqs := range m {
			if acked[o] == nil {
				acked[o] = map[int64]bool{}
			}
			for s := range seqs {
				acked[o][s] = true
			}
		}
	}
	for _, x := range r.acks {
		for _, ch := range second[x.commune].batches[x.batch] {
			acked[ch.GetStamp().GetReplicaId()][int64(ch.GetSeq())] = true
		}
	}
	want := 0
	for _, cs := range css {
		want += cs.changes()
	}
	l := checkLog(t, ctx, a, acked, want, int64(3*round*villagesPerCS*(1+membersPerHH)))
	t.Logf("a, promoted again: %d changes acknowledged in all, %d held; lost %d, duplicated %d, never pushed %d; whole test %.1f s",
		want, l.held, l.lost, l.duplicated, l.extra, time.Since(t0).Seconds())
	if err := l.err(); err != nil {
		t.Fatal(err)
	}
}

// fenced fails tb unless n is a standby: in recovery, refusing a
// read-write session of its own.
func fenced(tb testing.TB, ctx context.Context, n *Node) {
	tb.Helper()
	var inRecovery bool
	if err := queryRow(ctx, n, "SELECT pg_is_in_recovery()", &inRecovery); err != nil || !inRecovery {
		tb.Fatalf("%s is not a standby: in recovery %v (%v)", n.Name, inRecovery, err)
	}
	conn, err := pgx.Connect(ctx, n.URL(Database)+"&target_session_attrs=read-write")
	if err == nil {
		conn.Close(ctx)
		tb.Fatalf("%s, rejoined as a standby, takes a read-write session", n.Name)
	}
}

func queryRow(ctx context.Context, n *Node, q string, dst any) error {
	conn, err := pgx.Connect(ctx, n.URL(Database))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, q).Scan(dst)
}

// readFile is a log file's text, for a failure's message.
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// tail is the last lines of a log, for a failure's message.
func tail(s string) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}
