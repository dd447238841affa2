package hatest

import (
	"context"
	"flag"
	"fmt"
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
	type failover struct {
		kill, promoted time.Time
		err            error
	}
	done := make(chan failover, 1)
	var once sync.Once
	onAck := func(n int) {
		if n < killAfter {
			return
		}
		once.Do(func() {
			go func() {
				var f failover
				f.kill = time.Now()
				c.Primary.Kill()
				f.err = c.Promote(ctx)
				f.promoted = time.Now()
				done <- f
			}()
		})
	}
	r, err := pushAll(ctx, css, true, onAck)
	if err != nil {
		t.Fatalf("%v\nrasoatd's log:\n%s", err, srv.log())
	}
	var f failover
	select {
	case f = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the failover did not finish")
	}
	if f.err != nil {
		t.Fatal(f.err)
	}
	srv.kill()

	// What the commune servers were told.
	acked := map[string]map[int64]bool{} // origin -> seqs acknowledged
	var ackedBefore, ackedAll, dupAnswers, firstAfter = 0, 0, 0, time.Time{}
	for _, a := range r.acks {
		for _, ch := range css[a.commune].batches[a.batch] {
			o := ch.GetStamp().GetReplicaId()
			if acked[o] == nil {
				acked[o] = map[int64]bool{}
			}
			acked[o][int64(ch.GetSeq())] = true
		}
		n := len(css[a.commune].batches[a.batch])
		ackedAll += n
		if a.answer.Before(f.kill) {
			ackedBefore += n
		}
		if a.duplicates > 0 {
			dupAnswers++
		}
		if a.start.After(f.kill) && (firstAfter.IsZero() || a.answer.Before(firstAfter)) {
			firstAfter = a.answer
		}
	}
	want := 0
	for _, cs := range css {
		want += cs.changes()
	}
	if ackedAll != want || len(r.acks) != total {
		t.Fatalf("%d batches (%d changes) acknowledged, want all %d (%d)", len(r.acks), ackedAll, total, want)
	}
	if r.failures == 0 || firstAfter.IsZero() || ackedBefore == 0 || ackedBefore == ackedAll {
		t.Fatalf("the kill did not fall in the middle of the pushes: %d failed tries, %d of %d changes acknowledged before it",
			r.failures, ackedBefore, ackedAll)
	}

	// What the promoted standby holds.
	db, err := pgx.Connect(ctx, c.Standby.URL(Database))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var inRecovery bool
	if err := db.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
		t.Fatalf("the standby is not promoted: in recovery %v (%v)", inRecovery, err)
	}
	rows, err := db.Query(ctx, "SELECT origin, origin_seq, count(*) FROM changes GROUP BY origin, origin_seq")
	if err != nil {
		t.Fatal(err)
	}
	lost, duplicated, extra, held := 0, 0, 0, 0
	for rows.Next() {
		var origin string
		var seq, n int64
		if err := rows.Scan(&origin, &seq, &n); err != nil {
			t.Fatal(err)
		}
		held += int(n)
		duplicated += int(n - 1)
		if !acked[origin][seq] {
			extra++
			continue
		}
		delete(acked[origin], seq)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var lostExample string
	for o, seqs := range acked {
		lost += len(seqs)
		for s := range seqs {
			lostExample = fmt.Sprintf(" (e.g. %s #%d)", o, s)
		}
	}
	var count, lo, hi int64
	if err := db.QueryRow(ctx, "SELECT count(*), coalesce(min(server_seq), 0), coalesce(max(server_seq), 0) FROM changes").Scan(&count, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	var entities int64
	if err := db.QueryRow(ctx, "SELECT count(*) FROM entities").Scan(&entities); err != nil {
		t.Fatal(err)
	}

	lat := make([]time.Duration, len(r.acks))
	for i, a := range r.acks {
		lat[i] = a.answer.Sub(a.first)
	}
	slices.Sort(lat)
	t.Logf("failover: %d commune servers, %d batches of %d changes; primary killed (SIGKILL) at %d of %d batches acknowledged",
		len(css), total, changesPerBatch, killAfter, total)
	t.Logf("acknowledged: %d changes (%d before the kill); lost: %d; duplicated: %d; in the log and never pushed: %d",
		ackedAll, ackedBefore, lost, duplicated, extra)
	t.Logf("tries failed and retried: %d; retried batches answered as duplicates (committed, answer lost): %d",
		r.failures, dupAnswers)
	t.Logf("time to recover: kill to standby promoted %.0f ms; kill to the first push acknowledged by the promoted standby %.0f ms",
		ms(f.promoted.Sub(f.kill)), ms(firstAfter.Sub(f.kill)))
	t.Logf("whole run %.1f s, %.0f changes/s; a batch from first try to acknowledgement: p50 %.0f ms, p99 %.0f ms, max %.0f ms",
		r.wall.Seconds(), float64(ackedAll)/r.wall.Seconds(), ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1]))

	if lost != 0 || duplicated != 0 || extra != 0 || held != want {
		t.Fatalf("the promoted standby's log holds %d changes, want the %d acknowledged: lost %d%s, duplicated %d, never pushed %d",
			held, want, lost, lostExample, duplicated, extra)
	}
	if count != int64(want) || lo != 1 || hi != count {
		t.Fatalf("server positions: %d changes in %d..%d, want 1..%d without a gap", count, lo, hi, want)
	}
	if wantEntities := int64(total * villagesPerCS * (1 + membersPerHH)); entities != wantEntities {
		t.Fatalf("%d entities, want %d (a household and %d members per village per batch)", entities, wantEntities, membersPerHH)
	}
}
