// Package store holds what the sync service and its storage adapters
// (server/store/sqlite, later server/store/postgres) share: the result of a
// push, log positions, the villages a read covers, and the errors a caller
// branches on. The service declares the store interface it uses
// (syncsvc.Store); this package does not.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// PushResult is what a durable push did.
type PushResult struct {
	Accepted   int    // changes newly stored
	Duplicates int    // changes already stored with the same content, skipped
	ServerSeq  uint64 // the log position after the push
	// ReplicaHighSeq is the greatest seq stored from the pushing replica as
	// origin (0 if none): a replica whose next seq is not above it writes
	// under an id it has used before, from a restored copy of its file.
	ReplicaHighSeq uint64
}

// Sender is who sent a push: the replica pushing (the one its
// ReplicaHighSeq answers for), and the authenticated person and device
// whose token sent it, recorded with the changes it stored (empty when the
// server runs without authentication, as in the store's own tests).
type Sender struct {
	Replica  string
	PersonID string
	DeviceID string
	// Guard, when not nil, checks each new change against what is stored,
	// inside the push's transaction (the review workflow: server/review).
	Guard Guard
}

// Guard checks a change a push would store against what the store holds,
// with the changes earlier in the same batch applied: a rule that depends
// on stored state (a review's current status, a household locked by its
// decided review) is checked in the same transaction as the write, so two
// pushes cannot both pass it. An error refuses the change (the push's
// store.Refused names it); a *FieldError-like error with Field() names the
// change's field, otherwise "value".
type Guard interface {
	Check(ctx context.Context, c *rasoatv1.Change, v View) error
}

// View is what a Guard may read, as the batch so far leaves it.
type View interface {
	// Entity returns the state of an entity, nil if none is held.
	Entity(ctx context.Context, id string) (*entity.State, error)
	// Household returns the entities of a household (itself, its members
	// and its reviews), in no particular order.
	Household(ctx context.Context, householdID string) ([]*entity.State, error)
	// PersonOf returns the person a replica id is bound to, "" if none.
	PersonOf(ctx context.Context, replica string) (string, error)
	// Decided returns the household's decided results as the report facts
	// hold them (before this push's), with the figures the quality checks
	// compare with the last round's.
	Decided(ctx context.Context, householdID string) ([]DecidedFact, error)
	// SamePeople returns the members of households other than householdID
	// whose quality.PersonKey is one of keys, as the report facts hold
	// them; at most MaxPersonMatches.
	SamePeople(ctx context.Context, householdID string, keys []string) ([]PersonMatch, error)
}

// ErrWorkflow is wrapped by a Guard's refusal of a review transition that
// the workflow does not allow: not from the review's current status, not
// by the sender's role, or over a status the sender has not seen.
var ErrWorkflow = errors.New("the review workflow refuses the change")

// ErrLocked is wrapped by a Guard's refusal of a change to a household
// whose review round is decided: an officer must reopen it first.
var ErrLocked = errors.New("the household's review is decided")

// ErrQuality is wrapped by a Guard's refusal of a decision over a
// household with a quality flag its review has not acknowledged
// (internal/quality): the officer acknowledges each, with a comment, or
// the answers are corrected, and the chair decides again.
var ErrQuality = errors.New("the household has quality flags not acknowledged")

// HistoryEntry is one stored change with who sent it and who wrote it.
type HistoryEntry struct {
	Change       *rasoatv1.Change
	ServerSeq    uint64
	ReceivedAt   time.Time // zero for a change stored before receipts were kept
	SenderPerson string
	SenderDevice string
	AuthorPerson string // the person the origin replica is bound to, if any
}

// Position is a place in a store's log: the server sequence number of a
// change and Check, a digest of the log up to it (the changes' origins in
// order), so that a cursor kept by a replica can be told apart from the
// same number in a log that was restored from a backup and written past
// it since. Check 0 is "not known" and is not checked.
type Position struct {
	Seq   uint64
	Check uint64
}

// Villages is the set of villages a read covers: every village, or the
// listed ones. It is explicit so that a scope narrowed to nothing reads
// nothing, never everything.
type Villages struct {
	all   bool
	codes []string // sorted, distinct
}

// AllVillages covers every village.
func AllVillages() Villages { return Villages{all: true} }

// OnlyVillages covers the listed villages (none if the list is empty).
func OnlyVillages(codes ...string) Villages {
	c := slices.Clone(codes)
	slices.Sort(c)
	return Villages{codes: slices.Compact(c)}
}

// All reports whether v covers every village.
func (v Villages) All() bool { return v.all }

// Codes returns the villages listed, sorted (nil for AllVillages).
func (v Villages) Codes() []string { return v.codes }

// Has reports whether v covers code.
func (v Villages) Has(code string) bool {
	if v.all {
		return true
	}
	_, ok := slices.BinarySearch(v.codes, code)
	return ok
}

// Empty reports whether v covers no village.
func (v Villages) Empty() bool { return !v.all && len(v.codes) == 0 }

