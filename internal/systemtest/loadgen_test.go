package systemtest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// loadTablet is one device of a load run: its own replica (a UUIDv7), its
// own village, and its outbox cut into push batches, made before the run so
// that generating them costs the shared cores nothing while it is measured.
type loadTablet struct {
	replica string
	village string
	batches [][]*rasoatv1.Change
	changes int // in batches, counting each (origin, seq) once
}

// newLoadTablets makes n tablets, each with batches batches of households
// households of members members, every field filled (storetest.Gen): new
// households only, so every write is a first write with an empty base,
// every value canonical protojson, seq and HLC increasing per replica from
// the real clock, and each member in its household's village. first
// numbers the villages, so that the tablets of different rounds on one
// server write different villages.
func newLoadTablets(first, n, batches, households, members int) []*loadTablet {
	tabs := make([]*loadTablet, n)
	for i := range tabs {
		t := &loadTablet{
			replica: uuid.Must(uuid.NewV7()).String(),
			village: authtest.Village(first + i + 1), // a village of the test commune, "06517-01"
		}
		g := storetest.New(t.replica, t.village)
		for range batches {
			var batch []*rasoatv1.Change
			for range households {
				batch = append(batch, g.Household(members)...)
			}
			for _, c := range batch {
				c.Value = canonical(c)
			}
			t.batches = append(t.batches, batch)
			t.changes += len(batch)
		}
		tabs[i] = t
	}
	return tabs
}

// canonicalValues caches entity.Canonical of the generator's values,
// which are the same few per field path.
var canonicalValues sync.Map // kind, field, value -> canonical value

// canonical returns c's value in the one form a tablet writes
// (entity.Canonical, as the client library does before storing a write):
// storetest's values are valid but not all in that form (its income
// leaves out the sources at zero, which the canonical form spells out).
func canonical(c *rasoatv1.Change) []byte {
	k := fmt.Sprintf("%d\x00%s\x00%s", c.GetKind(), c.GetField(), c.GetValue())
	if v, ok := canonicalValues.Load(k); ok {
		return v.([]byte)
	}
	v, err := entity.Canonical(c.GetKind(), c.GetField(), c.GetValue())
	if err != nil {
		panic(fmt.Sprintf("load generator: %s: %v", c.GetField(), err))
	}
	canonicalValues.Store(k, v)
	return v
}

// Bounds the server is about to check on every push (DESIGN.md: "sizes
// are bounded"); the generated data stays inside them.
const (
	maxReplicaIDBytes = 64
	maxVillageBytes   = 16
)

// checkRules says whether a tablet's batches pass, in push order, what the
// server checks on every push today (entity.Validate) and what it is about
// to check: canonical values, base stamps naming stored changes (here:
// none, every write being the first of its field), members in their
// household's village, bounded sizes; and that they are what one device
// writes: seq 1, 2, 3… and strictly increasing HLC stamps near the real
// clock.
func checkRules(t *loadTablet) error {
	if u, err := uuid.Parse(t.replica); err != nil || u.Version() != 7 || u.String() != t.replica {
		return fmt.Errorf("replica %q is not a canonical UUIDv7", t.replica)
	}
	if len(t.replica) > maxReplicaIDBytes || len(t.village) > maxVillageBytes {
		return fmt.Errorf("replica %q or village %q over the size bounds", t.replica, t.village)
	}
	villageOf := map[string]string{} // household -> village
	written := map[[2]string]bool{}  // (entity, field) written before
	var seq, last uint64
	now := time.Now()
	for bi, batch := range t.batches {
		for i, c := range batch {
			where := fmt.Sprintf("tablet %s batch %d changes[%d] (%s %s)", t.replica, bi, i, entity.KindName(c.GetKind()), c.GetField())
			if err := entity.Validate(c); err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
			canon, err := entity.Canonical(c.GetKind(), c.GetField(), c.GetValue())
			if err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
			if !bytes.Equal(canon, c.GetValue()) {
				return fmt.Errorf("%s: value %s is not canonical (%s)", where, c.GetValue(), canon)
			}
			if c.GetStamp().GetReplicaId() != t.replica || c.GetVillageCode() != t.village {
				return fmt.Errorf("%s: written by %s in village %s", where, c.GetStamp().GetReplicaId(), c.GetVillageCode())
			}
			if seq++; c.GetSeq() != seq {
				return fmt.Errorf("%s: seq %d, want %d", where, c.GetSeq(), seq)
			}
			ts := c.GetStamp().GetHlc()
			if ts <= last {
				return fmt.Errorf("%s: stamp %s not after the previous %s", where, hlc.Timestamp(ts), hlc.Timestamp(last))
			}
			last = ts
			if d := hlc.Timestamp(ts).Wall().Sub(now); d.Abs() > time.Minute {
				return fmt.Errorf("%s: stamp %s is %v from the real clock", where, hlc.Timestamp(ts), d)
			}
			hh := entity.HouseholdOf(c)
			switch v, ok := villageOf[hh]; {
			case c.GetKind() == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD && !ok:
				villageOf[hh] = c.GetVillageCode()
			case !ok:
				return fmt.Errorf("%s: household %s not written before its member", where, hh)
			case v != c.GetVillageCode():
				return fmt.Errorf("%s: village %s, its household's is %s", where, c.GetVillageCode(), v)
			}
			k := [2]string{c.GetEntityId(), c.GetField()}
			if !written[k] && len(c.GetBase()) > 0 {
				return fmt.Errorf("%s: first write of the field with a base", where)
			}
			written[k] = true
		}
	}
	return nil
}

