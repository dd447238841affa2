package review

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/quality"
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
)

// The quality checks before a decision (internal/quality), as the server
// runs them: the report Deriver stores a household's flags in the push
// that changes it, for the officer's list (QualityService); the Guard
// runs the same checks, and asks the store for the same person in other
// households, when the chair decides, and refuses the decision while a
// flag stands without an acknowledgement on the review being decided.

// HouseholdFlags returns the flags of household h as its entity states
// stand, for its review round (nil: none started): the per-household
// rules (quality.Check) and OPEN_CONFLICT. DUPLICATE_PERSON is across
// households: Duplicates. incomePerCapita is the engine's (-1 when not
// scored or given as score A); prior the last decided round's figures.
// A conflict on skip (a field path of round) is left out: the decision
// being checked writes it over both values.
func HouseholdFlags(h *rasoatv1.Household, states []*entity.State, round *entity.State, incomePerCapita int64, prior *quality.Prior, skip string) []quality.Flag {
	in := quality.Input{Household: h, IncomePerCapita: incomePerCapita, Prior: prior}
	if round != nil {
		in.RoundDate = round.String("reviewDate")
	}
	flags := quality.Check(in)
	if d := conflicts(h, states, round, skip); d != "" {
		flags = append(flags, quality.Flag{Code: quality.OpenConflict, Detail: d})
	}
	return flags
}

// conflicts names the fields of the household, its members and its
// round's review that hold an open conflict (other rounds' reviews are
// settled history).
func conflicts(h *rasoatv1.Household, states []*entity.State, round *entity.State, skip string) string {
	names := map[string]string{}
	for _, m := range h.GetMembers() {
		names[m.GetId()] = m.GetFullName()
	}
	var out []string
	for _, s := range states {
		if s.Kind == rasoatv1.EntityKind_ENTITY_KIND_REVIEW && (round == nil || s.ID != round.ID) {
			continue
		}
		for _, p := range s.Paths() {
			if s.Kind == rasoatv1.EntityKind_ENTITY_KIND_REVIEW && p == skip {
				continue
			}
			if _, _, ok := s.Field(p).Conflict(); !ok {
				continue
			}
			switch s.Kind {
			case rasoatv1.EntityKind_ENTITY_KIND_MEMBER:
				out = append(out, "thành viên "+names[s.ID]+": "+p)
			case rasoatv1.EntityKind_ENTITY_KIND_REVIEW:
				out = append(out, "đợt rà soát: "+p)
			default:
				out = append(out, "hộ: "+p)
			}
		}
	}
	slices.Sort(out)
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("và %d trường khác", len(out)-5))
	}
	return strings.Join(out, "; ")
}

// People returns the household's members present as DUPLICATE_PERSON
// matches them (a member without a name or a birth date is left out).
func People(h *rasoatv1.Household) []store.PersonFact {
	var out []store.PersonFact
	for _, m := range h.GetMembers() {
		if m.GetRemoved() != rasoatv1.Removal_REMOVAL_UNSPECIFIED {
			continue
		}
		if k := quality.PersonKey(m.GetFullName(), m.GetBirthDate()); k != "" {
			out = append(out, store.PersonFact{MemberID: m.GetId(), Key: k, FullName: m.GetFullName(), BirthDate: m.GetBirthDate()})
		}
	}
	return out
}

// Duplicates returns the DUPLICATE_PERSON flag of household hh, whose
// members are people, as the store's facts of other households stand:
// one indexed read of at most store.MaxPersonMatches rows.
func Duplicates(ctx context.Context, v store.View, hh string, people []store.PersonFact) (*quality.Flag, error) {
	if len(people) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(people))
	byKey := map[string]store.PersonFact{}
	for _, p := range people {
		if _, ok := byKey[p.Key]; !ok {
			keys = append(keys, p.Key)
			byKey[p.Key] = p
		}
	}
	matches, err := v.SamePeople(ctx, hh, keys)
	if err != nil || len(matches) == 0 {
		return nil, err
	}
	var d []string
	for _, m := range matches {
		p := byKey[m.Key]
		d = append(d, quality.Duplicate(p.FullName, p.BirthDate, quality.OtherHousehold(m.HeadName, m.HouseholdID, m.VillageCode)))
	}
	return &quality.Flag{Code: quality.DuplicatePerson, Detail: strings.Join(d, "; ")}, nil
}

// Prior returns the figures of the household's last decided review other
// than round (its list year, then the review made last), nil if none.
func Prior(decided []store.DecidedFact, round string) *quality.Prior {
	var best *store.DecidedFact
	for i := range decided {
		d := &decided[i]
		if d.ReviewID == round {
			continue
		}
		if best == nil || d.ListYear > best.ListYear || d.ListYear == best.ListYear && d.ReviewID > best.ReviewID {
			best = d
		}
	}
	if best == nil {
		return nil
	}
	return &quality.Prior{ListYear: best.ListYear, FloorAreaM2: best.FloorAreaM2, IncomePerCapita: best.IncomePerCapita}
}

// Acks returns the acknowledgements a review holds, by code: each ack.CODE
// field's current comment (a withdrawn one, null, is none).
func Acks(round *entity.State) map[string]string {
	if round == nil {
		return nil
	}
	var out map[string]string
	for code, c := range quality.AcksOf(round.String) {
		if out == nil {
			out = map[string]string{}
		}
		out[string(code)] = c
	}
	return out
}

// checkQuality refuses deciding review id of household hh (states, as the
// batch leaves them) while a flag stands that the review does not
// acknowledge, naming the codes.
func (g *Guard) checkQuality(ctx context.Context, v store.View, states []*entity.State, hh, id string, regular bool) error {
	h, err := entity.MaterialiseOf(hh, states)
	if err != nil {
		return refused("value", store.ErrWorkflow, "household %s cannot be read to check it: %v", hh, err)
	}
	var round *entity.State
	for _, s := range states {
		if s.ID == id {
			round = s
		}
	}
	income := int64(-1)
	if std, err := workflow.Standard(g.Standards, regular, h.GetReviewDate()); err == nil {
		if a, err := std.Assess(h); err == nil && !a.HasScoreA {
			income = a.IncomePerCapita
		}
	}
	decided, err := v.Decided(ctx, hh)
	if err != nil {
		return err
	}
	flags := HouseholdFlags(h, states, round, income, Prior(decided, id), "status")
	dup, err := Duplicates(ctx, v, hh, People(h))
	if err != nil {
		return err
	}
	if dup != nil {
		flags = append(flags, *dup)
	}
	acks := Acks(round)
	var open []string
	for _, f := range flags {
		r, _ := quality.RuleOf(f.Code)
		if _, ok := acks[string(f.Code)]; ok && r.Ackable {
			continue
		}
		how := "acknowledge it with a comment (" + quality.AckPath(f.Code) + ")"
		if !r.Ackable {
			how = "resolve it by writing the value that stands"
		}
		open = append(open, fmt.Sprintf("%s (%s): %s; %s", f.Code, r.Vietnamese, f.Detail, how))
	}
	if len(open) == 0 {
		return nil
	}
	return refused("value", store.ErrQuality, "household %s has quality flags its review %s does not acknowledge: %s", hh, id, strings.Join(open, " | "))
}
