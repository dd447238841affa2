// Package adminsvc serves the directory: AdminService (units, people,
// enrolment codes, devices), EnrolService (a code for a device token; who
// am I) and HistoryService (who changed an entity). The command line's
// admin verbs and the officers' web page call these same services.
package adminsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Store is what the services need (server/store/sqlite implements it).
type Store interface {
	PutUnits(ctx context.Context, units []*rasoatv1.Unit, served string) (created, updated int, err error)
	Units(ctx context.Context) ([]*rasoatv1.Unit, string, error)
	VillagesUnder(ctx context.Context, codes []string) ([]string, error)
	PutPeople(ctx context.Context, people []directory.Person) (created, updated int, err error)
	People(ctx context.Context) ([]directory.Person, error)
	IssueCode(ctx context.Context, c directory.Code) error
	Enrol(ctx context.Context, e directory.Enrolment) (directory.Enrolled, error)
	Devices(ctx context.Context, personID string) ([]directory.Device, error)
	RevokeDevice(ctx context.Context, deviceID string, at time.Time) (directory.Device, error)
	History(ctx context.Context, entityID string, after uint64, limit int) ([]store.HistoryEntry, bool, error)
	Entity(ctx context.Context, id string) (entity.State, bool, error)
}

// Service implements the three services.
type Service struct {
	rasoatv1.UnimplementedAdminServiceServer
	rasoatv1.UnimplementedEnrolServiceServer
	rasoatv1.UnimplementedHistoryServiceServer
	st      Store
	limiter *auth.Limiter
	log     *slog.Logger
	now     func() time.Time
}

// New returns the services over st; failed enrolments count against lim.
func New(st Store, lim *auth.Limiter, log *slog.Logger) *Service {
	return &Service{st: st, limiter: lim, log: log, now: time.Now}
}

// Bounds of admin requests.
const (
	// MaxUnitsPerRequest: a province's file of every unit (about 100
	// communes and 3,000 villages for Lạng Sơn) fits many times over; the
	// country's (some 100,000 villages) in a few requests.
	MaxUnitsPerRequest = 50_000
	// MaxHistory bounds one EntityHistory page.
	MaxHistory = 1_000
	// DefaultPage and MaxPage bound one page of a List method: 5,000
	// units or people are well under a megabyte, and a province's 100,000
	// villages come in twenty pages rather than one message over a
	// client's 4 MiB receive limit.
	DefaultPage = 1_000
	MaxPage     = 5_000
)

// page returns the items after token by key (items sorted by it), at most
// size of them (0: DefaultPage), and the token of the next page, "" after
// the last.
func page[T any](items []T, key func(T) string, size uint32, token string) ([]T, string) {
	n := int(size)
	switch {
	case n == 0:
		n = DefaultPage
	case n > MaxPage:
		n = MaxPage
	}
	start := 0
	if token != "" {
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > token })
	}
	end := min(start+n, len(items))
	next := ""
	if end < len(items) {
		next = key(items[end-1])
	}
	return items[start:end], next
}

// PutUnits validates the units against the stored tree and stores them.
func (s *Service) PutUnits(ctx context.Context, req *rasoatv1.PutUnitsRequest) (*rasoatv1.PutUnitsResponse, error) {
	if n := len(req.GetUnits()); n > MaxUnitsPerRequest {
		return nil, tooLarge("units", fmt.Sprintf("%d units, over the limit of %d per request", n, MaxUnitsPerRequest))
	}
	stored, served, err := s.st.Units(ctx)
	if err != nil {
		return nil, internal(s.log, "read units", err)
	}
	if err := checkUnits(stored, req.GetUnits(), req.GetServedUnitCode()); err != nil {
		return nil, err
	}
	created, updated, err := s.st.PutUnits(ctx, req.GetUnits(), req.GetServedUnitCode())
	if err != nil {
		return nil, internal(s.log, "store units", err)
	}
	if req.GetServedUnitCode() != "" {
		served = req.GetServedUnitCode()
	}
	return &rasoatv1.PutUnitsResponse{Created: uint32(created), Updated: uint32(updated), ServedUnitCode: served}, nil
}

