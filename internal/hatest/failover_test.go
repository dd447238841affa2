package hatest

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	failoverBatches = flag.Int("failover.batches", 4, "batches of 390 changes each commune server pushes in TestFailover")
	failoverAt      = flag.Float64("failover.at", 0.4, "the share of all batches acknowledged when TestFailover kills the primary")
)

// TestFailoverLosesNoAcknowledgedChange is the province's high-availability
// setup under load: rasoatd on a PostgreSQL primary with a synchronous
// standby (synchronous_commit = on), given the multi-host URL of both
// (target_session_attrs=read-write); 65 commune servers, each enrolled
// with the COMMUNE_SERVER role for its own commune, push their batches at
// once, each retrying a batch, unchanged, until it is acknowledged. When
// 40 % of the batches are acknowledged the primary's whole process group
// is killed (SIGKILL: the machine is gone, pushes in flight) and the
// standby promoted (pg_promote); rasoatd is not restarted: its pool's new
// connections find the promoted standby, and the commune servers' retries
// land there. At the end the promoted database's log must hold every
// change acknowledged, exactly once, and nothing else; the entities, one
// per household and member; server positions 1..N without a gap.
//
//	go test -run TestFailover -v ./internal/hatest/
func TestFailoverLosesNoAcknowledgedChange(t *testing.T) {
	needPostgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	css := newCommuneServers(communes, *failoverBatches)

	c := New(t)
	if _, err := c.StartPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartStandby(ctx); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, c.URL())
	setupProvince(t, ctx, srv, css)

	total := len(css) * *failoverBatches
	killAfter := max(1, int(float64(total)**failoverAt))
	fr := pushThroughFailover(t, ctx, srv, css, killAfter, c.Primary, c.Standby)
	r, f := fr.load, fr.failover
	srv.kill()
	acked, ackedAll, ackedBefore, dupAnswers, firstAfter := fr.acked, fr.ackedAll, fr.ackedBefore, fr.dupAnswers, fr.firstAfter
	want := 0
	for _, cs := range css {
		want += cs.changes()
	}
	if ackedAll != want || len(r.acks) != total {
		t.Fatalf("%d batches (%d changes) acknowledged, want all %d (%d)", len(r.acks), ackedAll, total, want)
	}

	// What the promoted standby holds.
	held := checkLog(t, ctx, c.Standby, acked, want, int64(total*villagesPerCS*(1+membersPerHH)))
	lat := make([]time.Duration, len(r.acks))
	for i, a := range r.acks {
		lat[i] = a.answer.Sub(a.first)
	}
	slices.Sort(lat)
	t.Logf("failover: %d commune servers, %d batches of %d changes; primary killed (SIGKILL) at %d of %d batches acknowledged",
		len(css), total, changesPerBatch, killAfter, total)
	t.Logf("acknowledged: %d changes (%d before the kill); lost: %d; duplicated: %d; in the log and never pushed: %d",
		ackedAll, ackedBefore, held.lost, held.duplicated, held.extra)
	t.Logf("tries failed and retried: %d; retried batches answered as duplicates (committed, answer lost): %d",
		r.failures, dupAnswers)
	t.Logf("time to recover: kill to standby promoted %.0f ms; kill to the first push acknowledged by the promoted standby %.0f ms",
		ms(f.promoted.Sub(f.kill)), ms(firstAfter.Sub(f.kill)))
	t.Logf("whole run %.1f s, %.0f changes/s; a batch from first try to acknowledgement: p50 %.0f ms, p99 %.0f ms, max %.0f ms",
		r.wall.Seconds(), float64(ackedAll)/r.wall.Seconds(), ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1]))

	if err := held.err(); err != nil {
		t.Fatal(err)
	}
}

// failoverRun is one run of pushThroughFailover: the load, the failover's
// times, and what the commune servers were told.
type failoverRun struct {
	load     loadResult
	failover struct{ kill, promoted time.Time }
	// acked: origin → seqs acknowledged; ackedAll of them, ackedBefore
	// before the kill; dupAnswers retried batches answered as
	// duplicates; firstAfter, the first answer to a try sent after the
	// kill.
	acked                 map[string]map[int64]bool
	ackedAll, ackedBefore int
	dupAnswers            int
	firstAfter            time.Time
}

