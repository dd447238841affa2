package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/grpc/codes"
)

// Store is what the service reads: a report's rows over some villages.
type Store interface {
	Report(ctx context.Context, q store.ReportQuery) (store.ReportRows, error)
}

// Directory says which villages a unit holds.
type Directory interface {
	// VillagesUnder returns the villages at or under any of codes, within
	// the unit the server serves.
	VillagesUnder(ctx context.Context, codes []string) ([]string, error)
}

// Service is the ReportService.
type Service struct {
	rasoatv1.UnimplementedReportServiceServer
	st  Store
	dir Directory
	log *slog.Logger
	now func() time.Time
}

// New returns the service over st, scoped by dir.
func New(st Store, dir Directory, log *slog.Logger) *Service {
	return &Service{st: st, dir: dir, log: log, now: time.Now}
}

// MaxUnitCode bounds ReportRequest.unit_code, as a village code is bounded.
const MaxUnitCode = 64

// Report computes the unit's report: the villages under it that are also
// under the caller's units (a commune officer reports on the commune, a
// village head on the village).
func (s *Service) Report(ctx context.Context, req *rasoatv1.ReportRequest) (*rasoatv1.ReportResponse, error) {
	unit, year := req.GetUnitCode(), req.GetListYear()
	switch {
	case unit == "":
		return nil, rpcerr.New(codes.InvalidArgument, rasoatv1.ErrorReason_INVALID_FIELD, "unit_code: required", nil, rpcerr.Violation{Field: "unit_code", Desc: "required", Reason: rasoatv1.ErrorReason_INVALID_FIELD})
	case len(unit) > MaxUnitCode:
		return nil, rpcerr.New(codes.InvalidArgument, rasoatv1.ErrorReason_TOO_LARGE, "unit_code: too long", nil, rpcerr.Violation{Field: "unit_code", Desc: fmt.Sprintf("%d bytes, over the limit of %d", len(unit), MaxUnitCode), Reason: rasoatv1.ErrorReason_TOO_LARGE})
	case year < 2000 || year > 2100:
		return nil, rpcerr.New(codes.InvalidArgument, rasoatv1.ErrorReason_INVALID_FIELD, "list_year: want 2000 to 2100", nil, rpcerr.Violation{Field: "list_year", Desc: fmt.Sprintf("%d, want 2000 to 2100", year), Reason: rasoatv1.ErrorReason_INVALID_FIELD})
	}
	id, ok := auth.FromContext(ctx)
	if !ok {
		return nil, rpcerr.New(codes.Unauthenticated, rasoatv1.ErrorReason_TOKEN_MISSING, "reports need an enrolled caller", nil)
	}
	mine, err := s.dir.VillagesUnder(ctx, id.Person.Units)
	if err != nil {
		return nil, s.internal(err)
	}
	under, err := s.dir.VillagesUnder(ctx, []string{unit})
	if err != nil {
		return nil, s.internal(err)
	}
	if len(under) == 0 {
		return nil, rpcerr.New(codes.NotFound, rasoatv1.ErrorReason_NOT_FOUND, fmt.Sprintf("unit %s has no village this server serves", unit), nil)
	}
	var villages []string
	for _, v := range under {
		if _, ok := slices.BinarySearch(mine, v); ok {
			villages = append(villages, v)
		}
	}
	if len(villages) < len(under) {
		return nil, rpcerr.New(codes.PermissionDenied, rasoatv1.ErrorReason_OUT_OF_SCOPE, fmt.Sprintf("unit %s is not within %s's units", unit, id.Person.ID), nil)
	}
	rows, err := s.st.Report(ctx, store.ReportQuery{Villages: store.OnlyVillages(villages...), ListYear: int(year), Today: s.now().Format(time.DateOnly)})
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, s.internal(err)
	}
	res := Build(rows)
	res.UnitCode, res.ListYear = unit, year
	return res, nil
}

func (s *Service) internal(err error) error {
	s.log.Error("report", "err", err)
	return rpcerr.New(codes.Internal, rasoatv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "internal error", nil)
}

// counts accumulates groups into ReportCounts.
type counts struct {
	Households, Reviewed, Poor, NearPoor, Middle, NotPoor, Unscored int32
	md                                                              int
	share                                                           float64
}

func (c *counts) add(g *store.ReportGroup) {
	c.Households += int32(g.Households)
	c.Reviewed += int32(g.Reviewed)
	c.Poor += int32(g.Poor)
	c.NearPoor += int32(g.NearPoor)
	c.Middle += int32(g.Middle)
	c.NotPoor += int32(g.NotPoor)
	c.Unscored += int32(g.Unscored)
	c.md += g.MDPoor
	c.share += g.MDShareSum
}

