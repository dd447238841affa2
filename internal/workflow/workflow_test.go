package workflow

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rasoat/rasoat/survey/procedure"
)

func meetingStands(agreeing, attendees int) bool {
	return procedure.Default().MeetingStands(agreeing, attendees)
}

func TestCheck(t *testing.T) {
	col := Actor{Person: "col", Roles: []Role{procedure.Collaborator}}
	head := Actor{Person: "head", Roles: []Role{procedure.VillageHead}}
	officer := Actor{Person: "officer", Roles: []Role{procedure.CommuneOfficer}}
	chair := Actor{Person: "chair", Roles: []Role{procedure.CommuneChair}}
	surveyedOfficer := officer
	surveyedOfficer.Surveyed = true
	meeting := func(agreeing, attendees int) *Meeting {
		return &Meeting{Date: "2026-10-20", Attendees: attendees, Agreeing: agreeing}
	}
	decision := &Decision{Number: "12/QĐ-UBND", Date: "2026-12-10", Seal: strings.Repeat("a", 64)}
	sealA := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name    string
		from    State
		regular bool
		t       Transition
		actor   Actor
		refuse  string // a part of the refusal; "" allows
	}{
		{"a collaborator starts a review", None, false, Transition{State: Draft}, col, ""},
		{"a collaborator submits a draft", Draft, false, Transition{State: Submitted}, col, ""},
		{"a collaborator submits a returned review again", Returned, false, Transition{State: Submitted}, col, ""},
		{"a collaborator cannot decide", Draft, false, Transition{State: Decided, Decision: decision}, col, "cannot be moved to decided"},
		{"a collaborator cannot record the meeting", Submitted, false, Transition{State: Agreed, Meeting: meeting(6, 10)}, col, "is for village_head"},
		{"a submitted review cannot be submitted again", Submitted, false, Transition{State: Submitted}, col, "cannot be moved"},
		{"an officer does not submit a survey", Draft, false, Transition{State: Submitted}, officer, "is for collaborator"},
		{"the meeting stands at exactly 50 %", Submitted, false, Transition{State: Agreed, Meeting: meeting(5, 10), Seal: sealA}, head, ""},
		{"the meeting stands over 50 %", Submitted, false, Transition{State: Agreed, Meeting: meeting(6, 10), Seal: sealA}, head, ""},
		{"a meeting under 50 % cannot agree", Submitted, false, Transition{State: Agreed, Meeting: meeting(4, 10)}, head, "under 50 %"},
		{"a meeting under 50 % returns the household to survey", Submitted, false, Transition{State: Returned, Meeting: meeting(4, 10)}, head, ""},
		{"a meeting that stands cannot return", Submitted, false, Transition{State: Returned, Meeting: meeting(6, 10)}, head, "the result stands"},
		{"a meeting needs its minutes", Submitted, false, Transition{State: Agreed}, head, "needs its minutes"},
		{"an officer posts an agreed review", Agreed, false, Transition{State: Posted}, officer, ""},
		{"posting needs the meeting first", Submitted, false, Transition{State: Posted}, officer, "cannot be moved to posted"},
		{"an officer returns with a note", Submitted, false, Transition{State: Returned, Note: "thiếu thu nhập"}, officer, ""},
		{"a return needs a note", Submitted, false, Transition{State: Returned}, officer, "needs a note"},
		{"a complaint opens a re-check", Posted, false, Transition{State: Rechecking, Note: "hộ khiếu nại"}, officer, ""},
		{"a re-check closes with its finding", Rechecking, false, Transition{State: Posted, Note: "giữ nguyên"}, officer, ""},
		{"a re-check can send the household to survey again", Rechecking, false, Transition{State: Returned, Note: "rà soát lại"}, officer, ""},
		{"an officer passes a posted review", Posted, false, Transition{State: Passed}, officer, ""},
		{"nobody passes a household they surveyed", Posted, false, Transition{State: Passed}, surveyedOfficer, "nobody approves a household they surveyed"},
		{"the chair decides a passed review", Passed, false, Transition{State: Decided, Decision: decision}, chair, ""},
		{"a decision needs its number, date and seal", Passed, false, Transition{State: Decided}, chair, "needs the decision"},
		{"an officer does not decide", Passed, false, Transition{State: Decided, Decision: decision}, officer, "is for commune_chair"},
		{"the chair refuses a regular request with its reason", Passed, true, Transition{State: Refused, Note: "không đủ điều kiện"}, chair, ""},
		{"a periodic review is not refused", Passed, false, Transition{State: Refused, Note: "x"}, chair, "only a regular review"},
		{"a decided review is reopened by an officer, with a note", Decided, false, Transition{State: Returned, Note: "sai diện tích"}, officer, ""},
		{"a decided review is not reopened without a note", Decided, false, Transition{State: Returned}, officer, "needs a note"},
		{"a stale submit after the decision is refused", Decided, false, Transition{State: Submitted}, col, "cannot be moved to submitted"},
		{"a legacy approved review is reopened like a decided one", Approved, false, Transition{State: Returned, Note: "x"}, officer, ""},
		{"nothing moves to the legacy approved", Submitted, false, Transition{State: Approved}, officer, "not a status a review can be moved to"},
		{"a transition records no meeting its step does not hold", Agreed, false, Transition{State: Posted, Meeting: meeting(1, 40)}, officer, "records no village meeting"},
		{"an officer's return carries no village meeting's minutes", Submitted, false, Transition{State: Returned, Note: "x", Meeting: meeting(1, 40)}, officer, "records no village meeting"},
		{"only the chair's decision carries a decision", Draft, false, Transition{State: Submitted, Decision: decision}, col, "records no decision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(Review{Status: tc.from, Regular: tc.regular}, tc.t, tc.actor, meetingStands)
			switch {
			case tc.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refuse != "" && err == nil:
				t.Fatalf("allowed; want a refusal saying %q", tc.refuse)
			case tc.refuse != "" && !strings.Contains(err.Error(), tc.refuse):
				t.Fatalf("refused with %q; want it to say %q", err, tc.refuse)
			}
			var r *Refusal
			if err != nil && !errors.As(err, &r) {
				t.Errorf("%T is not a *Refusal", err)
			}
		})
	}
}

