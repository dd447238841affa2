// Package syncsvc is the server side of sync: rasoatv1.SyncService over a
// Store. Push checks every change at the door — contract, clock drift,
// scope — and stores a batch all or nothing; Pull streams the log after a
// cursor in bounded batches (DESIGN.md "Sync model").
package syncsvc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/grpc"
)

// Store is what the service needs from storage (server/store/sqlite
// implements it).
type Store interface {
	// Push stores valid changes in one durable transaction, skipping those
	// whose origin (stamp.replica_id, seq) is stored with the same content
	// and refusing the batch (store.Refused) for what the stored data
	// forbids.
	// by says who sent it, recorded with the changes it stores.
	Push(ctx context.Context, by store.Sender, changes []*rasoatv1.Change) (store.PushResult, error)
	// Pull calls fn in server order for at most limit changes after from in
	// villages, and says whether more follow; from must be a position of
	// this log (store.ErrCursorAhead, store.ErrLogChanged).
	Pull(ctx context.Context, villages store.Villages, from store.Position, limit int, fn func(c *rasoatv1.Change, pos store.Position) error) (next store.Position, more bool, err error)
	// Snapshot calls fn for every entity state q selects and returns the
	// log position those states reflect at least.
	Snapshot(ctx context.Context, q store.SnapshotQuery, fn func(pos store.Position, e *rasoatv1.EntityState) error) (store.Position, error)
	// LogID is the id of the store's log.
	LogID() string
}

// Scope decides who is calling and what they may write and read
// (DESIGN.md: a device reads and writes only its person's villages; a
// commune server relays its commune). server/access implements it from the
// authenticated identity; without one, every call may do everything (the
// store's and the service's own tests). A change's check's errors become
// PermissionDenied; one with a Reason() and a Field() (the change's field it
// refuses) says which. Writer's and Villages' own errors are refusals only
// when they say so (a Reason() and a Field()); any other is the failure of
// what the scope reads (the directory in the store), answered as a store
// failure is: Unavailable when the store is busy or out of reach (a
// province's PostgreSQL failing over), so the caller retries, never a
// PermissionDenied that a tablet would set its changes aside for.
type Scope interface {
	// Writer returns who is pushing — the request's replica and lineage,
	// which the scope checks against the caller's device — and the check
	// every change of the push must pass, resolved once per push.
	Writer(ctx context.Context, req *rasoatv1.PushRequest) (store.Sender, func(*rasoatv1.Change) error, error)
	// Villages returns the villages the caller may read among requested;
	// if requested is empty, every village it may read.
	Villages(ctx context.Context, replica string, requested []string) (store.Villages, error)
}

type allowAll struct{}

func (allowAll) Writer(_ context.Context, req *rasoatv1.PushRequest) (store.Sender, func(*rasoatv1.Change) error, error) {
	return store.Sender{Replica: req.GetReplicaId()}, func(*rasoatv1.Change) error { return nil }, nil
}

func (allowAll) Villages(_ context.Context, _ string, requested []string) (store.Villages, error) {
	if len(requested) == 0 {
		return store.AllVillages(), nil
	}
	return store.OnlyVillages(requested...), nil
}

// Limits on requests, checked at the door (and the counts before decoding,
// server/wire.go, so a hostile request costs memory in proportion to its
// bytes, not to the objects it would decode into).
const (
	// MaxPushBatch bounds the changes of one Push. A household field change
	// is about 200 bytes on the wire, so 20,000 changes are about 4 MB,
	// one SQLite transaction of a fraction of a second; a tablet sends
	// batches of client.DefaultBatchSize (5,000).
	MaxPushBatch = 20_000
	// DefaultPullBatch and MaxPullBatch bound the changes of one Pull
	// response (PullRequest.batch_size asks within them).
	DefaultPullBatch = 5_000
	MaxPullBatch     = 20_000
	// MaxVillages bounds the villages one Pull or Snapshot names: a commune
	// has a few dozen, a province's commune server pulls its own commune.
	MaxVillages = 1_000
	// MaxSnapshotEntities bounds the entities one Snapshot names (a tablet
	// rebuilding the entities whose refused changes it discarded).
	MaxSnapshotEntities = 1_000
	// maxPullBytes also ends a response once its changes reach about 3 MiB,
	// so that even a batch of long values stays under grpc-go's default
	// 4 MiB receive limit on the client (a change is at most about 20 KiB:
	// entity.MaxValueSize and entity.MaxBase stamps).
	maxPullBytes = 3 << 20
	// maxViolations bounds the field violations listed for one bad push.
	maxViolations = 100
)

// Service implements rasoatv1.SyncServiceServer.
type Service struct {
	rasoatv1.UnimplementedSyncServiceServer
	store    Store
	scope    Scope
	now      func() time.Time
	maxDrift time.Duration
	onStored func()
}

// Option configures New.
type Option func(*Service)

// WithMaxDrift sets how far ahead of the server clock a change's stamp may
// be (default hlc.DefaultMaxDrift, 24h).
func WithMaxDrift(d time.Duration) Option { return func(s *Service) { s.maxDrift = max(d, 0) } }

