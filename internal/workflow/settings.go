package workflow

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey/procedure"
)

// Bounds on a unit's procedure settings (rasoatv1.ProcedureSettings).
const (
	// MaxPeriodDays bounds a period's length: a year is more than any
	// posting or re-check period a province would set.
	MaxPeriodDays = 366
	// MaxPeriodSource bounds the citation of the province's text: a
	// decision's number, date, issuer and article fit in a few hundred
	// bytes.
	MaxPeriodSource = 500
)

// Settable are the periods a province sets: those no text available here
// fixes nationally (procedure.Default marks them provisional). The 15 days
// of a regular review are the national text's, and not a province's to
// change.
var Settable = []procedure.PeriodID{procedure.PeriodPosting, procedure.PeriodComplaints, procedure.PeriodRecheck}

// SettingError is a refused setting, naming its field as the request
// spells it ("settings.periods[1].days").
type SettingError struct {
	Field, Desc string
}

func (e *SettingError) Error() string { return e.Field + ": " + e.Desc }

// CheckSettings checks one unit's settings: known, settable periods, each
// at most once, with a length and a source; a planned meetings day that is
// a date.
func CheckSettings(s *rasoatv1.ProcedureSettings) error {
	if s == nil {
		return nil
	}
	if len(s.GetPeriods()) > len(Settable) {
		return &SettingError{"settings.periods", fmt.Sprintf("%d periods, over the %d a province sets", len(s.GetPeriods()), len(Settable))}
	}
	seen := map[string]bool{}
	for i, p := range s.GetPeriods() {
		f := fmt.Sprintf("settings.periods[%d]", i)
		switch {
		case !slices.Contains(Settable, procedure.PeriodID(p.GetId())):
			return &SettingError{f + ".id", fmt.Sprintf("%q is not a period a province sets (want one of %v)", cut(p.GetId()), Settable)}
		case seen[p.GetId()]:
			return &SettingError{f + ".id", fmt.Sprintf("%q set twice", p.GetId())}
		case p.GetDays() < 1 || p.GetDays() > MaxPeriodDays:
			return &SettingError{f + ".days", fmt.Sprintf("%d, want 1 to %d", p.GetDays(), MaxPeriodDays)}
		case p.GetSource() == "":
			return &SettingError{f + ".source", "required: the province's text that sets it"}
		case len(p.GetSource()) > MaxPeriodSource:
			return &SettingError{f + ".source", fmt.Sprintf("%d bytes, over the limit of %d", len(p.GetSource()), MaxPeriodSource)}
		case !utf8.ValidString(p.GetSource()) || hasControl(p.GetSource()):
			return &SettingError{f + ".source", "not valid UTF-8 text"}
		case p.GetSetBy() != "":
			return &SettingError{f + ".set_by", "is the server's to say"}
		}
		seen[p.GetId()] = true
	}
	if d := s.GetMeetingsBy(); d != "" {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return &SettingError{"settings.meetings_by", fmt.Sprintf("%q is not a date YYYY-MM-DD", cut(d))}
		}
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func cut(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Layer is one unit's own settings.
type Layer struct {
	Unit     string
	Settings *rasoatv1.ProcedureSettings
}

// Effective merges the settings of a unit's chain, outermost (the
// province) first: a period set lower down replaces one set above it, and
// the nearest planned meetings day stands. Each period says which unit set
// it.
func Effective(chain []Layer) *rasoatv1.ProcedureSettings {
	byID := map[string]*rasoatv1.ProcedurePeriod{}
	out := &rasoatv1.ProcedureSettings{}
	for _, l := range chain {
		for _, p := range l.Settings.GetPeriods() {
			byID[p.GetId()] = &rasoatv1.ProcedurePeriod{Id: p.GetId(), Days: p.GetDays(), WorkingDays: p.GetWorkingDays(), Source: p.GetSource(), SetBy: l.Unit}
		}
		if d := l.Settings.GetMeetingsBy(); d != "" {
			out.MeetingsBy = d
		}
	}
	for _, id := range Settable {
		if p, ok := byID[string(id)]; ok {
			out.Periods = append(out.Periods, p)
		}
	}
	return out
}

// Apply returns the national rules with s's periods set, and the commune's
// plan. Settings that do not check are left out (they were checked when
// set; a tablet given odd ones by a server keeps the national rules).
func Apply(s *rasoatv1.ProcedureSettings) (procedure.Rules, Plan) {
	rules, plan := procedure.Default(), Plan{}
	if CheckSettings(withoutSetBy(s)) != nil {
		return rules, plan
	}
	for _, p := range s.GetPeriods() {
		kind := procedure.CalendarDays
		if p.GetWorkingDays() {
			kind = procedure.WorkingDays
		}
		src := procedure.Source{Text: p.GetSource()}
		if p.GetSetBy() != "" {
			src.Note = "set by unit " + p.GetSetBy()
		}
		if r, err := rules.Set(procedure.PeriodID(p.GetId()), int(p.GetDays()), kind, src); err == nil {
			rules = r
		}
	}
	if d, err := time.Parse(time.DateOnly, s.GetMeetingsBy()); err == nil {
		plan.MeetingsBy = d
	}
	return rules, plan
}

// Unset lists the settable periods s leaves unset.
func Unset(s *rasoatv1.ProcedureSettings) []string {
	var out []string
	for _, id := range Settable {
		if !slices.ContainsFunc(s.GetPeriods(), func(p *rasoatv1.ProcedurePeriod) bool { return p.GetId() == string(id) }) {
			out = append(out, string(id))
		}
	}
	return out
}

func withoutSetBy(s *rasoatv1.ProcedureSettings) *rasoatv1.ProcedureSettings {
	if s == nil {
		return nil
	}
	c := &rasoatv1.ProcedureSettings{MeetingsBy: s.GetMeetingsBy()}
	for _, p := range s.GetPeriods() {
		c.Periods = append(c.Periods, &rasoatv1.ProcedurePeriod{Id: p.GetId(), Days: p.GetDays(), WorkingDays: p.GetWorkingDays(), Source: p.GetSource()})
	}
	return c
}