// Every state is reachable from None and every state but the final ones
// leads on: the rules form one procedure, not islands.
func TestRulesConnectEveryState(t *testing.T) {
	seen := map[State]bool{None: true}
	queue := []State{None}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, n := range Next(s) {
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	for _, s := range States {
		if !seen[s] {
			t.Errorf("%s cannot be reached from a new review", s)
		}
		if len(Next(s)) == 0 {
			t.Errorf("%s leads nowhere: a decided or refused review must at least be reopened", s)
		}
	}
}

func TestTransitionValue(t *testing.T) {
	plain := func(s string, _ bool) (string, error) { return strings.TrimSpace(s), nil }
	for _, tc := range []struct {
		name, in, out, err string
	}{
		{"a bare state is a JSON string", `"submitted"`, `"submitted"`, ""},
		{"an object with only its state is written as the string", `{"state":"draft"}`, `"draft"`, ""},
		{"keys are written in one order", `{"note":"x","state":"returned"}`, `{"state":"returned","note":"x"}`, ""},
		{"the meeting's minutes", `{"meeting":{"agreeing":6,"attendees":10,"date":"2026-10-20"},"state":"agreed"}`, `{"state":"agreed","meeting":{"date":"2026-10-20","attendees":10,"agreeing":6}}`, ""},
		{"a state is trimmed", `" posted "`, `"posted"`, ""},
		{"an unknown state is refused, listing the states", `"approve"`, "", "want one of draft, submitted"},
		{"an unknown key is refused", `{"state":"draft","by":"x"}`, "", "unknown field"},
		{"more agreeing than attending is refused", `{"state":"agreed","meeting":{"date":"2026-10-20","attendees":3,"agreeing":4}}`, "", "meeting.agreeing"},
		{"a meeting with nobody is refused", `{"state":"agreed","meeting":{"date":"2026-10-20","attendees":0,"agreeing":0}}`, "", "meeting.attendees"},
		{"a meeting over the attendance bound is refused", `{"state":"agreed","meeting":{"date":"2026-10-20","attendees":10001,"agreeing":1}}`, "", "meeting.attendees"},
		{"a meeting date is a date", `{"state":"agreed","meeting":{"date":"20/10/2026","attendees":3,"agreeing":2}}`, "", "meeting.date"},
		{"a note over the bound is refused", `{"state":"returned","note":"` + strings.Repeat("x", MaxNote+1) + `"}`, "", "note: 2001 bytes"},
		{"a seal is a SHA-256 in hex", `{"state":"decided","decision":{"number":"1","date":"2026-12-10","seal":"abc"}}`, "", "decision.seal"},
		{"a decision without its number is refused", `{"state":"decided","decision":{"date":"2026-12-10","seal":"` + strings.Repeat("0", 64) + `"}}`, "", "decision: want number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Parse([]byte(tc.in), plain)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse(%s) = %v; want an error saying %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(tr.Marshal()); got != tc.out {
				t.Errorf("Marshal = %s; want %s", got, tc.out)
			}
			again, err := Parse(tr.Marshal(), plain)
			if err != nil || string(again.Marshal()) != tc.out {
				t.Errorf("the written form does not read back to itself: %s, %v", again.Marshal(), err)
			}
		})
	}
}

