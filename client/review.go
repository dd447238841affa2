package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
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
}

// Deadlines returns what is due for the review on today (see
// workflow.Deadlines), under the national procedure rules.
func (r Review) Deadlines(today time.Time, plan workflow.Plan) []workflow.Due {
	date, _ := time.Parse(time.DateOnly, r.Date) // zero if unset: no regular deadline
	return workflow.Deadlines(workflow.Facts{Regular: r.Regular(), Date: date, Status: r.Status, Since: r.Since}, today, procedure.Default(), plan)
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
		Comment: winnerString(s, "comment")}
	if r.Round == "" {
		r.Round = "periodic"
	}
	if f := s.Field("status"); f != nil {
		if w, ok := f.Winner(); ok {
			t, err := workflow.Parse(w.Value, func(s string, _ bool) (string, error) { return s, nil })
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
	Date string // ngày rà soát, YYYY-MM-DD
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
		// The household's own reviewDate is what ages are computed
		// against, so a new round moves it too.
		if err := w.set(h, "reviewDate", jsonString(r.Date), "reviewDate"); err != nil {
			return err
		}
		return w.set(e, "status", jsonString(StatusDraft), "status")
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
	rows, err := c.r.QueryContext(ctx, "SELECT state FROM entities WHERE household_id = ?", r.HouseholdID)
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
// review: its number and date, and the seal of the household as this
// tablet holds it, which the server checks against its own copy.
func (c *Client) Decide(ctx context.Context, reviewID, number, date string) error {
	s, err := c.Seal(ctx, reviewID)
	if err != nil {
		return err
	}
	return c.Move(ctx, reviewID, workflow.Transition{State: workflow.Decided, Decision: &workflow.Decision{Number: number, Date: date, Seal: s}})
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
	now, err = c.Seal(ctx, reviewID)
	if err != nil {
		return false, "", "", err
	}
	return now == r.Step.Decision.Seal, r.Step.Decision.Seal, now, nil
}

// standardFor returns the standard a household is scored under: the one
// its latest review's round decides (procedure.Rules.Standard), or, with
// no review, the one its review date chooses.
func (c *Client) standardFor(ctx context.Context, h *rasoatv1.Household) (*survey.Standard, error) {
	latest, err := c.latestReview(ctx, h.GetId())
	if err != nil {
		return nil, err
	}
	if latest == nil || !latest.Regular() || h.GetReviewDate() == "" {
		return c.reg.Choose("", h.GetReviewDate())
	}
	on, err := time.Parse(time.DateOnly, h.GetReviewDate())
	if err != nil {
		return c.reg.Choose("", h.GetReviewDate()) // names the bad date
	}
	return procedure.Default().Standard(c.reg, procedure.Regular, on)
}

// latestReview returns a household's latest review (greatest date, then
// id), nil if none.
func (c *Client) latestReview(ctx context.Context, householdID string) (*Review, error) {
	rows, err := c.r.QueryContext(ctx, "SELECT state FROM entities WHERE household_id = ? AND kind = ?", householdID, int64(rasoatv1.EntityKind_ENTITY_KIND_REVIEW))
	if err != nil {
		return nil, fmt.Errorf("read reviews of %s: %w", householdID, err)
	}
	defer rows.Close()
	var best *Review
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("read reviews of %s: %w", householdID, err)
		}
		var s entity.State
		if err := s.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("read reviews of %s: %w", householdID, err)
		}
		r, err := reviewOf(&s)
		if err != nil {
			return nil, err
		}
		if best == nil || r.Date > best.Date || r.Date == best.Date && r.ID > best.ID {
			best = &r
		}
	}
	return best, rows.Err()
}