// pushThroughFailover has the commune servers push all their batches at
// once, each retrying a batch, unchanged, until it is acknowledged; once
// killAfter batches are acknowledged, primary's whole process group is
// killed (SIGKILL: the machine is gone, pushes in flight) and standby
// promoted (pg_promote). rasoatd is not restarted: its pool's new
// connections find the promoted standby. It fails tb unless every batch
// is acknowledged and the kill fell in the middle of the pushes.
func pushThroughFailover(tb testing.TB, ctx context.Context, srv *server, css []*communeServer, killAfter int, primary, standby *Node) failoverRun {
	tb.Helper()
	var fr failoverRun
	type result struct {
		kill, promoted time.Time
		err            error
	}
	done := make(chan result, 1)
	var once sync.Once
	onAck := func(n int) {
		if n < killAfter {
			return
		}
		once.Do(func() {
			go func() {
				var f result
				f.kill = time.Now()
				primary.Kill()
				f.err = standby.Promote(ctx)
				f.promoted = time.Now()
				done <- f
			}()
		})
	}
	r, err := pushAll(ctx, css, true, onAck)
	if err != nil {
		tb.Fatalf("%v\nrasoatd's log:\n%s", err, srv.log())
	}
	var f result
	select {
	case f = <-done:
	case <-time.After(time.Minute):
		tb.Fatal("the failover did not finish")
	}
	if f.err != nil {
		tb.Fatal(f.err)
	}
	fr.load, fr.failover.kill, fr.failover.promoted = r, f.kill, f.promoted
	fr.acked = map[string]map[int64]bool{}
	for _, a := range r.acks {
		for _, ch := range css[a.commune].batches[a.batch] {
			o := ch.GetStamp().GetReplicaId()
			if fr.acked[o] == nil {
				fr.acked[o] = map[int64]bool{}
			}
			fr.acked[o][int64(ch.GetSeq())] = true
		}
		n := len(css[a.commune].batches[a.batch])
		fr.ackedAll += n
		if a.answer.Before(f.kill) {
			fr.ackedBefore += n
		}
		if a.duplicates > 0 {
			fr.dupAnswers++
		}
		if a.start.After(f.kill) && (fr.firstAfter.IsZero() || a.answer.Before(fr.firstAfter)) {
			fr.firstAfter = a.answer
		}
	}
	if r.failures == 0 || fr.firstAfter.IsZero() || fr.ackedBefore == 0 || fr.ackedBefore == fr.ackedAll {
		tb.Fatalf("the kill did not fall in the middle of the pushes: %d failed tries, %d of %d changes acknowledged before it",
			r.failures, fr.ackedBefore, fr.ackedAll)
	}
	return fr
}

// logCheck is what a promoted node's log holds against what the commune
// servers were told.
type logCheck struct {
	held, want              int
	lost, duplicated, extra int
	lostExample             string
	count, lo, hi           int64
	entities, wantEntities  int64
}

// err says what is wrong with the log, or nil: every acknowledged change
// once, nothing else, positions 1..N without a gap, the entities.
func (l logCheck) err() error {
	if l.lost != 0 || l.duplicated != 0 || l.extra != 0 || l.held != l.want {
		return fmt.Errorf("the promoted node's log holds %d changes, want the %d acknowledged: lost %d%s, duplicated %d, never pushed %d",
			l.held, l.want, l.lost, l.lostExample, l.duplicated, l.extra)
	}
	if l.count != int64(l.want) || l.lo != 1 || l.hi != l.count {
		return fmt.Errorf("server positions: %d changes in %d..%d, want 1..%d without a gap", l.count, l.lo, l.hi, l.want)
	}
	if l.entities != l.wantEntities {
		return fmt.Errorf("%d entities, want %d (a household and %d members per village per batch)", l.entities, l.wantEntities, membersPerHH)
	}
	return nil
}

// checkLog reads the log of n, which must be a primary (promoted), against
// acked (origin → seqs acknowledged, want in all); it fails tb only if it
// cannot read it.
func checkLog(tb testing.TB, ctx context.Context, n *Node, acked map[string]map[int64]bool, want int, wantEntities int64) logCheck {
	tb.Helper()
	l := logCheck{want: want, wantEntities: wantEntities}
	db, err := pgx.Connect(ctx, n.URL(Database))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close(ctx)
	var inRecovery bool
	if err := db.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
		tb.Fatalf("%s is not promoted: in recovery %v (%v)", n.Name, inRecovery, err)
	}
	rows, err := db.Query(ctx, "SELECT origin, origin_seq, count(*) FROM changes GROUP BY origin, origin_seq")
	if err != nil {
		tb.Fatal(err)
	}
	left := make(map[string]map[int64]bool, len(acked))
	for o, seqs := range acked {
		left[o] = maps.Clone(seqs)
	}
	for rows.Next() {
		var origin string
		var seq, k int64
		if err := rows.Scan(&origin, &seq, &k); err != nil {
			tb.Fatal(err)
		}
		l.held += int(k)
		l.duplicated += int(k - 1)
		if !left[origin][seq] {
			l.extra++
			continue
		}
		delete(left[origin], seq)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	for o, seqs := range left {
		l.lost += len(seqs)
		for s := range seqs {
			l.lostExample = fmt.Sprintf(" (e.g. %s #%d)", o, s)
		}
	}
	if err := db.QueryRow(ctx, "SELECT count(*), coalesce(min(server_seq), 0), coalesce(max(server_seq), 0) FROM changes").Scan(&l.count, &l.lo, &l.hi); err != nil {
		tb.Fatal(err)
	}
	if err := db.QueryRow(ctx, "SELECT count(*) FROM entities").Scan(&l.entities); err != nil {
		tb.Fatal(err)
	}
	return l
}
