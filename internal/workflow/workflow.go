// Package workflow is the review procedure (quy trình rà soát) as a state
// machine over a review's status field: the states a review passes
// through, the transitions between them, who may make each, and what
// each must record (the village meeting's count, the reason for a return,
// the chair's decision). It is shared by the server, which checks every
// transition a push carries (server/review), and the tablet, which shows
// why one was refused. It does no I/O.
//
// A transition is a write of the status field whose base names the
// status the writer saw. The server accepts it only over the current
// status, so a stale offline write ("submitted" after the chair decided)
// is refused with its reason, never merged; an accepted transition's stamp
// is above the status it replaces, so every replica computes the same
// state from the same log.
//
// The steps and actors follow Decision 24/2021/QĐ-TTg, Điều 4 and 5, as
// survey/procedure records them with their sources; where the text names
// a committee that has no role here, the mapping is procedure's.
package workflow

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rasoat/rasoat/survey/procedure"
)

// State is a review's status (trạng thái).
type State string

// The states, in the order of the procedure.
const (
	// None is the status of a review no transition has been written to.
	None State = ""
	// Draft: being surveyed (đang rà soát, phiếu A/B).
	Draft State = "draft"
	// Submitted: the collaborator submitted the survey (đã nộp).
	Submitted State = "submitted"
	// Returned: sent back to be surveyed again, with the reason — by an
	// officer, or by a village meeting where under 50 % agreed (trả lại,
	// rà soát lại).
	Returned State = "returned"
	// Agreed: the village meeting agreed with the result (họp dân thống
	// nhất: at least 50 % of attendees).
	Agreed State = "agreed"
	// Posted: the result is posted at the commune office and in the
	// village (niêm yết công khai); complaints may be filed.
	Posted State = "posted"
	// Rechecking: a complaint is being re-checked (phúc tra).
	Rechecking State = "rechecking"
	// Passed: the officer passed it to the commune chair after posting
	// (trình Chủ tịch UBND xã).
	Passed State = "passed"
	// Decided: the chair's recognition decision (quyết định công nhận,
	// form 02) includes it. Its household's answers are locked.
	Decided State = "decided"
	// Refused: a regular review's request refused by the chair, with the
	// reason in writing (trả lời bằng văn bản nêu rõ lý do; Điều 5 khoản 2).
	Refused State = "refused"
	// Approved is the status the two-step workflow before this package
	// wrote for an officer's approval. It is read (as decided) in data
	// written then, and no longer written.
	Approved State = "approved"
)

// States lists every state that may be written, in procedure order.
var States = []State{Draft, Submitted, Returned, Agreed, Posted, Rechecking, Passed, Decided, Refused}

// Known reports whether s is a state (including the legacy Approved).
func Known(s State) bool { return slices.Contains(States, s) || s == Approved }

// Vietnamese is the state's name as an officer reads it.
func (s State) Vietnamese() string {
	switch s {
	case Draft:
		return "đang rà soát"
	case Submitted:
		return "đã nộp"
	case Returned:
		return "trả lại, rà soát lại"
	case Agreed:
		return "họp dân thống nhất"
	case Posted:
		return "niêm yết công khai"
	case Rechecking:
		return "phúc tra"
	case Passed:
		return "trình Chủ tịch UBND xã"
	case Decided, Approved:
		return "đã công nhận"
	case Refused:
		return "không công nhận"
	}
	return string(s)
}

// Locks reports whether a household whose latest review is in s may not
// change: its round is decided, and correcting it means an officer
// reopening the review (a transition back to Returned), which is recorded.
func (s State) Locks() bool { return s == Decided || s == Approved }

// Role is a role of proto/rasoat/v1/admin.proto without its ROLE_ prefix.
type Role = procedure.Role

// Need is what a transition must record.
type Need int

const (
	// NeedNote: the transition says why (lý do).
	NeedNote Need = 1 << iota
	// NeedMeeting: the village meeting's minutes (date, attendees,
	// agreeing).
	NeedMeeting
	// NeedDecision: the chair's decision (number, date, seal).
	NeedDecision
)

// Rule is one allowed transition.
type Rule struct {
	From []State
	To   State
	// By are the roles that may make it.
	By []Role
	// Needs is what the transition must carry.
	Needs Need
	// Meeting, for a transition recording a village meeting, is whether
	// the meeting's result stands (true for Agreed) or not (Returned).
	Meeting *bool
	// FourEyes: nobody who wrote the household's current answers (or
	// started its review) may make it: nobody approves a household they
	// surveyed.
	FourEyes bool
	// Regular: only for a regular review's request (rà soát thường xuyên).
	Regular bool
	// Step is the procedure step it records, for its source.
	Step procedure.StepID
}

