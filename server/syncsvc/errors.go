package syncsvc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type violation struct{ field, desc string }

// badRequest is a request refused for the fields it names.
type badRequest []violation

func (b badRequest) Error() string {
	var s strings.Builder
	s.WriteString("invalid push: ")
	for i, v := range b {
		if i > 0 {
			s.WriteString("; ")
		}
		s.WriteString(v.field + ": " + v.desc)
	}
	return s.String()
}

// scopeError is a write or read outside the caller's scope.
type scopeError struct{ err error }

func (e *scopeError) Error() string { return "outside scope: " + e.err.Error() }
func (e *scopeError) Unwrap() error { return e.err }

// toStatus translates an error to a gRPC status, the one place that does:
// bad input is InvalidArgument with google.rpc.BadRequest field violations,
// scope PermissionDenied, a busy or full store Unavailable or
// ResourceExhausted, a context error keeps its meaning, anything else is
// Internal.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var bad badRequest
	var ce *store.ChangeError
	var se *scopeError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.As(err, &bad):
	case errors.As(err, &ce):
		bad = badRequest{{field: fmt.Sprintf("changes[%d].%s", ce.Index, ce.Field), desc: ce.Err.Error()}}
	case errors.As(err, &se):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, store.ErrCursorAhead):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, store.ErrBusy):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, store.ErrFull):
		return status.Error(codes.ResourceExhausted, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
	br := &errdetails.BadRequest{FieldViolations: make([]*errdetails.BadRequest_FieldViolation, len(bad))}
	for i, v := range bad {
		br.FieldViolations[i] = &errdetails.BadRequest_FieldViolation{Field: v.field, Description: v.desc}
	}
	st := status.New(codes.InvalidArgument, bad.Error())
	if withDetails, derr := st.WithDetails(br); derr == nil {
		st = withDetails
	}
	return st.Err()
}
