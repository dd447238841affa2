// Package qualitysvc is the QualityService: the quality checks' flags
// (internal/quality) that stand beside a unit's households before their
// review is decided, with each flag's acknowledgement, for the commune
// officer and a supervisor. The flags are the report facts the store
// keeps per household (server/report's Deriver writes them in the push
// that changes the household); the same person in two households is
// found by the store's query across households.
package qualitysvc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/rasoat/rasoat/internal/quality"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/access"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Store is what the service reads.
type Store interface {
	Flags(ctx context.Context, q store.FlagsQuery) ([]store.FlagRow, error)
}

// Directory says which villages a unit holds.
type Directory interface {
	VillagesUnder(ctx context.Context, codes []string) ([]string, error)
}

// Bounds on a request and a response.
const (
	// MaxUnitCode bounds FlagsRequest.unit_code, as a report's.
	MaxUnitCode = 64
	// MaxHouseholds bounds the households one response lists: at a few
	// hundred bytes each, 5,000 stay far under a client's 4 MiB receive
	// limit, and a commune with more flagged households than that has a
	// data problem the counts show whole.
	MaxHouseholds = 5000
)

// Service is the QualityService.
type Service struct {
	rasoatv1.UnimplementedQualityServiceServer
	st  Store
	dir Directory
	log *slog.Logger
}

// New returns the service over st, scoped by dir.
func New(st Store, dir Directory, log *slog.Logger) *Service {
	return &Service{st: st, dir: dir, log: log}
}

func invalid(field, desc string, reason rasoatv1.ErrorReason) error {
	return rpcerr.New(codes.InvalidArgument, reason, field+": "+desc, nil, rpcerr.Violation{Field: field, Desc: desc, Reason: reason})
}

// Flags lists the flags of the unit's households, within the caller's
// units (a commune officer or the chair: the commune; a village head:
// the village).
func (s *Service) Flags(ctx context.Context, req *rasoatv1.FlagsRequest) (*rasoatv1.FlagsResponse, error) {
	unit, year := req.GetUnitCode(), req.GetListYear()
	switch {
	case unit == "":
		return nil, invalid("unit_code", "required", rasoatv1.ErrorReason_INVALID_FIELD)
	case len(unit) > MaxUnitCode:
		return nil, invalid("unit_code", fmt.Sprintf("%d bytes, over the limit of %d", len(unit), MaxUnitCode), rasoatv1.ErrorReason_TOO_LARGE)
	case year != 0 && (year < 2000 || year > 2100):
		return nil, invalid("list_year", fmt.Sprintf("%d, want 0 (every household) or 2000 to 2100", year), rasoatv1.ErrorReason_INVALID_FIELD)
	}
	villages, err := access.UnitVillages(ctx, s.dir, unit)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, s.internal(err)
	}
	rows, err := s.st.Flags(ctx, store.FlagsQuery{Villages: store.OnlyVillages(villages...), ListYear: int(year)})
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, s.internal(err)
	}
	res := Build(rows, req.GetUnacknowledgedOnly())
	res.UnitCode, res.ListYear = unit, year
	return res, nil
}

func (s *Service) internal(err error) error {
	s.log.Error("quality flags", "err", err)
	return rpcerr.New(codes.Internal, rasoatv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "internal error", nil)
}

// rank orders codes as quality.Rules lists them (an unknown code, from a
// newer server's facts, last).
func rank(code string) int {
	for i, r := range quality.Rules {
		if string(r.Code) == code {
			return i
		}
	}
	return len(quality.Rules)
}

// Build makes the response from the store's rows (by village and
// household): the households listed (at most MaxHouseholds; only the
// flags standing without an acknowledgement when unackedOnly), and the
// counts by village over every flag.
func Build(rows []store.FlagRow, unackedOnly bool) *rasoatv1.FlagsResponse {
	res := &rasoatv1.FlagsResponse{}
	for _, r := range quality.Rules {
		res.Rules = append(res.Rules, &rasoatv1.QualityRule{Code: string(r.Code), Vietnamese: r.Vietnamese, English: r.English, Ackable: r.Ackable})
	}
	byVillage := map[string]*rasoatv1.VillageFlagCounts{}
	byCode := map[string]map[string]*rasoatv1.FlagCodeCount{}
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].HouseholdID == rows[i].HouseholdID {
			j++
		}
		hh := slices.Clone(rows[i:j])
		slices.SortStableFunc(hh, func(a, b store.FlagRow) int { return cmp.Compare(rank(a.Code), rank(b.Code)) })
		i = j
		v := hh[0].Village
		vc := byVillage[v]
		if vc == nil {
			vc = &rasoatv1.VillageFlagCounts{VillageCode: v}
			byVillage[v], byCode[v] = vc, map[string]*rasoatv1.FlagCodeCount{}
		}
		vc.HouseholdsFlagged++
		out := &rasoatv1.HouseholdFlags{HouseholdId: hh[0].HouseholdID, VillageCode: v, HeadName: hh[0].HeadName}
		for _, f := range hh {
			r, known := quality.RuleOf(quality.Code(f.Code))
			ackable := !known || r.Ackable
			standing := !f.Acked || !ackable
			cc := byCode[v][f.Code]
			if cc == nil {
				cc = &rasoatv1.FlagCodeCount{Code: f.Code}
				byCode[v][f.Code] = cc
			}
			cc.Flags++
			if standing {
				cc.Unacknowledged++
				vc.Unacknowledged++
			}
			if f.Code == string(quality.OpenConflict) {
				vc.OpenConflicts++
			}
			if unackedOnly && !standing {
				continue
			}
			qf := &rasoatv1.QualityFlag{Code: f.Code, Detail: f.Detail, Ackable: ackable}
			if f.Acked && ackable {
				qf.Acknowledged, qf.Comment = true, f.Comment
			}
			out.Flags = append(out.Flags, qf)
		}
		if len(out.Flags) == 0 {
			continue
		}
		if len(res.Households) == MaxHouseholds {
			res.Truncated = true
			continue
		}
		res.Households = append(res.Households, out)
	}
	for v, vc := range byVillage {
		for _, cc := range byCode[v] {
			vc.ByCode = append(vc.ByCode, cc)
		}
		slices.SortFunc(vc.ByCode, func(a, b *rasoatv1.FlagCodeCount) int { return cmp.Compare(rank(a.Code), rank(b.Code)) })
		res.ByVillage = append(res.ByVillage, vc)
	}
	slices.SortFunc(res.ByVillage, func(a, b *rasoatv1.VillageFlagCounts) int { return cmp.Compare(a.VillageCode, b.VillageCode) })
	return res
}
