package client

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rasoat/rasoat/internal/workflow"
	"github.com/rasoat/rasoat/survey/procedure"
)

// PostedList is the posted list (danh sách niêm yết công khai) as this
// tablet holds it (workflow.PostedList, shared with the exports and the
// server).
type PostedList = workflow.PostedList

// PostedHousehold is one line of a posted list.
type PostedHousehold = workflow.PostedHousehold

// PostedOptions says which posted list to make.
type PostedOptions struct {
	// Unit is a commune's code (its villages are coded the commune's code,
	// a dash and a suffix: server/units) or a village's; "" for every
	// village this tablet holds.
	Unit string
}

// Posted returns the posted list of a unit: every household whose review
// is posted or under re-check (phúc tra), with its provisional result as
// the engine scores it now under its review's round (what the chair would
// decide), on the lists of the decision form (workflow.ListsOf) against
// the result decided for the year before; the posting day where this
// tablet knows it, and the last day for complaints when the province set
// the period. A household that cannot be scored now is listed under
// workflow.ListUnscored with the reason, never left off.
func (c *Client) Posted(ctx context.Context, opts PostedOptions) (PostedList, error) {
	p := PostedList{Unit: opts.Unit, Lists: map[string][]PostedHousehold{}}
	// Collected first, then scored: scoring reads the store, which must not
	// wait on the iteration's open read.
	var reviews []Review
	err := c.Reviews(ctx, workflow.None, func(r Review) error {
		if (r.Status == workflow.Posted || r.Status == workflow.Rechecking) && inUnit(r.VillageCode, opts.Unit) {
			reviews = append(reviews, r)
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("posted list: %w", err)
	}
	rules := map[string]procedure.Rules{} // by village
	for _, r := range reviews {
		if _, ok := rules[r.VillageCode]; !ok {
			rs, _, err := c.Rules(ctx, r.VillageCode)
			if err != nil {
				return p, fmt.Errorf("posted list: %w", err)
			}
			rules[r.VillageCode] = rs
		}
		x, err := c.postedHousehold(ctx, r, rules[r.VillageCode])
		if err != nil {
			return p, fmt.Errorf("posted list: %w", err)
		}
		for _, list := range workflow.ListsOf(x.Before, x.Result) {
			p.Lists[list] = append(p.Lists[list], x)
		}
	}
	return p, nil
}

func (c *Client) postedHousehold(ctx context.Context, r Review, rules procedure.Rules) (PostedHousehold, error) {
	x := PostedHousehold{ReviewID: r.ID, HouseholdID: r.HouseholdID, VillageCode: r.VillageCode, Round: r.Round, Status: r.Status}
	var err error
	if x.Year, err = workflow.ListYear(r.Regular(), r.Date); err != nil {
		return x, fmt.Errorf("review %s: %w", r.ID, err)
	}
	if x.Before, err = c.decidedFor(ctx, r.HouseholdID, x.Year-1); err != nil {
		return x, err
	}
	h, err := c.Household(ctx, r.HouseholdID)
	if err != nil {
		return x, err
	}
	x.HeadName, x.Address = h.GetHeadName(), h.GetAddress()
	// Scored as Decide scores it: under the round of this review.
	std, err := workflow.Standard(c.reg, r.Regular(), h.GetReviewDate())
	if err == nil {
		a, aerr := std.Assess(h)
		if err = aerr; err == nil {
			_, x.Result, _ = workflow.Result(a)
			x.Deprivations, x.IncomePerCapita = a.Deprivations, a.IncomePerCapita
		}
	}
	if err != nil {
		x.Problem = err.Error()
	}
	if !r.Since.IsZero() {
		since := r.Since.In(workflow.Vietnam) // the posting day as the commune reads it
		x.Since = since.Format(time.DateOnly)
		// Written by the posting itself (from agreed, with no note): its
		// stamp is the posting day. A re-check's note marks a status
		// written after a complaint.
		if r.Status == workflow.Posted && r.Step.Note == "" {
			x.PostedOn = x.Since
			if end, err := rules.Periods[procedure.PeriodComplaints].End(since); err == nil {
				x.ComplaintsUntil = end.Format(time.DateOnly)
			}
		}
	}
	return x, nil
}

// inUnit reports whether a village is unit, or one of the commune unit's
// villages ("" holds every village).
func inUnit(village, unit string) bool {
	return unit == "" || village == unit || strings.HasPrefix(village, unit+"-")
}
