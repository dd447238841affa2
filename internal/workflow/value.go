package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Bounds on a transition's value, checked at the door with the rest of a
// change (internal/entity).
const (
	// MaxNote bounds a transition's note: a paragraph saying why a review
	// was returned, refused or reopened. The minutes and the complaint
	// themselves are on paper.
	MaxNote = 2000
	// MaxAttendees bounds a village meeting's attendance: the largest
	// villages (thôn, tổ dân phố) have a few thousand adults.
	MaxAttendees = 10000
	// MaxDecisionNumber bounds a decision's number ("125/QĐ-UBND").
	MaxDecisionNumber = 64
)

// Transition is the value of a review's status field: the state it moves
// to and what that step records.
type Transition struct {
	State State
	// Note says why (lý do): required to return, refuse, reopen, and to
	// open or close a re-check.
	Note string
	// Meeting is the village meeting's minutes (biên bản họp dân), for
	// the village head's transitions.
	Meeting *Meeting
	// Decision is the chair's recognition decision, for Decided.
	Decision *Decision
	// Seal is the seal (package seal) of the household's answers the
	// village meeting agreed on, recorded with the meeting (Agreed) and
	// carried by each step after it (posting, re-check, passing), so that
	// the chair decides the answers the meeting discussed and the posting
	// showed, or sees that they changed (CheckSeal).
	Seal string
}

// Meeting is what the minutes of a village meeting record for one
// household: its date, the number attending and the number agreeing with
// the household's result (Decision 24/2021, Điều 4 khoản 2).
type Meeting struct {
	Date      string // YYYY-MM-DD
	Attendees int
	Agreeing  int
}

// Decision is the chair's recognition decision (form 02) a review is
// decided in: its number and date, and the seal of the household's
// answers and result as decided (Seal), so that a later change to them is
// seen.
type Decision struct {
	Number string
	Date   string // YYYY-MM-DD
	Seal   string // lower-case hex SHA-256
	// Standard, Result and Deprived are the household's result as decided:
	// the standard's id, the classification without its prefix ("POOR")
	// and the deprived indicators' ids, in the standard's order. The
	// server checks them against its own scoring of the household; the
	// certificate's year-by-year grid (form 03) is made of them.
	Standard string
	Result   string
	Deprived []string
}

// Bounds on a decision's result.
const (
	// MaxDeprived bounds a result's deprived indicators: a standard has 12
	// to 14.
	MaxDeprived = 32
	// MaxIndicatorID bounds an indicator's or a standard's id.
	MaxIndicatorID = 64
)

type wireMeeting struct {
	Date      *string `json:"date"`
	Attendees *int    `json:"attendees"`
	Agreeing  *int    `json:"agreeing"`
}

type wireDecision struct {
	Number   *string  `json:"number"`
	Date     *string  `json:"date"`
	Seal     *string  `json:"seal"`
	Standard *string  `json:"standard"`
	Result   *string  `json:"result"`
	Deprived []string `json:"deprived"`
}

type wireTransition struct {
	State    *string       `json:"state"`
	Note     *string       `json:"note"`
	Seal     *string       `json:"seal"`
	Meeting  *wireMeeting  `json:"meeting"`
	Decision *wireDecision `json:"decision"`
}

