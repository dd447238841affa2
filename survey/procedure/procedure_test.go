package procedure

import (
	"errors"
	"testing"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestStandardChosenByRoundKindAndDate(t *testing.T) {
	r, reg := Default(), survey.Builtin()
	tests := []struct {
		name string
		kind Kind
		on   string
		want string // standard id, or "" when refused
		year int
	}{
		{"a regular review in October 2026 is scored under the 2021-2025 standard", Regular, "2026-10-20", "2021-2025", 2026},
		{"a periodic review in October 2026 decides the 2027 list under 2026-2030", Periodic, "2026-10-20", "2026-2030", 2027},
		{"a periodic review in October 2025 decides the 2026 list under 2021-2025", Periodic, "2025-10-20", "2021-2025", 2026},
		{"a regular review in October 2025 changes the 2025 list under 2021-2025", Regular, "2025-10-20", "2021-2025", 2025},
		{"a periodic review on its first day, 1 September 2026, decides 2027", Periodic, "2026-09-01", "2026-2030", 2027},
		{"a regular review on 31 August 2026 changes the 2026 list", Regular, "2026-08-31", "2021-2025", 2026},
		{"a regular review on 1 September 2026 still changes the 2026 list", Regular, "2026-09-01", "2021-2025", 2026},
		{"a periodic review on its last day, 14 December 2026, decides 2027", Periodic, "2026-12-14", "2026-2030", 2027},
		{"a regular review on 15 December 2026 changes the 2026 list under 2021-2025", Regular, "2026-12-15", "2021-2025", 2026},
		{"a request filed on 16 December 2026 joins the January 2027 review, under 2026-2030", Regular, "2026-12-16", "2026-2030", 2027},
		{"a request filed on 31 December 2026, the transition's last day, is decided in 2027 under 2026-2030", Regular, "2026-12-31", "2026-2030", 2027},
		{"a request filed on 15 November 2026 joins that day's review, under 2021-2025", Regular, "2026-11-15", "2021-2025", 2026},
		{"a regular review on 1 January 2027 is under 2026-2030", Regular, "2027-01-01", "2026-2030", 2027},
		{"a regular review on 15 January 2027 is under 2026-2030", Regular, "2027-01-15", "2026-2030", 2027},
		{"a periodic review in October 2027 decides 2028 under 2026-2030", Periodic, "2027-10-01", "2026-2030", 2028},
		{"a periodic review on 15 December is outside its window and refused", Periodic, "2026-12-15", "", 0},
		{"a periodic review on 31 August is outside its window and refused", Periodic, "2026-08-31", "", 0},
		{"a periodic review on 1 January is outside its window and refused", Periodic, "2027-01-01", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y, err := r.ListYear(tt.kind, day(tt.on))
			s, serr := r.Standard(reg, tt.kind, day(tt.on))
			if tt.want == "" {
				if !errors.Is(err, ErrOutsideWindow) || !errors.Is(serr, ErrOutsideWindow) {
					t.Fatalf("got list year %d (%v), standard err %v; want ErrOutsideWindow", y, err, serr)
				}
				return
			}
			if err != nil || serr != nil {
				t.Fatalf("unexpected error: %v / %v", err, serr)
			}
			if y != tt.year {
				t.Errorf("list year = %d, want %d", y, tt.year)
			}
			if s.ID != tt.want {
				t.Errorf("standard = %s, want %s", s.ID, tt.want)
			}
		})
	}
}

func TestUnknownKindIsRefused(t *testing.T) {
	if _, err := Default().ListYear(Kind(0), day("2026-10-01")); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("got %v, want ErrUnknownKind", err)
	}
}

func TestVillageMeetingThreshold(t *testing.T) {
	r := Default()
	tests := []struct {
		name                string
		agreeing, attendees int
		want                bool
	}{
		{"the village meeting's result stands at exactly 50 %", 20, 40, true},
		{"the result stands above 50 %", 24, 40, true},
		{"40 % agreeing sends the household back to survey", 16, 40, false},
		{"one short of half of an even meeting does not stand", 19, 40, false},
		{"half of an odd meeting is not rounded up: 10 of 21 does not stand", 10, 21, false},
		{"11 of 21 stands", 11, 21, true},
		{"a meeting with nobody attending decides nothing", 0, 0, false},
		{"more agreeing than attending is refused", 5, 4, false},
		{"a negative count is refused", -1, 4, false},
		{"all attendees agreeing stands", 4, 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.MeetingStands(tt.agreeing, tt.attendees); got != tt.want {
				t.Fatalf("MeetingStands(%d, %d) = %v, want %v", tt.agreeing, tt.attendees, got, tt.want)
			}
		})
	}
}

