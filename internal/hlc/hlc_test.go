package hlc_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/hlc"
)

// fakeWall is a settable wall clock.
type fakeWall struct{ ns atomic.Int64 }

func newFakeWall(t time.Time) *fakeWall {
	w := &fakeWall{}
	w.set(t)
	return w
}

func (w *fakeWall) set(t time.Time)     { w.ns.Store(t.UnixNano()) }
func (w *fakeWall) add(d time.Duration) { w.ns.Add(int64(d)) }
func (w *fakeWall) now() time.Time      { return time.Unix(0, w.ns.Load()).UTC() }
func mustParseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

var epoch = mustParseTime("2026-06-01T08:00:00Z")

func TestTimestampLayout(t *testing.T) {
	wall := mustParseTime("2026-06-01T08:00:00.123456Z")
	ts := hlc.At(wall, 7)
	if got, want := ts.Wall(), wall.Truncate(time.Millisecond); !got.Equal(want) {
		t.Errorf("Wall() = %v, want %v", got, want)
	}
	if ts.Logical() != 7 {
		t.Errorf("Logical() = %d, want 7", ts.Logical())
	}
	if uint64(ts) != uint64(wall.UnixMilli())<<16|7 {
		t.Errorf("ts = %#x, want ms<<16|7", uint64(ts))
	}
	if !hlc.Timestamp(0).IsZero() || ts.IsZero() {
		t.Error("IsZero wrong")
	}
	if hlc.At(wall, 0xFFFF) >= hlc.At(wall.Add(time.Millisecond), 0) {
		t.Error("a later millisecond must beat any logical count")
	}
}

