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
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/access"
	"github.com/rasoat/rasoat/server/report/targets"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/units"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Store is what the service reads: a report's rows over some villages.
type Store interface {
	Report(ctx context.Context, q store.ReportQuery) (store.ReportRows, error)
}

// Directory says which villages a unit holds, and the units' tree (which
// targets of a province's file fall within a report's unit).
type Directory interface {
	// VillagesUnder returns the villages at or under any of codes, within
	// the unit the server serves.
	VillagesUnder(ctx context.Context, codes []string) ([]string, error)
	// Units returns every unit, with its parent's code.
	Units(ctx context.Context) ([]*rasoatv1.Unit, string, error)
}

// Service is the ReportService.
type Service struct {
	rasoatv1.UnimplementedReportServiceServer
	st  Store
	dir Directory
	log *slog.Logger
	now func() time.Time
	reg *survey.Registry
}

// New returns the service over st, scoped by dir, with the built-in
// standards (WithStandards for a province's own).
func New(st Store, dir Directory, log *slog.Logger) *Service {
	return &Service{st: st, dir: dir, log: log, now: time.Now, reg: survey.Builtin()}
}

// WithStandards sets the standards whose lines the watch list compares
// incomes with, whose indicators targets may name, and whose list year's
// indicators decide whether a target applies.
func (s *Service) WithStandards(reg *survey.Registry) *Service {
	s.reg = reg
	return s
}

// MaxUnitCode bounds ReportRequest.unit_code, as a village code is bounded.
const MaxUnitCode = 64

// The watch list (hộ có nguy cơ rơi vào nghèo): no text found here says
// which households a commune should watch, so these margins are our
// reading of "middle-standard households close to the line, or already
// deprived in several indicators" (issue 10), named so that a province
// may argue with them.
const (
	// WatchIncomeMarginPercent: a middle or not-poor household whose
	// income per capita is at most this many percent above the line under
	// which it would be poor or near-poor (the near-poverty line of
	// Decision 59/2015, the poverty line since Decree 07/2021: 1,500,000
	// VND rural, so up to 1,800,000) is near it: a lost harvest or a sick
	// worker takes it under.
	WatchIncomeMarginPercent = 20
	// WatchMinDeprivations: a household not poor, deprived in this many
	// indicators or more but fewer than the standard's threshold (3), is
	// one deprivation from poverty if its income is at or under the line,
	// and from the Alkire–Foster count of the deprived.
	WatchMinDeprivations = 2
	// DefaultWatchLimit and MaxWatchLimit bound the households a report
	// lists (ReportRequest.watch_limit): a village meeting reads a page, a
	// commune's list a few; the total is always counted.
	DefaultWatchLimit = 100
	MaxWatchLimit     = 1000
)

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
	known := targets.Known(s.reg)
	if vs := targets.Check(req.GetTargets(), known); len(vs) > 0 {
		reason := vs[0].Reason
		return nil, rpcerr.New(codes.InvalidArgument, reason, vs[0].Field+": "+vs[0].Desc, nil, vs...)
	}
	limit := int(req.GetWatchLimit())
	switch {
	case limit == 0:
		limit = DefaultWatchLimit
	case limit < 0 || limit > MaxWatchLimit:
		desc := fmt.Sprintf("%d, want 0 (the default, %d) to %d", limit, DefaultWatchLimit, MaxWatchLimit)
		return nil, rpcerr.New(codes.InvalidArgument, rasoatv1.ErrorReason_INVALID_FIELD, "watch_limit: "+desc, nil, rpcerr.Violation{Field: "watch_limit", Desc: desc, Reason: rasoatv1.ErrorReason_INVALID_FIELD})
	}
	villages, err := access.UnitVillages(ctx, s.dir, unit)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, s.internal(err)
	}
	scope, outside, err := s.targetUnits(ctx, unit, villages, req.GetTargets())
	if err != nil {
		return nil, s.internal(err)
	}
	sets := Sets(req.GetTargets(), scope)
	q := store.ReportQuery{Villages: store.OnlyVillages(villages...), ListYear: int(year), Today: s.now().In(workflow.Vietnam).Format(time.DateOnly),
		AnyDeprived: sets, Watch: WatchRule(s.reg, limit)}
	rows, err := s.st.Report(ctx, q)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, s.internal(err)
	}
	res := Build(rows)
	res.UnitCode, res.ListYear = unit, year
	res.PreviousYear.ListYear = year - 1
	std, _ := s.reg.ForListYear(int(year))
	res.Targets = Measure(rows, req.GetTargets(), scope, sets, std, int(year))
	res.TargetsOutside = int32(outside)
	res.WatchList = Watched(rows, q.Watch)
	return res, nil
}

