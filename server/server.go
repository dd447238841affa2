// Package server assembles rasoat's gRPC server: the services, gRPC health
// and reflection, and the interceptors every call goes through.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/access"
	"github.com/rasoat/rasoat/server/adminsvc"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/proceduresvc"
	"github.com/rasoat/rasoat/server/qualitysvc"
	"github.com/rasoat/rasoat/server/report"
	"github.com/rasoat/rasoat/server/scoring"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/syncsvc"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Message size limits, set on purpose rather than left to defaults. A
// household of four is about 0.5 KB on the wire and its assessment, with
// every indicator's reasons in words, about 1.7 KB. 16 MiB in takes a full
// AssessStream batch (scoring.MaxBatch households) with room to spare, and
// refuses a runaway message before it is buffered; responses are larger
// than requests, hence 64 MiB out.
const (
	maxRecvMsgSize = 16 << 20
	maxSendMsgSize = 64 << 20
)

// defaultShutdownTimeout bounds how long Serve waits for calls in flight
// when its context ends before it cuts them off.
const defaultShutdownTimeout = 10 * time.Second

// Server is a configured gRPC server, ready to Serve.
type Server struct {
	grpc            *grpc.Server
	health          *health.Server
	log             *slog.Logger
	shutdownTimeout time.Duration
}

type config struct {
	reg             *survey.Registry
	store           syncsvc.Store
	syncOpts        []syncsvc.Option
	dir             Directory
	limiter         *auth.Limiter
	creds           credentials.TransportCredentials
	log             *slog.Logger
	shutdownTimeout time.Duration
}

// Option configures New.
type Option func(*config)

// WithRegistry sets the standards the scoring service knows; the default is
// survey.Builtin().
func WithRegistry(r *survey.Registry) Option { return func(c *config) { c.reg = r } }

// WithSync serves rasoat.v1.SyncService over st (server/store/sqlite, or
// another engine behind the same small interface). Without it the server
// only scores.
func WithSync(st syncsvc.Store, opts ...syncsvc.Option) Option {
	return func(c *config) { c.store, c.syncOpts = st, opts }
}

// Directory is the store of units, people and devices that authentication,
// scopes and the admin services read (server/store/sqlite implements it).
type Directory interface {
	auth.Directory
	access.Directory
	adminsvc.Store
}

// WithAuth turns authentication on: every call but health, reflection and
// enrolment needs a device token of dir, its person's roles must allow the
// method, and sync reads and writes only the person's villages and fields
// (access.DefaultPolicy). It serves AdminService, EnrolService and
// HistoryService over dir. lim paces failed attempts per address (nil: the
// defaults of auth.NewLimiter).
func WithAuth(dir Directory, lim *auth.Limiter) Option {
	return func(c *config) { c.dir, c.limiter = dir, lim }
}

// WithTLS serves over TLS with creds (credentials.NewServerTLSFromFile).
func WithTLS(creds credentials.TransportCredentials) Option {
	return func(c *config) { c.creds = creds }
}

// WithLogger sets where calls and failures are logged; the default discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithShutdownTimeout bounds the graceful stop of Serve (default 10s):
// after it, calls still running are cancelled.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) { c.shutdownTimeout = d }
}