// dialReady opens a connection of its own (a tablet is a device: one TCP
// connection each) and waits until it is ready, so that connecting is not
// part of a measured run. The caller closes it.
func dialReady(ctx context.Context, addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		return nil, err
	}
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			return conn, nil
		}
		if !conn.WaitForStateChange(ctx, s) {
			conn.Close()
			return nil, fmt.Errorf("connect to %s: %v (last state %v)", addr, ctx.Err(), s)
		}
	}
}

// originCount is what the log holds of one origin replica.
type originCount struct {
	rows, distinct int    // rows, and distinct origin sequence numbers
	lo, hi         uint64 // least and greatest sequence number
}

// logOrigins counts the server's log per origin replica, decoding every
// change from its SQLite file (sqlite.ReadLog; the server stopped). rows ==
// distinct == hi == n and lo == 1 is "each of 1..n exactly once".
func logOrigins(tb testing.TB, path string) (map[string]originCount, int) {
	tb.Helper()
	out := map[string]originCount{}
	seen := map[string]map[uint64]bool{}
	total := 0
	err := sqlite.ReadLog(context.Background(), path, func(_ uint64, c *rasoatv1.Change) error {
		o, s := c.GetStamp().GetReplicaId(), c.GetSeq()
		n := out[o]
		if seen[o] == nil {
			seen[o] = map[uint64]bool{}
			n.lo = s
		}
		if !seen[o][s] {
			seen[o][s] = true
			n.distinct++
		}
		n.rows++
		n.lo, n.hi = min(n.lo, s), max(n.hi, s)
		out[o] = n
		total++
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out, total
}

// checkExactlyOnce fails unless the log holds, for every tablet, each of
// its changes (seq 1..changes) exactly once, and nothing else.
func checkExactlyOnce(tb testing.TB, path string, tabs []*loadTablet) {
	tb.Helper()
	got, total := logOrigins(tb, path)
	want := 0
	for _, t := range tabs {
		want += t.changes
		c := got[t.replica]
		n := t.changes
		if c.rows != n || c.distinct != n || c.lo != 1 || c.hi != uint64(n) {
			tb.Fatalf("log holds of tablet %s: %d rows, %d distinct seqs in %d..%d; want each of 1..%d once", t.replica, c.rows, c.distinct, c.lo, c.hi, n)
		}
	}
	if total != want || len(got) != len(tabs) {
		tb.Fatalf("log holds %d changes of %d origins, want %d of the %d tablets", total, len(got), want, len(tabs))
	}
}

// percentile returns the p-quantile (0 < p <= 1) of sorted by nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
