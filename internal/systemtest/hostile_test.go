//go:build linux

package systemtest

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/rasoat/rasoat/internal/authtest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/sqlitedb"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Hostile request sizes and bounds (the issue "Bound what hostile requests
// can cost").
const (
	// hostileSize is a request just under rasoatd's 16 MiB receive limit
	// (server.go maxRecvMsgSize): the largest the server must take in.
	hostileSize = 16<<20 - 4<<10
	// hostileConcurrency requests of one kind run at once, each on its
	// own connection.
	hostileConcurrency = 4
	// hostileRSSBound is what a real rasoatd may have resident at its peak
	// while it refuses them.
	hostileRSSBound = 256 << 20
	// hostileAnswerWithin is how long the requests of one kind may take to
	// be refused; hostileCutOver stops waiting sooner for a server already
	// over the bound: its outcome is known.
	hostileAnswerWithin = 15 * time.Second
	hostileCutOver      = 4 * time.Second
	// rssGuard kills a server that does not bound its memory before it
	// hurts the machine the tests share; dataLimit is the hard backstop
	// (RLIMIT_DATA) should the 2 ms watch be too slow.
	rssGuard  = 1 << 30
	dataLimit = 4 << 30
)

// TestHostileRequestsBoundedMemory sends rasoatd, for each kind of request
// that carries a repeated field, 4 concurrent requests of just under 16 MiB
// made of millions of empty elements (a Push of 8 million empty changes, an
// AssessStream batch of 8 million empty households, a Pull and a Snapshot
// naming 8 million villages), each kind against a fresh server. The server
// must refuse them (InvalidArgument or ResourceExhausted, never Internal)
// and its peak resident memory (VmHWM) must stay under 256 MiB: the batch
// checks must bound what a request costs before it is decoded whole.
// hostileToken is the token of an enrolled device in the wrong hands: an
// officer's, who may read and write the whole commune, so that its
// requests reach every check past authentication.
func hostileToken(t *testing.T, srv *proc) string {
	t.Helper()
	srv.setup(t, 1, officer("lan"))
	return srv.enrol(t, "lan", "0190f0c2-0000-7000-8000-00000000bad1")
}

