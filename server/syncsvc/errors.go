package syncsvc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// badRequest is a request refused for the fields it names, each with the
// reason a caller may act on.
type badRequest []rpcerr.Violation

func (b badRequest) Error() string {
	var s strings.Builder
	s.WriteString("invalid request: ")
	for i, v := range b {
		if i > 0 {
			s.WriteString("; ")
		}
		s.WriteString(v.Field + ": " + v.Desc)
	}
	return s.String()
}

func invalidField(field, desc string) badRequest {
	return badRequest{{Field: field, Desc: desc, Reason: rasoatv1.ErrorReason_INVALID_FIELD}}
}

func tooLarge(field, desc string) badRequest {
	return badRequest{{Field: field, Desc: desc, Reason: rasoatv1.ErrorReason_TOO_LARGE}}
}

// codeError is the violation for a replica id or village code refused by
// entity's check: TOO_LARGE for one over its length bound.
func codeError(field string, err error) badRequest {
	if errors.Is(err, entity.ErrTooLong) {
		return tooLarge(field, err.Error())
	}
	return invalidField(field, err.Error())
}

// scopeError is a write or read outside the caller's scope.
type scopeError struct {
	index int // the change's place in a push, -1 for a read
	err   error
}

func (e *scopeError) Error() string { return "outside scope: " + e.err.Error() }
func (e *scopeError) Unwrap() error { return e.err }

// scopeFailure is a Scope's error for a whole call: a scopeError when it
// is a refusal (a denial), else the error itself, for toStatus to answer as
// a store failure (Unavailable when busy or out of reach, else Internal,
// without its text).
func scopeFailure(err error) error {
	var d denial
	if errors.As(err, &d) {
		return &scopeError{-1, err}
	}
	return err
}

// denial is what a Scope's refusal may say beyond its message: the reason
// (OUT_OF_SCOPE when it says none) and the field of the change it refuses.
type denial interface {
	Reason() rasoatv1.ErrorReason
	Field() string
}

// scopeErrors are the changes of one push a scope refused.
type scopeErrors []*scopeError

func (es scopeErrors) Error() string {
	msg := es[0].Error()
	if len(es) > 1 {
		msg += fmt.Sprintf(" (and %d more changes)", len(es)-1)
	}
	return msg
}

// scopeStatus is PermissionDenied naming each change refused and its
// field; the ErrorInfo carries the first one's reason and index.
func scopeStatus(es scopeErrors) error {
	var vs []rpcerr.Violation
	var meta map[string]string
	first := rasoatv1.ErrorReason_OUT_OF_SCOPE
	for k, se := range es {
		reason, field := rasoatv1.ErrorReason_OUT_OF_SCOPE, ""
		var d denial
		if errors.As(se.err, &d) {
			reason, field = d.Reason(), d.Field()
		}
		if k == 0 {
			first = reason
		}
		if se.index < 0 {
			continue
		}
		if meta == nil {
			meta = map[string]string{"index": strconv.Itoa(se.index)}
		}
		path := fmt.Sprintf("changes[%d]", se.index)
		if field != "" {
			path += "." + field
		}
		vs = append(vs, rpcerr.Violation{Field: path, Desc: se.err.Error(), Reason: reason})
	}
	return rpcerr.New(codes.PermissionDenied, first, es.Error(), meta, vs...)
}

// toStatus translates an error to a gRPC status, the one place that does.
// Every status carries a rasoat reason (rpcerr): bad input is
// InvalidArgument with field violations, each with its reason, the first
// one's reason and index in the ErrorInfo; scope is PermissionDenied; a
// cursor of another log FailedPrecondition; a busy or full store
// Unavailable or ResourceExhausted; a context error keeps its meaning;
// anything else is Internal, without its text (which may hold SQL).
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var bad badRequest
	var refused store.Refused
	var se *scopeError
	var ses scopeErrors
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.As(err, &bad):
		return violations(bad, nil)
	case errors.As(err, &refused):
		return refusedStatus(refused)
	case errors.As(err, &ses):
		return scopeStatus(ses)
	case errors.As(err, &se):
		return scopeStatus(scopeErrors{se})
	case errors.Is(err, store.ErrCursorAhead):
		return rpcerr.New(codes.FailedPrecondition, rasoatv1.ErrorReason_CURSOR_AHEAD, err.Error(), nil)
	case errors.Is(err, store.ErrLogChanged):
		return rpcerr.New(codes.FailedPrecondition, rasoatv1.ErrorReason_LOG_CHANGED, err.Error(), nil)
	case errors.Is(err, store.ErrBusy):
		return rpcerr.New(codes.Unavailable, rasoatv1.ErrorReason_STORE_BUSY, "the store is busy: retry", nil)
	case errors.Is(err, store.ErrFull):
		return rpcerr.New(codes.ResourceExhausted, rasoatv1.ErrorReason_STORE_FULL, "the server's disk is full", nil)
	default:
		return status.Error(codes.Internal, "internal error")
	}
}

// violations is InvalidArgument listing bad; the ErrorInfo has the first
// violation's reason, "index" its change's place when it names one, and
// extra.
func violations(bad badRequest, extra map[string]string) error {
	meta := map[string]string{}
	if i, ok := rpcerr.ChangeIndex(bad[0].Field); ok {
		meta["index"] = strconv.Itoa(i)
	}
	for k, v := range extra {
		meta[k] = v
	}
	return rpcerr.New(codes.InvalidArgument, bad[0].Reason, bad.Error(), meta, bad...)
}

// refusedStatus lists the changes a store refused, each with its reason.
func refusedStatus(r store.Refused) error {
	bad := make(badRequest, len(r))
	for i, ce := range r {
		bad[i] = rpcerr.Violation{Field: fmt.Sprintf("changes[%d].%s", ce.Index, ce.Field), Desc: ce.Err.Error(), Reason: store.Reason(ce.Err)}
	}
	var extra map[string]string
	var me *store.MismatchError
	if errors.As(r[0].Err, &me) {
		extra = map[string]string{
			"origin":           me.Origin,
			"seq":              strconv.FormatUint(me.Seq, 10),
			"replica_high_seq": strconv.FormatUint(me.ReplicaHighSeq, 10),
			"same_write":       strconv.FormatBool(me.SameWrite),
		}
		if me.SameWrite {
			extra["stored_hlc"] = strconv.FormatUint(me.StoredHLC, 10)
		}
	}
	if errors.Is(r[0].Err, store.ErrWorkflow) || errors.Is(r[0].Err, store.ErrLocked) || errors.Is(r[0].Err, store.ErrQuality) {
		// Well-formed, and refused for the state it meets.
		return failedPrecondition(bad)
	}
	return violations(bad, extra)
}

// failedPrecondition is violations with FAILED_PRECONDITION.
func failedPrecondition(bad badRequest) error {
	meta := map[string]string{}
	if i, ok := rpcerr.ChangeIndex(bad[0].Field); ok {
		meta["index"] = strconv.Itoa(i)
	}
	return rpcerr.New(codes.FailedPrecondition, bad[0].Reason, bad.Error(), meta, bad...)
}