func TestTimestampString(t *testing.T) {
	for _, tc := range []struct {
		ts   hlc.Timestamp
		want string
	}{
		{0, "0000000000000000"},
		{1, "0000000000000001"},
		{0x0192abcdef01ffff, "0192abcdef01ffff"},
		{^hlc.Timestamp(0), "ffffffffffffffff"},
	} {
		if got := tc.ts.String(); got != tc.want {
			t.Errorf("%#x.String() = %q, want %q", uint64(tc.ts), got, tc.want)
		}
		back, err := hlc.Parse(tc.want)
		if err != nil || back != tc.ts {
			t.Errorf("Parse(%q) = %#x, %v; want %#x", tc.want, uint64(back), err, uint64(tc.ts))
		}
	}

	// String order is numeric order.
	r := rand.New(rand.NewPCG(1, 2))
	tss := make([]hlc.Timestamp, 1000)
	for i := range tss {
		tss[i] = hlc.Timestamp(r.Uint64() >> r.IntN(64))
	}
	strs := make([]string, len(tss))
	for i, ts := range tss {
		strs[i] = ts.String()
	}
	slices.Sort(tss)
	sort.Strings(strs)
	for i := range tss {
		if tss[i].String() != strs[i] {
			t.Fatalf("string order differs from numeric order at %d: %s vs %s", i, tss[i], strs[i])
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "0", "000000000000000", "00000000000000000", "0192ABCDEF01FFFF", "0192abcdef01fffg", " 192abcdef01ffff", "-192abcdef01ffff"} {
		if ts, err := hlc.Parse(s); err == nil {
			t.Errorf("Parse(%q) = %s, want error", s, ts)
		}
	}
}

func TestTimestampText(t *testing.T) {
	ts := hlc.At(epoch, 3)
	b, err := ts.MarshalText()
	if err != nil || string(b) != ts.String() {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
	var back hlc.Timestamp
	if err := back.UnmarshalText(b); err != nil || back != ts {
		t.Fatalf("UnmarshalText = %s, %v; want %s", back, err, ts)
	}
	if err := back.UnmarshalText([]byte("nope")); err == nil {
		t.Fatal("UnmarshalText accepted garbage")
	}
}

func TestClockNow(t *testing.T) {
	ms := func(t time.Time) hlc.Timestamp { return hlc.At(t, 0) }
	for _, tc := range []struct {
		name    string
		restore hlc.Timestamp // applied before the steps
		steps   []time.Duration
		want    []hlc.Timestamp // Now() after each wall step
	}{
		{
			name:  "first reading takes the wall clock",
			steps: []time.Duration{0},
			want:  []hlc.Timestamp{ms(epoch)},
		},
		{
			name:  "wall clock standing still bumps the logical counter",
			steps: []time.Duration{0, 0, 0},
			want:  []hlc.Timestamp{ms(epoch), ms(epoch) + 1, ms(epoch) + 2},
		},
		{
			name:  "wall clock within the same millisecond bumps the logical counter",
			steps: []time.Duration{0, 300 * time.Microsecond},
			want:  []hlc.Timestamp{ms(epoch), ms(epoch) + 1},
		},
		{
			name:  "wall clock moving ahead resets the logical counter",
			steps: []time.Duration{0, 0, time.Millisecond},
			want:  []hlc.Timestamp{ms(epoch), ms(epoch) + 1, ms(epoch.Add(time.Millisecond))},
		},
		{
			name:  "wall clock set back keeps increasing",
			steps: []time.Duration{0, -time.Hour, 0},
			want:  []hlc.Timestamp{ms(epoch), ms(epoch) + 1, ms(epoch) + 2},
		},
		{
			name:    "logical overflow advances physical by one millisecond",
			restore: hlc.At(epoch, 0xFFFE),
			steps:   []time.Duration{0, 0, 0},
			want:    []hlc.Timestamp{hlc.At(epoch, 0xFFFF), hlc.At(epoch.Add(time.Millisecond), 0), hlc.At(epoch.Add(time.Millisecond), 1)},
		},
		{
			name:    "restore after a clock set back: new timestamps exceed everything written",
			restore: hlc.At(epoch.Add(72*time.Hour), 5), // greatest timestamp in the reopened store
			steps:   []time.Duration{0, time.Second},
			want:    []hlc.Timestamp{hlc.At(epoch.Add(72*time.Hour), 6), hlc.At(epoch.Add(72*time.Hour), 7)},
		},
		{
			name:    "restore of an older timestamp does not lower the clock",
			restore: hlc.At(epoch.Add(-time.Hour), 9),
			steps:   []time.Duration{0},
			want:    []hlc.Timestamp{ms(epoch)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFakeWall(epoch)
			c := hlc.New(w.now)
			c.Restore(tc.restore)
			var got []hlc.Timestamp
			for _, d := range tc.steps {
				w.add(d)
				got = append(got, c.Now())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Now() sequence = %v, want %v", got, tc.want)
			}
			if c.Last() != got[len(got)-1] {
				t.Errorf("Last() = %s, want %s", c.Last(), got[len(got)-1])
			}
		})
	}
}

func TestClockRestoreIdempotent(t *testing.T) {
	w := newFakeWall(epoch)
	c := hlc.New(w.now)
	hi := hlc.At(epoch.Add(time.Minute), 0)
	c.Restore(hi)
	c.Restore(hlc.At(epoch, 0))
	if c.Last() != hi {
		t.Fatalf("Last() = %s, want %s", c.Last(), hi)
	}
}

func TestCheckDrift(t *testing.T) {
	now := mustParseTime("2026-11-25T09:00:00Z")
	for _, tc := range []struct {
		name    string
		ts      hlc.Timestamp
		max     time.Duration
		wantErr string // empty: allowed
	}{
		{name: "in the past is allowed", ts: hlc.At(now.Add(-1000*time.Hour), 0), max: 24 * time.Hour},
		{name: "exactly max ahead is allowed", ts: hlc.At(now.Add(24*time.Hour), 0xFFFF), max: 24 * time.Hour},
		{
			name:    "one millisecond over max is rejected",
			ts:      hlc.At(now.Add(24*time.Hour+time.Millisecond), 0),
			max:     24 * time.Hour,
			wantErr: "timestamp 2026-11-26T09:00:00.001Z is 24h0m0.001s ahead of this clock (max 24h0m0s)",
		},
		{
			name:    "far ahead says by how much",
			ts:      hlc.At(mustParseTime("2026-11-27T10:00:00Z"), 0),
			max:     24 * time.Hour,
			wantErr: "timestamp 2026-11-27T10:00:00Z is 49h0m0s ahead of this clock (max 24h0m0s)",
		},
		{name: "zero max allows now", ts: hlc.At(now, 0), max: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := hlc.CheckDrift(tc.ts, now, tc.max)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckDrift = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckDrift = nil, want error")
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error = %q\nwant    %q", err, tc.wantErr)
			}
			if !errors.Is(err, hlc.ErrTooFarAhead) {
				t.Error("error does not wrap ErrTooFarAhead")
			}
			var de *hlc.DriftError
			if !errors.As(err, &de) || de.Timestamp != tc.ts || de.Max != tc.max || de.Ahead <= tc.max {
				t.Errorf("DriftError = %+v", de)
			}
		})
	}
}

