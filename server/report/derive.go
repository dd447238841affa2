// Package report computes what a commune and a province report: counts and
// rates of poor and near-poor households, each indicator's share, the
// Alkire–Foster measures and the review's progress, for a unit and a list
// year. Reports are queries over the facts each store keeps per household
// (store.HouseholdFacts), which the Deriver here makes from the entity
// states in the push that changes them.
package report

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/workflow"
	"github.com/rasoat/rasoat/internal/workflow/seal"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/review"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/survey"
	"github.com/rasoat/rasoat/survey/procedure"
)

// Deriver is the store.Deriver over a registry of standards.
type Deriver struct {
	Standards *survey.Registry
	// SkipQuality leaves out the quality checks' facts (flags, people,
	// decided figures): for a benchmark measuring what they cost a push.
	SkipQuality bool
}

// Derive scores the household as its latest started review's round
// chooses, reads its review's state and its decisions, and runs the
// quality checks (internal/quality) on it.
func (d Deriver) Derive(ctx context.Context, hh string, v store.View) (store.HouseholdFacts, error) {
	states, err := v.Household(ctx, hh)
	if err != nil {
		return store.HouseholdFacts{}, err
	}
	f := store.HouseholdFacts{HouseholdID: hh, MinorityHead: -1}
	var round *entity.State
	var decided []decidedReview
	for _, s := range states {
		if s.Kind == rasoatv1.EntityKind_ENTITY_KIND_REVIEW {
			latest, dec, err := d.review(ctx, s, v, &f)
			if err != nil {
				return f, err
			}
			if latest {
				round = s
			}
			if dec >= 0 {
				decided = append(decided, decidedReview{s, dec})
			}
		}
	}
	h, err := entity.MaterialiseOf(hh, states)
	if err != nil {
		return f, fmt.Errorf("derive %s: %w", hh, err)
	}
	f.VillageCode, f.HeadName = h.GetVillageCode(), h.GetHeadName()
	f.Urban = h.GetArea() == rasoatv1.Area_AREA_URBAN
	switch e := strings.TrimSpace(h.GetHeadEthnicity()); {
	case e == "":
	case strings.EqualFold(e, "Kinh"):
		f.MinorityHead = 0
	default:
		f.MinorityHead = 1
	}
	for _, m := range h.GetMembers() {
		if m.GetRemoved() == rasoatv1.Removal_REMOVAL_UNSPECIFIED {
			f.Members++
		}
	}
	income := d.score(h, &f)
	if d.SkipQuality {
		return f, nil
	}
	return f, d.quality(ctx, h, states, round, decided, income, v, &f)
}

// score adds the engine's classification under the standard the round
// chooses; it returns the income per capita the quality checks compare
// (-1 when not scored, or given as score A). A household with no
// standard for its date, or with answers missing or invalid, is not
// scored and still counted.
func (d Deriver) score(h *rasoatv1.Household, f *store.HouseholdFacts) int64 {
	std, err := workflow.Standard(d.Standards, f.Round == "regular", h.GetReviewDate())
	if err != nil {
		return -1
	}
	a, err := std.Assess(h)
	if err != nil {
		return -1
	}
	f.Standard, f.Class, f.Deprived = workflow.Result(a)
	f.Deprivations, f.Indicators, f.IncomePerCapita = a.Deprivations, len(a.Indicators), a.IncomePerCapita
	f.MDPoor = a.Deprivations >= std.DeprivationThreshold
	if a.HasScoreA {
		return -1
	}
	return a.IncomePerCapita
}

// decidedReview is a decided review and its fact, whose figures quality
// fills.
type decidedReview struct {
	state *entity.State
	fact  int // in HouseholdFacts.Decisions
}

