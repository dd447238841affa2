package server_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BenchmarkPushAuth is what authentication and scopes cost a push: the
// same pushes (one household of 4 members, 78 changes, each its own Push,
// as a tablet syncing one edit session sends) to a server without them and
// to one with them, alternating round by round in one run, over loopback.
// The ratio is the figure; absolute rates follow the machine's load.
//
//	go test -run '^$' -bench PushAuth -benchtime 400x ./server/
func BenchmarkPushAuth(b *testing.B) {
	ctx := context.Background()
	// Without: the sync service alone, as before authentication.
	plainSt, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "plain.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer plainSt.Close()
	plainSrv, err := server.New(server.WithSync(plainSt))
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go plainSrv.Serve(sctx, lis)
	plain, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()
	// With: a collaborator's enrolled tablet in its village.
	s := authtest.Serve(b, nil)
	if err := authtest.Seed(ctx, s.Store, 1, authtest.Collaborator("hoa", authtest.Village(1))); err != nil {
		b.Fatal(err)
	}
	anon, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer anon.Close()
	tok, err := authtest.Enrol(ctx, s.Store, anon, "hoa", "tab-hoa")
	if err != nil {
		b.Fatal(err)
	}
	authed, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()), authtest.Bearer(tok))
	if err != nil {
		b.Fatal(err)
	}
	defer authed.Close()

	gp, ga := storetest.New("tab-hoa", authtest.Village(1)), storetest.New("tab-hoa", authtest.Village(1))
	push := func(conn *grpc.ClientConn, g *storetest.Gen) time.Duration {
		batch := storetest.Must(g.Household(4))
		start := time.Now()
		if _, err := rasoatv1.NewSyncServiceClient(conn).Push(ctx, &rasoatv1.PushRequest{ReplicaId: g.Replica, Changes: batch}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var without, with time.Duration
	for b.Loop() {
		without += push(plain, gp)
		with += push(authed, ga)
	}
	ratio := float64(with) / float64(without)
	b.ReportMetric(float64(without.Microseconds())/float64(b.N), "µs/push-without")
	b.ReportMetric(float64(with.Microseconds())/float64(b.N), "µs/push-with")
	b.ReportMetric(ratio, "with/without")
	fmt.Printf("push of 78 changes: %.0f µs without authentication, %.0f µs with (token, roles, villages, receipt): %.2f×\n",
		float64(without.Microseconds())/float64(b.N), float64(with.Microseconds())/float64(b.N), ratio)
}
