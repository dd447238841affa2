// Package proceduresvc serves ProcedureService: what the texts leave to a
// province or a commune (the posting, complaint and re-check periods; the
// commune's planned day for its village meetings), kept as the server's
// settings and read back merged down the unit tree.
package proceduresvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/rasoat/rasoat/internal/rpcerr"
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/units"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Store is what the service keeps its settings in, and reads the unit
// tree from.
type Store interface {
	Setting(ctx context.Context, key string) (string, bool, error)
	PutSettings(ctx context.Context, set map[string]string, del []string) error
	Units(ctx context.Context) ([]*rasoatv1.Unit, string, error)
}

// Bounds on a request.
const (
	// MaxUnitCode bounds a unit code, as a village code is bounded.
	MaxUnitCode = 64
	// MaxUnits bounds ProcedureRequest.unit_codes: a tablet asks for its
	// communes, a commune server for its own.
	MaxUnits = 64
)

// Key is the settings key of a unit's own procedure settings.
func Key(unit string) string { return "procedure/" + unit }

// UpstreamKey is the settings key of what the level above (the province,
// through the upstream link) has in force at unit: the chain's outer part,
// under the unit's own settings here.
func UpstreamKey(unit string) string { return "procedure-upstream/" + unit }

// Service is the ProcedureService.
type Service struct {
	rasoatv1.UnimplementedProcedureServiceServer
	st  Store
	log *slog.Logger
}

// New returns the service over st.
func New(st Store, log *slog.Logger) *Service { return &Service{st: st, log: log} }

// SetProcedure replaces a unit's own settings.
func (s *Service) SetProcedure(ctx context.Context, req *rasoatv1.SetProcedureRequest) (*rasoatv1.SetProcedureResponse, error) {
	unit := req.GetUnitCode()
	if err := checkUnit("unit_code", unit); err != nil {
		return nil, err
	}
	if err := workflow.CheckSettings(req.GetSettings()); err != nil {
		var se *workflow.SettingError
		if errors.As(err, &se) {
			return nil, invalid(se.Field, se.Desc)
		}
		return nil, invalid("settings", err.Error())
	}
	id, ok := auth.FromContext(ctx)
	if !ok {
		return nil, rpcerr.New(codes.Unauthenticated, rasoatv1.ErrorReason_TOKEN_MISSING, "settings need an enrolled caller", nil)
	}
	tree, err := TreeOf(ctx, s.st)
	if err != nil {
		return nil, s.internal(err)
	}
	node, ok := tree.Unit(unit)
	if !ok {
		return nil, rpcerr.New(codes.NotFound, rasoatv1.ErrorReason_NOT_FOUND, fmt.Sprintf("unit %s is not in this server's units", unit), nil)
	}
	// The periods are the province's rule, the meetings day the commune's
	// plan: each is set at its own level, so that one commune's settings
	// never stand in for its province's.
	if len(req.GetSettings().GetPeriods()) > 0 && node.Level != units.Province {
		return nil, invalid("settings.periods", fmt.Sprintf("unit %s is not a province: the periods are set by the province", unit))
	}
	if req.GetSettings().GetMeetingsBy() != "" && node.Level != units.Commune {
		return nil, invalid("settings.meetings_by", fmt.Sprintf("unit %s is not a commune: the meetings day is the commune's plan", unit))
	}
	if !id.Person.Has(rasoatv1.Role_ROLE_ADMIN) && !(id.Person.Has(rasoatv1.Role_ROLE_COMMUNE_OFFICER) && tree.Within(unit, id.Person.Units)) {
		return nil, rpcerr.New(codes.PermissionDenied, rasoatv1.ErrorReason_ROLE_DENIED,
			fmt.Sprintf("setting unit %s's procedure is for a commune officer of it or of a unit above it, or an admin", unit), nil)
	}
	if len(req.GetSettings().GetPeriods()) == 0 && req.GetSettings().GetMeetingsBy() == "" {
		return &rasoatv1.SetProcedureResponse{}, s.put(ctx, nil, []string{Key(unit)})
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req.GetSettings())
	if err != nil {
		return nil, s.internal(err)
	}
	s.log.Info("procedure settings", "unit", unit, "by", id.Person.ID, "periods", len(req.GetSettings().GetPeriods()), "meetings_by", req.GetSettings().GetMeetingsBy())
	return &rasoatv1.SetProcedureResponse{}, s.put(ctx, map[string]string{Key(unit): string(b)}, nil)
}

func (s *Service) put(ctx context.Context, set map[string]string, del []string) error {
	if err := s.st.PutSettings(ctx, set, del); err != nil {
		return s.internal(err)
	}
	return nil
}