// targetUnits returns the villages of each target's unit that is the
// report's unit or under it (in the units' tree: a province's target is
// not measured on the one commune a commune server serves), and how many
// targets are for units outside it.
func (s *Service) targetUnits(ctx context.Context, unit string, villages []string, t *rasoatv1.ReportTargets) (map[string][]string, int, error) {
	if len(t.GetUnits())+len(t.GetIndicators()) == 0 {
		return nil, 0, nil
	}
	all, _, err := s.dir.Units(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("units: %w", err)
	}
	tree, err := units.FromProto(all)
	if err != nil {
		return nil, 0, fmt.Errorf("units: %w", err)
	}
	scope := map[string][]string{}
	outside := 0
	var codes []string
	for _, u := range t.GetUnits() {
		codes = append(codes, u.GetUnitCode())
	}
	for _, in := range t.GetIndicators() {
		codes = append(codes, in.GetUnitCode())
	}
	for _, code := range codes {
		if _, ok := scope[code]; ok {
			continue
		}
		if !tree.Within(code, []string{unit}) {
			outside++
			continue
		}
		under, err := s.dir.VillagesUnder(ctx, []string{code})
		if err != nil {
			return nil, 0, fmt.Errorf("villages of %s: %w", code, err)
		}
		var in []string // the report's villages only, whatever the directory says
		for _, v := range under {
			if _, ok := slices.BinarySearch(villages, v); ok {
				in = append(in, v)
			}
		}
		scope[code] = in
	}
	return scope, outside, nil
}

// Sets returns the different sets of indicators of the targets whose
// units are in scope, in first appearance: the query counts each set's
// deprived poor households once, whichever units name it.
func Sets(t *rasoatv1.ReportTargets, scope map[string][]string) [][]string {
	var sets [][]string
	seen := map[string]bool{}
	for _, in := range t.GetIndicators() {
		if _, ok := scope[in.GetUnitCode()]; !ok {
			continue
		}
		if k := targets.SetKey(in.GetIndicators()); !seen[k] {
			seen[k] = true
			sets = append(sets, slices.Sorted(slices.Values(in.GetIndicators())))
		}
	}
	return sets
}

// WatchRule is the watch list's rule over reg's standards: each
// standard's line for each area (the near-poverty line where it has one,
// else the poverty line), and the margins above.
func WatchRule(reg *survey.Registry, limit int) store.WatchQuery {
	w := store.WatchQuery{MinDeprivations: WatchMinDeprivations, Limit: limit}
	for _, std := range reg.Standards() {
		for _, area := range []struct {
			urban bool
			l     survey.Lines
		}{{false, std.Lines.Rural}, {true, std.Lines.Urban}} {
			line := area.l.NearPoverty
			if line == 0 {
				line = area.l.Poverty
			}
			if line > 0 {
				w.Lines = append(w.Lines, store.WatchLine{Standard: std.ID, Urban: area.urban, Line: line, Max: line * (100 + WatchIncomeMarginPercent) / 100})
			}
		}
	}
	return w
}

// Watched turns the store's watch list into the response's, each
// household with the line it was compared with.
func Watched(rows store.ReportRows, w store.WatchQuery) []*rasoatv1.WatchedHousehold {
	out := make([]*rasoatv1.WatchedHousehold, 0, len(rows.Watch))
	for _, h := range rows.Watch {
		x := &rasoatv1.WatchedHousehold{HouseholdId: h.HouseholdID, HeadName: h.HeadName, VillageCode: h.Village, Classification: h.Class, IncomePerCapita: h.IncomePerCapita,
			Deprivations: int32(h.Deprivations), Deprived: h.Deprived, Standard: h.Standard}
		for _, l := range w.Lines {
			if l.Standard == h.Standard && l.Urban == h.Urban {
				x.Line = l.Line
			}
		}
		if h.NearLine {
			x.Reasons = append(x.Reasons, rasoatv1.WatchReason_WATCH_REASON_NEAR_LINE)
		}
		if h.ManyDeprived {
			x.Reasons = append(x.Reasons, rasoatv1.WatchReason_WATCH_REASON_DEPRIVED)
		}
		out = append(out, x)
	}
	return out
}

// tolerance absorbs the rounding of shares and rates: 99 % of 100
// households is met by 99 of them.
const tolerance = 1e-9

