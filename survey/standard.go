// Package survey is the domain engine of rasoat: the multidimensional poverty
// standards (chuẩn nghèo đa chiều), the derivation of deprivation indicators
// from a household's raw answers, the classification (hộ nghèo, hộ cận nghèo,
// hộ có mức sống trung bình) and the aggregate measures. It does no I/O.
//
// A standard is data: a JSON table (see standards/*.json, embedded) naming
// its lines, its scores and its indicators, each indicator pointing at one of
// the few rules this package implements, with that rule's parameters. Adding
// a standard, or a province's higher local standard (--standard-file), needs
// no code.
package survey

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Standard is one versioned rule set (chuẩn nghèo) as loaded from JSON.
type Standard struct {
	// ID names the standard on the command line and in results, e.g. "2021-2025".
	ID string `json:"id"`
	// Name is the Vietnamese title.
	Name string `json:"name"`
	// Source is the legal text, e.g. "Nghị định 07/2021/NĐ-CP".
	Source string `json:"source"`
	// ListYears is the span of years whose household lists the standard
	// decides (see listYear for how a review date maps to a list year, and
	// ReviewDates for the reverse).
	ListYears YearSpan `json:"listYears"`
	// Provisional marks a standard some of whose figures are not confirmed
	// against the final legal text. Parts may also be marked one by one.
	Provisional bool `json:"provisional,omitempty"`
	// Lines are the income lines per area.
	Lines struct {
		Rural Lines `json:"rural"`
		Urban Lines `json:"urban"`
	} `json:"lines"`
	// ScoreA holds the form's score-A cut-offs (điểm A); nil when the form's
	// scores for this standard are not known, and then a score A is refused.
	ScoreA *struct {
		Rural Lines `json:"rural"`
		Urban Lines `json:"urban"`
	} `json:"scoreA,omitempty"`
	// MiddleAgricultureOnly: the middle living standard is determined only
	// for households working in agriculture, forestry, fishery or salt-making,
	// on their income less state allowances and social assistance (Decision
	// 24/2021/QĐ-TTg Điều 2 khoản 2, for the lists under Decree 07/2021; see
	// determineMiddle). Without it, the band applies to every household's
	// income as the standard's own text gives it (Decision 59/2015).
	MiddleAgricultureOnly bool `json:"middleAgricultureOnly,omitempty"`
	// DeprivationThreshold is the number of deprived indicators from which a
	// household at or under the line is poor (3 in every standard so far).
	DeprivationThreshold int `json:"deprivationThreshold"`
	// ScoreBPerDeprivation is the points of score B per deprived indicator.
	ScoreBPerDeprivation int `json:"scoreBPerDeprivation"`
	// RetirementAge bounds the working age (độ tuổi lao động) per sex.
	RetirementAge struct {
		Male   RetirementSchedule `json:"male"`
		Female RetirementSchedule `json:"female"`
	} `json:"retirementAge"`
	// Dimensions hold the indicators, in the order of the form.
	Dimensions []Dimension `json:"dimensions"`
	// Notes are remarks copied into every assessment that uses this standard.
	Notes []string `json:"notes,omitempty"`

	indicators []*Indicator // flattened, in order
}

// YearSpan is an inclusive range of years.
type YearSpan struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// Lines are the income cut-offs for one area, in VND per person per month
// (or in points, for score A). A zero line is absent.
type Lines struct {
	// Poverty is the poverty line (chuẩn nghèo). Under a standard with a
	// near-poverty line (Decision 59/2015) income at or under it is poor
	// whatever the deprivations; otherwise (Decree 07/2021 and later) a
	// household at or under it is poor with DeprivationThreshold or more
	// deprivations and near-poor with fewer.
	Poverty int64 `json:"poverty"`
	// NearPoverty is the near-poverty line (chuẩn cận nghèo) of Decision
	// 59/2015: above Poverty and at or under it, a household is poor with
	// DeprivationThreshold or more deprivations and near-poor with fewer.
	// Zero for standards without it.
	NearPoverty int64 `json:"nearPoverty,omitempty"`
	// Middle: above the deprivation line and at or under Middle is the
	// middle living standard (mức sống trung bình). Zero when not known.
	Middle int64 `json:"middle,omitempty"`
	// Provisional marks these figures as not confirmed.
	Provisional bool `json:"provisional,omitempty"`
}