// New builds the server. It returns an error (none yet) so that opening a
// store can join it without changing callers.
func New(opts ...Option) (*Server, error) {
	c := config{shutdownTimeout: defaultShutdownTimeout}
	for _, o := range opts {
		o(&c)
	}
	if c.reg == nil {
		c.reg = survey.Builtin()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if len(c.reg.Standards()) == 0 {
		return nil, errors.New("new server: registry holds no standard")
	}

	s := &Server{log: c.log, shutdownTimeout: c.shutdownTimeout}
	// Interceptors run in this order; observe comes first so that it logs
	// the final outcome of every later one and recovers their panics;
	// authentication last, next to the handlers it guards.
	unary := []grpc.UnaryServerInterceptor{observeUnary(c.log), guardUnary}
	stream := []grpc.StreamServerInterceptor{observeStream(c.log), guardStream}
	var authn *auth.Authenticator
	if c.dir != nil {
		if c.limiter == nil {
			c.limiter = auth.NewLimiter(auth.DefaultFailEvery, auth.DefaultFailBurst)
		}
		authn = auth.New(c.dir, c.limiter, c.log)
		unary = append(unary, authn.Unary)
		stream = append(stream, authn.Stream)
	}
	gopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.MaxSendMsgSize(maxSendMsgSize),
		grpc.ForceServerCodecV2(newGuardCodec()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	if c.creds != nil {
		gopts = append(gopts, grpc.Creds(c.creds))
	}
	s.grpc = grpc.NewServer(gopts...)

	rasoatv1.RegisterScoringServiceServer(s.grpc, scoring.New(c.reg, c.log))

	s.health = health.NewServer()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(rasoatv1.ScoringService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	if c.dir != nil {
		svc := adminsvc.New(c.dir, c.limiter, c.log)
		rasoatv1.RegisterAdminServiceServer(s.grpc, svc)
		rasoatv1.RegisterEnrolServiceServer(s.grpc, svc)
		rasoatv1.RegisterHistoryServiceServer(s.grpc, svc)
		// The scope goes last so that a caller's own options cannot
		// replace it with one that ignores the identity.
		c.syncOpts = append(c.syncOpts, syncsvc.WithScope(access.NewScope(c.dir, access.DefaultPolicy).WithStandards(c.reg)))
		if st, ok := c.store.(report.Store); ok {
			rasoatv1.RegisterReportServiceServer(s.grpc, report.New(st, c.dir, c.log).WithStandards(c.reg))
		}
		if st, ok := c.dir.(proceduresvc.Store); ok {
			rasoatv1.RegisterProcedureServiceServer(s.grpc, proceduresvc.New(st, c.log))
		}
		if st, ok := c.store.(qualitysvc.Store); ok {
			rasoatv1.RegisterQualityServiceServer(s.grpc, qualitysvc.New(st, c.dir, c.log))
		}
	}
	if d, ok := c.store.(deriving); ok {
		// Reports and quality flags read the facts each push keeps;
		// households stored before facts were kept (or before a schema
		// that keeps more of them) get theirs now.
		if err := d.SetDeriver(context.Background(), report.Deriver{Standards: c.reg}, false); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	if c.store != nil {
		rasoatv1.RegisterSyncServiceServer(s.grpc, syncsvc.New(c.store, c.syncOpts...))
		s.health.SetServingStatus(rasoatv1.SyncService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(s.grpc, s.health)

	reflection.Register(s.grpc)
	return s, nil
}

// deriving is a store that keeps report facts (server/store/facts).
type deriving interface {
	SetDeriver(ctx context.Context, d store.Deriver, rebuild bool) error
}

// GetServiceInfo returns the services served and their methods.
func (s *Server) GetServiceInfo() map[string]grpc.ServiceInfo { return s.grpc.GetServiceInfo() }

// Serve accepts connections on lis until ctx is done, then stops
// gracefully: health turns NOT_SERVING, new calls are refused, calls in
// flight get the shutdown timeout to finish before they are cancelled. It
// returns nil after a stop caused by ctx, and the listener's error
// otherwise. Serve closes lis.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(lis) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}

	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	t := time.NewTimer(s.shutdownTimeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		s.log.Warn("graceful stop timed out; cancelling calls in flight", "timeout", s.shutdownTimeout)
		s.grpc.Stop()
		<-stopped
	}
	// A stop that wins the race with the start of Serve is still a stop.
	if err := <-served; !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// SetServing sets the health status of a service name that is not a gRPC
// service of this server (the upstream link, "rasoat.v1.Upstream"), so
// that a health check can watch it. After Serve's stop every status is
// NOT_SERVING whatever is set.
func (s *Server) SetServing(service string, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus(service, st)
}