// Measure says, for each target whose unit is in scope (its villages),
// what was achieved, in the targets' order (units' targets first, each
// unit's reduction of the rate, of the poor, of the near-poor, then the
// indicators'). Reductions are measured from the results decided for the
// list year before (rows.Previous) to the households as the engine scores
// them now, over the unit's households now; an indicator target on the
// unit's poor households now, deprived in none of its indicators (sets:
// the query's sets, rows.AnyDeprived counting them). std is the list
// year's standard: an indicator it does not have is not applicable.
func Measure(rows store.ReportRows, t *rasoatv1.ReportTargets, scope map[string][]string, sets [][]string, std *survey.Standard, year int) []*rasoatv1.TargetProgress {
	type fig struct{ households, poor, nearPoor, decided, poorBefore, nearBefore int }
	figs := map[string]*fig{}
	of := func(unit string) *fig {
		if f := figs[unit]; f != nil {
			return f
		}
		f := &fig{}
		vs := scope[unit]
		has := func(v string) bool { _, ok := slices.BinarySearch(vs, v); return ok }
		for _, g := range rows.Groups {
			if has(g.Village) {
				f.households += g.Households
				f.poor += g.Poor
				f.nearPoor += g.NearPoor
			}
		}
		for _, p := range rows.Previous {
			if has(p.Village) {
				f.decided += p.Decided
				f.poorBefore += p.Poor
				f.nearBefore += p.NearPoor
			}
		}
		figs[unit] = f
		return f
	}
	status := func(achieved, target float64) rasoatv1.TargetStatus {
		if achieved >= target-tolerance {
			return rasoatv1.TargetStatus_TARGET_STATUS_MET
		}
		return rasoatv1.TargetStatus_TARGET_STATUS_NOT_MET
	}
	notApplicable := rasoatv1.TargetStatus_TARGET_STATUS_NOT_APPLICABLE
	var out []*rasoatv1.TargetProgress
	for _, u := range t.GetUnits() {
		if _, ok := scope[u.GetUnitCode()]; !ok {
			continue
		}
		f := of(u.GetUnitCode())
		noBase := ""
		switch {
		case f.households == 0:
			noBase = "no household in the unit"
		case f.decided == 0:
			noBase = fmt.Sprintf("no result decided for the %d list", year-1)
		}
		reduction := func(kind rasoatv1.TargetKind, target float64, before, now float64, points bool) {
			p := &rasoatv1.TargetProgress{UnitCode: u.GetUnitCode(), Kind: kind, Target: target, Before: before, Now: now}
			p.Achieved = before - now
			if points {
				p.Achieved *= 100
			}
			if p.Status = status(p.Achieved, target); noBase != "" {
				p.Status, p.Reason, p.Achieved = notApplicable, noBase, 0
			}
			out = append(out, p)
		}
		if u.PovertyRateReductionPoints != nil {
			before, now := 0.0, 0.0
			if f.households > 0 {
				before, now = float64(f.poorBefore)/float64(f.households), float64(f.poor)/float64(f.households)
			}
			reduction(rasoatv1.TargetKind_TARGET_KIND_POVERTY_RATE_REDUCTION, u.GetPovertyRateReductionPoints(), before, now, true)
		}
		if u.ReducePoor != nil {
			reduction(rasoatv1.TargetKind_TARGET_KIND_POOR_REDUCED, float64(u.GetReducePoor()), float64(f.poorBefore), float64(f.poor), false)
		}
		if u.ReduceNearPoor != nil {
			reduction(rasoatv1.TargetKind_TARGET_KIND_NEAR_POOR_REDUCED, float64(u.GetReduceNearPoor()), float64(f.nearBefore), float64(f.nearPoor), false)
		}
	}
	setIndex := map[string]int{}
	for i, set := range sets {
		setIndex[targets.SetKey(set)] = i
	}
	for _, in := range t.GetIndicators() {
		vs, ok := scope[in.GetUnitCode()]
		if !ok {
			continue
		}
		f := of(in.GetUnitCode())
		p := &rasoatv1.TargetProgress{UnitCode: in.GetUnitCode(), Kind: rasoatv1.TargetKind_TARGET_KIND_INDICATOR, Indicators: in.GetIndicators(),
			Label: in.GetLabel(), Target: in.GetShare(), Before: float64(f.poor)}
		out = append(out, p)
		if missing := missingIndicator(std, in.GetIndicators()); missing != "" {
			p.Status, p.Reason = notApplicable, missing
			if std != nil {
				p.Reason = fmt.Sprintf("the %d list's standard %s has no indicator %s", year, std.ID, missing)
			}
			continue
		}
		if f.poor == 0 {
			p.Status, p.Reason = notApplicable, "no poor household in the unit"
			continue
		}
		deprived, set := 0, setIndex[targets.SetKey(in.GetIndicators())]
		for _, a := range rows.AnyDeprived {
			if _, ok := slices.BinarySearch(vs, a.Village); ok && a.Set == set {
				deprived += a.Poor
			}
		}
		p.Now = float64(f.poor - deprived)
		p.Achieved = p.Now / float64(f.poor)
		p.Status = status(p.Achieved, p.Target)
	}
	return out
}

