package access

import (
	"context"
	"fmt"
	"slices"

	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/auth"
	"google.golang.org/grpc/codes"
)

// VillageLister says which villages are at or under some units, within the
// unit the server serves.
type VillageLister interface {
	VillagesUnder(ctx context.Context, codes []string) ([]string, error)
}

// UnitVillages returns the villages of unit for a read by the caller in
// ctx (a report, the quality flags): every village under the unit, all of
// them within the caller's units, or an error with its reason: NOT_FOUND
// for a unit with no village here, OUT_OF_SCOPE for one reaching past the
// caller's units (a village head asking for the commune). A lookup that
// fails is returned as it is, for the caller to log.
func UnitVillages(ctx context.Context, dir VillageLister, unit string) ([]string, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return nil, rpcerr.New(codes.Unauthenticated, rasoatv1.ErrorReason_TOKEN_MISSING, "this read needs an enrolled caller", nil)
	}
	mine, err := dir.VillagesUnder(ctx, id.Person.Units)
	if err != nil {
		return nil, fmt.Errorf("villages of %s: %w", id.Person.ID, err)
	}
	under, err := dir.VillagesUnder(ctx, []string{unit})
	if err != nil {
		return nil, fmt.Errorf("villages of %s: %w", unit, err)
	}
	if len(under) == 0 {
		return nil, rpcerr.New(codes.NotFound, rasoatv1.ErrorReason_NOT_FOUND, fmt.Sprintf("unit %s has no village this server serves", unit), nil)
	}
	for _, v := range under {
		if _, ok := slices.BinarySearch(mine, v); !ok {
			return nil, rpcerr.New(codes.PermissionDenied, rasoatv1.ErrorReason_OUT_OF_SCOPE, fmt.Sprintf("unit %s is not within %s's units", unit, id.Person.ID), nil)
		}
	}
	return under, nil
}