var stands, fails = true, false

// Rules is the state machine. Order matters only for messages: the first
// rule from a state to a state is the one a refusal explains.
var Rules = []Rule{
	{From: []State{None}, To: Draft, By: []Role{procedure.Collaborator, procedure.CommuneOfficer}, Step: procedure.StepListing},
	{From: []State{Draft, Returned}, To: Submitted, By: []Role{procedure.Collaborator}, Step: procedure.StepSurvey},
	{From: []State{Submitted}, To: Agreed, By: []Role{procedure.VillageHead}, Needs: NeedMeeting, Meeting: &stands, Step: procedure.StepMeeting},
	{From: []State{Submitted}, To: Returned, By: []Role{procedure.VillageHead}, Needs: NeedMeeting, Meeting: &fails, Step: procedure.StepMeeting},
	{From: []State{Submitted, Agreed, Posted, Rechecking, Passed}, To: Returned, By: []Role{procedure.CommuneOfficer}, Needs: NeedNote, Step: procedure.StepPosting},
	{From: []State{Agreed}, To: Posted, By: []Role{procedure.CommuneOfficer}, Step: procedure.StepPosting},
	{From: []State{Posted}, To: Rechecking, By: []Role{procedure.CommuneOfficer}, Needs: NeedNote, Step: procedure.StepPosting},
	{From: []State{Rechecking}, To: Posted, By: []Role{procedure.CommuneOfficer}, Needs: NeedNote, Step: procedure.StepPosting},
	{From: []State{Posted}, To: Passed, By: []Role{procedure.CommuneOfficer}, FourEyes: true, Step: procedure.StepPosting},
	{From: []State{Passed}, To: Decided, By: []Role{procedure.CommuneChair}, Needs: NeedDecision, FourEyes: true, Step: procedure.StepDecision},
	{From: []State{Passed}, To: Refused, By: []Role{procedure.CommuneChair}, Needs: NeedNote, FourEyes: true, Regular: true, Step: procedure.StepDecision},
	{From: []State{Passed}, To: Returned, By: []Role{procedure.CommuneChair}, Needs: NeedNote, Step: procedure.StepDecision},
	// Reopening a decided review, to correct it, is the officer's, and
	// says why.
	{From: []State{Decided, Refused, Approved}, To: Returned, By: []Role{procedure.CommuneOfficer}, Needs: NeedNote, Step: procedure.StepDecision},
}

// Actor is who makes a transition.
type Actor struct {
	Person string
	Roles  []Role
	// Surveyed: the person wrote the household's current answers or
	// started its review.
	Surveyed bool
}

// Review is what a transition is checked against.
type Review struct {
	Status  State
	Regular bool
	// Seal is the seal the current status carries (Transition.Seal).
	Seal string
}

// Refusal is a transition the workflow does not allow, with the reason an
// officer or collaborator reads.
type Refusal struct {
	From, To State
	Msg      string
}

func (r *Refusal) Error() string { return r.Msg }

func refuse(from, to State, format string, a ...any) *Refusal {
	return &Refusal{From: from, To: to, Msg: fmt.Sprintf(format, a...)}
}

