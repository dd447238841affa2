// Package auth authenticates every call: it reads the device token from the
// "authorization: Bearer …" metadata, finds the device and its person,
// checks the person's roles may call the method, and puts the identity in
// the context. One interceptor, unary and streaming; health, reflection
// and enrolment pass without a token. It also makes and reads tokens and
// enrolment codes (secret.go) and rate-limits failures per address
// (limit.go).
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Identity is who is calling: the person and the device whose token came
// with the call.
type Identity struct {
	Person directory.Person
	Device directory.Device
}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the caller's identity, if authenticated.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(*Identity)
	return id, ok
}

// Directory is what authentication reads (server/store/sqlite implements
// it).
type Directory interface {
	// DeviceByToken returns the device holding the token id, revoked or
	// not, and its person; directory.ErrNotFound if none.
	DeviceByToken(ctx context.Context, tokenID string) (directory.Device, directory.Person, error)
	// TouchDevice records when the device last called.
	TouchDevice(ctx context.Context, deviceID string, at time.Time) error
}

// open methods need no token: how a device gets one, and what load
// balancers and grpcurl need before.
var open = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
	rasoatv1.EnrolService_Enrol_FullMethodName,
}

// dataRoles read and write households within their units.
var dataRoles = []rasoatv1.Role{
	rasoatv1.Role_ROLE_COLLABORATOR, rasoatv1.Role_ROLE_VILLAGE_HEAD, rasoatv1.Role_ROLE_COMMUNE_OFFICER,
	rasoatv1.Role_ROLE_COMMUNE_CHAIR, rasoatv1.Role_ROLE_COMMUNE_SERVER,
}

var anyRole = []rasoatv1.Role{
	rasoatv1.Role_ROLE_COLLABORATOR, rasoatv1.Role_ROLE_VILLAGE_HEAD, rasoatv1.Role_ROLE_COMMUNE_OFFICER,
	rasoatv1.Role_ROLE_COMMUNE_CHAIR, rasoatv1.Role_ROLE_ADMIN, rasoatv1.Role_ROLE_SERVICE, rasoatv1.Role_ROLE_COMMUNE_SERVER,
}

// Methods says which roles may call each service (by its full name's
// prefix "/pkg.Service/") or method. A method in no entry is refused to
// everyone: a service added later is closed until it is given here.
var Methods = map[string][]rasoatv1.Role{
	"/" + rasoatv1.ScoringService_ServiceDesc.ServiceName + "/": anyRole,
	"/" + rasoatv1.SyncService_ServiceDesc.ServiceName + "/":    dataRoles,
	"/" + rasoatv1.HistoryService_ServiceDesc.ServiceName + "/": dataRoles,
	"/" + rasoatv1.AdminService_ServiceDesc.ServiceName + "/":   {rasoatv1.Role_ROLE_ADMIN},
	// Reports are the officers', the chair's and the village heads' (their
	// village), and another tool's.
	"/" + rasoatv1.ReportService_ServiceDesc.ServiceName + "/": {rasoatv1.Role_ROLE_VILLAGE_HEAD, rasoatv1.Role_ROLE_COMMUNE_OFFICER,
		rasoatv1.Role_ROLE_COMMUNE_CHAIR, rasoatv1.Role_ROLE_SERVICE, rasoatv1.Role_ROLE_COMMUNE_SERVER},
	// Quality flags are read by whoever reads reports: the officer who
	// acknowledges them, the chair who decides, the village head for the
	// village, a supervising tool.
	"/" + rasoatv1.QualityService_ServiceDesc.ServiceName + "/": {rasoatv1.Role_ROLE_VILLAGE_HEAD, rasoatv1.Role_ROLE_COMMUNE_OFFICER,
		rasoatv1.Role_ROLE_COMMUNE_CHAIR, rasoatv1.Role_ROLE_SERVICE, rasoatv1.Role_ROLE_COMMUNE_SERVER},
	rasoatv1.EnrolService_WhoAmI_FullMethodName: anyRole,
	// The periods and planned days are read by every tablet and commune
	// server; set by an officer of the unit (the service checks which) or
	// an admin.
	rasoatv1.ProcedureService_Procedure_FullMethodName:    append(slices.Clone(dataRoles), rasoatv1.Role_ROLE_ADMIN),
	rasoatv1.ProcedureService_SetProcedure_FullMethodName: {rasoatv1.Role_ROLE_COMMUNE_OFFICER, rasoatv1.Role_ROLE_ADMIN},
}

// rolesFor returns the roles that may call method, and whether it needs a
// token at all.
func rolesFor(method string) (roles []rasoatv1.Role, needsToken bool) {
	for _, p := range open {
		if method == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(method, p)) {
			return nil, false
		}
	}
	if r, ok := Methods[method]; ok {
		return r, true
	}
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		return Methods[method[:i+1]], true
	}
	return nil, true
}

// Known reports whether method has a rule: open, or some roles may call
// it. A method without one is refused to everyone.
func Known(method string) bool {
	roles, needsToken := rolesFor(method)
	return !needsToken || len(roles) > 0
}

