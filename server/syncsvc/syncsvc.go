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
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/grpc"
)

// Store is what the service needs from storage (server/store/sqlite
// implements it).
type Store interface {
	// Push stores valid changes in one durable transaction, skipping those
	// whose origin (stamp.replica_id, seq) is already stored.
	Push(ctx context.Context, replica string, changes []*rasoatv1.Change) (store.PushResult, error)
	// Pull calls fn in server order for at most limit changes after the
	// cursor in villages (all if empty), and says whether more follow.
	Pull(ctx context.Context, villages []string, after uint64, limit int, fn func(c *rasoatv1.Change, serverSeq uint64) error) (next uint64, more bool, err error)
	// Snapshot calls fn for every entity's state in villages (all if
	// empty) and returns the log cursor those states reflect exactly.
	Snapshot(ctx context.Context, villages []string, fn func(cursor uint64, e *rasoatv1.EntityState) error) (cursor uint64, err error)
}

// Scope decides what a replica may write and read (DESIGN.md: a device
// reads and writes only its collaborator's villages; a commune server
// pushes its commune). Authentication and roles are a later issue: until
// then the default scope allows everything, and this is the hook that issue
// fills in. Errors it returns become PermissionDenied.
type Scope interface {
	// CheckWrite returns an error if replica may not write c.
	CheckWrite(ctx context.Context, replica string, c *rasoatv1.Change) error
	// Villages returns the villages replica may read among requested; if
	// requested is empty, every village it may read (nil means all).
	Villages(ctx context.Context, replica string, requested []string) ([]string, error)
}

type allowAll struct{}

func (allowAll) CheckWrite(context.Context, string, *rasoatv1.Change) error { return nil }
func (allowAll) Villages(_ context.Context, _ string, requested []string) ([]string, error) {
	return requested, nil
}

// Limits.
const (
	// MaxPushBatch bounds the changes of one Push. A household field change
	// is about 200 bytes on the wire (two UUIDs, the village, path, value,
	// stamp with a replica id, one base stamp), so 50,000 changes are about
	// 10 MB: inside the server's 16 MiB receive limit (server.go), and one
	// SQLite transaction of well under a second.
	MaxPushBatch = 50_000
	// DefaultPullBatch and MaxPullBatch bound the changes of one Pull
	// response (PullRequest.batch_size asks within them).
	DefaultPullBatch = 5_000
	MaxPullBatch     = 20_000
	// maxPullBytes also ends a response once its changes reach about 3 MiB,
	// so that even a batch of long values stays under grpc-go's default
	// 4 MiB receive limit on the client.
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
// each (up to 100) as changes[i].<field>, and nothing is stored.
func (s *Service) Push(ctx context.Context, req *rasoatv1.PushRequest) (*rasoatv1.PushResponse, error) {
	if req.GetReplicaId() == "" {
		return nil, toStatus(badRequest{{"replica_id", "is empty"}})
	}
	changes := req.GetChanges()
	if len(changes) > MaxPushBatch {
		return nil, toStatus(badRequest{{"changes", fmt.Sprintf("%d changes, over the limit of %d per push: split the batch", len(changes), MaxPushBatch)}})
	}
	now := s.now()
	var bad badRequest
	for i, c := range changes {
		if len(bad) == maxViolations {
			break
		}
		if err := entity.Validate(c); err != nil {
			var fe *entity.FieldError
			if errors.As(err, &fe) {
				bad = append(bad, violation{fmt.Sprintf("changes[%d].%s", i, fe.Field), fe.Desc})
				continue
			}
			return nil, toStatus(err)
		}
		if err := hlc.CheckDrift(hlc.Timestamp(c.GetStamp().GetHlc()), now, s.maxDrift); err != nil {
			bad = append(bad, violation{fmt.Sprintf("changes[%d].stamp.hlc", i), err.Error() + ": is the device clock set right?"})
			continue
		}
		if err := s.scope.CheckWrite(ctx, req.GetReplicaId(), c); err != nil {
			return nil, toStatus(&scopeError{fmt.Errorf("changes[%d]: %w", i, err)})
		}
	}
	if len(bad) > 0 {
		return nil, toStatus(bad)
	}
	res, err := s.store.Push(ctx, req.GetReplicaId(), changes)
	if err != nil {
		return nil, toStatus(err)
	}
	return &rasoatv1.PushResponse{
		Accepted:   uint32(res.Accepted),
		Duplicates: uint32(res.Duplicates),
		ServerSeq:  res.ServerSeq,
	}, nil
}

// errBatchFull ends one response's read when its bytes reach maxPullBytes.
var errBatchFull = errors.New("batch full")

// Pull streams the changes after req.cursor in batches; each response's
// cursor is that of its last change, so a replica that applied it can
// resume there. Each batch is one bounded read of the log: memory does not
// grow with it.
func (s *Service) Pull(req *rasoatv1.PullRequest, stream grpc.ServerStreamingServer[rasoatv1.PullResponse]) error {
	ctx := stream.Context()
	size := int(req.GetBatchSize())
	switch {
	case size == 0:
		size = DefaultPullBatch
	case size > MaxPullBatch:
		size = MaxPullBatch
	}
	villages, err := s.scope.Villages(ctx, req.GetReplicaId(), req.GetVillageCodes())
	if err != nil {
		return toStatus(&scopeError{err})
	}
	cursor := req.GetCursor()
	if cursor > math.MaxInt64 {
		return toStatus(badRequest{{field: "cursor", desc: fmt.Sprintf("%d is beyond any log position", cursor)}})
	}
	batch := make([]*rasoatv1.Change, 0, min(size, 1024))
	for {
		batch = batch[:0]
		bytes := 0
		last := cursor
		_, more, err := s.store.Pull(ctx, villages, cursor, size, func(c *rasoatv1.Change, seq uint64) error {
			batch = append(batch, c)
			last = seq
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
		cursor = last
		if err := stream.Send(&rasoatv1.PullResponse{Changes: batch, Cursor: cursor, Done: !more}); err != nil {
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
// is read.
func (s *Service) Snapshot(req *rasoatv1.SnapshotRequest, stream grpc.ServerStreamingServer[rasoatv1.SnapshotResponse]) error {
	ctx := stream.Context()
	villages, err := s.scope.Villages(ctx, req.GetReplicaId(), req.GetVillageCodes())
	if err != nil {
		return toStatus(&scopeError{err})
	}
	var (
		batch   []*rasoatv1.EntityState
		size    int
		sendErr error
	)
	cursor, err := s.store.Snapshot(ctx, villages, func(cursor uint64, e *rasoatv1.EntityState) error {
		batch = append(batch, e)
		size += len(e.GetState()) + len(e.GetEntityId()) + len(e.GetHouseholdId()) + len(e.GetVillageCode()) + 16
		if size < snapshotBatchBytes {
			return nil
		}
		sendErr = stream.Send(&rasoatv1.SnapshotResponse{Entities: batch, Cursor: cursor})
		batch, size = nil, 0
		return sendErr
	})
	if sendErr != nil {
		return sendErr
	}
	if err != nil {
		return toStatus(err)
	}
	return stream.Send(&rasoatv1.SnapshotResponse{Entities: batch, Cursor: cursor, Done: true})
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
