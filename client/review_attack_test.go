package client

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/rpcerr"
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// decidedRound is a household decided in a periodic review dated
// 2025-10-05 (the 2026 list), each step taken on its own person's tablet
// through the real server.
type decidedRound struct {
	s                           *authServer
	col, colB, head, off, chair *Client
	hh, rv                      string
}

func decideThroughRoles(t *testing.T) *decidedRound {
	t.Helper()
	ctx := t.Context()
	s := workflowServer(t)
	d := &decidedRound{s: s, col: s.device(t, "col1"), colB: s.device(t, "col1b"), head: s.device(t, "head1"),
		off: s.device(t, "officer"), chair: s.device(t, "chair")}
	var err error
	if d.hh, err = d.col.CreateHousehold(ctx, authtest.Village(1), fullHousehold(1)); err != nil {
		t.Fatal(err)
	}
	if d.rv, err = d.col.StartRound(ctx, d.hh, Round{Date: "2025-10-05"}); err != nil {
		t.Fatal(err)
	}
	if err := d.col.Submit(ctx, d.rv); err != nil {
		t.Fatal(err)
	}
	step := func(c *Client, tr workflow.Transition) {
		t.Helper()
		s.sync(t, c)
		if err := c.Move(ctx, d.rv, tr); err != nil {
			t.Fatal(err)
		}
		if st := s.sync(t, c); st.Refused != 0 {
			t.Fatalf("%s refused", tr.State)
		}
	}
	s.sync(t, d.col)
	step(d.head, workflow.Transition{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: "2025-10-20", Attendees: 10, Agreeing: 8}})
	step(d.off, workflow.Transition{State: workflow.Posted})
	step(d.off, workflow.Transition{State: workflow.Passed})
	s.sync(t, d.chair)
	if err := d.chair.Decide(ctx, d.rv, "125/QĐ-UBND", "2025-12-10"); err != nil {
		t.Fatal(err)
	}
	if st := s.sync(t, d.chair); st.Refused != 0 {
		t.Fatal("decision refused")
	}
	s.sync(t, d.col)
	s.sync(t, d.colB)
	if got := reviewStatus(t, d.col, d.rv); got != workflow.Decided {
		t.Fatalf("review is %s; want decided", got)
	}
	return d
}

// stillLocked asserts that an answer written now to the decided household
// is refused with REVIEW_LOCKED.
func (d *decidedRound) stillLocked(t *testing.T, c *Client) {
	t.Helper()
	if err := c.SetField(t.Context(), d.hh, "housing.floorAreaM2", []byte("7")); err != nil {
		t.Fatal(err)
	}
	st := d.s.sync(t, c)
	if st.Refused == 0 {
		t.Fatal("an answer of the decided household was accepted with no officer reopening its review")
	}
}

// refusedNow syncs c and reports whether it set anything aside, and the
// first refusal's reason and description.
func (d *decidedRound) refusedNow(t *testing.T, c *Client) (bool, string) {
	t.Helper()
	st := d.s.sync(t, c)
	if st.Refused == 0 {
		return false, ""
	}
	rs, err := c.Refused(t.Context())
	if err != nil || len(rs) == 0 {
		t.Fatalf("refused: %v %v", rs, err)
	}
	return true, rs[0].Reason + ": " + rs[0].Description
}