// Procedure returns the settings in force at each unit asked.
func (s *Service) Procedure(ctx context.Context, req *rasoatv1.ProcedureRequest) (*rasoatv1.ProcedureResponse, error) {
	codes_ := req.GetUnitCodes()
	switch {
	case len(codes_) == 0:
		return nil, invalid("unit_codes", "required")
	case len(codes_) > MaxUnits:
		return nil, rpcerr.New(codes.InvalidArgument, rasoatv1.ErrorReason_TOO_LARGE, "unit_codes: too many", nil,
			rpcerr.Violation{Field: "unit_codes", Desc: fmt.Sprintf("%d units, over the limit of %d", len(codes_), MaxUnits), Reason: rasoatv1.ErrorReason_TOO_LARGE})
	}
	for i, c := range codes_ {
		if err := checkUnit(fmt.Sprintf("unit_codes[%d]", i), c); err != nil {
			return nil, err
		}
	}
	tree, err := TreeOf(ctx, s.st)
	if err != nil {
		return nil, s.internal(err)
	}
	out := &rasoatv1.ProcedureResponse{}
	for _, c := range codes_ {
		eff, err := Effective(ctx, s.st, tree, c)
		if err != nil {
			return nil, s.internal(err)
		}
		out.Units = append(out.Units, &rasoatv1.UnitProcedure{UnitCode: c, Settings: eff, Unset: workflow.Unset(eff)})
	}
	return out, nil
}

// Effective is the settings in force at unit: what the level above sent
// for it or for a unit above it (UpstreamKey), then each unit's own from
// the top of this server's tree down to unit.
func Effective(ctx context.Context, st Store, tree *units.Tree, unit string) (*rasoatv1.ProcedureSettings, error) {
	var chain []workflow.Layer
	path := pathTo(tree, unit)
	for _, u := range path {
		up, err := read(ctx, st, UpstreamKey(u))
		if err != nil {
			return nil, err
		}
		if up != nil {
			// What the province has in force, already merged there, with
			// set_by naming the province's units.
			chain = append(chain[:0], workflow.Layer{Settings: up})
		}
	}
	for _, u := range path {
		own, err := read(ctx, st, Key(u))
		if err != nil {
			return nil, err
		}
		if own != nil {
			chain = append(chain, workflow.Layer{Unit: u, Settings: own})
		}
	}
	return effective(chain), nil
}

// effective merges chain, keeping an upstream layer's set_by.
func effective(chain []workflow.Layer) *rasoatv1.ProcedureSettings {
	var layers []workflow.Layer
	for _, l := range chain {
		if l.Unit != "" {
			layers = append(layers, l)
			continue
		}
		// An upstream layer: one layer per unit that set its periods.
		by := map[string]*rasoatv1.ProcedureSettings{}
		var order []string
		for _, p := range l.Settings.GetPeriods() {
			if by[p.GetSetBy()] == nil {
				by[p.GetSetBy()] = &rasoatv1.ProcedureSettings{}
				order = append(order, p.GetSetBy())
			}
			q := proto.CloneOf(p)
			q.SetBy = ""
			by[p.GetSetBy()].Periods = append(by[p.GetSetBy()].Periods, q)
		}
		for _, u := range order {
			layers = append(layers, workflow.Layer{Unit: u, Settings: by[u]})
		}
		if d := l.Settings.GetMeetingsBy(); d != "" {
			layers = append(layers, workflow.Layer{Settings: &rasoatv1.ProcedureSettings{MeetingsBy: d}})
		}
	}
	return workflow.Effective(layers)
}

func read(ctx context.Context, st Store, key string) (*rasoatv1.ProcedureSettings, error) {
	v, ok, err := st.Setting(ctx, key)
	if err != nil || !ok {
		return nil, err
	}
	s := &rasoatv1.ProcedureSettings{}
	if err := proto.Unmarshal([]byte(v), s); err != nil {
		return nil, fmt.Errorf("setting %s: %w", key, err)
	}
	return s, nil
}

// TreeOf reads st's unit tree.
func TreeOf(ctx context.Context, st Store) (*units.Tree, error) {
	all, _, err := st.Units(ctx)
	if err != nil {
		return nil, err
	}
	return units.FromProto(all)
}

// pathTo is unit's chain from the top of the tree down to unit (just unit
// when it is not in the tree).
func pathTo(t *units.Tree, unit string) []string {
	p := []string{unit}
	for _, a := range t.Ancestors(unit) {
		p = append(p, a.Code)
	}
	slices.Reverse(p)
	return p
}

func checkUnit(field, code string) error {
	switch {
	case code == "":
		return invalid(field, "required")
	case len(code) > MaxUnitCode:
		return rpcerr.New(codes.InvalidArgument, rasoatv1.ErrorReason_TOO_LARGE, field+": too long", nil,
			rpcerr.Violation{Field: field, Desc: fmt.Sprintf("%d bytes, over the limit of %d", len(code), MaxUnitCode), Reason: rasoatv1.ErrorReason_TOO_LARGE})
	}
	return nil
}

func invalid(field, desc string) error {
	return rpcerr.New(codes.InvalidArgument, rasoatv1.ErrorReason_INVALID_FIELD, field+": "+desc, nil,
		rpcerr.Violation{Field: field, Desc: desc, Reason: rasoatv1.ErrorReason_INVALID_FIELD})
}

func (s *Service) internal(err error) error {
	s.log.Error("procedure", "err", err)
	return rpcerr.New(codes.Internal, rasoatv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "internal error", nil)
}