func (s *Service) ListUnits(ctx context.Context, req *rasoatv1.ListUnitsRequest) (*rasoatv1.ListUnitsResponse, error) {
	units, served, err := s.st.Units(ctx)
	if err != nil {
		return nil, internal(s.log, "read units", err)
	}
	units, next := page(units, (*rasoatv1.Unit).GetCode, req.GetPageSize(), req.GetPageToken())
	return &rasoatv1.ListUnitsResponse{Units: units, ServedUnitCode: served, NextPageToken: next}, nil
}

// PutPeople validates people (their units must exist) and stores them.
func (s *Service) PutPeople(ctx context.Context, req *rasoatv1.PutPeopleRequest) (*rasoatv1.PutPeopleResponse, error) {
	if n := len(req.GetPeople()); n > directory.MaxPeoplePerRequest {
		return nil, tooLarge("people", fmt.Sprintf("%d people, over the limit of %d per request", n, directory.MaxPeoplePerRequest))
	}
	units, _, err := s.st.Units(ctx)
	if err != nil {
		return nil, internal(s.log, "read units", err)
	}
	known := make(map[string]bool, len(units))
	for _, u := range units {
		known[u.GetCode()] = true
	}
	people := make([]directory.Person, 0, len(req.GetPeople()))
	var bad []rpcerr.Violation
	seen := map[string]int{}
	for i, p := range req.GetPeople() {
		vs := checkPerson(fmt.Sprintf("people[%d]", i), p, known)
		if j, dup := seen[p.GetId()]; dup && p.GetId() != "" {
			vs = append(vs, violation(fmt.Sprintf("people[%d].id", i), fmt.Sprintf("%q is also people[%d]", p.GetId(), j)))
		}
		seen[p.GetId()] = i
		bad = append(bad, vs...)
		if len(bad) >= 100 {
			break
		}
		people = append(people, directory.Person{ID: p.GetId(), Name: p.GetName(), Roles: p.GetRoles(), Units: p.GetUnitCodes(), Disabled: p.GetDisabled()})
	}
	if len(bad) > 0 {
		return nil, invalid(bad)
	}
	created, updated, err := s.st.PutPeople(ctx, people)
	if err != nil {
		return nil, internal(s.log, "store people", err)
	}
	return &rasoatv1.PutPeopleResponse{Created: uint32(created), Updated: uint32(updated)}, nil
}

func checkPerson(path string, p *rasoatv1.Person, known map[string]bool) []rpcerr.Violation {
	var vs []rpcerr.Violation
	if err := directory.ValidPersonID(p.GetId()); err != nil {
		vs = append(vs, violation(path+".id", err.Error()))
	}
	if err := directory.ValidName(p.GetName()); err != nil {
		vs = append(vs, violation(path+".name", err.Error()))
	}
	if len(p.GetRoles()) == 0 {
		vs = append(vs, violation(path+".roles", "is empty: give at least one role"))
	}
	for j, r := range p.GetRoles() {
		if _, ok := rasoatv1.Role_name[int32(r)]; !ok || r == rasoatv1.Role_ROLE_UNSPECIFIED {
			vs = append(vs, violation(fmt.Sprintf("%s.roles[%d]", path, j), fmt.Sprintf("%d is not a role", r)))
		}
	}
	if n := len(p.GetUnitCodes()); n > directory.MaxUnitsPerPerson {
		vs = append(vs, rpcerr.Violation{Field: path + ".unit_codes", Desc: fmt.Sprintf("%d units, over the limit of %d", n, directory.MaxUnitsPerPerson), Reason: rasoatv1.ErrorReason_TOO_LARGE})
	}
	for j, u := range p.GetUnitCodes() {
		if !known[u] {
			vs = append(vs, rpcerr.Violation{Field: fmt.Sprintf("%s.unit_codes[%d]", path, j), Desc: fmt.Sprintf("%q is not a unit of this server: import the units first", u), Reason: rasoatv1.ErrorReason_NOT_FOUND})
		}
	}
	return vs
}