func TestMinutesAreInTwoCopies(t *testing.T) {
	if got := Default().MinutesCopies; got != 2 {
		t.Fatalf("minutes copies = %d, want 2 (one for the village, one for the commune)", got)
	}
}

func TestRegularReviewDeadline(t *testing.T) {
	r := Default()
	tests := []struct {
		name       string
		filed      string
		start, due string
	}{
		{"a request filed on the 3rd is reviewed from the 15th and due 15 days later", "2026-03-03", "2026-03-15", "2026-03-30"},
		{"a request filed on the 15th joins that month's review", "2026-03-15", "2026-03-15", "2026-03-30"},
		{"a request filed on the 16th waits for next month's review", "2026-03-16", "2026-04-15", "2026-04-30"},
		{"a request filed in late December waits for the 15 January review", "2026-12-20", "2027-01-15", "2027-01-30"},
		{"the deadline runs across a month end", "2026-02-01", "2026-02-15", "2026-03-02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := r.RegularStart(day(tt.filed))
			if got := start.Format(time.DateOnly); got != tt.start {
				t.Fatalf("start = %s, want %s", got, tt.start)
			}
			due, err := r.RegularDue(start)
			if err != nil {
				t.Fatal(err)
			}
			if got := due.Format(time.DateOnly); got != tt.due {
				t.Fatalf("due = %s, want %s", got, tt.due)
			}
		})
	}
}

func TestRegularReviewIsLateOnDay16(t *testing.T) {
	r := Default()
	start := day("2026-05-15")
	due, err := r.RegularDue(start)
	if err != nil {
		t.Fatal(err)
	}
	day15, day16 := start.AddDate(0, 0, 15), start.AddDate(0, 0, 16)
	if day15.After(due) {
		t.Errorf("a decision on day 15 (%s) is late against due %s", day15.Format(time.DateOnly), due.Format(time.DateOnly))
	}
	if !day16.After(due) {
		t.Errorf("a decision on day 16 (%s) is not late against due %s", day16.Format(time.DateOnly), due.Format(time.DateOnly))
	}
}

func TestUnconfirmedPeriodsAreUnsetUntilTheProvinceSetsThem(t *testing.T) {
	r := Default()
	want := []PeriodID{PeriodPosting, PeriodComplaints, PeriodRecheck}
	got := r.Unset()
	if len(got) != len(want) {
		t.Fatalf("unset = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("unset = %v, want %v", got, want)
		}
		p := r.Periods[want[i]]
		if !p.Provisional {
			t.Errorf("%s is unset but not provisional", want[i])
		}
		if _, err := p.End(day("2026-11-02")); !errors.Is(err, ErrPeriodUnset) {
			t.Errorf("%s: End on an unset period: %v, want ErrPeriodUnset", want[i], err)
		}
	}

	prov := Source{Text: "Kế hoạch rà soát của UBND tỉnh (example)"}
	set, err := r.Set(PeriodPosting, 3, WorkingDays, prov)
	if err != nil {
		t.Fatal(err)
	}
	p := set.Periods[PeriodPosting]
	if p.Provisional || p.Source.Text != prov.Text {
		t.Errorf("a province-set period keeps provisional=%v source=%q", p.Provisional, p.Source.Text)
	}
	// Posted on Friday 2026-11-06: three working days end on Wednesday 11th.
	end, err := p.End(day("2026-11-06"))
	if err != nil {
		t.Fatal(err)
	}
	if got := end.Format(time.DateOnly); got != "2026-11-11" {
		t.Errorf("posting end = %s, want 2026-11-11", got)
	}
	if r.Periods[PeriodPosting].Set() {
		t.Error("Set changed the rules it was called on")
	}
	if len(set.Unset()) != 2 {
		t.Errorf("unset after setting posting = %v", set.Unset())
	}
}