// Check returns nil if actor may write t over a review in rv, or the
// refusal saying why not. meetingStands judges a meeting's count (the
// procedure's threshold).
func Check(rv Review, t Transition, actor Actor, meetingStands func(agreeing, attendees int) bool) error {
	from, to := rv.Status, t.State
	if !Known(to) || to == Approved {
		return refuse(from, to, "%q is not a status a review can be moved to", to)
	}
	var fromHere []Rule
	for _, r := range Rules {
		if r.To == to && slices.Contains(r.From, from) {
			fromHere = append(fromHere, r)
		}
	}
	if len(fromHere) == 0 {
		return refuse(from, to, "a review %s cannot be moved to %s%s", describe(from), to, nextHint(from))
	}
	var roleRefusal *Refusal
	for _, r := range fromHere {
		if !hasRole(actor.Roles, r.By) {
			if roleRefusal == nil {
				roleRefusal = refuse(from, to, "moving a review from %s to %s is for %s, not for %s", nameOf(from), to, rolesText(r.By), rolesText(actor.Roles))
			}
			continue
		}
		if r.Regular && !rv.Regular {
			return refuse(from, to, "only a regular review's request (form 01 or 04) can be refused; a periodic review is decided with its result")
		}
		if r.Meeting != nil {
			if t.Meeting == nil {
				return refuse(from, to, "recording the village meeting needs its minutes: date, attendees and the number agreeing")
			}
			ok := meetingStands(t.Meeting.Agreeing, t.Meeting.Attendees)
			if ok != *r.Meeting {
				if ok {
					return refuse(from, to, "%d of %d attendees agreed: the result stands, so the review moves to agreed, not %s", t.Meeting.Agreeing, t.Meeting.Attendees, to)
				}
				return refuse(from, to, "%d of %d attendees agreed, under 50 %%: the household is surveyed again (returned), not %s", t.Meeting.Agreeing, t.Meeting.Attendees, to)
			}
		}
		// A step carries only what it records: minutes or a decision on
		// another step would show as the household's (a meeting's count
		// an officer made up, a decision nobody took).
		if t.Meeting != nil && r.Meeting == nil {
			return refuse(from, to, "moving a review from %s to %s records no village meeting: leave the minutes out", nameOf(from), to)
		}
		if t.Decision != nil && r.Needs&NeedDecision == 0 {
			return refuse(from, to, "moving a review from %s to %s records no decision: only the chair's decision does", nameOf(from), to)
		}
		if r.Needs&NeedNote != 0 && strings.TrimSpace(t.Note) == "" {
			return refuse(from, to, "moving a review to %s needs a note saying why", to)
		}
		if r.Needs&NeedDecision != 0 && t.Decision == nil {
			return refuse(from, to, "deciding a review needs the decision: its number, date and seal")
		}
		if r.FourEyes && actor.Surveyed {
			return refuse(from, to, "%s wrote this household's answers: nobody approves a household they surveyed", actor.Person)
		}
		return CheckSeal(rv, t)
	}
	return roleRefusal
}

// carriesSeal: the states after a village meeting's agreement, up to the
// decision, which carry the seal of the answers the meeting agreed on.
func carriesSeal(s State) bool {
	return s == Agreed || s == Posted || s == Rechecking || s == Passed
}

// CheckSeal holds a household's answers to what its village meeting
// agreed on. The result stands when at least half the meeting agrees
// (Decision 24/2021, Điều 4 khoản 2), and what is posted and decided is
// that result: answers changed after the meeting are discussed again, not
// decided unseen. The meeting records the seal of the answers it
// discussed (whether that is the household as stored is the server's
// check); posting, re-checks and passing carry it unchanged; a decision
// must seal the same answers, or the review goes back (returned) and is
// met on again. A review agreed before meetings were sealed carries none,
// and its decision is checked against the stored household only.
func CheckSeal(rv Review, t Transition) error {
	from, to := rv.Status, t.State
	switch {
	case to == Agreed:
		if t.Seal == "" {
			return refuse(from, to, "recording the meeting's agreement needs the seal of the answers it discussed")
		}
	case carriesSeal(to):
		if t.Seal != rv.Seal {
			return refuse(from, to, "the village meeting agreed on the answers sealed %s; moving the review to %s carries that seal, not %s", orNoSeal(rv.Seal), to, orNoSeal(t.Seal))
		}
	case t.Seal != "":
		return refuse(from, to, "moving a review to %s carries no seal", to)
	case to == Decided && rv.Seal != "" && t.Decision != nil && t.Decision.Seal != rv.Seal:
		return refuse(from, to, "the household's answers changed after the village meeting agreed on them (sealed %s then, %s now): return the review, and have the meeting discuss the answers again", rv.Seal[:12], t.Decision.Seal[:min(12, len(t.Decision.Seal))])
	}
	return nil
}

func orNoSeal(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func hasRole(have, want []Role) bool {
	for _, r := range have {
		if slices.Contains(want, r) {
			return true
		}
	}
	return false
}

func rolesText(rs []Role) string {
	if len(rs) == 0 {
		return "no role"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = strings.ToLower(string(r))
	}
	return strings.Join(s, " or ")
}

func nameOf(s State) string {
	if s == None {
		return "nothing"
	}
	return string(s)
}

func describe(s State) string {
	if s == None {
		return "not yet started"
	}
	return "in " + string(s)
}

// Next lists the states a review in s may move to, in rule order.
func Next(s State) []State {
	var out []State
	for _, r := range Rules {
		if slices.Contains(r.From, s) && !slices.Contains(out, r.To) {
			out = append(out, r.To)
		}
	}
	return out
}

func nextHint(s State) string {
	n := Next(s)
	if len(n) == 0 {
		return ""
	}
	t := make([]string, len(n))
	for i, x := range n {
		t[i] = string(x)
	}
	return " (from " + nameOf(s) + " it can move to " + strings.Join(t, ", ") + ")"
}