// Parse reads a status value: a JSON string naming the state, or an
// object {"state", "note", "seal", "meeting", "decision"}. canon returns a text's
// canonical form (trimmed, NFC, no control characters but a line break
// where multiline), or why it is refused. The value's shape and bounds
// are checked here; whether the transition is allowed is Check's.
func Parse(v []byte, canon func(s string, multiline bool) (string, error)) (Transition, error) {
	var t Transition
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return t, errors.New("want a status name or a transition object")
		}
		s, err := canon(s, false)
		if err != nil {
			return t, err
		}
		t.State = State(s)
		return t, checkState(t.State)
	}
	var w wireTransition
	d := json.NewDecoder(bytes.NewReader(v))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return t, fmt.Errorf("want a status name or a transition object {state, note, meeting, decision}: %v", err)
	}
	if d.More() {
		return t, errors.New("trailing data after the transition")
	}
	if w.State == nil {
		return t, errors.New("state: missing")
	}
	st, err := canon(*w.State, false)
	if err != nil {
		return t, fmt.Errorf("state: %w", err)
	}
	t.State = State(st)
	if err := checkState(t.State); err != nil {
		return t, err
	}
	if w.Note != nil {
		s, err := canon(*w.Note, true)
		if err != nil {
			return t, fmt.Errorf("note: %w", err)
		}
		if len(s) > MaxNote {
			return t, fmt.Errorf("note: %d bytes, over the limit of %d", len(s), MaxNote)
		}
		t.Note = s
	}
	if w.Seal != nil {
		if !validSeal(*w.Seal) {
			return t, errors.New("seal: want 64 lower-case hex digits (SHA-256)")
		}
		t.Seal = *w.Seal
	}
	if m := w.Meeting; m != nil {
		if m.Date == nil || m.Attendees == nil || m.Agreeing == nil {
			return t, errors.New("meeting: want date, attendees and agreeing")
		}
		if err := checkDate(*m.Date); err != nil {
			return t, fmt.Errorf("meeting.date: %w", err)
		}
		switch {
		case *m.Attendees < 1 || *m.Attendees > MaxAttendees:
			return t, fmt.Errorf("meeting.attendees: %d, want 1 to %d", *m.Attendees, MaxAttendees)
		case *m.Agreeing < 0 || *m.Agreeing > *m.Attendees:
			return t, fmt.Errorf("meeting.agreeing: %d, want 0 to the %d attending", *m.Agreeing, *m.Attendees)
		}
		t.Meeting = &Meeting{Date: *m.Date, Attendees: *m.Attendees, Agreeing: *m.Agreeing}
	}
	if dc := w.Decision; dc != nil {
		if dc.Number == nil || dc.Date == nil || dc.Seal == nil {
			return t, errors.New("decision: want number, date and seal")
		}
		n, err := canon(*dc.Number, false)
		if err != nil {
			return t, fmt.Errorf("decision.number: %w", err)
		}
		if n == "" || len(n) > MaxDecisionNumber {
			return t, fmt.Errorf("decision.number: want 1 to %d bytes", MaxDecisionNumber)
		}
		if err := checkDate(*dc.Date); err != nil {
			return t, fmt.Errorf("decision.date: %w", err)
		}
		if !validSeal(*dc.Seal) {
			return t, errors.New("decision.seal: want 64 lower-case hex digits (SHA-256)")
		}
		if dc.Standard == nil || dc.Result == nil {
			return t, errors.New("decision: want the result decided: standard and result (and deprived)")
		}
		if !validIdent(*dc.Standard) {
			return t, fmt.Errorf("decision.standard: want 1 to %d letters, digits, '-', '_' or '.'", MaxIndicatorID)
		}
		if !validIdent(*dc.Result) {
			return t, fmt.Errorf("decision.result: want a classification such as POOR")
		}
		if len(dc.Deprived) > MaxDeprived {
			return t, fmt.Errorf("decision.deprived: %d indicators, over the limit of %d", len(dc.Deprived), MaxDeprived)
		}
		for i, d := range dc.Deprived {
			if !validIdent(d) {
				return t, fmt.Errorf("decision.deprived[%d]: want an indicator id", i)
			}
		}
		t.Decision = &Decision{Number: n, Date: *dc.Date, Seal: *dc.Seal, Standard: *dc.Standard, Result: *dc.Result, Deprived: dc.Deprived}
	}
	return t, nil
}

// ParseStored reads a status value as stored: already canonical, so its
// texts are taken as they are.
func ParseStored(v []byte) (Transition, error) {
	return Parse(v, func(s string, _ bool) (string, error) { return s, nil })
}

func checkState(s State) error {
	if !Known(s) {
		return fmt.Errorf("%q is not a review status (want one of %s)", s, statesText())
	}
	return nil
}

func statesText() string {
	b := []byte{}
	for i, s := range States {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, s...)
	}
	return string(b)
}

func checkDate(s string) error {
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return fmt.Errorf("%q is not a date YYYY-MM-DD", s)
	}
	return nil
}

// validIdent reports whether s is an id of a standard, an indicator or a
// classification: short, and of letters, digits, '-', '_' and '.'.
func validIdent(s string) bool {
	if s == "" || len(s) > MaxIndicatorID {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func validSeal(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Marshal writes t as AppendJSON does with encoding/json's strings (which
// internal/entity then writes in the canonical form of every stored
// string).
func (t Transition) Marshal() []byte {
	return t.AppendJSON(nil, func(b []byte, s string) []byte {
		var q bytes.Buffer
		e := json.NewEncoder(&q)
		e.SetEscapeHTML(false)
		_ = e.Encode(s) // a string always encodes
		return append(b, bytes.TrimSuffix(q.Bytes(), []byte("\n"))...)
	})
}

// AppendJSON appends t in its one form, with str writing each string: a
// JSON string when it records nothing but its state (the form the tablet
// wrote before transitions carried data), otherwise an object with its
// keys in a fixed order and empty parts left out.
func (t Transition) AppendJSON(b []byte, str func(b []byte, s string) []byte) []byte {
	if t.Note == "" && t.Seal == "" && t.Meeting == nil && t.Decision == nil {
		return str(b, string(t.State))
	}
	b = append(b, `{"state":`...)
	b = str(b, string(t.State))
	if t.Note != "" {
		b = str(append(b, `,"note":`...), t.Note)
	}
	if t.Seal != "" {
		b = str(append(b, `,"seal":`...), t.Seal)
	}
	if m := t.Meeting; m != nil {
		b = str(append(b, `,"meeting":{"date":`...), m.Date)
		b = strconv.AppendInt(append(b, `,"attendees":`...), int64(m.Attendees), 10)
		b = strconv.AppendInt(append(b, `,"agreeing":`...), int64(m.Agreeing), 10)
		b = append(b, '}')
	}
	if d := t.Decision; d != nil {
		b = str(append(b, `,"decision":{"number":`...), d.Number)
		b = str(append(b, `,"date":`...), d.Date)
		b = str(append(b, `,"seal":`...), d.Seal)
		b = str(append(b, `,"standard":`...), d.Standard)
		b = str(append(b, `,"result":`...), d.Result)
		b = append(b, `,"deprived":[`...)
		for i, x := range d.Deprived {
			if i > 0 {
				b = append(b, ',')
			}
			b = str(b, x)
		}
		b = append(b, "]}"...)
	}
	return append(b, '}')
}