func TestDeadlines(t *testing.T) {
	rules := procedure.Default()
	d := func(s string) time.Time {
		x, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, tc := range []struct {
		name  string
		f     Facts
		plan  Plan
		today string
		late  bool
		by    string
	}{
		// A request taken up by the review of 15 October is decided by
		// 30 October: day 15 is the last, day 16 is late.
		{"a regular review is due on day 15", Facts{Regular: true, Date: d("2026-10-15"), Status: Submitted}, Plan{}, "2026-10-30", false, "2026-10-30"},
		{"a regular review is late on day 16", Facts{Regular: true, Date: d("2026-10-15"), Status: Posted}, Plan{}, "2026-10-31", true, "2026-10-30"},
		{"a request after the 15th joins next month's review", Facts{Regular: true, Date: d("2026-10-16"), Status: Draft}, Plan{}, "2026-11-20", false, "2026-11-30"},
		{"a decided regular review is not late", Facts{Regular: true, Date: d("2026-10-15"), Status: Decided}, Plan{}, "2026-12-31", false, ""},
		{"a periodic review without a meeting by the planned day is late", Facts{Date: d("2026-10-01"), Status: Submitted}, Plan{MeetingsBy: d("2026-11-15")}, "2026-11-16", true, "2026-11-15"},
		{"a periodic review past its meeting is not late for it", Facts{Date: d("2026-10-01"), Status: Agreed}, Plan{MeetingsBy: d("2026-11-15")}, "2026-11-16", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := Deadlines(tc.f, d(tc.today), rules, tc.plan)
			if got := Overdue(ds); got != tc.late {
				t.Errorf("Overdue = %v; want %v (%+v)", got, tc.late, ds)
			}
			if tc.by != "" && (len(ds) == 0 || ds[0].By.Format(time.DateOnly) != tc.by) {
				t.Errorf("due %+v; want by %s", ds, tc.by)
			}
		})
	}
	// The posting period is not set nationally: it shows as open, with no
	// end, until the province sets it.
	ds := Deadlines(Facts{Date: d("2026-10-01"), Status: Posted, Since: d("2026-11-01")}, d("2026-11-03"), rules, Plan{})
	if len(ds) != 1 || !ds[0].Open || !ds[0].By.IsZero() {
		t.Errorf("posting with the period unset: %+v; want one open deadline with no end", ds)
	}
	set, err := rules.Set(procedure.PeriodPosting, 3, procedure.WorkingDays, procedure.Source{Text: "Kế hoạch của UBND tỉnh"})
	if err != nil {
		t.Fatal(err)
	}
	// Posted on Monday 2 November: three working days end on Thursday 5.
	ds = Deadlines(Facts{Date: d("2026-10-01"), Status: Posted, Since: d("2026-11-02")}, d("2026-11-06"), set, Plan{})
	if len(ds) != 1 || ds[0].Open || ds[0].By.Format(time.DateOnly) != "2026-11-05" {
		t.Errorf("posting of 3 working days from 2 November, on the 6th: %+v; want closed, ended the 5th", ds)
	}
}

