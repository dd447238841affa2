package workflow

import (
	"fmt"
	"time"

	"github.com/rasoat/rasoat/survey/procedure"
)

// Facts is what a review's deadlines depend on.
type Facts struct {
	Regular bool
	// Date is the review's date (ngày rà soát): for a regular review, the
	// day the household's request was taken up.
	Date   time.Time
	Status State
	// Since is when the current status was written (its stamp's wall
	// time).
	Since time.Time
}

// Plan is what a commune plans for its periodic round.
type Plan struct {
	// MeetingsBy is the day by which the village meetings are to be held
	// (zero: not planned).
	MeetingsBy time.Time
}

// Due is one deadline of a review.
type Due struct {
	What string
	// By is the last day it may be done on; zero when the period is not
	// set (the province has not set what the text leaves open).
	By time.Time
	// Late is set when today is past By and it is not done.
	Late bool
	// Open is set for a period still running (posting, a re-check).
	Open   bool
	Source procedure.Source
}

// Deadlines returns what is due for a review on today: a regular review's
// decision within 15 days of the monthly review it joined (QĐ 24/2021,
// Điều 5 khoản 2, counted as procedure.Rules.RegularDue does); a periodic
// review's village meeting by the commune's planned day; the posting and
// re-check periods, running or unset.
func Deadlines(f Facts, today time.Time, rules procedure.Rules, plan Plan) []Due {
	today = day(today)
	var out []Due
	done := f.Status == Decided || f.Status == Refused || f.Status == Approved
	if f.Regular && !done && !f.Date.IsZero() {
		start := rules.RegularStart(f.Date)
		if by, err := rules.RegularDue(start); err == nil {
			out = append(out, Due{What: fmt.Sprintf("decision on the regular review begun %s", start.Format(time.DateOnly)),
				By: by, Late: today.After(by), Source: rules.Periods[procedure.PeriodRegularDecision].Source})
		}
	}
	if !f.Regular && !plan.MeetingsBy.IsZero() && (f.Status == Draft || f.Status == Submitted || f.Status == Returned || f.Status == None) {
		by := day(plan.MeetingsBy)
		out = append(out, Due{What: "village meeting (họp dân)", By: by, Late: today.After(by)})
	}
	period := func(id procedure.PeriodID, what string) {
		p := rules.Periods[id]
		d := Due{What: what, Open: true, Source: p.Source}
		if p.Set() && !f.Since.IsZero() {
			if end, err := p.End(day(f.Since)); err == nil {
				d.By, d.Open = end, !today.After(end)
			}
		}
		out = append(out, d)
	}
	switch f.Status {
	case Posted:
		period(procedure.PeriodPosting, "public posting (niêm yết công khai)")
	case Rechecking:
		period(procedure.PeriodRecheck, "re-check of a complaint (phúc tra)")
	}
	return out
}

// Overdue reports whether any deadline in ds is late.
func Overdue(ds []Due) bool {
	for _, d := range ds {
		if d.Late {
			return true
		}
	}
	return false
}

// Vietnam is the time zone a day of the procedure is read in (UTC+7, no
// daylight saving): a status written at 06:30 in the commune is that
// day's, not the day before, as it would be in UTC. Fixed rather than
// loaded, so a tablet without a zone database reads it the same.
var Vietnam = time.FixedZone("ICT", 7*60*60)

// day is t's civil day in Vietnam, at midnight UTC so that day arithmetic
// ignores zones. A date parsed from "YYYY-MM-DD" (midnight UTC) keeps its
// day.
func day(t time.Time) time.Time {
	t = t.In(Vietnam)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