func (s *Service) ListPeople(ctx context.Context, req *rasoatv1.ListPeopleRequest) (*rasoatv1.ListPeopleResponse, error) {
	people, err := s.st.People(ctx)
	if err != nil {
		return nil, internal(s.log, "read people", err)
	}
	people, next := page(people, func(p directory.Person) string { return p.ID }, req.GetPageSize(), req.GetPageToken())
	out := make([]*rasoatv1.Person, len(people))
	for i := range people {
		out[i] = personProto(&people[i])
	}
	return &rasoatv1.ListPeopleResponse{People: out, NextPageToken: next}, nil
}

// IssueCode makes a one-time enrolment code; only its hash is stored.
func (s *Service) IssueCode(ctx context.Context, req *rasoatv1.IssueCodeRequest) (*rasoatv1.IssueCodeResponse, error) {
	if err := directory.ValidPersonID(req.GetPersonId()); err != nil {
		return nil, invalid([]rpcerr.Violation{violation("person_id", err.Error())})
	}
	ttl := time.Duration(req.GetTtlSeconds()) * time.Second
	switch {
	case ttl == 0:
		ttl = directory.DefaultCodeTTL
	case ttl > directory.MaxCodeTTL:
		return nil, invalid([]rpcerr.Violation{violation("ttl_seconds", fmt.Sprintf("%v is over the limit of %v", ttl, directory.MaxCodeTTL))})
	}
	expires := s.now().Add(ttl)
	for range 5 { // a clash of 20-bit code ids: draw again
		c := auth.NewCode()
		err := s.st.IssueCode(ctx, directory.Code{ID: c.ID, Hash: c.Hash, PersonID: req.GetPersonId(), ExpiresAt: expires, Attempts: directory.CodeAttempts})
		switch {
		case errors.Is(err, directory.ErrNotFound):
			return nil, rpcerr.New(codes.NotFound, rasoatv1.ErrorReason_NOT_FOUND, fmt.Sprintf("no person %q", req.GetPersonId()), nil)
		case err != nil:
			s.log.Warn("issue code: retrying", "err", err)
			continue
		}
		s.log.Info("enrolment code issued", "person", req.GetPersonId(), "expires", expires.UTC().Format(time.RFC3339))
		return &rasoatv1.IssueCodeResponse{Code: c.Text, ExpiresAtUnix: expires.Unix(), Attempts: directory.CodeAttempts}, nil
	}
	return nil, internal(s.log, "issue code", errors.New("no free code id after 5 draws"))
}

func (s *Service) ListDevices(ctx context.Context, req *rasoatv1.ListDevicesRequest) (*rasoatv1.ListDevicesResponse, error) {
	devs, err := s.st.Devices(ctx, req.GetPersonId())
	if err != nil {
		return nil, internal(s.log, "read devices", err)
	}
	slices.SortFunc(devs, func(a, b directory.Device) int { return strings.Compare(a.ID, b.ID) })
	devs, next := page(devs, func(d directory.Device) string { return d.ID }, req.GetPageSize(), req.GetPageToken())
	out := make([]*rasoatv1.Device, len(devs))
	for i := range devs {
		out[i] = deviceProto(&devs[i])
	}
	return &rasoatv1.ListDevicesResponse{Devices: out, NextPageToken: next}, nil
}

func (s *Service) RevokeDevice(ctx context.Context, req *rasoatv1.RevokeDeviceRequest) (*rasoatv1.RevokeDeviceResponse, error) {
	d, err := s.st.RevokeDevice(ctx, req.GetDeviceId(), s.now())
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return nil, rpcerr.New(codes.NotFound, rasoatv1.ErrorReason_NOT_FOUND, fmt.Sprintf("no device %q", req.GetDeviceId()), nil)
	case err != nil:
		return nil, internal(s.log, "revoke device", err)
	}
	s.log.Info("device revoked", "device", d.ID, "person", d.PersonID)
	return &rasoatv1.RevokeDeviceResponse{Device: deviceProto(&d)}, nil
}