// quality adds the decided reviews' figures, the household's flags (but
// DUPLICATE_PERSON, which the store finds across households from
// People), the acknowledgements on its round and its people.
//
// A decided review's figures are the household's now when its answers
// are still the ones decided (the decision's seal matches): the review
// is decided and locks them. Once a later round has changed them, they
// are the ones the facts already hold for that review, written when it
// was decided; a review decided before the figures were kept and changed
// since has none (-1), and the next round is not compared with it.
func (d Deriver) quality(ctx context.Context, h *rasoatv1.Household, states []*entity.State, round *entity.State, decided []decidedReview, income int64, v store.View, f *store.HouseholdFacts) error {
	var stored []store.DecidedFact
	if len(decided) > 0 {
		var err error
		if stored, err = v.Decided(ctx, f.HouseholdID); err != nil {
			return err
		}
	}
	for _, dr := range decided {
		fact := &f.Decisions[dr.fact]
		fact.FloorAreaM2, fact.IncomePerCapita = -1, -1
		t, err := workflow.ParseStored(mustWinner(dr.state, "status"))
		if err == nil && t.Decision != nil && seal.Household(states, dr.state.ID) == t.Decision.Seal {
			if a := h.GetHousing().FloorAreaM2; a != nil {
				fact.FloorAreaM2 = *a
			}
			fact.IncomePerCapita = income
			continue
		}
		for _, s := range stored {
			if s.ReviewID == fact.ReviewID && s.ListYear == fact.ListYear {
				fact.FloorAreaM2, fact.IncomePerCapita = s.FloorAreaM2, s.IncomePerCapita
			}
		}
	}
	var roundID string
	if round != nil {
		roundID = round.ID
	}
	for _, fl := range review.HouseholdFlags(h, states, round, income, review.Prior(f.Decisions, roundID), "") {
		f.Flags = append(f.Flags, store.FlagFact{Code: string(fl.Code), Detail: fl.Detail})
	}
	f.Acks = review.Acks(round)
	f.People = review.People(h)
	return nil
}

func mustWinner(s *entity.State, path string) []byte {
	if f := s.Field(path); f != nil {
		if w, ok := f.Winner(); ok {
			return w.Value
		}
	}
	return nil
}

// review adds what one review says: its decision, and, when it is the
// latest started one, its round, status and deadline. It reports whether
// it is the latest so far, and the index of the decided fact it added
// (-1 if none).
func (d Deriver) review(ctx context.Context, s *entity.State, v store.View, f *store.HouseholdFacts) (bool, int, error) {
	sf := s.Field("status")
	if sf == nil {
		return false, -1, nil
	}
	w, ok := sf.Winner()
	if !ok {
		return false, -1, nil
	}
	t, err := workflow.ParseStored(w.Value)
	if err != nil {
		return false, -1, nil // a status this server cannot read: not reported
	}
	date, round := str(s, "reviewDate"), str(s, "round")
	if round == "" {
		round = "periodic"
	}
	year, _ := workflow.ListYear(round == "regular", date)
	dec := -1
	if t.Decision != nil && t.State == workflow.Decided {
		f.Decisions = append(f.Decisions, store.DecidedFact{ListYear: year, ReviewID: s.ID, Standard: t.Decision.Standard, Result: t.Decision.Result, Deprivations: len(t.Decision.Deprived)})
		dec = len(f.Decisions) - 1
	}
	if f.ReviewID != "" && !workflow.OrderOf(round == "regular", date, s.ID).After(workflow.OrderOf(f.Round == "regular", f.ReviewDate, f.ReviewID)) {
		return false, dec, nil // not the latest
	}
	f.ReviewID, f.Round, f.ReviewDate, f.ListYear, f.Status = s.ID, round, date, year, string(t.State)
	f.StatusAt = hlc.Timestamp(w.Stamp.HLC).Wall().Unix()
	f.DueDate = ""
	if round == "regular" {
		if on, err := time.Parse(time.DateOnly, date); err == nil {
			r := procedure.Default()
			if due, err := r.RegularDue(r.RegularStart(on)); err == nil {
				f.DueDate = due.Format(time.DateOnly)
			}
		}
	}
	f.Surveyor = ""
	if df := s.Field("reviewDate"); df != nil {
		if dw, ok := df.Winner(); ok {
			p, err := v.PersonOf(ctx, dw.Stamp.Replica)
			if err != nil {
				return false, -1, err
			}
			f.Surveyor = p
		}
	}
	return true, dec, nil
}

func str(s *entity.State, path string) string { return s.String(path) }

var _ store.Deriver = Deriver{}