func (c *counts) proto() *rasoatv1.ReportCounts {
	out := &rasoatv1.ReportCounts{Households: c.Households, Reviewed: c.Reviewed, Poor: c.Poor, NearPoor: c.NearPoor,
		Middle: c.Middle, NotPoor: c.NotPoor, Unscored: c.Unscored}
	if c.Households > 0 {
		out.PovertyRate = float64(c.Poor) / float64(c.Households)
		out.MultidimensionalPovertyRate = float64(c.Poor+c.NearPoor) / float64(c.Households)
	}
	return out
}

// Build makes the report from the store's rows: every breakdown a sum of
// the groups, rates over all the households of the group.
func Build(rows store.ReportRows) *rasoatv1.ReportResponse {
	var total counts
	byVillage, byCommune := map[string]*counts{}, map[string]*counts{}
	byEthnicity := map[string]*counts{}
	byArea := map[string]*counts{}
	get := func(m map[string]*counts, k string) *counts {
		if m[k] == nil {
			m[k] = &counts{}
		}
		return m[k]
	}
	for i := range rows.Groups {
		g := &rows.Groups[i]
		total.add(g)
		get(byVillage, g.Village).add(g)
		// A village's code is its commune's, a dash and a suffix
		// (server/units).
		commune, _, _ := strings.Cut(g.Village, "-")
		get(byCommune, commune).add(g)
		get(byEthnicity, ethnicityKey(g.MinorityHead)).add(g)
		area := "rural"
		if g.Urban {
			area = "urban"
		}
		get(byArea, area).add(g)
	}
	res := &rasoatv1.ReportResponse{Total: total.proto(), ByVillage: breakdown(byVillage), ByCommune: breakdown(byCommune), ByEthnicity: breakdown(byEthnicity), ByArea: breakdown(byArea)}
	scored := total.Households - total.Unscored
	if scored > 0 {
		af := &rasoatv1.AlkireFoster{H: float64(total.md) / float64(scored)}
		if total.md > 0 {
			af.A = total.share / float64(total.md)
		}
		af.M0 = af.H * af.A
		res.AlkireFoster = af
	}
	for _, in := range rows.Indicators {
		s := &rasoatv1.IndicatorShare{Indicator: in.Indicator, Deprived: int32(in.Deprived), DeprivedPoor: int32(in.DeprivedPoor)}
		if total.Households > 0 {
			s.Share = float64(in.Deprived) / float64(total.Households)
		}
		if total.Poor > 0 {
			s.ShareOfPoor = float64(in.DeprivedPoor) / float64(total.Poor)
		}
		res.Indicators = append(res.Indicators, s)
	}
	slices.SortFunc(res.Indicators, func(a, b *rasoatv1.IndicatorShare) int {
		return cmp.Or(cmp.Compare(b.Deprived, a.Deprived), cmp.Compare(a.Indicator, b.Indicator))
	})
	for _, p := range rows.Progress {
		res.Progress = append(res.Progress, &rasoatv1.ReviewProgress{VillageCode: p.Village, Collaborator: p.Surveyor, Status: p.Status, Reviews: int32(p.Households), Overdue: int32(p.Overdue)})
	}
	slices.SortFunc(res.Progress, func(a, b *rasoatv1.ReviewProgress) int {
		return cmp.Or(cmp.Compare(a.VillageCode, b.VillageCode), cmp.Compare(a.Collaborator, b.Collaborator), cmp.Compare(a.Status, b.Status))
	})
	sum := &rasoatv1.TransitionSummary{}
	for _, tr := range rows.Transitions {
		res.Transitions = append(res.Transitions, &rasoatv1.ResultTransition{From: tr.From, To: tr.To, Households: int32(tr.Households)})
		n := int32(tr.Households)
		listed := func(r string) bool { return r == "POOR" || r == "NEAR_POOR" }
		switch {
		case tr.From == "POOR" && tr.To != "POOR":
			sum.LeftPoverty += n
		case tr.From == "NEAR_POOR" && tr.To == "POOR":
			sum.NearPoorToPoor += n
		case tr.From == "NEAR_POOR" && !listed(tr.To):
			sum.LeftNearPoverty += n
		case !listed(tr.From) && tr.To == "POOR":
			sum.NewlyPoor += n
		case !listed(tr.From) && tr.To == "NEAR_POOR":
			sum.NewlyNearPoor += n
		}
	}
	slices.SortFunc(res.Transitions, func(a, b *rasoatv1.ResultTransition) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	res.TransitionSummary = sum
	return res
}

// ethnicityKey names a group's head's ethnicity (store.HouseholdFacts.
// MinorityHead).
func ethnicityKey(minority int) string {
	switch minority {
	case 1:
		return "minority"
	case 0:
		return "kinh"
	}
	return "unknown"
}

func breakdown(m map[string]*counts) []*rasoatv1.ReportBreakdown {
	out := make([]*rasoatv1.ReportBreakdown, 0, len(m))
	for k, c := range m {
		out = append(out, &rasoatv1.ReportBreakdown{Key: k, Counts: c.proto()})
	}
	slices.SortFunc(out, func(a, b *rasoatv1.ReportBreakdown) int { return cmp.Compare(a.Key, b.Key) })
	return out
}
