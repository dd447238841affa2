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
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/survey"
	"github.com/rasoat/rasoat/survey/procedure"
)

// Deriver is the store.Deriver over a registry of standards.
type Deriver struct {
	Standards *survey.Registry
}

// Derive scores the household as its latest started review's round
// chooses, and reads its review's state and its decisions.
func (d Deriver) Derive(ctx context.Context, hh string, v store.View) (store.HouseholdFacts, error) {
	states, err := v.Household(ctx, hh)
	if err != nil {
		return store.HouseholdFacts{}, err
	}
	f := store.HouseholdFacts{HouseholdID: hh, MinorityHead: -1}
	for _, s := range states {
		if s.Kind == rasoatv1.EntityKind_ENTITY_KIND_REVIEW {
			if err := d.review(ctx, s, v, &f); err != nil {
				return f, err
			}
		}
	}
	h, err := entity.MaterialiseOf(hh, states)
	if err != nil {
		return f, fmt.Errorf("derive %s: %w", hh, err)
	}
	f.VillageCode = h.GetVillageCode()
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
	std, err := workflow.Standard(d.Standards, f.Round == "regular", h.GetReviewDate())
	if err != nil {
		return f, nil // no standard decides the date: not scored
	}
	a, err := std.Assess(h)
	if err != nil {
		return f, nil // answers missing or invalid: not scored, still counted
	}
	f.Standard, f.Class, f.Deprived = workflow.Result(a)
	f.Deprivations, f.Indicators, f.IncomePerCapita = a.Deprivations, len(a.Indicators), a.IncomePerCapita
	f.MDPoor = a.Deprivations >= std.DeprivationThreshold
	return f, nil
}

// review adds what one review says: its decision, and, when it is the
// latest started one, its round, status and deadline.
func (d Deriver) review(ctx context.Context, s *entity.State, v store.View, f *store.HouseholdFacts) error {
	sf := s.Field("status")
	if sf == nil {
		return nil
	}
	w, ok := sf.Winner()
	if !ok {
		return nil
	}
	t, err := workflow.ParseStored(w.Value)
	if err != nil {
		return nil // a status this server cannot read: not reported
	}
	date, round := str(s, "reviewDate"), str(s, "round")
	if round == "" {
		round = "periodic"
	}
	year, _ := workflow.ListYear(round == "regular", date)
	if t.Decision != nil && t.State == workflow.Decided {
		f.Decisions = append(f.Decisions, store.DecidedFact{ListYear: year, ReviewID: s.ID, Standard: t.Decision.Standard, Result: t.Decision.Result, Deprivations: len(t.Decision.Deprived)})
	}
	if f.ReviewID != "" && !workflow.OrderOf(round == "regular", date, s.ID).After(workflow.OrderOf(f.Round == "regular", f.ReviewDate, f.ReviewID)) {
		return nil // not the latest
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
				return err
			}
			f.Surveyor = p
		}
	}
	return nil
}

func str(s *entity.State, path string) string { return s.String(path) }

var _ store.Deriver = Deriver{}