func TestDriftMessageRoundsUp(t *testing.T) {
	now := epoch.Add(-time.Microsecond) // 1µs over the bound
	err := hlc.CheckDrift(hlc.At(epoch.Add(time.Hour), 0), now, time.Hour)
	if err == nil || err.Error() != "timestamp 2026-06-01T09:00:00Z is 1h0m0.001s ahead of this clock (max 1h0m0s)" {
		t.Fatalf("err = %v", err)
	}
}

func TestObserve(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []hlc.Option
		remote time.Duration // ahead of the local wall clock
		ok     bool
	}{
		{name: "remote behind is allowed", remote: -time.Hour, ok: true},
		{name: "remote exactly MaxDrift ahead is allowed", remote: hlc.DefaultMaxDrift, ok: true},
		{name: "remote just over MaxDrift is rejected", remote: hlc.DefaultMaxDrift + time.Millisecond},
		{name: "WithMaxDrift: exactly the bound is allowed", opts: []hlc.Option{hlc.WithMaxDrift(5 * time.Minute)}, remote: 5 * time.Minute, ok: true},
		{name: "WithMaxDrift: just over the bound is rejected", opts: []hlc.Option{hlc.WithMaxDrift(5 * time.Minute)}, remote: 5*time.Minute + time.Millisecond},
		{name: "WithMaxDrift: negative means no drift", opts: []hlc.Option{hlc.WithMaxDrift(-time.Hour)}, remote: time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFakeWall(epoch)
			c := hlc.New(w.now, tc.opts...)
			first := c.Now()
			remote := hlc.At(epoch.Add(tc.remote), 42)
			err := c.Observe(remote)
			if tc.ok != (err == nil) {
				t.Fatalf("Observe(%v ahead) = %v, want ok=%v", tc.remote, err, tc.ok)
			}
			if !tc.ok {
				if !errors.Is(err, hlc.ErrTooFarAhead) {
					t.Errorf("error %v does not wrap ErrTooFarAhead", err)
				}
				if c.Last() != first {
					t.Errorf("rejected timestamp moved the clock: Last() = %s, want %s", c.Last(), first)
				}
				return
			}
			next := c.Now()
			if next <= remote || next <= first {
				t.Errorf("Now() = %s after observing %s, want greater", next, remote)
			}
		})
	}
}

func TestObserveDoesNotTick(t *testing.T) {
	w := newFakeWall(epoch)
	c := hlc.New(w.now)
	remote := hlc.At(epoch, 10)
	for range 1000 {
		if err := c.Observe(remote); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Now(); got != remote+1 {
		t.Fatalf("Now() = %s, want %s", got, remote+1)
	}
}

func TestNewNilUsesTimeNow(t *testing.T) {
	before := time.Now()
	got := hlc.New(nil).Now().Wall()
	if got.Before(before.Truncate(time.Millisecond)) || got.After(time.Now()) {
		t.Fatalf("Now().Wall() = %v, not between %v and now", got, before)
	}
}

func TestClockConcurrent(t *testing.T) {
	w := newFakeWall(epoch)
	c := hlc.New(w.now)
	const workers, each = 8, 2000
	out := make([][]hlc.Timestamp, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for j := range each {
				if j%100 == 0 {
					w.add(time.Millisecond)
				}
				if j%7 == 0 {
					_ = c.Observe(hlc.At(w.now(), uint16(j)))
				}
				out[i] = append(out[i], c.Now())
			}
		})
	}
	wg.Wait()
	seen := make(map[hlc.Timestamp]bool, workers*each)
	for _, ts := range out {
		for j, v := range ts {
			if j > 0 && v <= ts[j-1] {
				t.Fatalf("not increasing within a goroutine: %s after %s", v, ts[j-1])
			}
			if seen[v] {
				t.Fatalf("timestamp %s issued twice", v)
			}
			seen[v] = true
		}
	}
}

func BenchmarkNow(b *testing.B) {
	c := hlc.New(nil)
	for b.Loop() {
		c.Now()
	}
}