// WithClock sets the server's wall clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithScope sets who may write and read what (default: everything).
func WithScope(sc Scope) Option { return func(s *Service) { s.scope = sc } }

// WithOnStored sets fn to be called after every push that stored at least
// one new change, once it is committed: a commune server's upstream link
// is woken by it (upstream.Link.Kick) instead of waiting for its next
// pass. fn runs on the push's goroutine before the answer is sent, so it
// must not block.
func WithOnStored(fn func()) Option { return func(s *Service) { s.onStored = fn } }

// New returns the service over st.
func New(st Store, opts ...Option) *Service {
	s := &Service{store: st, scope: allowAll{}, now: time.Now, maxDrift: hlc.DefaultMaxDrift}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Push checks every change, then stores the batch; the answer comes after
// COMMIT. Any bad change fails the whole batch with InvalidArgument listing
// each (up to 100) as changes[i].<field> with its reason, and nothing is
// stored.
func (s *Service) Push(ctx context.Context, req *rasoatv1.PushRequest) (*rasoatv1.PushResponse, error) {
	if r := req.GetReplicaId(); r != "" {
		if err := entity.ValidReplicaID(r); err != nil {
			return nil, toStatus(codeError("replica_id", err))
		}
	}
	changes := req.GetChanges()
	if len(changes) > MaxPushBatch {
		return nil, toStatus(tooLarge("changes", fmt.Sprintf("%d changes, over the limit of %d per push: split the batch", len(changes), MaxPushBatch)))
	}
	sender, mayWrite, err := s.scope.Writer(ctx, req)
	if err != nil {
		return nil, toStatus(scopeFailure(err))
	}
	// Empty means the caller's enrolled replica, which only a scope knows.
	if err := entity.ValidReplicaID(sender.Replica); err != nil {
		return nil, toStatus(codeError("replica_id", err))
	}
	now := s.now()
	var (
		bad    badRequest
		denied scopeErrors
	)
	for i, c := range changes {
		if len(bad) == maxViolations {
			break
		}
		if err := entity.Validate(c); err != nil {
			var fe *entity.FieldError
			if !errors.As(err, &fe) {
				return nil, toStatus(err)
			}
			reason := rasoatv1.ErrorReason_INVALID_FIELD
			if fe.OverLimit {
				reason = rasoatv1.ErrorReason_TOO_LARGE
			}
			bad = append(bad, rpcerr.Violation{Field: fmt.Sprintf("changes[%d].%s", i, fe.Field), Desc: fe.Desc, Reason: reason})
			continue
		}
		if err := hlc.CheckDrift(hlc.Timestamp(c.GetStamp().GetHlc()), now, s.maxDrift); err != nil {
			bad = append(bad, rpcerr.Violation{Field: fmt.Sprintf("changes[%d].stamp.hlc", i), Desc: err.Error() + ": is the device clock set right?", Reason: rasoatv1.ErrorReason_CLOCK_AHEAD})
			continue
		}
		if err := mayWrite(c); err != nil && len(denied) < maxViolations {
			denied = append(denied, &scopeError{i, err})
		}
	}
	if len(bad) > 0 {
		return nil, toStatus(bad)
	}
	if len(denied) > 0 {
		// Every refused change of the batch (up to maxViolations) is named,
		// so that a tablet sets them aside in one round trip.
		return nil, toStatus(denied)
	}
	res, err := s.store.Push(ctx, sender, changes)
	if err != nil {
		return nil, toStatus(err)
	}
	if res.Accepted > 0 && s.onStored != nil {
		s.onStored()
	}
	return &rasoatv1.PushResponse{
		Accepted:       uint32(res.Accepted),
		Duplicates:     uint32(res.Duplicates),
		ServerSeq:      res.ServerSeq,
		ReplicaHighSeq: res.ReplicaHighSeq,
	}, nil
}

// checkVillages refuses a list of villages over MaxVillages or holding a
// code no village can have.
func checkVillages(field string, codes []string) error {
	if len(codes) > MaxVillages {
		return tooLarge(field, fmt.Sprintf("%d villages, over the limit of %d", len(codes), MaxVillages))
	}
	for i, v := range codes {
		if err := entity.ValidVillageCode(v); err != nil {
			return codeError(fmt.Sprintf("%s[%d]", field, i), err)
		}
	}
	return nil
}

// checkReader checks what Pull and Snapshot share: the replica id, when
// given, and the villages.
func checkReader(replica string, villages []string) error {
	if replica != "" {
		if err := entity.ValidReplicaID(replica); err != nil {
			return codeError("replica_id", err)
		}
	}
	return checkVillages("village_codes", villages)
}

// errBatchFull ends one response's read when its bytes reach maxPullBytes.
var errBatchFull = errors.New("batch full")

// Pull streams the changes after req.cursor in batches; each response's
// cursor is that of its last change, with its check, so a replica that
// applied it can resume there. Each batch is one bounded read of the log:
// memory does not grow with it, and no read is held while sending.
func (s *Service) Pull(req *rasoatv1.PullRequest, stream grpc.ServerStreamingServer[rasoatv1.PullResponse]) error {
	ctx := stream.Context()
	if err := checkReader(req.GetReplicaId(), req.GetVillageCodes()); err != nil {
		return toStatus(err)
	}
	size := int(req.GetBatchSize())
	switch {
	case size == 0:
		size = DefaultPullBatch
	case size > MaxPullBatch:
		size = MaxPullBatch
	}
	if req.GetCursor() > math.MaxInt64 {
		return toStatus(invalidField("cursor", fmt.Sprintf("%d is beyond any log position", req.GetCursor())))
	}
	logID := s.store.LogID()
	if id := req.GetLogId(); id != "" && id != logID {
		return toStatus(fmt.Errorf("cursor %d counts in log %s, this server's is %s: %w", req.GetCursor(), id, logID, store.ErrLogChanged))
	}
	villages, err := s.scope.Villages(ctx, req.GetReplicaId(), req.GetVillageCodes())
	if err != nil {
		return toStatus(scopeFailure(err))
	}
	pos := store.Position{Seq: req.GetCursor(), Check: req.GetCursorCheck()}
	batch := make([]*rasoatv1.Change, 0, min(size, 1024))
	for {
		batch = batch[:0]
		bytes := 0
		last := pos
		_, more, err := s.store.Pull(ctx, villages, pos, size, func(c *rasoatv1.Change, p store.Position) error {
			batch = append(batch, c)
			last = p
			if bytes += approxSize(c); bytes >= maxPullBytes {
				return errBatchFull
			}
			return nil
		})
		switch {
		case errors.Is(err, errBatchFull):
			more = true
		case err != nil:
			return toStatus(err)
		}
		pos = last
		if err := stream.Send(&rasoatv1.PullResponse{Changes: batch, Cursor: pos.Seq, CursorCheck: pos.Check, LogId: logID, Done: !more}); err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// snapshotBatchBytes ends a Snapshot response at about 1 MiB of states:
// small enough to stay far under the client's 4 MiB receive limit and to
// let the tablet write each batch while the next one travels.
const snapshotBatchBytes = 1 << 20

// Snapshot streams the states of the entities in the caller's scope, in
// batches of about snapshotBatchBytes, every response carrying the cursor
// the snapshot reflects. Memory stays flat: a batch is sent before the next
// is read, and no read of the store is held while sending, so a client that
// stops reading holds up only its own stream.
func (s *Service) Snapshot(req *rasoatv1.SnapshotRequest, stream grpc.ServerStreamingServer[rasoatv1.SnapshotResponse]) error {
	ctx := stream.Context()
	if err := checkReader(req.GetReplicaId(), req.GetVillageCodes()); err != nil {
		return toStatus(err)
	}
	q := store.SnapshotQuery{}
	if ids := req.GetEntityIds(); len(ids) > 0 {
		if len(ids) > MaxSnapshotEntities {
			return toStatus(tooLarge("entity_ids", fmt.Sprintf("%d entities, over the limit of %d", len(ids), MaxSnapshotEntities)))
		}
		for i, id := range ids {
			if !entity.ValidID(id) {
				return toStatus(invalidField(fmt.Sprintf("entity_ids[%d]", i), "is not a UUID in canonical form"))
			}
		}
		q.EntityIDs = ids
	}
	villages, err := s.scope.Villages(ctx, req.GetReplicaId(), req.GetVillageCodes())
	if err != nil {
		return toStatus(scopeFailure(err))
	}
	q.Villages = villages
	logID := s.store.LogID()
	var (
		batch   []*rasoatv1.EntityState
		size    int
		sendErr error
	)
	pos, err := s.store.Snapshot(ctx, q, func(pos store.Position, e *rasoatv1.EntityState) error {
		batch = append(batch, e)
		size += len(e.GetState()) + len(e.GetEntityId()) + len(e.GetHouseholdId()) + len(e.GetVillageCode()) + 16
		if size < snapshotBatchBytes {
			return nil
		}
		sendErr = stream.Send(&rasoatv1.SnapshotResponse{Entities: batch, Cursor: pos.Seq, CursorCheck: pos.Check, LogId: logID})
		batch, size = nil, 0
		return sendErr
	})
	if sendErr != nil {
		return sendErr
	}
	if err != nil {
		return toStatus(err)
	}
	return stream.Send(&rasoatv1.SnapshotResponse{Entities: batch, Cursor: pos.Seq, CursorCheck: pos.Check, LogId: logID, Done: true})
}

// approxSize is about the wire size of c, cheaper than proto.Size.
func approxSize(c *rasoatv1.Change) int {
	n := 32 + len(c.GetEntityId()) + len(c.GetHouseholdId()) + len(c.GetVillageCode()) +
		len(c.GetField()) + len(c.GetValue()) + len(c.GetStamp().GetReplicaId())
	for _, b := range c.GetBase() {
		n += 14 + len(b.GetReplicaId())
	}
	return n
}