// The answers a village meeting agreed on are the ones posted and
// decided: the meeting seals them, each step after carries the seal, and
// a decision over answers changed since is refused until the review is
// returned and met on again.
func TestMeetingSealHoldsTheAnswersToTheDecision(t *testing.T) {
	head := Actor{Person: "head", Roles: []Role{procedure.VillageHead}}
	officer := Actor{Person: "officer", Roles: []Role{procedure.CommuneOfficer}}
	chair := Actor{Person: "chair", Roles: []Role{procedure.CommuneChair}}
	met, changed := strings.Repeat("a", 64), strings.Repeat("b", 64)
	decide := func(seal string) Transition {
		return Transition{State: Decided, Decision: &Decision{Number: "1/QĐ", Date: "2026-12-10", Seal: seal}}
	}
	minutes := &Meeting{Date: "2026-10-20", Attendees: 10, Agreeing: 6}
	for _, tc := range []struct {
		name   string
		rv     Review
		t      Transition
		actor  Actor
		refuse string
	}{
		{"the meeting's agreement is sealed", Review{Status: Submitted}, Transition{State: Agreed, Meeting: minutes, Seal: met}, head, ""},
		{"an agreement without a seal is refused", Review{Status: Submitted}, Transition{State: Agreed, Meeting: minutes}, head, "needs the seal"},
		{"a meeting that returns the household seals nothing", Review{Status: Submitted}, Transition{State: Returned, Meeting: &Meeting{Date: "2026-10-20", Attendees: 10, Agreeing: 2}, Seal: met}, head, "carries no seal"},
		{"posting carries the meeting's seal", Review{Status: Agreed, Seal: met}, Transition{State: Posted, Seal: met}, officer, ""},
		{"posting without the seal is refused", Review{Status: Agreed, Seal: met}, Transition{State: Posted}, officer, "carries that seal"},
		{"posting with another seal is refused", Review{Status: Agreed, Seal: met}, Transition{State: Posted, Seal: changed}, officer, "carries that seal"},
		{"a re-check carries it", Review{Status: Posted, Seal: met}, Transition{State: Rechecking, Note: "khiếu nại", Seal: met}, officer, ""},
		{"passing carries it", Review{Status: Posted, Seal: met}, Transition{State: Passed, Seal: met}, officer, ""},
		{"the chair decides the answers the meeting agreed on", Review{Status: Passed, Seal: met}, decide(met), chair, ""},
		{"a decision over answers changed since the meeting is refused", Review{Status: Passed, Seal: met}, decide(changed), chair, "changed after the village meeting"},
		{"a review agreed before meetings were sealed is decided on the stored answers", Review{Status: Passed}, decide(changed), chair, ""},
		{"a legacy chain takes no seal it did not have", Review{Status: Posted}, Transition{State: Passed, Seal: met}, officer, "carries that seal"},
		{"a return carries no seal", Review{Status: Passed, Seal: met}, Transition{State: Returned, Note: "sửa", Seal: met}, chair, "carries no seal"},
		{"a return drops the seal, and the next meeting seals again", Review{Status: Passed, Seal: met}, Transition{State: Returned, Note: "sửa"}, chair, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.rv, tc.t, tc.actor, procedure.Default().MeetingStands)
			switch {
			case tc.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refuse != "" && err == nil:
				t.Fatalf("allowed; want a refusal saying %q", tc.refuse)
			case tc.refuse != "" && !strings.Contains(err.Error(), tc.refuse):
				t.Fatalf("refused with %q; want it to say %q", err, tc.refuse)
			}
		})
	}
	// The seal is part of the value's one form.
	v := Transition{State: Posted, Seal: met}.Marshal()
	got, err := ParseStored(v)
	if err != nil || got.Seal != met || string(Transition{State: Posted, Seal: met}.Marshal()) != string(v) {
		t.Fatalf("seal does not round-trip: %s → %+v, %v", v, got, err)
	}
}

// A regular review's date is one date to every rule: the monthly review
// its deadline counts from and the list year (and standard) it changes are
// of the same round. A review dated 20 December 2026 is counted by
// Deadlines as a request joining the 15 January 2027 review (due 30
// January), but ListYear and Standard put it on the 2026 list under the
// 2021-2025 standard.
func TestRegularReviewDeadlineAndListYearReadOneDate(t *testing.T) {
	date := "2026-12-20"
	on, _ := time.Parse(time.DateOnly, date)
	ds := Deadlines(Facts{Regular: true, Date: on, Status: Draft}, on, procedure.Default(), Plan{})
	y, err := ListYear(true, date)
	if err != nil || len(ds) == 0 {
		t.Fatal(err, ds)
	}
	if ds[0].By.Year() != y {
		t.Errorf("due %s, but the review changes the %d list", ds[0].By.Format(time.DateOnly), y)
	}
}

// A status written at 06:30 in the commune (23:30 UTC the day before) is
// that day's: the posting period counts from the commune's day, as the
// posted list shows it.
func TestDeadlinesReadTheCommunesDay(t *testing.T) {
	set, err := procedure.Default().Set(procedure.PeriodPosting, 3, procedure.WorkingDays, procedure.Source{Text: "QĐ tỉnh"})
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 11, 1, 23, 30, 0, 0, time.UTC) // Monday 2 November, 06:30 in Vietnam
	ds := Deadlines(Facts{Date: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), Status: Posted, Since: since}, time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC), set, Plan{})
	if len(ds) != 1 || ds[0].By.Format(time.DateOnly) != "2026-11-05" || !ds[0].Open {
		t.Fatalf("posted at 06:30 on Monday 2 November in the commune: %+v; want open until Thursday 5", ds)
	}
}