// SnapshotQuery says which entity states a Snapshot reads.
type SnapshotQuery struct {
	Villages Villages
	// EntityIDs, when not nil, keeps only these entities (within Villages).
	EntityIDs []string
}

// ErrChange is wrapped by *ChangeError.
var ErrChange = errors.New("change refused")

// ChangeError is a change of a push batch that the store refused because of
// what is already stored (e.g. an entity's village differs), so nothing of
// the batch was stored. Index is the change's place in the batch; Field, in
// rasoatv1.Change's proto names, the field at fault; Err wraps one of the
// errors below.
type ChangeError struct {
	Index int
	Field string
	Err   error
}

func (e *ChangeError) Error() string {
	return fmt.Sprintf("changes[%d].%s: %v", e.Index, e.Field, e.Err)
}

// Unwrap returns both ErrChange and the cause.
func (e *ChangeError) Unwrap() []error { return []error{ErrChange, e.Err} }

// Refused is a push refused for the changes it lists (in batch order, at
// most a bounded number): nothing of the batch was stored.
type Refused []*ChangeError

func (r Refused) Error() string {
	s := fmt.Sprintf("%d changes refused", len(r))
	if len(r) > 0 {
		s += ", first " + r[0].Error()
	}
	return s
}

// Unwrap returns the changes' errors.
func (r Refused) Unwrap() []error {
	errs := make([]error, len(r))
	for i, e := range r {
		errs[i] = e
	}
	return errs
}

// Causes of a ChangeError.
var (
	// ErrContentMismatch: the change's (origin, seq) is stored (or earlier
	// in the batch) with other content. Its error is a *MismatchError.
	ErrContentMismatch = errors.New("origin and seq are stored with other content")
	// ErrBaseUnknown: a base stamp names no stored change to that field.
	ErrBaseUnknown = errors.New("base names a change this server does not hold")
	// ErrEntityMismatch: the change's kind, household or village differs
	// from its entity's or its household's, or its household is unknown.
	ErrEntityMismatch = errors.New("change does not match its entity")
	// ErrEntityTooLarge: the change would grow its entity's state past the
	// store's bounds (entity.MaxHeads, entity.MaxStateSize).
	ErrEntityTooLarge = errors.New("entity state too large")
)

// MismatchError is ErrContentMismatch with what a replica needs to
// recover: the origin and seq reused, and the greatest seq the store holds
// from the pushing replica.
type MismatchError struct {
	Origin         string
	Seq            uint64
	ReplicaHighSeq uint64
	// SameWrite is set when the stored change writes the same value to the
	// same field of the same entity over the same base, with another
	// stamp: the origin's own write, re-stamped after a clock refusal, sent
	// again from a copy of its file made before. It is stored: the origin
	// must drop its copy, not issue it again. (The same value over another
	// base is another write, made after the copy saw other writes.)
	SameWrite bool
	// StoredHLC is the stored change's stamp.hlc, for the origin to rename
	// the stamp it holds when SameWrite.
	StoredHLC uint64
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s #%d: %v (this server holds up to #%d from the pushing replica)", e.Origin, e.Seq, ErrContentMismatch, e.ReplicaHighSeq)
}

// Unwrap returns ErrContentMismatch.
func (e *MismatchError) Unwrap() error { return ErrContentMismatch }

// Reason is the stable reason a refused change's cause carries on the
// wire (INVALID_FIELD for a cause not listed here).
func Reason(err error) rasoatv1.ErrorReason {
	switch {
	case errors.Is(err, ErrContentMismatch):
		return rasoatv1.ErrorReason_CONTENT_MISMATCH
	case errors.Is(err, ErrBaseUnknown):
		return rasoatv1.ErrorReason_BASE_UNKNOWN
	case errors.Is(err, ErrEntityMismatch):
		return rasoatv1.ErrorReason_ENTITY_MISMATCH
	case errors.Is(err, ErrEntityTooLarge):
		return rasoatv1.ErrorReason_ENTITY_TOO_LARGE
	case errors.Is(err, ErrWorkflow):
		return rasoatv1.ErrorReason_TRANSITION_REFUSED
	case errors.Is(err, ErrLocked):
		return rasoatv1.ErrorReason_REVIEW_LOCKED
	case errors.Is(err, ErrQuality):
		return rasoatv1.ErrorReason_QUALITY_UNACKNOWLEDGED
	}
	return rasoatv1.ErrorReason_INVALID_FIELD
}

// ErrBusy is wrapped by an error from a store that could not get its lock in
// time: the call may be retried.
var ErrBusy = errors.New("store busy")

// ErrFull is wrapped by an error from a store whose disk is full.
var ErrFull = errors.New("store full")

// ErrCursorAhead is returned by a pull after a cursor beyond the end of the
// log: the replica synced with a server whose log went further (a backup
// restored since, or another server).
var ErrCursorAhead = errors.New("cursor beyond the end of the log")

// ErrLogChanged is returned by a pull whose cursor's check differs from the
// log's at that position: the log was restored from a backup and written
// past the cursor since, so the changes between are not the ones the
// replica had.
var ErrLogChanged = errors.New("cursor counts in another log")