func TestSetRefusesBadPeriods(t *testing.T) {
	r := Default()
	src := Source{Text: "x"}
	cases := []struct {
		name string
		id   PeriodID
		days int
		kind DayKind
		src  Source
	}{
		{"an unknown period", "holiday", 3, WorkingDays, src},
		{"zero days", PeriodPosting, 0, WorkingDays, src},
		{"an unknown day kind", PeriodPosting, 3, DayKind(9), src},
		{"no source", PeriodPosting, 3, WorkingDays, Source{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := r.Set(c.id, c.days, c.kind, c.src); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestEveryRoleIsARoleOfTheWireContract(t *testing.T) {
	r := Default()
	for kind, steps := range r.Steps {
		for _, s := range steps {
			if len(s.Actors) == 0 {
				t.Errorf("%s step %s has no actor", kind, s.ID)
			}
			for _, a := range s.Actors {
				if _, ok := rasoatv1.Role_value["ROLE_"+string(a)]; !ok {
					t.Errorf("%s step %s: role %s is not in admin.proto", kind, s.ID, a)
				}
			}
		}
	}
}

func TestEveryRuleHasASource(t *testing.T) {
	r := Default()
	check := func(what string, s Source) {
		t.Helper()
		if s.Text == "" {
			t.Errorf("%s has no source text", what)
		}
	}
	check("periodic window", r.PeriodicWindow.Source)
	check("regular start", r.RegularStartSrc)
	check("meeting threshold", r.Meeting.Source)
	check("monthly report", r.MonthlyReportSrc)
	check("transition", TransitionSource)
	for kind, steps := range r.Steps {
		for _, s := range steps {
			check(kind.String()+" step "+string(s.ID), s.Source)
			for _, f := range s.Forms {
				check("form "+f.ID, f.Source)
			}
		}
	}
	for id, p := range r.Periods {
		check("period "+string(id), p.Source)
		if !p.Set() && !p.Provisional {
			t.Errorf("period %s is unset but not marked provisional", id)
		}
	}
}

func TestStepOrderFollowsTheText(t *testing.T) {
	r := Default()
	want := map[Kind][]StepID{
		Periodic: {StepListing, StepSurvey, StepMeeting, StepPosting, StepDecision, StepCert},
		Regular:  {StepRequest, StepSurvey, StepMeeting, StepPosting, StepDecision, StepCert},
	}
	for kind, ids := range want {
		steps := r.Steps[kind]
		if len(steps) != len(ids) {
			t.Fatalf("%s: %d steps, want %d", kind, len(steps), len(ids))
		}
		for i, id := range ids {
			if steps[i].ID != id {
				t.Errorf("%s step %d = %s, want %s", kind, i, steps[i].ID, id)
			}
		}
	}
	// Who does what: the village head chairs the meeting, the chair decides.
	for kind := range want {
		for _, s := range r.Steps[kind] {
			switch s.ID {
			case StepMeeting:
				if s.Actors[0] != VillageHead {
					t.Errorf("%s meeting recorded by %s, want the village head", kind, s.Actors[0])
				}
			case StepDecision, StepCert:
				if s.Actors[0] != CommuneChair {
					t.Errorf("%s %s by %s, want the commune chair", kind, s.ID, s.Actors[0])
				}
			case StepSurvey:
				if s.Actors[0] != Collaborator {
					t.Errorf("%s survey by %s, want the collaborator", kind, s.Actors[0])
				}
			}
		}
	}
}

func TestKindNames(t *testing.T) {
	if Periodic.Name() != "Rà soát định kỳ hằng năm" || Regular.Name() != "Rà soát thường xuyên hằng năm" {
		t.Fatalf("names: %q, %q", Periodic.Name(), Regular.Name())
	}
	if Kind(0).Name() != "" || Kind(0).String() != "Kind(0)" {
		t.Fatalf("unknown kind renders as %q / %q", Kind(0).Name(), Kind(0).String())
	}
}

func TestSourceString(t *testing.T) {
	s := Source{Text: Decision24, Article: 3, Clause: 1, Point: "a"}
	if got, want := s.String(), "Điều 3 khoản 1 điểm a Quyết định 24/2021/QĐ-TTg"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := (Source{Text: Decree351}).String(); got != Decree351 {
		t.Fatalf("got %q", got)
	}
}
