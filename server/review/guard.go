// Package review runs the review procedure on the server (quy trình rà
// soát, Decision 24/2021/QĐ-TTg): the Guard that checks every review
// transition and every write to a decided household inside the push that
// carries it, and the reads an officer follows a round with.
package review

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/merge"
	"github.com/rasoat/rasoat/internal/quality"
	"github.com/rasoat/rasoat/internal/workflow"
	"github.com/rasoat/rasoat/internal/workflow/seal"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/survey"
	"github.com/rasoat/rasoat/survey/procedure"
)

// Guard is the workflow's store.Guard for one sender.
type Guard struct {
	Person string
	Roles  []workflow.Role
	Rules  procedure.Rules
	// Standards score a household the chair decides, to check the result
	// the decision records.
	Standards *survey.Registry
	// Now is the server's clock, which bounds a review's date: a review
	// is not dated after the day it is written (nil: time.Now).
	Now func() time.Time
}

// NewGuard returns the guard for a person with roles, under the national
// procedure rules.
func NewGuard(person string, roles []rasoatv1.Role) *Guard {
	g := &Guard{Person: person, Rules: procedure.Default(), Standards: survey.Builtin()}
	for _, r := range roles {
		g.Roles = append(g.Roles, RoleOf(r))
	}
	return g
}

// RoleOf is r as the workflow names it (procedure.Role: the contract's
// name without its ROLE_ prefix).
func RoleOf(r rasoatv1.Role) workflow.Role {
	n := r.String()
	if len(n) > 5 && n[:5] == "ROLE_" {
		n = n[5:]
	}
	return workflow.Role(n)
}

// Refusal is a change the workflow refuses, naming the change's field.
type Refusal struct {
	field string
	err   error
}

func (r *Refusal) Error() string { return r.err.Error() }
func (r *Refusal) Field() string { return r.field }
func (r *Refusal) Unwrap() error { return r.err }
func refused(field string, cause error, format string, a ...any) *Refusal {
	return &Refusal{field: field, err: fmt.Errorf("%w: %s", cause, fmt.Sprintf(format, a...))}
}

// Check refuses a transition the workflow does not allow, a status
// written over one its author had not seen, and any other write to a
// household whose latest review is decided.
func (g *Guard) Check(ctx context.Context, c *rasoatv1.Change, v store.View) error {
	if c.GetKind() == rasoatv1.EntityKind_ENTITY_KIND_REVIEW && c.GetField() == "status" {
		return g.transition(ctx, c, v)
	}
	if c.GetKind() == rasoatv1.EntityKind_ENTITY_KIND_REVIEW {
		if err := g.reviewField(ctx, c, v); err != nil {
			return err
		}
	}
	return g.locked(ctx, c, v)
}

// reviewField checks a write to a started review's own fields but its
// status. A decided review keeps them as decided, whether or not a later
// round has started: its date and round are its list year and standard,
// which the certificate and the next round's start check read. A started
// review's round is fixed (it chose the standard the meeting and the
// posting saw, and whether the chair may refuse); its date stays a date,
// and moves only where the review could have started.
func (g *Guard) reviewField(ctx context.Context, c *rasoatv1.Change, v store.View) error {
	st, err := v.Entity(ctx, c.GetEntityId())
	if err != nil || st == nil || st.Field("status") == nil {
		return err // not started: its start is checked when it is
	}
	cur, _, err := Status(st)
	if err != nil {
		return refused("value", store.ErrWorkflow, "the stored status cannot be read: %v", err)
	}
	if cur.State.Locks() {
		return refused("field", store.ErrLocked, "review %s is decided: its %s stays as decided; an officer must reopen it before it changes", st.ID, c.GetField())
	}
	switch c.GetField() {
	case "round":
		return refused("field", store.ErrWorkflow, "a review's round (periodic or regular) is fixed when it starts: it chose the standard the household is scored under; start a review of the other round instead")
	case "reviewDate":
		var date string
		if json.Unmarshal(c.GetValue(), &date) != nil || date == "" {
			return refused("value", store.ErrWorkflow, "a started review keeps its date: it chooses the list year and the standard")
		}
		return g.checkStart(ctx, v, st.ID, entity.HouseholdOf(c), stringField(st, "round") == "regular", date)
	}
	if strings.HasPrefix(c.GetField(), quality.AckPrefix) {
		// An acknowledgement says someone else looked: as nobody passes a
		// household they surveyed, nobody clears a flag on their own
		// answers.
		states, err := v.Household(ctx, entity.HouseholdOf(c))
		if err != nil {
			return err
		}
		mine, err := g.surveyed(ctx, v, states, st.ID)
		if err != nil {
			return err
		}
		if mine {
			return refused("field", store.ErrWorkflow, "%s wrote this household's answers: nobody acknowledges a quality flag on their own survey", g.Person)
		}
	}
	return nil
}