// Enrol redeems a code for a device token. Every failure looks the same
// to the caller (CODE_INVALID) and counts against its address.
func (s *Service) Enrol(ctx context.Context, req *rasoatv1.EnrolRequest) (*rasoatv1.EnrolResponse, error) {
	addr := auth.PeerAddr(ctx)
	if wait, blocked := s.limiter.Blocked(addr); blocked {
		return nil, auth.RateLimited(wait)
	}
	var bad []rpcerr.Violation
	if err := entity.ValidReplicaID(req.GetReplicaId()); err != nil {
		bad = append(bad, violation("replica_id", err.Error()))
	}
	if n := len(req.GetPriorReplicaIds()); n > directory.MaxPriorReplicas {
		bad = append(bad, rpcerr.Violation{Field: "prior_replica_ids", Desc: fmt.Sprintf("%d ids, over the limit of %d", n, directory.MaxPriorReplicas), Reason: rasoatv1.ErrorReason_TOO_LARGE})
	} else {
		for i, r := range req.GetPriorReplicaIds() {
			if err := entity.ValidReplicaID(r); err != nil {
				bad = append(bad, violation(fmt.Sprintf("prior_replica_ids[%d]", i), err.Error()))
			}
		}
	}
	name := req.GetDeviceName()
	if name == "" {
		name = "device"
	}
	if err := directory.ValidName(name); err != nil {
		bad = append(bad, violation("device_name", err.Error()))
	}
	if len(bad) > 0 {
		return nil, invalid(bad)
	}
	codeID, codeHash, err := auth.ParseCode(req.GetCode())
	if err != nil {
		s.limiter.Fail(addr)
		return nil, codeInvalid()
	}
	e := directory.Enrolment{
		CodeID: codeID, CodeHash: codeHash, DeviceID: uuid.NewString(), DeviceName: name,
		Replica: req.GetReplicaId(), PriorReplicas: slices.DeleteFunc(slices.Clone(req.GetPriorReplicaIds()), func(r string) bool { return r == req.GetReplicaId() }),
		At: s.now(),
	}
	if prev := req.GetPreviousToken(); prev != "" {
		if e.PreviousTokenID, e.PreviousTokenHash, err = auth.ParseToken(prev); err != nil {
			return nil, invalid([]rpcerr.Violation{violation("previous_token", "is not a token this server issues")})
		}
	}
	tok := auth.NewToken()
	e.TokenID, e.TokenHash = tok.ID, tok.Hash
	got, err := s.st.Enrol(ctx, e)
	switch {
	case errors.Is(err, directory.ErrCodeInvalid):
		s.limiter.Fail(addr)
		return nil, codeInvalid()
	case errors.Is(err, directory.ErrReplicaTaken):
		return nil, rpcerr.New(codes.FailedPrecondition, rasoatv1.ErrorReason_REPLICA_TAKEN,
			"replica_id is bound to another device: make a fresh one and enrol again", nil)
	case err != nil:
		return nil, internal(s.log, "enrol", err)
	}
	villages, err := s.st.VillagesUnder(ctx, got.Person.Units)
	if err != nil {
		return nil, internal(s.log, "enrol: read villages", err)
	}
	s.log.Info("device enrolled", "device", got.Device.ID, "person", got.Person.ID, "replica", got.Device.Replica)
	return &rasoatv1.EnrolResponse{
		Token: tok.Text, Person: personProto(&got.Person), Device: deviceProto(&got.Device),
		UnboundReplicaIds: got.Unbound, VillageCodes: villages,
	}, nil
}

func codeInvalid() error {
	return rpcerr.New(codes.PermissionDenied, rasoatv1.ErrorReason_CODE_INVALID,
		"the enrolment code is not valid (unknown, expired, used, or out of attempts): ask an admin for a new one", nil)
}

func (s *Service) WhoAmI(ctx context.Context, _ *rasoatv1.WhoAmIRequest) (*rasoatv1.WhoAmIResponse, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return nil, rpcerr.New(codes.Unauthenticated, rasoatv1.ErrorReason_TOKEN_MISSING, "no device token", nil)
	}
	villages, err := s.st.VillagesUnder(ctx, id.Person.Units)
	if err != nil {
		return nil, internal(s.log, "whoami: read villages", err)
	}
	return &rasoatv1.WhoAmIResponse{Person: personProto(&id.Person), Device: deviceProto(&id.Device), VillageCodes: villages}, nil
}