// missingIndicator is the first of ids std does not have ("" when it has
// them all; "no standard decides the list" without one).
func missingIndicator(std *survey.Standard, ids []string) string {
	if std == nil {
		return "no standard decides the list"
	}
	for _, id := range ids {
		if !slices.ContainsFunc(std.Indicators(), func(in *survey.Indicator) bool { return in.ID == id }) {
			return id
		}
	}
	return ""
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
	res.ProgressTotal, res.ProgressByVillage, res.ProgressByCollaborator = progress(rows)
	prev := &rasoatv1.DecidedCounts{}
	for _, p := range rows.Previous {
		prev.Decided += int32(p.Decided)
		prev.Poor += int32(p.Poor)
		prev.NearPoor += int32(p.NearPoor)
	}
	res.PreviousYear = prev
	res.WatchTotal = int32(rows.WatchTotal)
	sum := &rasoatv1.TransitionSummary{}
	for _, tr := range rows.Transitions {
		res.Transitions = append(res.Transitions, &rasoatv1.ResultTransition{From: tr.From, To: tr.To, PoorEarlier: tr.PoorEarlier, Households: int32(tr.Households)})
		n := int32(tr.Households)
		listed := func(r string) bool { return r == "POOR" || r == "NEAR_POOR" }
		switch {
		case tr.From == "POOR" && tr.To != "POOR":
			sum.LeftPoverty += n
		case tr.From != "POOR" && tr.To == "POOR" && tr.PoorEarlier:
			// Tái nghèo before phát sinh: the summary form's columns
			// count a household in one of them.
			sum.FellBackIntoPoverty += n
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
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To), cmp.Compare(boolInt(a.PoorEarlier), boolInt(b.PoorEarlier)))
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

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// progress sums the list year's reviews by status into the funnel a
// supervisor follows, for the unit, each village (with its households:
// listed, and those with no review for the year) and each collaborator
// (the person who started the review).
func progress(rows store.ReportRows) (*rasoatv1.ProgressSummary, []*rasoatv1.ProgressSummary, []*rasoatv1.ProgressSummary) {
	total := &rasoatv1.ProgressSummary{}
	byVillage, byCollaborator := map[string]*rasoatv1.ProgressSummary{}, map[string]*rasoatv1.ProgressSummary{}
	get := func(m map[string]*rasoatv1.ProgressSummary, k string) *rasoatv1.ProgressSummary {
		if m[k] == nil {
			m[k] = &rasoatv1.ProgressSummary{Key: k}
		}
		return m[k]
	}
	for _, g := range rows.Groups {
		for _, p := range []*rasoatv1.ProgressSummary{total, get(byVillage, g.Village)} {
			p.Listed += int32(g.Households)
			p.NotStarted += int32(g.Households - g.Reviewed)
		}
	}
	for _, r := range rows.Progress {
		n := int32(r.Households)
		for _, p := range []*rasoatv1.ProgressSummary{total, get(byVillage, r.Village), get(byCollaborator, r.Surveyor)} {
			switch workflow.State(r.Status) {
			case workflow.Draft:
				p.Draft += n
			case workflow.Returned:
				p.Returned += n
			case workflow.Decided:
				p.Decided += n
			case workflow.Refused:
				p.Refused += n
			default: // submitted, agreed, posted, rechecking, passed
				p.Submitted += n
			}
			if workflow.State(r.Status) != workflow.Draft {
				p.Surveyed += n
			}
			p.Overdue += int32(r.Overdue)
		}
	}
	list := func(m map[string]*rasoatv1.ProgressSummary) []*rasoatv1.ProgressSummary {
		out := make([]*rasoatv1.ProgressSummary, 0, len(m))
		for _, p := range m {
			out = append(out, p)
		}
		slices.SortFunc(out, func(a, b *rasoatv1.ProgressSummary) int { return cmp.Compare(a.Key, b.Key) })
		return out
	}
	return total, list(byVillage), list(byCollaborator)
}
