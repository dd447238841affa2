package scoring

import (
	"context"
	"errors"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// requestError is bad input in the request itself rather than in a
// household's answers (a missing household, an oversized batch).
type requestError struct {
	field, desc string
}

func (e *requestError) Error() string { return e.field + ": " + e.desc }

// fieldViolations names the input fields an error blames, as JSON paths
// relative to the household ("members[1].birthDate") or the request
// ("standard", "households"). ok is false when the error is not the input's
// fault. It is the one place that knows which error blames which field; both
// the status details and the stream's per-household results come from it.
func fieldViolations(err error) (fv []*rasoatv1.FieldViolation, ok bool) {
	var ve *survey.ValidationError
	var re *requestError
	switch {
	case errors.As(err, &ve):
		fv = make([]*rasoatv1.FieldViolation, len(ve.Violations))
		for i, v := range ve.Violations {
			fv[i] = &rasoatv1.FieldViolation{Field: v.Field, Description: v.Description}
		}
	case errors.As(err, &re):
		fv = []*rasoatv1.FieldViolation{{Field: re.field, Description: re.desc}}
	case errors.Is(err, survey.ErrUnknownStandard):
		fv = []*rasoatv1.FieldViolation{{Field: "standard", Description: err.Error()}}
	case errors.Is(err, survey.ErrNoStandard):
		// The caller sent a review date no known standard decides: that is
		// the input's fault (InvalidArgument), not a state of the server
		// that could change under it (FailedPrecondition).
		fv = []*rasoatv1.FieldViolation{{Field: "reviewDate", Description: err.Error()}}
	default:
		return nil, false
	}
	return fv, true
}

// toStatus translates an error to a gRPC status at the edge: bad input is
// InvalidArgument with google.rpc.BadRequest details naming each field, a
// context error keeps its meaning, anything else is Internal.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	fv, ok := fieldViolations(err)
	if !ok {
		return status.Error(codes.Internal, err.Error())
	}
	br := &errdetails.BadRequest{FieldViolations: make([]*errdetails.BadRequest_FieldViolation, len(fv))}
	for i, v := range fv {
		br.FieldViolations[i] = &errdetails.BadRequest_FieldViolation{Field: v.GetField(), Description: v.GetDescription()}
	}
	st := status.New(codes.InvalidArgument, err.Error())
	if withDetails, derr := st.WithDetails(br); derr == nil {
		st = withDetails
	}
	return st.Err()
}