func TestHostileRequestsBoundedMemory(t *testing.T) {
	replica := stringField(1, "0190f0c2-0000-7000-8000-00000000bad1")
	kinds := []struct {
		name           string
		method         string
		client, server bool // streaming sides
		prefix         []byte
		field          protowire.Number
		elements       string
	}{
		// PushRequest{replica_id=1, changes=2}
		{"Push", "/rasoat.v1.SyncService/Push", false, false, replica, 2, "empty changes"},
		// AssessStreamRequest{households=1}: one request on the stream.
		{"AssessStream", "/rasoat.v1.ScoringService/AssessStream", true, true, nil, 1, "empty households"},
		// PullRequest{replica_id=1, village_codes=3}
		{"Pull", "/rasoat.v1.SyncService/Pull", false, true, replica, 3, "empty village codes"},
		// SnapshotRequest{replica_id=1, village_codes=2}
		{"Snapshot", "/rasoat.v1.SyncService/Snapshot", false, true, replica, 2, "empty village codes"},
	}
	type outcome struct {
		peak, killedAt uint64
		cut            string
		codes          []codes.Code
	}
	results := map[string]outcome{}

	// The raw path reaches the handler: a small Push of empty changes is
	// refused for its fields, as a tablet's would be.
	{
		srv := startServer(t, filepath.Join(t.TempDir(), "commune.db"))
		small, _ := floodMessage(replica, 2, 1<<10)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := callRaw(ctx, dialAs(t, srv.addr, hostileToken(t, srv)), "/rasoat.v1.SyncService/Push", false, false, small)
		cancel()
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("a 1 KiB Push of empty changes sent raw: %v; want InvalidArgument (is the raw codec reaching the server?)", err)
		}
		srv.kill()
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			body, n := floodMessage(k.prefix, k.field, hostileSize)
			srv := startServer(t, filepath.Join(t.TempDir(), "commune.db"))
			pid := srv.cmd.Process.Pid
			if err := limitData(pid, dataLimit); err != nil {
				t.Logf("no RLIMIT_DATA backstop: %v", err)
			}
			idle, err := procStatus(pid, "VmHWM")
			if err != nil {
				t.Fatal(err)
			}
			conns := make([]*grpc.ClientConn, hostileConcurrency)
			token := hostileToken(t, srv)
			for i := range conns {
				conns[i] = dialAs(t, srv.addr, token)
			}

			w := watchRSS(srv, rssGuard)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errs := make([]error, hostileConcurrency)
			start := time.Now()
			var wg sync.WaitGroup
			for i, conn := range conns {
				wg.Go(func() { errs[i] = callRaw(ctx, conn, k.method, k.client, k.server, body) })
			}
			answered := make(chan struct{})
			go func() { wg.Wait(); close(answered) }()

			// Wait for the answers; stop early once the outcome is known
			// (the server is over the bound and still at it), so that a
			// server that does not bound its memory costs the shared
			// machine seconds, not minutes.
			var cut string
			tick := time.NewTicker(50 * time.Millisecond)
		wait:
			for {
				select {
				case <-answered:
					break wait
				case <-tick.C:
				}
				switch el := time.Since(start); {
				case w.killed.Load() > 0:
					<-answered
					break wait
				case el > hostileCutOver && w.peak.Load() > hostileRSSBound:
					cut = fmt.Sprintf("still decoding after %v, over the bound", el.Round(time.Millisecond))
					break wait
				case el > hostileAnswerWithin:
					cut = fmt.Sprintf("no answer within %v", hostileAnswerWithin)
					break wait
				}
			}
			tick.Stop()
			elapsed := time.Since(start)
			peak, killedAt := w.stop()
			srv.kill() // the next kind gets the machine to itself
			<-answered

			var got []codes.Code
			var answers []string
			for _, err := range errs {
				st := status.Convert(err)
				got = append(got, st.Code())
				answers = append(answers, fmt.Sprintf("%s %.120q", st.Code(), st.Message()))
			}
			results[k.name] = outcome{peak, killedAt, cut, got}
			t.Logf("%s: %d concurrent requests of %d bytes (%d %s each): server peak RSS %.0f MiB (%.0f MiB idle) after %v; answers: %s",
				k.name, hostileConcurrency, len(body), n, k.elements, mib(peak), mib(idle["VmHWM"]), elapsed.Round(time.Millisecond), strings.Join(answers, "; "))

			switch {
			case killedAt > 0:
				t.Errorf("%s: under %d concurrent %d-byte requests of %d %s, rasoatd's resident memory reached %.0f MiB after %v and the test killed it at its %.0f MiB guard (bound: %.0f MiB)",
					k.name, hostileConcurrency, len(body), n, k.elements, mib(killedAt), elapsed.Round(time.Millisecond), mib(rssGuard), mib(hostileRSSBound))
			case peak > hostileRSSBound:
				t.Errorf("%s: under %d concurrent %d-byte requests of %d %s, rasoatd's peak RSS (VmHWM) was %.0f MiB after %v, over the %.0f MiB bound",
					k.name, hostileConcurrency, len(body), n, k.elements, mib(peak), elapsed.Round(time.Millisecond), mib(hostileRSSBound))
			}
			if cut != "" {
				t.Errorf("%s: rasoatd did not refuse %d concurrent requests of %d %s: %s (peak RSS %.0f MiB); the test killed it",
					k.name, hostileConcurrency, n, k.elements, cut, mib(peak))
			}
			for i, err := range errs {
				switch c := status.Code(err); {
				case c == codes.InvalidArgument || c == codes.ResourceExhausted:
				case (killedAt > 0 || cut != "") && (c == codes.Unavailable || c == codes.Canceled):
					// Cut off by the test's kill: no answer to judge.
				case c == codes.OK:
					t.Errorf("%s: request %d of %d %s was accepted (OK); want it refused with InvalidArgument or ResourceExhausted", k.name, i, n, k.elements)
				default:
					t.Errorf("%s: request %d of %d %s answered %s (%.200q); want InvalidArgument or ResourceExhausted",
						k.name, i, n, k.elements, c, status.Convert(err).Message())
				}
			}
		})
	}
	var summary []string
	for _, k := range kinds {
		r, ok := results[k.name]
		if !ok {
			continue
		}
		s := fmt.Sprintf("%s %.0f MiB", k.name, mib(r.peak))
		switch {
		case r.killedAt > 0:
			s = fmt.Sprintf("%s killed at %.0f MiB", k.name, mib(r.killedAt))
		case r.cut != "":
			s = fmt.Sprintf("%s over %.0f MiB, %s", k.name, mib(r.peak), r.cut)
		}
		summary = append(summary, fmt.Sprintf("%s %v", s, r.codes))
	}
	t.Logf("peak RSS under %d concurrent hostile requests (bound %.0f MiB): %s", hostileConcurrency, mib(hostileRSSBound), strings.Join(summary, "; "))
}

