package client

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/quality"
	"github.com/rasoat/rasoat/internal/workflow"
	"github.com/rasoat/rasoat/internal/workflow/seal"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"github.com/rasoat/rasoat/survey/procedure"
)

// Review is a review round (đợt rà soát) of one household as this tablet
// holds it: its current status and the step that set it (its note, the
// village meeting's count, the chair's decision). Who moved it when is the
// server's record (rasoat history, HistoryService).
type Review struct {
	ID, HouseholdID, VillageCode string
	Date                         string // ngày rà soát, YYYY-MM-DD
	// Round is "periodic" (định kỳ) or "regular" (thường xuyên); a review
	// written before rounds had a kind reads as periodic.
	Round string
	// Request is the form that started a regular review: "form01" or
	// "form04" ("" for a periodic one).
	Request string
	Status  workflow.State
	// Step is the transition that set Status: its note, meeting, decision.
	Step    workflow.Transition
	Comment string
	// Since is when the status was written (its stamp's wall time, UTC).
	Since time.Time
	// Conflict is set while two writes of the status stand side by side
	// (two tiers moved it at once); Status is the winner.
	Conflict bool
	// acks are the quality flags' acknowledgements (Acks).
	acks map[quality.Code]string
}

// DeadlinesUnder returns what is due for the review on today (see
// workflow.Deadlines) under rules and plan; Client.Deadlines reads those
// in force at the review's village.
func (r Review) DeadlinesUnder(today time.Time, rules procedure.Rules, plan workflow.Plan) []workflow.Due {
	date, _ := time.Parse(time.DateOnly, r.Date) // zero if unset: no regular deadline
	return workflow.Deadlines(workflow.Facts{Regular: r.Regular(), Date: date, Status: r.Status, Since: r.Since}, today, rules, plan)
}

// Regular reports whether r is a regular review's round.
func (r Review) Regular() bool { return r.Round == "regular" }

// Kind is r's round as the procedure names it.
func (r Review) Kind() procedure.Kind {
	if r.Regular() {
		return procedure.Regular
	}
	return procedure.Periodic
}

func reviewOf(s *entity.State) (Review, error) {
	r := Review{ID: s.ID, HouseholdID: s.HouseholdID, VillageCode: s.VillageCode,
		Date: winnerString(s, "reviewDate"), Round: winnerString(s, "round"), Request: winnerString(s, "request"),
		Comment: winnerString(s, "comment"), acks: quality.AcksOf(s.String)}
	if r.Round == "" {
		r.Round = "periodic"
	}
	if f := s.Field("status"); f != nil {
		if w, ok := f.Winner(); ok {
			t, err := workflow.ParseStored(w.Value)
			if err != nil {
				return r, fmt.Errorf("review %s: status: %w", s.ID, err)
			}
			r.Status, r.Step, r.Since = t.State, t, hlc.Timestamp(w.Stamp.HLC).Wall()
		}
		_, _, r.Conflict = f.Conflict()
	}
	return r, nil
}

// Review returns a review as this tablet holds it.
func (c *Client) Review(ctx context.Context, id string) (Review, error) {
	var b []byte
	err := c.r.QueryRowContext(ctx, "SELECT state FROM entities WHERE id = ? AND kind = ?", id, int64(rasoatv1.EntityKind_ENTITY_KIND_REVIEW)).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return Review{}, fmt.Errorf("review %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Review{}, fmt.Errorf("read review %s: %w", id, err)
	}
	var s entity.State
	if err := s.UnmarshalBinary(b); err != nil {
		return Review{}, fmt.Errorf("read review %s: %w", id, err)
	}
	return reviewOf(&s)
}

// Reviews calls fn with every review in status state (every review if
// state is None), in id (creation) order, reading them one at a time so
// that memory stays flat however large the village. An error from fn stops
// the iteration and is returned.
func (c *Client) Reviews(ctx context.Context, state workflow.State, fn func(Review) error) error {
	rows, err := c.r.QueryContext(ctx, "SELECT state FROM entities WHERE kind = ? ORDER BY id", int64(rasoatv1.EntityKind_ENTITY_KIND_REVIEW))
	if err != nil {
		return fmt.Errorf("list reviews: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return fmt.Errorf("list reviews: %w", err)
		}
		var s entity.State
		if err := s.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("list reviews: %w", err)
		}
		r, err := reviewOf(&s)
		if err != nil {
			return err
		}
		if state != workflow.None && r.Status != state && !(state == workflow.Decided && r.Status == workflow.Approved) {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list reviews: %w", err)
	}
	return nil
}

