package upstream_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/client"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/syncsvc"
	"github.com/rasoat/rasoat/server/upstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

var seeds = flag.Int("upstream.seeds", 3, "seeds of the two-tier convergence property (about 2 s each; -race about 6 s)")

// node is a server of the two-tier world: a SQLite store served over an
// in-memory connection, without authentication (every caller reads and
// writes everything: the scopes have their own tests).
type node struct {
	st   *sqlite.DB
	conn *grpc.ClientConn
}

func newNode(t *testing.T, name string) *node {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), name+".db"))
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20))
	rasoatv1.RegisterSyncServiceServer(srv, syncsvc.New(st))
	go srv.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///"+name,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(16<<20), grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop(); st.Close() })
	return &node{st: st, conn: conn}
}

type tab struct {
	c    *client.Client
	path string
	srv  *node
}

// TestTwoTierConvergence: several communes, one province, tablets under
// each commune and a province officer's tablet write at random; links and
// syncs run in random order, some cut part way (a pass stopped after a
// random few milliseconds); at the end, after every link and tablet has
// synced until nothing moves, every server and tablet holds the same
// bytes for every entity and every log holds each change once.
func TestTwoTierConvergence(t *testing.T) {
	for seed := range *seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { twoTiers(t, uint64(seed)) })
	}
}

func twoTiers(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 11))
	province := newNode(t, "province")
	const communes = 3
	var links []*upstream.Link
	var nodes []*node
	var tabs []*tab
	openTab := func(srv *node, name string) *tab {
		path := filepath.Join(t.TempDir(), name+".db")
		c, err := client.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return &tab{c: c, path: path, srv: srv}
	}
	for i := range communes {
		n := newNode(t, fmt.Sprint("commune", i))
		if err := upstream.SaveEnrolment(ctx, n.st, upstream.Enrolment{Replica: uuid.Must(uuid.NewV7()).String()}); err != nil {
			t.Fatal(err)
		}
		l, err := upstream.New(ctx, upstream.Config{Store: n.st, Conn: province.conn, PushBatch: 1 + rng.IntN(40)})
		if err != nil {
			t.Fatal(err)
		}
		nodes, links = append(nodes, n), append(links, l)
		for j := range 2 {
			tabs = append(tabs, openTab(n, fmt.Sprintf("tab%d-%d", i, j)))
		}
	}
	officer := openTab(province, "officer")
	tabs = append(tabs, officer)

	village := func(commune int) string { return fmt.Sprintf("0651%d-%02d", 7+commune, 1+rng.IntN(2)) }
	var households []string
	write := func(tb *tab, commune int) {
		var ids []string
		if err := tb.c.Households(ctx, "", func(id string) error { ids = append(ids, id); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(ids) == 0 || commune >= 0 && rng.IntN(4) == 0 {
			if commune < 0 {
				return
			}
			id, err := tb.c.CreateHousehold(ctx, village(commune), household(rng.IntN(1000)))
			if err != nil {
				t.Fatal(err)
			}
			households = append(households, id)
			return
		}
		id := ids[rng.IntN(len(ids))]
		var err error
		switch rng.IntN(2) {
		case 0:
			err = tb.c.SetField(ctx, id, "headName", fmt.Appendf(nil, `"Tên %d"`, rng.IntN(100)))
		default:
			err = tb.c.SetField(ctx, id, "housing.floorAreaM2", fmt.Appendf(nil, `%d`, 10+rng.IntN(40)))
		}
		if err != nil {
			t.Fatalf("%s: write %s: %v", tb.path, id, err)
		}
	}
	sync := func(tb *tab, cut bool) {
		cctx, cancel := context.WithCancel(ctx)
		if cut {
			time.AfterFunc(time.Duration(rng.IntN(3000))*time.Microsecond, cancel)
		}
		_, err := tb.c.Sync(cctx, tb.srv.conn)
		cancel()
		if err != nil && !cut {
			t.Fatalf("sync %s: %v", tb.path, err)
		}
	}
	pass := func(i int, cut bool) {
		cctx, cancel := context.WithCancel(ctx)
		if cut {
			time.AfterFunc(time.Duration(rng.IntN(5000))*time.Microsecond, cancel)
		}
		err := links[i].Sync(cctx)
		cancel()
		if err != nil && !cut {
			t.Fatalf("commune %d link: %v", i, err)
		}
	}
	for range 60 {
		switch k := rng.IntN(10); {
		case k < 4:
			i := rng.IntN(len(tabs) - 1)
			write(tabs[i], i/2)
		case k == 4:
			write(officer, -1)
		case k < 7:
			sync(tabs[rng.IntN(len(tabs))], rng.IntN(4) == 0)
		default:
			pass(rng.IntN(communes), rng.IntN(3) == 0)
		}
	}
	// Quiesce: two rounds of every link and every tablet bring every
	// change everywhere (a change can need a link, the province, another
	// link, then a tablet).
	for range 3 {
		for i := range links {
			pass(i, false)
		}
		for _, tb := range tabs {
			sync(tb, false)
		}
	}
	want := states(t, province.st)
	if len(want) == 0 {
		t.Fatal("no entity written")
	}
	for i, n := range nodes {
		if d := diff(want, states(t, n.st)); d != "" {
			t.Errorf("commune %d and province differ: %s", i, d)
		}
		if s := links[i].Status(); s.SetAside != 0 {
			t.Errorf("commune %d set %d changes aside", i, s.SetAside)
		}
		onceEach(t, fmt.Sprint("commune", i), n.st)
	}
	for _, tb := range tabs {
		if d := diff(want, tabletStates(t, tb.path)); d != "" {
			t.Errorf("tablet %s and province differ: %s", tb.path, d)
		}
	}
	onceEach(t, "province", province.st)
}
