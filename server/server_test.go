package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// syncBuffer is a log sink the server's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPanicInUnaryCallIsInternalAndLogged(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	info := &grpc.UnaryServerInfo{FullMethod: "/rasoat.v1.ScoringService/Assess"}
	resp, err := observeUnary(log)(t.Context(), nil, info, func(context.Context, any) (any, error) {
		var m map[string]int
		m["boom"]++ // a nil map write: a real runtime panic
		return "unreachable", nil
	})
	if status.Code(err) != codes.Internal || resp != nil {
		t.Fatalf("got %v, %v; want nil, Internal", resp, err)
	}
	if strings.Contains(status.Convert(err).Message(), "nil map") {
		t.Errorf("panic details leaked to the caller: %v", err)
	}
	out := logs.String()
	for _, want := range []string{"panic in call", "assignment to entry in nil map", "/rasoat.v1.ScoringService/Assess", "code=Internal", "stack="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeStream) Context() context.Context { return f.ctx }

func TestPanicInStreamIsInternalAndLogged(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	info := &grpc.StreamServerInfo{FullMethod: "/rasoat.v1.ScoringService/AssessStream"}
	err := observeStream(log)(nil, fakeStream{ctx: t.Context()}, info, func(any, grpc.ServerStream) error {
		panic("stream handler bug")
	})
	if status.Code(err) != codes.Internal {
		t.Fatalf("got %v, want Internal", err)
	}
	if out := logs.String(); !strings.Contains(out, "stream handler bug") || !strings.Contains(out, "AssessStream") {
		t.Errorf("panic not logged:\n%s", out)
	}
}

func TestCallsAreLoggedByOutcome(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	info := &grpc.UnaryServerInfo{FullMethod: "/m"}
	ok := func(context.Context, any) (any, error) { return "ok", nil }
	bad := func(context.Context, any) (any, error) { return nil, status.Error(codes.InvalidArgument, "bad field") }
	broken := func(context.Context, any) (any, error) { return nil, errors.New("disk on fire") }
	for _, h := range []grpc.UnaryHandler{ok, bad, broken} {
		observeUnary(log)(t.Context(), nil, info, h)
	}
	out := logs.String()
	if strings.Contains(out, "code=OK") {
		t.Errorf("successful call logged at info:\n%s", out)
	}
	if !strings.Contains(out, "level=INFO") || !strings.Contains(out, "code=InvalidArgument") {
		t.Errorf("caller's fault not at info:\n%s", out)
	}
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "disk on fire") {
		t.Errorf("server's fault not at error:\n%s", out)
	}
}

// serve starts s on a loopback port and returns a connection and a stop
// function that cancels Serve's context and returns what Serve returned.
func serve(t *testing.T, s *Server) (*grpc.ClientConn, func() error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel() })
	return conn, func() error {
		cancel()
		select {
		case err := <-served:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return 10s after its context ended")
			return nil
		}
	}
}

func TestServeStopsWhenContextEnds(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	conn, stop := serve(t, s)
	res, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", res, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v after a stop, want nil", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("server still answers after Serve returned")
	}
}

func TestServeCutsOffCallsAfterShutdownTimeout(t *testing.T) {
	s, err := New(WithShutdownTimeout(200 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	conn, stop := serve(t, s)
	// An open stream the client never closes would hold GracefulStop forever.
	stream, err := rasoatv1.NewScoringServiceClient(conn).AssessStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rasoatv1.AssessStreamRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v, want nil", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Errorf("stop took %v, want about the 200ms timeout", d)
	}
	if _, err := stream.Recv(); err == nil {
		t.Fatal("stream still open after the server stopped")
	}
}

func TestServeReturnsListenerError(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis.Close()
	if err := s.Serve(t.Context(), lis); err == nil {
		t.Fatal("Serve on a closed listener returned nil")
	}
}