// Status returns a review's current transition (the status field's
// winner; a conflict between tiers is settled by the same rule as every
// field) and the stamps of its heads.
func Status(st *entity.State) (workflow.Transition, []merge.Stamp, error) {
	if st == nil {
		return workflow.Transition{}, nil, nil
	}
	f := st.Field("status")
	if f == nil {
		return workflow.Transition{}, nil, nil
	}
	w, ok := f.Winner()
	if !ok {
		return workflow.Transition{}, nil, nil
	}
	t, err := ParseStatus(w.Value)
	return t, f.Base(), err
}

// ParseStatus reads a stored status value.
func ParseStatus(v []byte) (workflow.Transition, error) {
	return workflow.ParseStored(v)
}

func (g *Guard) transition(ctx context.Context, c *rasoatv1.Change, v store.View) error {
	t, err := ParseStatus(c.GetValue())
	if err != nil {
		return refused("value", store.ErrWorkflow, "%v", err)
	}
	st, err := v.Entity(ctx, c.GetEntityId())
	if err != nil {
		return err
	}
	cur, heads, err := Status(st)
	if err != nil {
		return refused("value", store.ErrWorkflow, "the stored status cannot be read: %v", err)
	}
	base := entity.MergeOf(c).Base
	if !slices.Equal(base, heads) {
		return refused("base", store.ErrWorkflow, "the review is %s now (%s), which this change was not written over: it was written on an older copy of the review", orNone(cur.State), cur.State.Vietnamese())
	}
	rv := workflow.Review{Status: cur.State, Seal: cur.Seal}
	if st != nil {
		if f := st.Field("round"); f != nil {
			if w, ok := f.Winner(); ok && string(w.Value) == `"regular"` {
				rv.Regular = true
			}
		}
	}
	actor := workflow.Actor{Person: g.Person, Roles: g.Roles}
	var states []*entity.State
	if needsFourEyes(cur.State, t.State) || t.Decision != nil || t.State == workflow.Agreed {
		if states, err = v.Household(ctx, entity.HouseholdOf(c)); err != nil {
			return err
		}
		if actor.Surveyed, err = g.surveyed(ctx, v, states, c.GetEntityId()); err != nil {
			return err
		}
	}
	if err := workflow.Check(rv, t, actor, g.Rules.MeetingStands); err != nil {
		return refused("value", store.ErrWorkflow, "%v", err)
	}
	if cur.State == workflow.None {
		var date string
		if st != nil {
			date = stringField(st, "reviewDate")
		}
		if err := g.checkStart(ctx, v, c.GetEntityId(), entity.HouseholdOf(c), rv.Regular, date); err != nil {
			return err
		}
	}
	var reviewDate string
	if st != nil {
		reviewDate = stringField(st, "reviewDate")
	}
	if m := t.Meeting; m != nil {
		if err := g.checkStepDate("meeting.date", m.Date, reviewDate); err != nil {
			return err
		}
	}
	if d := t.Decision; d != nil {
		if err := g.checkStepDate("decision.date", d.Date, reviewDate); err != nil {
			return err
		}
	}
	if t.State == workflow.Agreed {
		if want := seal.Household(states, c.GetEntityId()); t.Seal != want {
			return refused("value", store.ErrWorkflow, "the minutes' seal %s is not the seal of the household as stored (%s): the meeting discussed answers that changed since, or were never synced", t.Seal, want)
		}
	}
	if t.Decision != nil {
		if want := seal.Household(states, c.GetEntityId()); t.Decision.Seal != want {
			return refused("value", store.ErrWorkflow, "decision.seal %s is not the seal of the household as stored (%s): it changed since the decision was prepared", t.Decision.Seal, want)
		}
		if err := g.checkResult(states, entity.HouseholdOf(c), rv.Regular, t.Decision); err != nil {
			return err
		}
		// Last, so that a decision refused for its own sake says so
		// rather than listing flags.
		if err := g.checkQuality(ctx, v, states, entity.HouseholdOf(c), c.GetEntityId(), rv.Regular); err != nil {
			return err
		}
	}
	return nil
}

