package upstream_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/upstream"
)

// A link whose province cannot be reached keeps its backoff however many
// tablets push meanwhile: a kick wakes a link in sync, never one that is
// down, or every push to a commune would be a try against the province.
func TestKickDoesNotCutTheBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "commune.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A port nobody listens on: every call is refused at once.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	if err := upstream.SaveEnrolment(ctx, st, upstream.Enrolment{Server: addr, Token: "t", Replica: "commune-1"}); err != nil {
		t.Fatal(err)
	}
	conn, err := upstream.Dial(addr, "", false, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	l, err := upstream.New(ctx, upstream.Config{Store: st, Conn: conn, Upstream: addr, Every: time.Hour, MaxBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	for l.Status().State != upstream.StateDown {
		if time.Now().After(deadline) {
			t.Fatalf("the link is %s, want down", l.Status().State)
		}
		time.Sleep(time.Millisecond)
	}
	first := l.Status().NextAttempt
	for l.Status().NextAttempt.Equal(first) {
		if time.Now().After(deadline) {
			t.Fatal("the link never tried again")
		}
		l.Kick()
		time.Sleep(time.Millisecond)
	}
	// The next try's failure sets the next attempt; it came no sooner than
	// the backoff said, whatever the kicks.
	if early := time.Until(first); early > 20*time.Millisecond {
		t.Errorf("the link tried again %v before its backoff ended: kicks cut it short", early)
	}
}

// Kick never blocks, whatever the link is doing: it is called on the path
// of every push a commune stores.
func TestKickNeverBlocks(t *testing.T) {
	tr := newTiers(t, 1, 1)
	l := tr.run(t, tr.province.Addr)
	start := time.Now()
	for range 100_000 {
		l.Kick()
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("100,000 kicks took %v", d)
	}
}