// A started review's date cannot be cleared: a null date sorted after every
// real date as the household's latest review, which unlocked the decided
// household for any collaborator.
func TestStartedReviewDateCannotBeCleared(t *testing.T) {
	d := decideThroughRoles(t)
	ctx := t.Context()
	// A regular review dated before the decided one starts, and leaves the
	// household locked: it is not the latest...
	early, err := d.colB.StartRound(ctx, d.hh, Round{Date: "2025-09-20", Regular: true, Request: "form01"})
	if err != nil {
		t.Fatal(err)
	}
	if ref, why := d.refusedNow(t, d.colB); ref && !strings.Contains(why, "REVIEW_LOCKED") {
		t.Fatalf("starting a regular review refused: %s", why)
	}
	rs, _ := d.colB.Refused(ctx)
	for _, r := range rs { // the household's date the round moves: locked
		if err := d.colB.Discard(ctx, r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	d.s.sync(t, d.colB)
	if reviewStatus(t, d.colB, early) != workflow.Draft {
		t.Fatal("the regular review did not start")
	}
	// ...and its date, once started, is not cleared to make it one.
	if err := d.colB.SetField(ctx, early, "reviewDate", []byte("null")); err != nil {
		t.Fatal(err)
	}
	if ref, _ := d.refusedNow(t, d.colB); !ref {
		d.stillLocked(t, d.colB)
		t.Fatal("a started review's date was cleared")
	}
}

// A started periodic review's date cannot move into a list year that is
// decided already: the start's check would be bypassed by starting in the
// next year's round and moving the date after, leaving two periodic
// reviews of one list year, the undecided one unlocking the household.
func TestStartedReviewDateCannotMoveIntoADecidedListYear(t *testing.T) {
	d := decideThroughRoles(t)
	ctx := t.Context()
	next, err := d.colB.StartRound(ctx, d.hh, Round{Date: "2026-10-01"})
	if err != nil {
		t.Fatal(err)
	}
	if ref, why := d.refusedNow(t, d.colB); ref {
		t.Fatalf("starting the 2027 round refused: %s", why)
	}
	if err := d.colB.SetField(ctx, next, "reviewDate", []byte(`"2025-11-01"`)); err != nil {
		t.Fatal(err)
	}
	if ref, why := d.refusedNow(t, d.colB); !ref || !strings.Contains(why, "REVIEW_LOCKED") {
		t.Fatalf("a started review's date moved into the decided 2026 list year (refusal: %q)", why)
	}
}

// A review's round (periodic or regular) is fixed when it starts: it
// chooses the standard, the list year and whether the chair may refuse.
// Switching it after the village meeting agreed on a result would decide
// another standard's result than the one the meeting and the posting saw.
func TestReviewRoundIsFixedOnceStarted(t *testing.T) {
	s := workflowServer(t)
	ctx := t.Context()
	col := s.device(t, "col1")
	hh, err := col.CreateHousehold(ctx, authtest.Village(1), fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := col.StartRound(ctx, hh, Round{Date: "2025-10-05"})
	if err != nil {
		t.Fatal(err)
	}
	if err := col.Submit(ctx, rv); err != nil {
		t.Fatal(err)
	}
	s.sync(t, col)
	if err := col.SetField(ctx, rv, "round", []byte(`"regular"`)); err != nil {
		t.Fatal(err)
	}
	if st := s.sync(t, col); st.Refused == 0 {
		t.Fatal("a submitted periodic review was switched to a regular one")
	}
}

// A decided review's own fields (its round, its date) stay as decided even
// once a later review of the household has started: they choose its list
// year and standard, which the certificate and the next round's start
// check read.
func TestDecidedReviewKeepsItsFieldsWhenALaterOneStarts(t *testing.T) {
	d := decideThroughRoles(t)
	ctx := t.Context()
	if _, err := d.colB.StartRound(ctx, d.hh, Round{Date: "2026-01-20", Regular: true, Request: "form04"}); err != nil {
		t.Fatal(err)
	}
	if ref, why := d.refusedNow(t, d.colB); ref {
		t.Fatalf("a regular review of the 2026 list refused: %s", why)
	}
	for _, w := range []struct{ path, value string }{{"round", `"regular"`}, {"reviewDate", `"2019-10-01"`}} {
		if err := d.colB.SetField(ctx, d.rv, w.path, []byte(w.value)); err != nil {
			t.Fatal(err)
		}
		if ref, _ := d.refusedNow(t, d.colB); !ref {
			t.Errorf("the decided review's %s was rewritten to %s", w.path, w.value)
			continue
		}
		rs, _ := d.colB.Refused(ctx)
		for _, r := range rs {
			if err := d.colB.Discard(ctx, r.Seq); err != nil {
				t.Fatal(err)
			}
		}
		d.s.sync(t, d.colB)
	}
}

// A review started by its status alone, with no date, is checked as any
// start is: it needs its date first. Otherwise a periodic review of a
// decided list year starts with no date, and a date written after makes it
// the household's latest, unlocking it.
func TestReviewStartedByStatusAloneNeedsItsDate(t *testing.T) {
	d := decideThroughRoles(t)
	ctx := t.Context()
	cctx, err := d.colB.WithToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rid := uuid.Must(uuid.NewV7()).String()
	now := hlc.At(time.Now(), 0)
	c := &rasoatv1.Change{EntityId: rid, Kind: rasoatv1.EntityKind_ENTITY_KIND_REVIEW, HouseholdId: d.hh, VillageCode: authtest.Village(1),
		Field: "status", Value: []byte(`"draft"`), Stamp: &rasoatv1.Stamp{Hlc: uint64(now), ReplicaId: d.colB.ReplicaID()}, Seq: 100000}
	_, err = rasoatv1.NewSyncServiceClient(d.s.conn).Push(cctx, &rasoatv1.PushRequest{ReplicaId: d.colB.ReplicaID(), Changes: []*rasoatv1.Change{c}})
	if err == nil {
		t.Fatalf("a periodic review with no date was started on a decided household")
	}
	if vs := rpcerr.Violations(err); len(vs) == 0 {
		t.Fatalf("push failed without naming the change: %v", err)
	}
}

// A review dated in the future cannot be started: as the household's
// latest review for ever, a draft dated 2099 would keep every later
// decision from locking the household.
func TestFutureDatedReviewCannotBeStarted(t *testing.T) {
	d := decideThroughRoles(t)
	ctx := t.Context()
	if _, err := d.colB.StartRound(ctx, d.hh, Round{Date: "2099-01-20", Regular: true, Request: "form01"}); err != nil {
		t.Fatal(err)
	}
	if ref, _ := d.refusedNow(t, d.colB); !ref {
		t.Fatal("a regular review dated 2099 was started")
	}
}

// A household decided for the 2026 list stays locked until a review of a
// later list year has begun (the rule the decision's lock was built on).
// A regular review dated after the periodic one but changing an earlier
// list year (here: periodic in October 2025 decides 2026; a regular review
// dated 20 November 2025 changes the 2025 list) would be the latest by
// date alone, unlock the household, and let an answer break the 2026
// decision's seal with no one reopening it: reviews are ordered by list
// year first (workflow.Order).
func TestRegularReviewOfAnEarlierListYearKeepsALaterDecisionLocked(t *testing.T) {
	d := decideThroughRoles(t)
	if _, err := d.colB.StartRound(t.Context(), d.hh, Round{Date: "2025-11-20", Regular: true, Request: "form04"}); err != nil {
		t.Fatal(err)
	}
	d.s.sync(t, d.colB)
	d.stillLocked(t, d.colB)
}

// Once the village meeting has agreed on a household's result, its
// answers are the ones posted and decided: a collaborator changing them
// after the meeting, without the review being returned, would have the
// chair decide answers that no meeting discussed. The answer itself syncs
// (the collaborator's tablet is not blocked), but the decision is refused
// until the review is returned and the meeting holds again.
func TestAnswersChangedAfterTheMeetingAreNotDecidedUnmet(t *testing.T) {
	s := workflowServer(t)
	ctx := t.Context()
	col, head, off, chair := s.device(t, "col1"), s.device(t, "head1"), s.device(t, "officer"), s.device(t, "chair")
	hh, err := col.CreateHousehold(ctx, authtest.Village(1), fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := col.StartRound(ctx, hh, Round{Date: "2025-10-05"})
	if err != nil {
		t.Fatal(err)
	}
	if err := col.Submit(ctx, rv); err != nil {
		t.Fatal(err)
	}
	step := func(c *Client, tr workflow.Transition) {
		t.Helper()
		s.sync(t, c)
		if err := c.Move(ctx, rv, tr); err != nil {
			t.Fatal(err)
		}
		if st := s.sync(t, c); st.Refused != 0 {
			t.Fatalf("%s refused: %+v", tr.State, st)
		}
	}
	s.sync(t, col)
	step(head, workflow.Transition{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: "2025-10-20", Attendees: 10, Agreeing: 8}})
	step(off, workflow.Transition{State: workflow.Posted})
	step(off, workflow.Transition{State: workflow.Passed})
	s.sync(t, chair)
	s.sync(t, col)
	if err := col.SetField(ctx, hh, "housing.floorAreaM2", []byte("5")); err != nil {
		t.Fatal(err)
	}
	if st := s.sync(t, col); st.Refused != 0 {
		t.Fatal("the collaborator's answer was refused; it should sync and hold the decision instead")
	}
	// The chair's tablet, not synced since, still holds the answers the
	// meeting agreed on: its decision seals them, and the server, holding
	// the changed answers, refuses it.
	if err := chair.Decide(ctx, rv, "125/QĐ-UBND", "2025-12-10"); err != nil {
		t.Fatal(err)
	}
	if ref := s.refusedOnce(t, chair, "TRANSITION_REFUSED"); !strings.Contains(ref.Description, "is not the seal of the household as stored") {
		t.Fatalf("a decision over a stale copy: refused as %q", ref.Description)
	}
	err = chair.Decide(ctx, rv, "125/QĐ-UBND", "2025-12-10")
	if !errors.Is(err, ErrWorkflow) || !strings.Contains(err.Error(), "changed after the village meeting") {
		t.Fatalf("deciding answers changed since the meeting: %v; want ErrWorkflow saying they changed after the meeting", err)
	}
	step(chair, workflow.Transition{State: workflow.Returned, Note: "diện tích thay đổi sau họp dân"})
	s.sync(t, col)
	if err := col.Submit(ctx, rv); err != nil {
		t.Fatal(err)
	}
	s.sync(t, col)
	step(head, workflow.Transition{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: "2025-11-02", Attendees: 12, Agreeing: 9}})
	step(off, workflow.Transition{State: workflow.Posted})
	step(off, workflow.Transition{State: workflow.Passed})
	s.sync(t, chair)
	if err := chair.Decide(ctx, rv, "126/QĐ-UBND", "2025-12-10"); err != nil {
		t.Fatal(err)
	}
	if st := s.sync(t, chair); st.Refused != 0 {
		t.Fatal("the decision after the second meeting was refused")
	}
	if got := reviewStatus(t, col, rv); got != workflow.Decided {
		s.sync(t, col)
		if got = reviewStatus(t, col, rv); got != workflow.Decided {
			t.Fatalf("review is %s; want decided", got)
		}
	}
}

// The minutes seal the answers the village head's tablet holds; when the
// collaborator changed them after the head last synced, the meeting
// discussed answers the server no longer holds, and its agreement is
// refused with the reason, not taken over the new answers.
func TestMeetingOnAStaleCopyIsRefused(t *testing.T) {
	s := workflowServer(t)
	ctx := t.Context()
	col, head := s.device(t, "col1"), s.device(t, "head1")
	hh, err := col.CreateHousehold(ctx, authtest.Village(1), fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := col.StartRound(ctx, hh, Round{Date: "2025-10-05"})
	if err != nil {
		t.Fatal(err)
	}
	if err := col.Submit(ctx, rv); err != nil {
		t.Fatal(err)
	}
	s.sync(t, col)
	s.sync(t, head)
	if err := col.SetField(ctx, hh, "housing.floorAreaM2", []byte("5")); err != nil {
		t.Fatal(err)
	}
	s.sync(t, col)
	if err := head.Move(ctx, rv, workflow.Transition{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: "2025-10-20", Attendees: 10, Agreeing: 8}}); err != nil {
		t.Fatal(err)
	}
	ref := s.refusedOnce(t, head, "TRANSITION_REFUSED")
	if !strings.Contains(ref.Description, "minutes' seal") {
		t.Fatalf("refused as %q; want the minutes' seal named", ref.Description)
	}
}

// Minutes and decisions record what has happened: a meeting dated before
// its review, or a decision dated after today, is refused.
func TestStepDatesAreChecked(t *testing.T) {
	s := workflowServer(t)
	ctx := t.Context()
	col, head := s.device(t, "col1"), s.device(t, "head1")
	hh, err := col.CreateHousehold(ctx, authtest.Village(1), fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := col.StartRound(ctx, hh, Round{Date: "2025-10-05"})
	if err != nil {
		t.Fatal(err)
	}
	if err := col.Submit(ctx, rv); err != nil {
		t.Fatal(err)
	}
	s.sync(t, col)
	for _, tc := range []struct{ date, want string }{
		{"2025-10-01", "before the review's date"},
		{time.Now().AddDate(0, 0, 3).Format(time.DateOnly), "after today"},
	} {
		s.sync(t, head)
		if err := head.Move(ctx, rv, workflow.Transition{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: tc.date, Attendees: 10, Agreeing: 8}}); err != nil {
			t.Fatal(err)
		}
		if ref := s.refusedOnce(t, head, "TRANSITION_REFUSED"); !strings.Contains(ref.Description, tc.want) {
			t.Errorf("a meeting dated %s: refused as %q; want %q", tc.date, ref.Description, tc.want)
		}
	}
	if err := head.Move(ctx, rv, workflow.Transition{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: "2025-10-20", Attendees: 10, Agreeing: 8}}); err != nil {
		t.Fatal(err)
	}
	if st := s.sync(t, head); st.Refused != 0 {
		t.Fatal("a meeting dated between the review and today was refused")
	}
}