// deprivationLine is the line at or under which deprivations decide
// between poor and near-poor.
func (l Lines) deprivationLine() int64 {
	if l.NearPoverty > 0 {
		return l.NearPoverty
	}
	return l.Poverty
}

// RetirementSchedule is the retirement age (tuổi nghỉ hưu) in months for a
// year: BaseMonths in BaseYear, rising StepMonths a year up to MaxMonths.
type RetirementSchedule struct {
	BaseYear   int `json:"baseYear"`
	BaseMonths int `json:"baseMonths"`
	StepMonths int `json:"stepMonths"`
	MaxMonths  int `json:"maxMonths"`
}

// Months is the retirement age, in months, in force in year y.
func (r RetirementSchedule) Months(y int) int {
	m := r.BaseMonths
	if y > r.BaseYear {
		m += (y - r.BaseYear) * r.StepMonths
	}
	if r.MaxMonths > 0 && m > r.MaxMonths {
		m = r.MaxMonths
	}
	return m
}

// Dimension is a chiều thiếu hụt (employment, health, education, ...).
type Dimension struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	Indicators []*Indicator `json:"indicators"`
}

// Indicator is one chỉ số đo lường mức độ thiếu hụt, bound to a rule.
type Indicator struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Definition quotes the legal threshold (ngưỡng thiếu hụt).
	Definition string `json:"definition,omitempty"`
	// Rule names the derivation this indicator uses (see rules.go).
	Rule   string `json:"rule"`
	Params Params `json:"params"`
	// Provisional marks a threshold not confirmed against the final text.
	Provisional bool `json:"provisional,omitempty"`

	dimension string
	eval      evalFunc
	check     checkFunc
	// wireHead is the wire encoding of IndicatorResult's first fields
	// (indicator, dimension, name), the same for every household: the
	// scoring service copies it instead of writing three strings.
	wireHead []byte
}

// Dimension is the id of the indicator's dimension.
func (i *Indicator) Dimension() string { return i.dimension }

// Indicators lists the standard's indicators in the form's order.
func (s *Standard) Indicators() []*Indicator { return s.indicators }

// Lines returns the money lines for an area.
func (s *Standard) linesFor(urban bool) Lines {
	if urban {
		return s.Lines.Urban
	}
	return s.Lines.Rural
}

// ErrUnknownStandard is returned for a standard id nobody registered.
var ErrUnknownStandard = errors.New("unknown standard")

// ErrNoStandard is returned when no standard covers a review date.
var ErrNoStandard = errors.New("no standard in force")

// LoadStandard reads and validates one standard in the JSON schema of the
// built-in ones. Unknown keys are refused, so a typo in a province's file is
// an error and not a silently ignored threshold.
func LoadStandard(r io.Reader) (*Standard, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var s Standard
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode standard: %w", err)
	}
	if err := s.compile(); err != nil {
		if s.ID != "" {
			return nil, fmt.Errorf("standard %q: %w", s.ID, err)
		}
		return nil, fmt.Errorf("standard: %w", err)
	}
	return &s, nil
}

