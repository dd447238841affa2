package adminsvc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/units"
	"google.golang.org/grpc/codes"
)

// checkUnits checks that the stored tree with the request's units over it
// is still a tree (server/units), and that the served unit is a commune or
// province of it. It cleans the request's units in place (trimmed, NFC).
func checkUnits(stored, put []*rasoatv1.Unit, served string) error {
	replaced := make(map[string]bool, len(put))
	for _, u := range put {
		replaced[strings.TrimSpace(u.GetCode())] = true
	}
	all := make([]units.Unit, 0, len(stored)+len(put))
	for _, u := range stored {
		if !replaced[u.GetCode()] {
			all = append(all, units.Of(u))
		}
	}
	offset := len(all)
	for i, u := range put {
		if !units.KnownLevel(u.GetLevel()) {
			return invalid([]rpcerr.Violation{violation(fmt.Sprintf("units[%d].level", i), "must be province, commune or village")})
		}
		all = append(all, units.Of(u))
	}
	tree, err := units.New(all)
	var fe *units.FieldError
	switch {
	case errors.As(err, &fe):
		field := "units"
		if i, ok := strings.CutPrefix(fe.Where, "units["); ok {
			if n, err := strconv.Atoi(strings.TrimSuffix(i, "]")); err == nil && n >= offset {
				field = fmt.Sprintf("units[%d]", n-offset)
			}
		}
		if fe.Field != "" {
			field += "." + fe.Field
		}
		desc := fe.Desc
		if fe.Value != "" {
			desc = strconv.Quote(fe.Value) + ": " + desc
		}
		v := violation(field, desc)
		if fe.OverLimit {
			v.Reason = rasoatv1.ErrorReason_TOO_LARGE
		}
		return invalid([]rpcerr.Violation{v})
	case err != nil:
		return err
	}
	for i, u := range tree.Units()[offset:] {
		put[i] = units.Proto(u)
	}
	if served != "" {
		u, ok := tree.Unit(served)
		if !ok {
			return rpcerr.New(codes.NotFound, rasoatv1.ErrorReason_NOT_FOUND, fmt.Sprintf("served_unit_code %q is not a unit", served), nil,
				rpcerr.Violation{Field: "served_unit_code", Desc: "is not a unit", Reason: rasoatv1.ErrorReason_NOT_FOUND})
		}
		if u.Level == units.Village {
			return invalid([]rpcerr.Violation{violation("served_unit_code", "is a village: a server serves a commune or a province")})
		}
	}
	return nil
}