// Stalled-reader test settings (the issue "Slow readers block everyone").
const (
	// stalledReaders Snapshot clients read one response, then stop.
	stalledReaders = 20
	// stallWindow is the stalled clients' HTTP/2 flow-control window:
	// static, so that a stopped reader lets no more than this through.
	stallWindow = 64 << 10
	// healthyDeadline bounds each call of the healthy client under stall.
	healthyDeadline = 5 * time.Second
	// walBound is how large the -wal file may grow while stalled readers
	// exist and pushes continue (autocheckpoint keeps it near 4 MB).
	walBound = 32 << 20
)

// TestStalledSnapshotReadersDoNotBlockOthers: 20 tablets open a Snapshot of
// a commune (several MB of entity states: more than HTTP/2 flow control
// lets through to a client that stops reading), read one response and stop
// reading, as a collaborator's 2G link dropping would. While they stall, a
// healthy client's Pull and Snapshot stay as fast as before (median within
// 5× the baseline + 50 ms, each call within 5 s), its pushes are
// acknowledged, and the WAL neither grows past 32 MiB nor stays pinned: a
// checkpoint can copy every frame back into the database.
func TestStalledSnapshotReadersDoNotBlockOthers(t *testing.T) {
	db := filepath.Join(t.TempDir(), "commune.db")
	const (
		bigVillage   = "06517-01" // the commune the stalled readers snapshot
		smallVillage = "06517-02" // what the healthy client snapshots
		pushVillage  = "06517-03" // where the healthy client pushes under stall
	)
	changes := fillVillage(t, db, "0190f0c2-0000-7000-8000-0000000000e1", bigVillage, 2000, 4)
	changes += fillVillage(t, db, "0190f0c2-0000-7000-8000-0000000000e2", smallVillage, 10, 4)
	srv := startServer(t, db)
	srv.setup(t, 3, officer("lan"))
	healthy := rasoatv1.NewSyncServiceClient(dialAs(t, srv.addr, srv.enrol(t, "lan", "0190f0c2-0000-7000-8000-0000000000e3")))
	ctx := context.Background()

	pull := func() (time.Duration, error) {
		ctx, cancel := context.WithTimeout(ctx, healthyDeadline)
		defer cancel()
		start := time.Now()
		s, err := healthy.Pull(ctx, &rasoatv1.PullRequest{ReplicaId: "healthy", Cursor: uint64(changes - 50)})
		if err != nil {
			return 0, err
		}
		got := 0
		for {
			r, err := s.Recv()
			if err != nil {
				return time.Since(start), fmt.Errorf("after %d changes: %w", got, err)
			}
			got += len(r.GetChanges())
			if r.GetDone() {
				if got != 50 {
					return 0, fmt.Errorf("pulled %d changes after cursor %d, want 50", got, changes-50)
				}
				return time.Since(start), nil
			}
		}
	}
	snapshot := func(villages ...string) (d time.Duration, responses, entities, bytes int, err error) {
		ctx, cancel := context.WithTimeout(ctx, healthyDeadline)
		defer cancel()
		start := time.Now()
		s, err := healthy.Snapshot(ctx, &rasoatv1.SnapshotRequest{ReplicaId: "healthy", VillageCodes: villages})
		if err != nil {
			return 0, 0, 0, 0, err
		}
		for {
			r, err := s.Recv()
			if err != nil {
				return time.Since(start), responses, entities, bytes, fmt.Errorf("after %d entities: %w", entities, err)
			}
			responses++
			entities += len(r.GetEntities())
			bytes += proto.Size(r)
			if r.GetDone() {
				return time.Since(start), responses, entities, bytes, nil
			}
		}
	}
	measure := func(what string, n int, call func() (time.Duration, error)) (time.Duration, error) {
		var ds []time.Duration
		for i := range n {
			d, err := call()
			if err != nil {
				return d, fmt.Errorf("%s %d of %d: %w", what, i+1, n, err)
			}
			ds = append(ds, d)
		}
		return median(ds), nil
	}
	smallSnapshot := func() (time.Duration, error) {
		d, _, n, _, err := snapshot(smallVillage)
		if err == nil && n != 50 {
			err = fmt.Errorf("snapshot of village %s holds %d entities, want 50", smallVillage, n)
		}
		return d, err
	}

	// Baseline, with nobody stalled.
	if _, err := measure("warm-up pull", 3, pull); err != nil {
		t.Fatal(err)
	}
	basePull, err := measure("baseline pull", 10, pull)
	if err != nil {
		t.Fatal(err)
	}
	baseSnap, err := measure("baseline snapshot", 5, smallSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	_, responses, entities, bytes, err := snapshot(bigVillage)
	if err != nil {
		t.Fatal(err)
	}
	// A stopped reader lets through its flow-control window and the
	// server one response or two: the snapshot must be larger by far.
	if responses < 4 || bytes < 4<<20 {
		t.Fatalf("village %s's snapshot is %d responses, %d bytes: too small to stall a reader", bigVillage, responses, bytes)
	}
	t.Logf("baseline: pull of 50 changes %v (median of 10), snapshot of 50 entities %v (median of 5); the stalled readers' snapshot is %d entities in %d responses, %.1f MiB",
		basePull, baseSnap, entities, responses, float64(bytes)/(1<<20))

	// 20 readers that take one response and stop, each on its own
	// connection with small static windows.
	stallCtx, stopStall := context.WithCancel(ctx)
	defer stopStall()
	var mu sync.Mutex
	got, failed := 0, []string{}
	for i := range stalledReaders {
		conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithStaticStreamWindowSize(stallWindow), grpc.WithStaticConnWindowSize(stallWindow),
			authtest.Bearer(srv.enrol(t, "lan", fmt.Sprintf("stalled-%d", i))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		go func() {
			s, err := rasoatv1.NewSyncServiceClient(conn).Snapshot(stallCtx, &rasoatv1.SnapshotRequest{ReplicaId: fmt.Sprintf("stalled-%d", i), VillageCodes: []string{bigVillage}})
			if err == nil {
				_, err = s.Recv()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, status.Convert(err).Code().String())
				return
			}
			got++
			// ... and never Recv again.
		}()
	}
	// Wait until the readers the server serves at once have their first
	// response (4 today: its read pool), then a moment for the server to
	// fill their windows and block.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		g, f := got, len(failed)
		mu.Unlock()
		if g >= 4 || g+f == stalledReaders || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	t.Logf("stalled readers: %d of %d received a first response and stopped reading; %d ended with %v", got, stalledReaders, len(failed), failed)
	mu.Unlock()

	// The healthy client under stall.
	if d, err := pull(); err != nil {
		t.Errorf("with %d stalled Snapshot readers, a healthy Pull of 50 changes failed after %v (deadline %v; baseline median %v): %v",
			stalledReaders, d.Round(time.Millisecond), healthyDeadline, basePull, err)
	} else if m, err := measure("pull under stall", 10, pull); err != nil {
		t.Errorf("with %d stalled Snapshot readers: %v (baseline median %v)", stalledReaders, err, basePull)
	} else {
		t.Logf("under stall: pull median %v (baseline %v)", m, basePull)
		if bound := 5*basePull + 50*time.Millisecond; m > bound {
			t.Errorf("with %d stalled Snapshot readers, a healthy Pull's median latency is %v, over 5× the baseline %v + 50 ms = %v",
				stalledReaders, m, basePull, bound)
		}
	}
	if d, err := smallSnapshot(); err != nil {
		t.Errorf("with %d stalled Snapshot readers, a healthy Snapshot of 50 entities failed after %v (deadline %v; baseline median %v): %v",
			stalledReaders, d.Round(time.Millisecond), healthyDeadline, baseSnap, err)
	} else if m, err := measure("snapshot under stall", 5, smallSnapshot); err != nil {
		t.Errorf("with %d stalled Snapshot readers: %v (baseline median %v)", stalledReaders, err, baseSnap)
	} else {
		t.Logf("under stall: snapshot median %v (baseline %v)", m, baseSnap)
		if bound := 5*baseSnap + 50*time.Millisecond; m > bound {
			t.Errorf("with %d stalled Snapshot readers, a healthy Snapshot's median latency is %v, over 5× the baseline %v + 50 ms = %v",
				stalledReaders, m, baseSnap, bound)
		}
	}

	// Writes go on, and the WAL does not grow without end.
	wal := db + "-wal"
	walBefore := fileSize(wal)
	g := storetest.New("0190f0c2-0000-7000-8000-0000000000e3", pushVillage)
	batches, pushed := 0, 0
	var pushTimes []time.Duration
	_, err = g.Commune(1300, 4, func(batch []*rasoatv1.Change) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		res, err := healthy.Push(ctx, &rasoatv1.PushRequest{ReplicaId: g.Replica, Changes: batch})
		if err != nil {
			return fmt.Errorf("push %d (%d changes) after %v: %w", batches+1, len(batch), time.Since(start).Round(time.Millisecond), err)
		}
		pushTimes = append(pushTimes, time.Since(start))
		if int(res.GetAccepted()) != len(batch) {
			return fmt.Errorf("push %d: %d of %d changes accepted", batches+1, res.GetAccepted(), len(batch))
		}
		batches++
		pushed += len(batch)
		return nil
	})
	if err != nil {
		t.Errorf("with %d stalled Snapshot readers, a healthy client's push was not acknowledged: %v", stalledReaders, err)
	}
	walAfter := fileSize(wal)
	t.Logf("under stall: %d pushes of %d changes acknowledged (median %v); %s grew from %.1f MiB to %.1f MiB",
		batches, pushed, median(pushTimes), filepath.Base(wal), float64(walBefore)/(1<<20), float64(walAfter)/(1<<20))
	if walAfter > walBound {
		t.Errorf("with %d stalled Snapshot readers, %d pushes (%d changes) grew %s from %.1f MiB to %.1f MiB, over %.0f MiB: the stalled readers pin the WAL",
			stalledReaders, batches, pushed, filepath.Base(wal), float64(walBefore)/(1<<20), float64(walAfter)/(1<<20), float64(walBound)/(1<<20))
	}
	if frames, done, err := checkpoint(db); err != nil {
		t.Errorf("checkpoint while readers stall: %v", err)
	} else {
		t.Logf("under stall: PRAGMA wal_checkpoint(PASSIVE) copied %d of %d WAL frames", done, frames)
		if done < frames {
			t.Errorf("with %d stalled Snapshot readers, a checkpoint can copy only %d of the WAL's %d frames into the database: a reader's open transaction pins the WAL",
				stalledReaders, done, frames)
		}
	}
}

// checkpoint runs PRAGMA wal_checkpoint(PASSIVE) on the server's file from
// another connection, as SQLite's automatic checkpoint would, retrying for
// a second while it finds the server's own checkpoint or write under way.
// It returns the WAL's frames and how many the checkpoint has copied.
func checkpoint(path string) (frames, done int, err error) {
	db, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(path, sqlitedb.Options{}))
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	for range 10 {
		var busy int
		if err := db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done); err != nil {
			return 0, 0, err
		}
		if busy == 0 && done >= frames {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return frames, done, nil
}