func (s *Standard) compile() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if s.ID == "" {
		bad("id", "required")
	}
	if s.ListYears.From <= 0 || s.ListYears.To < s.ListYears.From {
		bad("listYears", "need from <= to, got %d..%d", s.ListYears.From, s.ListYears.To)
	}
	checkLines := func(field string, l Lines) {
		if l.Poverty <= 0 {
			bad(field+".poverty", "must be positive")
		}
		if l.NearPoverty < 0 || (l.NearPoverty > 0 && l.NearPoverty <= l.Poverty) {
			bad(field+".nearPoverty", "must be above poverty (%d)", l.Poverty)
		}
		if l.Middle < 0 || (l.Middle > 0 && l.Middle <= l.deprivationLine()) {
			bad(field+".middle", "must be above %d", l.deprivationLine())
		}
	}
	checkLines("lines.rural", s.Lines.Rural)
	checkLines("lines.urban", s.Lines.Urban)
	if s.ScoreA != nil {
		checkLines("scoreA.rural", s.ScoreA.Rural)
		checkLines("scoreA.urban", s.ScoreA.Urban)
	}
	if s.DeprivationThreshold <= 0 {
		bad("deprivationThreshold", "must be positive")
	}
	if s.ScoreBPerDeprivation < 0 {
		bad("scoreBPerDeprivation", "must not be negative")
	}
	for name, r := range map[string]RetirementSchedule{"male": s.RetirementAge.Male, "female": s.RetirementAge.Female} {
		if r.BaseMonths <= 15*12 || r.StepMonths < 0 || (r.MaxMonths != 0 && r.MaxMonths < r.BaseMonths) {
			bad("retirementAge."+name, "need baseMonths over 180, stepMonths >= 0, maxMonths >= baseMonths")
		}
	}
	if len(s.Dimensions) == 0 {
		bad("dimensions", "at least one required")
	}
	seen := map[string]bool{}
	decidedBy := map[string]string{} // fact → the indicator that decides on it
	s.indicators = s.indicators[:0]
	for di, d := range s.Dimensions {
		df := fmt.Sprintf("dimensions[%d]", di)
		if d.ID == "" {
			bad(df+".id", "required")
		}
		if len(d.Indicators) == 0 {
			bad(df+".indicators", "at least one required")
		}
		for ii, ind := range d.Indicators {
			f := fmt.Sprintf("%s.indicators[%d]", df, ii)
			if ind == nil {
				bad(f, "must not be null")
				continue
			}
			if ind.ID == "" {
				bad(f+".id", "required")
			} else if seen[ind.ID] {
				bad(f+".id", "duplicate %q", ind.ID)
			}
			seen[ind.ID] = true
			r, ok := rules[ind.Rule]
			if !ok {
				bad(f+".rule", "unknown rule %q (known: %s)", ind.Rule, strings.Join(RuleNames(), ", "))
				continue
			}
			if err := r.validate(&ind.Params); err != nil {
				bad(f+".params", "%v", err)
				continue
			}
			for _, fact := range r.facts {
				if other, dup := decidedBy[fact]; dup {
					bad(f+".rule", "%q decides on %s as %q does: one answer would count as two deprivations", ind.ID, fact, other)
				}
				decidedBy[fact] = ind.ID
			}
			ind.dimension = d.ID
			ind.eval = r.eval
			ind.check = r.check
			ind.wireHead = ind.appendHead(make([]byte, 0, 64))
			s.indicators = append(s.indicators, ind)
		}
	}
	if len(s.indicators) > 64 {
		bad("dimensions", "at most 64 indicators")
	}
	return errors.Join(errs...)
}

// Registry holds the standards a process knows, and picks one for a review.
type Registry struct {
	byID  map[string]*Standard
	order []*Standard // by ListYears.From
}