// checkResult refuses a decision whose result is not the household's as
// the server scores it: the certificate's grid is made of what decisions
// record, so what they record must be the engine's verdict.
func (g *Guard) checkResult(states []*entity.State, hh string, regular bool, d *workflow.Decision) error {
	h, err := entity.MaterialiseOf(hh, states)
	if err != nil {
		return refused("value", store.ErrWorkflow, "household %s cannot be read to check the decision: %v", hh, err)
	}
	std, err := workflow.Standard(g.Standards, regular, h.GetReviewDate())
	if err != nil {
		return refused("value", store.ErrWorkflow, "household %s has no standard to be decided under: %v", hh, err)
	}
	a, err := std.Assess(h)
	if err != nil {
		return refused("value", store.ErrWorkflow, "household %s cannot be scored, so it cannot be decided: %v", hh, err)
	}
	stdID, result, deprived := workflow.Result(a)
	if d.Standard != stdID || d.Result != result || !slices.Equal(d.Deprived, deprived) {
		return refused("value", store.ErrWorkflow, "the decision records %s under %s deprived in %v; the household as stored is %s under %s deprived in %v", d.Result, d.Standard, d.Deprived, result, stdID, deprived)
	}
	return nil
}

func orNone(s workflow.State) string {
	if s == workflow.None {
		return "not started"
	}
	return string(s)
}

// needsFourEyes reports whether some rule from from to to is four-eyed.
func needsFourEyes(from, to workflow.State) bool {
	for _, r := range workflow.Rules {
		if r.To == to && r.FourEyes && slices.Contains(r.From, from) {
			return true
		}
	}
	return false
}