// EntityHistory lists an entity's stored changes with who sent them; the
// caller must be able to read the entity's village.
func (s *Service) EntityHistory(ctx context.Context, req *rasoatv1.EntityHistoryRequest) (*rasoatv1.EntityHistoryResponse, error) {
	if !entity.ValidID(req.GetEntityId()) {
		return nil, invalid([]rpcerr.Violation{violation("entity_id", "is not a UUID in canonical form")})
	}
	limit := int(req.GetLimit())
	if limit == 0 || limit > MaxHistory {
		limit = MaxHistory
	}
	state, ok, err := s.st.Entity(ctx, req.GetEntityId())
	if err != nil {
		return nil, internal(s.log, "history: read entity", err)
	}
	if !ok {
		return nil, rpcerr.New(codes.NotFound, rasoatv1.ErrorReason_NOT_FOUND, "no such entity", nil)
	}
	if id, authed := auth.FromContext(ctx); authed {
		villages, err := s.st.VillagesUnder(ctx, id.Person.Units)
		if err != nil {
			return nil, internal(s.log, "history: read villages", err)
		}
		// Not NotFound: the caller knows the id; say why it may not read it.
		if _, in := slices.BinarySearch(villages, state.VillageCode); !in {
			return nil, rpcerr.New(codes.PermissionDenied, rasoatv1.ErrorReason_OUT_OF_SCOPE, "the entity's village is not one of yours", nil)
		}
	}
	entries, more, err := s.st.History(ctx, req.GetEntityId(), req.GetAfterSeq(), limit)
	if err != nil {
		return nil, internal(s.log, "history", err)
	}
	out := &rasoatv1.EntityHistoryResponse{Entries: make([]*rasoatv1.HistoryEntry, len(entries)), More: more}
	for i, e := range entries {
		h := &rasoatv1.HistoryEntry{Change: e.Change, ServerSeq: e.ServerSeq, SenderPersonId: e.SenderPerson, SenderDeviceId: e.SenderDevice, AuthorPersonId: e.AuthorPerson}
		if !e.ReceivedAt.IsZero() {
			h.ReceivedAtUnix = e.ReceivedAt.Unix()
		}
		out.Entries[i] = h
	}
	return out, nil
}

func personProto(p *directory.Person) *rasoatv1.Person {
	return &rasoatv1.Person{Id: p.ID, Name: p.Name, Roles: p.Roles, UnitCodes: p.Units, Disabled: p.Disabled}
}

func deviceProto(d *directory.Device) *rasoatv1.Device {
	out := &rasoatv1.Device{Id: d.ID, PersonId: d.PersonID, Name: d.Name, ReplicaIds: d.Replicas, EnrolledAtUnix: d.EnrolledAt.Unix(), Revoked: d.Revoked()}
	if d.Revoked() {
		out.RevokedAtUnix = d.RevokedAt.Unix()
	}
	if !d.LastSeen.IsZero() {
		out.LastSeenUnix = d.LastSeen.Unix()
	}
	return out
}

func violation(field, desc string) rpcerr.Violation {
	return rpcerr.Violation{Field: field, Desc: desc, Reason: rasoatv1.ErrorReason_INVALID_FIELD}
}

func invalid(vs []rpcerr.Violation) error {
	msg := vs[0].Field + ": " + vs[0].Desc
	if len(vs) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(vs)-1)
	}
	return rpcerr.New(codes.InvalidArgument, vs[0].Reason, msg, nil, vs...)
}

func tooLarge(field, desc string) error {
	return rpcerr.New(codes.InvalidArgument, rasoatv1.ErrorReason_TOO_LARGE, field+": "+desc, nil,
		rpcerr.Violation{Field: field, Desc: desc, Reason: rasoatv1.ErrorReason_TOO_LARGE})
}

// internal logs err and answers without its text (which may hold SQL).
func internal(log *slog.Logger, what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	if errors.Is(err, store.ErrBusy) {
		return rpcerr.New(codes.Unavailable, rasoatv1.ErrorReason_STORE_BUSY, "the store is busy: retry", nil)
	}
	log.Error(what, "err", err)
	return rpcerr.New(codes.Internal, rasoatv1.ErrorReason_ERROR_REASON_UNSPECIFIED, what+" failed", nil)
}