// NewRegistry builds a registry; later standards with the same id replace
// earlier ones, so a province file can override a built-in.
func NewRegistry(stds ...*Standard) (*Registry, error) {
	r := &Registry{byID: map[string]*Standard{}}
	for _, s := range stds {
		r.byID[s.ID] = s
	}
	for _, s := range r.byID {
		r.order = append(r.order, s)
	}
	sort.Slice(r.order, func(i, j int) bool {
		if r.order[i].ListYears.From != r.order[j].ListYears.From {
			return r.order[i].ListYears.From < r.order[j].ListYears.From
		}
		return r.order[i].ID < r.order[j].ID
	})
	for i := 1; i < len(r.order); i++ {
		a, b := r.order[i-1], r.order[i]
		if b.ListYears.From <= a.ListYears.To {
			return nil, fmt.Errorf("standards %q and %q both cover list year %d", a.ID, b.ID, b.ListYears.From)
		}
	}
	return r, nil
}

// Standards lists the registry's standards, oldest first.
func (r *Registry) Standards() []*Standard { return slices.Clone(r.order) }

// ByID returns the standard with that id.
func (r *Registry) ByID(id string) (*Standard, error) {
	s, ok := r.byID[id]
	if !ok {
		ids := make([]string, 0, len(r.order))
		for _, s := range r.order {
			ids = append(ids, s.ID)
		}
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownStandard, id, strings.Join(ids, ", "))
	}
	return s, nil
}

// ForListYear returns the standard deciding the lists of year y.
func (r *Registry) ForListYear(y int) (*Standard, error) {
	for _, s := range r.order {
		if y >= s.ListYears.From && y <= s.ListYears.To {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w for list year %d", ErrNoStandard, y)
}

// Choose returns the named standard, or, when id is empty, the one in force
// for a review held on reviewDate ("YYYY-MM-DD").
func (r *Registry) Choose(id, reviewDate string) (*Standard, error) {
	if id != "" {
		return r.ByID(id)
	}
	d, ok := parseDate(reviewDate)
	if !ok {
		return nil, &ValidationError{Violations: []Violation{{Field: "reviewDate", Description: "required, as YYYY-MM-DD, to choose the standard in force"}}}
	}
	return r.ForListYear(d.listYear())
}

// With returns a registry holding r's standards and extra ones (replacing
// any with the same id).
func (r *Registry) With(extra ...*Standard) (*Registry, error) {
	return NewRegistry(append(r.Standards(), extra...)...)
}

//go:embed standards/*.json
var builtinFS embed.FS

var (
	builtinOnce sync.Once
	builtin     *Registry
	builtinErr  error
)

// Builtin returns the standards shipped with rasoat. They are parsed once;
// callers must not modify them.
func Builtin() *Registry {
	builtinOnce.Do(func() {
		entries, err := builtinFS.ReadDir("standards")
		if err != nil {
			builtinErr = err
			return
		}
		var stds []*Standard
		for _, e := range entries {
			b, err := builtinFS.ReadFile("standards/" + e.Name())
			if err != nil {
				builtinErr = err
				return
			}
			s, err := LoadStandard(bytes.NewReader(b))
			if err != nil {
				builtinErr = fmt.Errorf("built-in %s: %w", e.Name(), err)
				return
			}
			stds = append(stds, s)
		}
		builtin, builtinErr = NewRegistry(stds...)
	})
	if builtinErr != nil {
		// The files are compiled in and tested; failing here is a build defect.
		panic(builtinErr)
	}
	return builtin
}

// BuiltinJSON returns the JSON of a built-in standard, the template a
// province copies to write its own.
func BuiltinJSON(id string) ([]byte, error) {
	b, err := builtinFS.ReadFile("standards/" + id + ".json")
	if err != nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownStandard, id)
	}
	return b, nil
}

// AnyProvisional reports whether any part of s (the standard as a whole,
// a line, a score cut-off or an indicator) is marked provisional.
func (s *Standard) AnyProvisional() bool {
	if s.Provisional || s.Lines.Rural.Provisional || s.Lines.Urban.Provisional ||
		(s.ScoreA != nil && (s.ScoreA.Rural.Provisional || s.ScoreA.Urban.Provisional)) {
		return true
	}
	for _, ind := range s.indicators {
		if ind.Provisional {
			return true
		}
	}
	return false
}
