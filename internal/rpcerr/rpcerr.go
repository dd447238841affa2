// Package rpcerr writes and reads the errors rasoat's services answer with:
// a gRPC status whose details carry google.rpc.ErrorInfo (domain "rasoat.v1",
// a rasoatv1.ErrorReason) and, for bad input, google.rpc.BadRequest field
// violations, each with its own reason. Servers write them in one place at
// their edge; clients branch on reasons, never on message text (AIP-193).
package rpcerr

import (
	"errors"
	"strconv"
	"strings"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// Domain is ErrorInfo.domain for every rasoat reason.
const Domain = "rasoat.v1"

// Violation is one field of a request at fault.
type Violation struct {
	Field  string // e.g. "changes[3].stamp.hlc"
	Desc   string
	Reason rasoatv1.ErrorReason
}

// New returns a status error with code, msg, an ErrorInfo of reason and
// meta, and a BadRequest listing vs (when any).
func New(code codes.Code, reason rasoatv1.ErrorReason, msg string, meta map[string]string, vs ...Violation) error {
	st := status.New(code, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason.String(), Domain: Domain, Metadata: meta}}
	if len(vs) > 0 {
		br := &errdetails.BadRequest{FieldViolations: make([]*errdetails.BadRequest_FieldViolation, len(vs))}
		for i, v := range vs {
			br.FieldViolations[i] = &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Desc, Reason: v.Reason.String()}
		}
		details = append(details, br)
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		st = withDetails
	}
	return st.Err()
}

// Info returns err's rasoat reason and its metadata; ERROR_REASON_UNSPECIFIED
// when err carries none (another domain, or no status at all).
func Info(err error) (rasoatv1.ErrorReason, map[string]string) {
	st, ok := status.FromError(err)
	if !ok {
		var se interface{ GRPCStatus() *status.Status }
		if !errors.As(err, &se) {
			return rasoatv1.ErrorReason_ERROR_REASON_UNSPECIFIED, nil
		}
		st = se.GRPCStatus()
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetDomain() == Domain {
			return reasonOf(ei.GetReason()), ei.GetMetadata()
		}
	}
	return rasoatv1.ErrorReason_ERROR_REASON_UNSPECIFIED, nil
}

// Reason returns err's rasoat reason (ERROR_REASON_UNSPECIFIED if none).
func Reason(err error) rasoatv1.ErrorReason {
	r, _ := Info(err)
	return r
}

// Violations returns the field violations err carries, with their reasons.
func Violations(err error) []Violation {
	st, ok := status.FromError(err)
	if !ok {
		var se interface{ GRPCStatus() *status.Status }
		if !errors.As(err, &se) {
			return nil
		}
		st = se.GRPCStatus()
	}
	var out []Violation
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			out = append(out, Violation{Field: v.GetField(), Desc: v.GetDescription(), Reason: reasonOf(v.GetReason())})
		}
	}
	return out
}

// MetaInt reads an integer metadata value; ok is false if absent or not one.
func MetaInt(meta map[string]string, key string) (uint64, bool) {
	v, ok := meta[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// ChangeIndex reads i from a violation's field "changes[i]…", the form a
// push's violations name their change in.
func ChangeIndex(field string) (int, bool) {
	rest, ok := strings.CutPrefix(field, "changes[")
	if !ok {
		return 0, false
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return 0, false
	}
	i, err := strconv.Atoi(rest[:end])
	return i, err == nil
}

func reasonOf(s string) rasoatv1.ErrorReason {
	if v, ok := rasoatv1.ErrorReason_value[s]; ok {
		return rasoatv1.ErrorReason(v)
	}
	return rasoatv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}