// surveyed reports whether g's person wrote a current answer of the
// household (itself or a member) or a field of the review other than its
// status and its acknowledgements of quality flags: whoever did may not
// pass or decide it. (An acknowledgement is the officer's or the chair's
// reading of a flag, not an answer: writing one does not make them the
// household's surveyor.)
func (g *Guard) surveyed(ctx context.Context, v store.View, states []*entity.State, reviewID string) (bool, error) {
	if g.Person == "" {
		return false, nil
	}
	seen := map[string]bool{}
	for _, s := range states {
		if s.Kind == rasoatv1.EntityKind_ENTITY_KIND_REVIEW && s.ID != reviewID {
			continue
		}
		for _, p := range s.Paths() {
			if s.Kind == rasoatv1.EntityKind_ENTITY_KIND_REVIEW && (p == "status" || strings.HasPrefix(p, quality.AckPrefix)) {
				continue
			}
			for _, h := range s.Field(p).Heads {
				r := h.Stamp.Replica
				if seen[r] {
					continue
				}
				seen[r] = true
				who, err := v.PersonOf(ctx, r)
				if err != nil {
					return false, err
				}
				if who == g.Person {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// locked refuses a write to a household, a member or a review whose
// household's latest review is decided, except a new review (the next
// round) and the decided review's own status (reopening it).
func (g *Guard) locked(ctx context.Context, c *rasoatv1.Change, v store.View) error {
	hh := entity.HouseholdOf(c)
	states, err := v.Household(ctx, hh)
	if err != nil {
		return err
	}
	latest := Latest(states)
	if latest == nil {
		return nil
	}
	t, _, err := Status(latest)
	if err != nil || !t.State.Locks() {
		return nil
	}
	if c.GetKind() == rasoatv1.EntityKind_ENTITY_KIND_REVIEW && c.GetEntityId() != latest.ID {
		return nil // another round's review: starting the next one unlocks the household
	}
	return refused("field", store.ErrLocked, "household %s was decided in review %s: an officer must reopen the review before its answers change", hh, latest.ID)
}

// checkStart refuses to start review id of household hh dated date (or
// to move a started one to that date) where it cannot be: with no date,
// or a date after today (a review dated in the future would stay the
// household's latest for ever, and no later decision would lock it); and
// a periodic review of a household whose list for that year is decided
// already: a new review would become the household's latest and unlock
// its answers without anyone reopening the decision. (A regular review
// changes the list of its own year, after the periodic one decided it:
// that is what it is for.)
func (g *Guard) checkStart(ctx context.Context, v store.View, id, hh string, regular bool, date string) error {
	on, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return refused("value", store.ErrWorkflow, "a review is started with its date (reviewDate) written first: %q is not a date YYYY-MM-DD", date)
	}
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	// A day of slack: the server's UTC day may be behind Vietnam's (UTC+7).
	if today := now().UTC(); on.After(today.AddDate(0, 0, 1)) {
		return refused("value", store.ErrWorkflow, "a review cannot be dated %s, after today (%s)", date, today.Format(time.DateOnly))
	}
	if regular {
		return nil
	}
	year, err := workflow.ListYear(false, date)
	if err != nil {
		return refused("value", store.ErrWorkflow, "%v", err)
	}
	states, err := v.Household(ctx, hh)
	if err != nil {
		return err
	}
	for _, s := range states {
		if s.Kind != rasoatv1.EntityKind_ENTITY_KIND_REVIEW || s.ID == id {
			continue
		}
		t, _, err := Status(s)
		if err != nil || !t.State.Locks() {
			continue
		}
		y, err := workflow.ListYear(stringField(s, "round") == "regular", stringField(s, "reviewDate"))
		if err == nil && y >= year {
			return refused("value", store.ErrLocked, "the %d list of household %s is decided (review %s): reopen that review rather than start another", y, hh, s.ID)
		}
	}
	return nil
}

// checkStepDate refuses a meeting or a decision dated before the review
// it records a step of, or after today: minutes and decisions are written
// of what has happened (a day of slack, as for a review's own date).
func (g *Guard) checkStepDate(field, date, reviewDate string) error {
	on, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return refused("value", store.ErrWorkflow, "%s: %q is not a date YYYY-MM-DD", field, date)
	}
	if reviewDate != "" && date < reviewDate {
		return refused("value", store.ErrWorkflow, "%s %s is before the review's date %s", field, date, reviewDate)
	}
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	if today := now().UTC(); on.After(today.AddDate(0, 0, 1)) {
		return refused("value", store.ErrWorkflow, "%s %s is after today (%s): a step is recorded once it has happened", field, date, today.Format(time.DateOnly))
	}
	return nil
}

// stringField returns a JSON string field's winning value, "" if unset.
func stringField(s *entity.State, path string) string { return s.String(path) }

// Latest returns the household's latest started review (one with a
// status): the greatest review date, then the greatest id (UUIDv7: the
// one made last), nil if none. A review with no status is not started
// (its None → draft transition is checked), so it cannot unlock a decided
// household by its date alone; nor can one whose date is not a date (null,
// relayed from elsewhere): it sorts first.
func Latest(states []*entity.State) *entity.State {
	var best *entity.State
	var bestOrder workflow.Order
	for _, s := range states {
		if s.Kind != rasoatv1.EntityKind_ENTITY_KIND_REVIEW || s.Field("status") == nil {
			continue
		}
		o := workflow.OrderOf(stringField(s, "round") == "regular", stringField(s, "reviewDate"), s.ID)
		if best == nil || o.After(bestOrder) {
			best, bestOrder = s, o
		}
	}
	return best
}

var _ store.Guard = (*Guard)(nil)