// Round says which review round a new review belongs to.
type Round struct {
	// Date is the review's date (ngày rà soát), YYYY-MM-DD. A regular
	// review is dated by the household's request (ngày nộp Giấy đề nghị):
	// it is taken up by the monthly review from the 15th on or after it,
	// whose year is the list year it changes and whose 15 days are its
	// deadline (procedure.Rules.ListYear, RegularStart).
	Date string
	// Regular is a regular review (rà soát thường xuyên), started by the
	// household's Request; otherwise the periodic review (định kỳ).
	Regular bool
	Request string // "form01" (to enter a list) or "form04" (to leave it)
}

// StartRound opens a review of a household in round r, in status draft,
// and returns its id. The round's kind chooses the standard the household
// is scored under (Assess): a regular review in October 2026 changes the
// 2026 list, a periodic one decides the 2027 list.
func (c *Client) StartRound(ctx context.Context, householdID string, r Round) (string, error) {
	if _, err := time.Parse(time.DateOnly, r.Date); err != nil {
		return "", fmt.Errorf("start review: %w", &entity.FieldError{Field: "reviewDate", Desc: fmt.Sprintf("%q is not a date YYYY-MM-DD", r.Date)})
	}
	if r.Regular != (r.Request != "") {
		return "", fmt.Errorf("start review: %w", &entity.FieldError{Field: "request", Desc: "a regular review is started by a request (form01 or form04), and only a regular one"})
	}
	id := newID()
	err := c.write(ctx, "start review", func(w *writeTx) error {
		h, err := w.household(householdID)
		if err != nil {
			return err
		}
		e, err := w.create(id, rasoatv1.EntityKind_ENTITY_KIND_REVIEW, h.id, h.vill)
		if err != nil {
			return err
		}
		if err := w.set(e, "reviewDate", jsonString(r.Date), "reviewDate"); err != nil {
			return err
		}
		if r.Regular {
			if err := w.set(e, "round", jsonString("regular"), "round"); err != nil {
				return err
			}
			if err := w.set(e, "request", jsonString(r.Request), "request"); err != nil {
				return err
			}
		}
		// Started (its status written) before the household changes: a
		// household whose last round is decided is locked until the next
		// one has begun.
		if err := w.set(e, "status", jsonString(StatusDraft), "status"); err != nil {
			return err
		}
		// The household's own reviewDate is what ages are computed
		// against, so a new round moves it too.
		return w.set(h, "reviewDate", jsonString(r.Date), "reviewDate")
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// Move writes a review's next step: t over the status this tablet holds.
// It refuses here (ErrWorkflow) a step the review's status does not allow;
// whether the person's role may take it, and whether the status is still
// the one this tablet saw, is the server's to check at the next sync,
// which sets a refused step aside with the reason (Refused).
func (c *Client) Move(ctx context.Context, reviewID string, t workflow.Transition) error {
	if t.State == workflow.Agreed && t.Seal == "" {
		// The minutes seal the answers the meeting discussed: this
		// tablet's copy of them, which the server checks is its own.
		s, err := c.Seal(ctx, reviewID)
		if err != nil {
			return err
		}
		t.Seal = s
	}
	return c.write(ctx, "move review", func(w *writeTx) error {
		e, err := w.loadReview(reviewID)
		if err != nil {
			return err
		}
		r, err := reviewOf(&e.state)
		if err != nil {
			return err
		}
		if !allowedFrom(r.Status, t.State) {
			return fmt.Errorf("review %s: %w: it is %s, and cannot move to %s", reviewID, ErrWorkflow, r.Status, t.State)
		}
		if t.State != workflow.Agreed && t.Seal == "" && r.Step.Seal != "" && slices.Contains([]workflow.State{workflow.Posted, workflow.Rechecking, workflow.Passed}, t.State) {
			t.Seal = r.Step.Seal // carried from the meeting's agreement
		}
		if err := workflow.CheckSeal(workflow.Review{Status: r.Status, Regular: r.Regular(), Seal: r.Step.Seal}, t); err != nil {
			return fmt.Errorf("review %s: %w: %v", reviewID, ErrWorkflow, err)
		}
		v, err := entity.Canonical(rasoatv1.EntityKind_ENTITY_KIND_REVIEW, "status", t.Marshal())
		if err != nil {
			return renamed("status", err)
		}
		return w.set(e, "status", v, "status")
	})
}

func allowedFrom(from, to workflow.State) bool {
	for _, n := range workflow.Next(from) {
		if n == to {
			return true
		}
	}
	return false
}

func (w *writeTx) loadReview(id string) (*ent, error) {
	e, err := w.load(id)
	if err != nil {
		return nil, err
	}
	if e.kind != rasoatv1.EntityKind_ENTITY_KIND_REVIEW {
		return nil, fmt.Errorf("review %s: %w (it is a %s)", id, ErrNotFound, entity.KindName(e.kind))
	}
	return e, nil
}

// Seal returns the seal of a review's household as this tablet holds it:
// the digest the chair's decision records (workflow.Decision.Seal) and
// anyone can later recompute to see whether the household changed since.
func (c *Client) Seal(ctx context.Context, reviewID string) (string, error) {
	r, err := c.Review(ctx, reviewID)
	if err != nil {
		return "", err
	}
	return c.sealOf(ctx, r.HouseholdID, r.ID)
}

// sealOf is the seal of household hh for its review reviewID.
func (c *Client) sealOf(ctx context.Context, hh, reviewID string) (string, error) {
	rows, err := c.r.QueryContext(ctx, "SELECT state FROM entities WHERE household_id = ?", hh)
	if err != nil {
		return "", fmt.Errorf("seal review %s: %w", reviewID, err)
	}
	defer rows.Close()
	var states []*entity.State
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return "", fmt.Errorf("seal review %s: %w", reviewID, err)
		}
		s := &entity.State{}
		if err := s.UnmarshalBinary(b); err != nil {
			return "", fmt.Errorf("seal review %s: %w", reviewID, err)
		}
		states = append(states, s)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("seal review %s: %w", reviewID, err)
	}
	return seal.Household(states, reviewID), nil
}

// Decide records the chair's recognition decision (form 02) for a
// review: its number and date, the household's result as this tablet
// scores it, and the seal of its answers, both of which the server checks
// against its own copy. A household that cannot be scored (answers
// missing or invalid) cannot be decided: the error says what is wrong.
func (c *Client) Decide(ctx context.Context, reviewID, number, date string) error {
	r, err := c.Review(ctx, reviewID)
	if err != nil {
		return err
	}
	s, err := c.sealOf(ctx, r.HouseholdID, r.ID)
	if err != nil {
		return err
	}
	// Scored under the round of the review decided, as the server checks
	// it (server/review), whichever review is the household's latest.
	h, err := c.Household(ctx, r.HouseholdID)
	if err != nil {
		return err
	}
	std, err := workflow.Standard(c.reg, r.Regular(), h.GetReviewDate())
	if err != nil {
		return fmt.Errorf("decide review %s: %w", reviewID, err)
	}
	a, err := std.Assess(h)
	if err != nil {
		return fmt.Errorf("decide review %s: assess household %s: %w", reviewID, r.HouseholdID, err)
	}
	d := &workflow.Decision{Number: number, Date: date, Seal: s}
	d.Standard, d.Result, d.Deprived = workflow.Result(a)
	return c.Move(ctx, reviewID, workflow.Transition{State: workflow.Decided, Decision: d})
}

// Sealed reports whether a decided review's household still has the
// answers it was decided with: false, with both seals, when something
// changed since (which only an officer's reopening allows).
func (c *Client) Sealed(ctx context.Context, reviewID string) (ok bool, decided, now string, err error) {
	r, err := c.Review(ctx, reviewID)
	if err != nil {
		return false, "", "", err
	}
	if r.Step.Decision == nil {
		return false, "", "", fmt.Errorf("review %s: %w: it is %s, not decided", reviewID, ErrWorkflow, r.Status)
	}
	now, err = c.sealOf(ctx, r.HouseholdID, r.ID)
	if err != nil {
		return false, "", "", err
	}
	return now == r.Step.Decision.Seal, r.Step.Decision.Seal, now, nil
}

// standardFor returns the standard a household is scored under: the one
// its latest review's round chooses (workflow.Standard).
func (c *Client) standardFor(ctx context.Context, h *rasoatv1.Household) (*survey.Standard, error) {
	latest, err := c.latestReview(ctx, h.GetId())
	if err != nil {
		return nil, err
	}
	return workflow.Standard(c.reg, latest != nil && latest.Regular(), h.GetReviewDate())
}

// latestReview returns a household's latest started review
// (workflow.Order), nil if none.
func (c *Client) latestReview(ctx context.Context, householdID string) (*Review, error) {
	var best *Review
	var bestOrder workflow.Order
	err := c.householdReviews(ctx, householdID, func(r Review) error {
		if r.Status == workflow.None {
			return nil // not started: the server does not count it either
		}
		if o := workflow.OrderOf(r.Regular(), r.Date, r.ID); best == nil || o.After(bestOrder) {
			best, bestOrder = &r, o
		}
		return nil
	})
	return best, err
}

// householdReviews calls fn with each review of a household.
func (c *Client) householdReviews(ctx context.Context, householdID string, fn func(Review) error) error {
	rows, err := c.r.QueryContext(ctx, "SELECT state FROM entities WHERE household_id = ? AND kind = ?", householdID, int64(rasoatv1.EntityKind_ENTITY_KIND_REVIEW))
	if err != nil {
		return fmt.Errorf("read reviews of %s: %w", householdID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return fmt.Errorf("read reviews of %s: %w", householdID, err)
		}
		var s entity.State
		if err := s.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("read reviews of %s: %w", householdID, err)
		}
		r, err := reviewOf(&s)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Certificate is what the certificate of a poor or near-poor household
// (giấy chứng nhận hộ nghèo, hộ cận nghèo; form 03 of Decision
// 24/2021/QĐ-TTg, its number provisional: survey/procedure) holds: the
// household and its members as this tablet holds them, and a year-by-year
// grid of the decided results, each with the indicators it was deprived
// in. The grid is made only of what the chair's decisions recorded, so a
// household changed since shows as such (Intact), never as a silently
// new result.
type Certificate struct {
	Household *rasoatv1.Household
	// Indicators are the grid's columns: every indicator of the standards
	// the rows were decided under, in each standard's order.
	Indicators []*survey.Indicator
	Years      []CertificateYear // by list year
}

// CertificateYear is one row of the grid: a decided review.
type CertificateYear struct {
	Year     int // the list year the decision is for
	ReviewID string
	Round    string
	workflow.Decision
	// Intact: the household's answers are still the ones decided (only
	// meaningful for the latest decision: a later round changes them).
	Intact bool
}

// Kind is "POOR" or "NEAR_POOR": the certificate's kind, from its latest
// row.
func (c Certificate) Kind() string { return c.Years[len(c.Years)-1].Result }

// Certificate returns the certificate of a household whose latest decided
// result is poor or near-poor; ErrWorkflow if it has no decided review or
// its latest is neither.
func (c *Client) Certificate(ctx context.Context, householdID string) (Certificate, error) {
	h, err := c.Household(ctx, householdID)
	if err != nil {
		return Certificate{}, err
	}
	cert := Certificate{Household: h}
	var rows []CertificateYear
	err = c.householdReviews(ctx, householdID, func(r Review) error {
		if r.Status != workflow.Decided || r.Step.Decision == nil {
			return nil
		}
		y, err := workflow.ListYear(r.Regular(), r.Date)
		if err != nil {
			return err
		}
		rows = append(rows, CertificateYear{Year: y, ReviewID: r.ID, Round: r.Round, Decision: *r.Step.Decision})
		return nil
	})
	if err != nil {
		return Certificate{}, err
	}
	if len(rows) == 0 {
		return Certificate{}, fmt.Errorf("certificate of %s: %w: no review of the household is decided", householdID, ErrWorkflow)
	}
	slices.SortStableFunc(rows, func(a, b CertificateYear) int { return cmp.Or(a.Year-b.Year, strings.Compare(a.Date, b.Date)) })
	last := &rows[len(rows)-1]
	if last.Result != "POOR" && last.Result != "NEAR_POOR" {
		return Certificate{}, fmt.Errorf("certificate of %s: %w: its latest decided result (%d) is %s: certificates are for poor and near-poor households", householdID, ErrWorkflow, last.Year, last.Result)
	}
	if last.Intact, _, _, err = c.Sealed(ctx, last.ReviewID); err != nil {
		return Certificate{}, err
	}
	seen := map[string]bool{}
	for _, r := range rows {
		std, err := c.reg.ByID(r.Standard)
		if err != nil {
			continue // a standard this tablet does not know: its deprived ids still show
		}
		for _, ind := range std.Indicators() {
			if !seen[ind.ID] {
				seen[ind.ID] = true
				cert.Indicators = append(cert.Indicators, ind)
			}
		}
	}
	for _, r := range rows {
		for _, d := range r.Deprived {
			if !seen[d] {
				seen[d] = true
				cert.Indicators = append(cert.Indicators, &survey.Indicator{ID: d, Name: d})
			}
		}
	}
	cert.Years = rows
	return cert, nil
}

// DecisionList is a recognition decision (quyết định công nhận, form 02)
// as this tablet holds it (workflow.DecisionList, shared with the exports
// and the server).
type DecisionList = workflow.DecisionList

// DecidedHousehold is one line of a decision's lists.
type DecidedHousehold = workflow.DecidedHousehold

// Decision returns the decision numbered number, from the reviews this
// tablet holds; ErrNotFound if none was decided in it.
func (c *Client) Decision(ctx context.Context, number string) (DecisionList, error) {
	d := DecisionList{Number: number, Lists: map[string][]DecidedHousehold{}}
	var rows []DecidedHousehold
	err := c.Reviews(ctx, workflow.Decided, func(r Review) error {
		dec := r.Step.Decision
		if dec == nil || dec.Number != number {
			return nil
		}
		d.Date = dec.Date
		y, err := workflow.ListYear(r.Regular(), r.Date)
		if err != nil {
			return err
		}
		rows = append(rows, DecidedHousehold{ReviewID: r.ID, HouseholdID: r.HouseholdID, VillageCode: r.VillageCode, Year: y, Result: dec.Result, Seal: dec.Seal})
		return nil
	})
	if err != nil {
		return d, err
	}
	if len(rows) == 0 {
		return d, fmt.Errorf("decision %s: %w: no review this tablet holds was decided in it", number, ErrNotFound)
	}
	slices.SortFunc(rows, func(a, b DecidedHousehold) int { return strings.Compare(a.ReviewID, b.ReviewID) })
	h := sha256.New()
	for i := range rows {
		x := &rows[i]
		if x.Before, err = c.decidedFor(ctx, x.HouseholdID, x.Year-1); err != nil {
			return d, err
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\n", x.ReviewID, x.HouseholdID, x.Result, x.Seal)
		for _, list := range workflow.ListsOf(x.Before, x.Result) {
			d.Lists[list] = append(d.Lists[list], *x)
		}
		now, err := c.sealOf(ctx, x.HouseholdID, x.ReviewID)
		if err != nil {
			return d, err
		}
		if now != x.Seal {
			d.Changed = append(d.Changed, x.HouseholdID)
		}
	}
	d.Digest = hex.EncodeToString(h.Sum(nil))
	return d, nil
}

// decidedFor returns the result decided for a household's list of year
// ("" if none was).
func (c *Client) decidedFor(ctx context.Context, householdID string, year int) (string, error) {
	var result string
	err := c.householdReviews(ctx, householdID, func(r Review) error {
		if dec := r.Step.Decision; r.Status == workflow.Decided && dec != nil {
			if y, err := workflow.ListYear(r.Regular(), r.Date); err == nil && y == year {
				result = dec.Result
			}
		}
		return nil
	})
	return result, err
}