// Authenticator checks calls against a Directory.
type Authenticator struct {
	dir     Directory
	limiter *Limiter
	log     *slog.Logger
	now     func() time.Time
}

// New returns an Authenticator; failures are rate-limited by lim.
func New(dir Directory, lim *Limiter, log *slog.Logger) *Authenticator {
	return &Authenticator{dir: dir, limiter: lim, log: log, now: time.Now}
}

// seenEvery bounds how often a device's last_seen is written: a minute is
// precise enough for an admin, and spares the writer a row per call.
const seenEvery = time.Minute

// authenticate returns ctx with the caller's identity, or a status error.
func (a *Authenticator) authenticate(ctx context.Context, method string) (context.Context, error) {
	roles, needsToken := rolesFor(method)
	if !needsToken {
		return ctx, nil
	}
	id, err := a.identify(ctx)
	if err != nil {
		// A valid token always gets through: tablets of one village often
		// share one address behind a carrier's NAT, and one of them failing
		// must not lock the others out. Failures are counted, and past the
		// allowance answered as such: guessing a 256-bit token is hopeless
		// anyway, and the lookup that refuses it is one indexed read.
		// Only an unknown token is a guess; a missing or revoked one is a
		// device that must enrol again, and is told so every time.
		if rpcerr.Reason(err) == rasoatv1.ErrorReason_TOKEN_UNKNOWN {
			addr := PeerAddr(ctx)
			if wait, blocked := a.limiter.Blocked(addr); blocked {
				return nil, RateLimited(wait)
			}
			a.limiter.Fail(addr)
		}
		return nil, err
	}
	if !slices.ContainsFunc(id.Person.Roles, func(r rasoatv1.Role) bool { return slices.Contains(roles, r) }) {
		return nil, rpcerr.New(codes.PermissionDenied, rasoatv1.ErrorReason_ROLE_DENIED,
			fmt.Sprintf("%s: person %s has no role that may call it", method, id.Person.ID), map[string]string{"method": method})
	}
	if now := a.now(); now.Sub(id.Device.LastSeen) >= seenEvery {
		if err := a.dir.TouchDevice(ctx, id.Device.ID, now); err != nil {
			a.log.Warn("record device last seen", "device", id.Device.ID, "err", err)
		}
	}
	return NewContext(ctx, id), nil
}

func (a *Authenticator) identify(ctx context.Context) (*Identity, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return nil, rpcerr.New(codes.Unauthenticated, rasoatv1.ErrorReason_TOKEN_MISSING,
			"no device token: enrol this device (rasoat enrol) and send its token as authorization: Bearer <token>", nil)
	}
	raw, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		raw, ok = strings.CutPrefix(vals[0], "bearer ")
	}
	if !ok || len(vals) > 1 {
		return nil, rpcerr.New(codes.Unauthenticated, rasoatv1.ErrorReason_TOKEN_UNKNOWN, "authorization must be one \"Bearer <token>\"", nil)
	}
	tokenID, hash, err := ParseToken(raw)
	if err != nil {
		return nil, rpcerr.New(codes.Unauthenticated, rasoatv1.ErrorReason_TOKEN_UNKNOWN, "the device token is not one this server issued", nil)
	}
	dev, person, err := a.dir.DeviceByToken(ctx, tokenID)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return nil, rpcerr.New(codes.Unauthenticated, rasoatv1.ErrorReason_TOKEN_UNKNOWN, "the device token is not one this server issued", nil)
	case err != nil && ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err() // the caller went away
	case err != nil:
		a.log.Error("authenticate: read the directory", "err", err)
		return nil, rpcerr.New(codes.Unavailable, rasoatv1.ErrorReason_STORE_BUSY, "cannot check the token now: retry", nil)
	}
	if !constantTimeEqual(dev.TokenHash, hash) {
		return nil, rpcerr.New(codes.Unauthenticated, rasoatv1.ErrorReason_TOKEN_UNKNOWN, "the device token is not one this server issued", nil)
	}
	if dev.Revoked() || person.Disabled {
		return nil, rpcerr.New(codes.Unauthenticated, rasoatv1.ErrorReason_TOKEN_REVOKED,
			"this device's token was revoked: ask an admin for a new enrolment code, then rasoat enrol", nil)
	}
	return &Identity{Person: person, Device: dev}, nil
}

// RateLimited is the status of a caller refused for too many failures.
func RateLimited(wait time.Duration) error {
	s := int(wait.Seconds()) + 1
	return rpcerr.New(codes.ResourceExhausted, rasoatv1.ErrorReason_RATE_LIMITED,
		fmt.Sprintf("too many failed attempts from this address: wait %d s", s), map[string]string{"retry_after_s": strconv.Itoa(s)})
}

// Unary is the unary interceptor.
func (a *Authenticator) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := a.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// Stream is the streaming interceptor.
func (a *Authenticator) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := a.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &identified{ss, ctx})
}

type identified struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identified) Context() context.Context { return s.ctx }
