// Package procedure holds the review procedure (quy trình rà soát hộ nghèo,
// hộ cận nghèo) of Decision 24/2021/QĐ-TTg as data: the two kinds of round,
// their steps with who performs each and on which form, the periods with the
// text each comes from, and the rule choosing the standard a review is
// scored under.
//
// Every rule carries a Source. A figure that could not be confirmed against
// the text is marked Provisional; a period whose length could not be found
// at all is left unset (Days == 0) for the province to set with Rules.Set,
// never guessed. README.md lists each rule, its source and what is
// provisional.
//
// The package does no I/O and is not yet wired into the server or client.
package procedure

import (
	"errors"
	"fmt"
	"time"
)

// Source is where a rule is written: the text, its article (Điều), clause
// (khoản) and point (điểm), and, when the text itself was not read, the
// secondary source it was taken from.
type Source struct {
	// Text is the legal instrument, e.g. "Quyết định 24/2021/QĐ-TTg".
	Text string
	// Article, Clause and Point locate the rule; zero or empty when not
	// known (and then the rule says so in Note or is Provisional).
	Article int
	Clause  int
	Point   string
	// Via names the secondary source the wording was read in, when the
	// official text itself was not available here.
	Via string
	// Note records an interpretation and its ground.
	Note string
}

// String renders the citation the way an officer writes it
// ("Điều 3 khoản 1 điểm a Quyết định 24/2021/QĐ-TTg").
func (s Source) String() string {
	out := ""
	if s.Article > 0 {
		out = fmt.Sprintf("Điều %d ", s.Article)
		if s.Clause > 0 {
			out += fmt.Sprintf("khoản %d ", s.Clause)
			if s.Point != "" {
				out += fmt.Sprintf("điểm %s ", s.Point)
			}
		}
	}
	return out + s.Text
}

// Texts cited by the rules.
const (
	Decision24   = "Quyết định 24/2021/QĐ-TTg"
	Circular07   = "Thông tư 07/2021/TT-BLĐTBXH"
	Decree07     = "Nghị định 07/2021/NĐ-CP"
	Decree351    = "Nghị định 351/2025/NĐ-CP"
	Decision967  = "Quyết định 967/QĐ-BNNMT (2025)"
	Decision406  = "Quyết định 406/QĐ-LĐTBXH (2023)"
	CivilCode    = "Bộ luật Dân sự 2015"
	viaLawnet    = "lawnet.vn (English rendering of the article)"
	viaTVPL      = "thuvienphapluat.vn (quoting the article)"
	viaProcedure = "the administrative procedure published by Decision 406/QĐ-LĐTBXH (2023) and republished by Decision 967/QĐ-BNNMT (2025), as quoted by thuviensuckhoe.org and lawnet.vn"
)

// Kind is the kind of a review round.
type Kind int

const (
	// Periodic is rà soát định kỳ: once a year, 1 September to 14
	// December, deciding the next year's lists.
	Periodic Kind = iota + 1
	// Regular is rà soát thường xuyên: monthly from the 15th, on a
	// household's request (form 01 to enter a list, form 04 to leave it),
	// changing the current year's list.
	Regular
)

// Name is the Vietnamese name of the kind, as the text writes it.
func (k Kind) Name() string {
	switch k {
	case Periodic:
		return "Rà soát định kỳ hằng năm"
	case Regular:
		return "Rà soát thường xuyên hằng năm"
	}
	return ""
}

// String is the kind's stable English id.
func (k Kind) String() string {
	switch k {
	case Periodic:
		return "periodic"
	case Regular:
		return "regular"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Role is a role of proto/rasoat/v1/admin.proto, without its ROLE_ prefix
// (a test pins that every Role here exists there). The package does not
// import the wire contract: it is domain.
type Role string

const (
	Collaborator   Role = "COLLABORATOR"    // rà soát viên
	VillageHead    Role = "VILLAGE_HEAD"    // trưởng thôn
	CommuneOfficer Role = "COMMUNE_OFFICER" // công chức giảm nghèo xã, for the Ban Chỉ đạo rà soát cấp xã
	CommuneChair   Role = "COMMUNE_CHAIR"   // Chủ tịch UBND cấp xã
)

// Form is one paper of the procedure.
type Form struct {
	// ID is stable, e.g. "form01", "phieuA".
	ID string
	// Name is the Vietnamese title.
	Name   string
	Source Source
	// Provisional marks a form whose number or annex is not confirmed.
	Provisional bool
}

// The forms. Forms 01–04 are in the annex (Phụ lục) of Decision 24/2021;
// the list, phiếu A and phiếu B in the annexes of Circular 07/2021.
var (
	Form01 = Form{ID: "form01", Name: "Giấy đề nghị rà soát hộ nghèo, hộ cận nghèo (Mẫu số 01)",
		Source: Source{Text: Decision24, Note: "Mẫu số 01, Phụ lục; cited by Điều 4 khoản 1", Via: viaTVPL}}
	Form02 = Form{ID: "form02", Name: "Quyết định công nhận hộ nghèo, hộ cận nghèo, hộ thoát nghèo, hộ thoát cận nghèo (Mẫu số 02)",
		Source: Source{Text: Decision24, Note: "number as issue 9 gives it; not read in the annex here"}, Provisional: true}
	Form03 = Form{ID: "form03", Name: "Giấy chứng nhận hộ nghèo, hộ cận nghèo (Mẫu số 03)",
		Source: Source{Text: Decision24, Note: "number as issue 9 gives it; not read in the annex here"}, Provisional: true}
	Form04 = Form{ID: "form04", Name: "Giấy đề nghị công nhận hộ thoát nghèo, hộ thoát cận nghèo (Mẫu số 04)",
		Source: Source{Text: Decision24, Article: 5, Clause: 1, Via: viaLawnet}}
	FormList = Form{ID: "list", Name: "Danh sách hộ gia đình cần rà soát (Phụ lục I)",
		Source: Source{Text: Circular07, Note: "Phụ lục I", Via: "Decision 967/QĐ-BNNMT as quoted by news.thuvienphapluat.vn"}}
	FormPhieuA = Form{ID: "phieuA", Name: "Phiếu A — nhận diện nhanh đặc điểm hộ gia đình (Phụ lục II)",
		Source: Source{Text: Circular07, Note: "Phụ lục II; used for households that filed form 01", Via: "Decision 967/QĐ-BNNMT as quoted by news.thuvienphapluat.vn"}}
	FormPhieuB = Form{ID: "phieuB", Name: "Phiếu B — thu thập thông tin hộ gia đình",
		Source: Source{Text: Circular07, Note: "annex number (Phụ lục III) not confirmed here"}, Provisional: true}
	FormMinutes = Form{ID: "minutes", Name: "Biên bản họp dân thống nhất kết quả rà soát",
		Source: Source{Text: Decision24, Article: 4, Clause: 2, Via: viaProcedure, Note: "two copies: one kept by the village, one sent to the Ban Chỉ đạo rà soát cấp xã; whether a prescribed template exists was not confirmed"}}
)

// StepID names a step of the procedure.
type StepID string

const (
	StepRequest  StepID = "request"  // the household files form 01 or form 04
	StepListing  StepID = "listing"  // lập danh sách hộ gia đình cần rà soát
	StepSurvey   StepID = "survey"   // thu thập thông tin, tính điểm, phân loại (phiếu A, phiếu B)
	StepMeeting  StepID = "meeting"  // họp dân thống nhất kết quả rà soát
	StepPosting  StepID = "posting"  // niêm yết, thông báo công khai; khiếu nại, phúc tra
	StepDecision StepID = "decision" // quyết định công nhận (form 02)
	StepCert     StepID = "certificate"
)

// Step is one step of a round.
type Step struct {
	ID StepID
	// Name is the step as the text names it.
	Name string
	// Actors are the roles that perform it; the first one records it.
	Actors []Role
	Forms  []Form
	Source Source
	// Provisional marks a step whose actor or wording is not confirmed.
	Provisional bool
	// Note says what the role mapping cannot say (e.g. a committee that has
	// no role of its own).
	Note string
}

// Threshold is a share of a meeting's attendees.
type Threshold struct {
	// Numerator/Denominator is the share: 50/100 for 50 %.
	Numerator, Denominator int
	// Inclusive: the share itself is enough ("ít nhất 50%").
	Inclusive bool
	Source    Source
}

// Met reports whether agreeing out of attendees meets the threshold, in
// integers so that 50 % of an odd number of attendees is not rounded.
func (t Threshold) Met(agreeing, attendees int) bool {
	if attendees <= 0 || agreeing < 0 || agreeing > attendees {
		return false
	}
	lhs, rhs := agreeing*t.Denominator, attendees*t.Numerator
	if t.Inclusive {
		return lhs >= rhs
	}
	return lhs > rhs
}

// DayKind says how a period's days count.
type DayKind int

const (
	// CalendarDays count every day ("ngày").
	CalendarDays DayKind = iota + 1
	// WorkingDays count Monday to Friday ("ngày làm việc"); holidays are not
	// known to this package.
	WorkingDays
)

// PeriodID names a period.
type PeriodID string

const (
	// PeriodRegularDecision: the chair decides a regular review, and issues
	// the certificate, within 15 days of the day the monthly review begins.
	PeriodRegularDecision PeriodID = "regular-decision"
	// PeriodPosting: how long the results stay posted (niêm yết).
	PeriodPosting PeriodID = "posting"
	// PeriodComplaints: how long after posting a complaint (khiếu nại) is
	// received.
	PeriodComplaints PeriodID = "complaints"
	// PeriodRecheck: how long the re-check (phúc tra) of a complaint takes.
	PeriodRecheck PeriodID = "recheck"
)

// Period is a length of time the procedure allows.
type Period struct {
	ID PeriodID
	// Name is the Vietnamese wording.
	Name string
	// Days is the length; 0 means the text could not be confirmed and the
	// province has not set it (see Rules.Set).
	Days int
	Kind DayKind
	// From says what the period counts from.
	From   string
	Source Source
	// Provisional marks a period not confirmed against the text.
	Provisional bool
}

// Set reports whether the period has a length.
func (p Period) Set() bool { return p.Days > 0 }

// End is the last day of the period counted from start: the first day
// counted is the day after start (Bộ luật Dân sự 2015, Điều 147 khoản 1).
// A last day falling on a weekend or holiday is not moved (Điều 148 khoản 5
// would move it to the next working day; this package knows no holiday
// calendar, so that is left to the caller).
func (p Period) End(start time.Time) (time.Time, error) {
	if !p.Set() {
		return time.Time{}, fmt.Errorf("period %s: %w", p.ID, ErrPeriodUnset)
	}
	d := civil(start)
	switch p.Kind {
	case WorkingDays:
		for n := 0; n < p.Days; {
			d = d.AddDate(0, 0, 1)
			if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
				n++
			}
		}
		return d, nil
	default:
		return d.AddDate(0, 0, p.Days), nil
	}
}

// ErrPeriodUnset is returned for a period nobody has set: the text could
// not be confirmed and the province has not set it.
var ErrPeriodUnset = errors.New("period not set: the text could not be confirmed and the province has not set it")

// ErrOutsideWindow is returned for a periodic review dated outside
// 1 September – 14 December.
var ErrOutsideWindow = errors.New("periodic review dated outside 1 September – 14 December")

// ErrUnknownKind is returned for a Kind that is neither Periodic nor Regular.
var ErrUnknownKind = errors.New("unknown review kind")

// Window is a span of days within a year, inclusive.
type Window struct {
	FromMonth time.Month
	FromDay   int
	ToMonth   time.Month
	ToDay     int
	Source    Source
}

// Contains reports whether the civil date of t falls in the window.
func (w Window) Contains(t time.Time) bool {
	m, d := t.Month(), t.Day()
	after := m > w.FromMonth || (m == w.FromMonth && d >= w.FromDay)
	before := m < w.ToMonth || (m == w.ToMonth && d <= w.ToDay)
	return after && before
}

// Rules is the procedure as one value: the national rules by default
// (Default), with the periods a province sets (Set).
type Rules struct {
	// PeriodicWindow is 1 September – 14 December.
	PeriodicWindow Window
	// RegularStartDay is the day of the month the regular review begins (15).
	RegularStartDay int
	RegularStartSrc Source
	// Meeting is the share of attendees whose agreement makes a village
	// meeting's result stand.
	Meeting Threshold
	// MinutesCopies is the number of copies of the meeting's minutes (2).
	MinutesCopies int
	// Steps per kind, in order.
	Steps map[Kind][]Step
	// Periods by id.
	Periods map[PeriodID]Period
	// MonthlyReportDay and its months: the commune chair reports the regular
	// reviews to the level above on the 5th, February to September.
	MonthlyReportDay       int
	MonthlyReportFromMonth time.Month
	MonthlyReportToMonth   time.Month
	MonthlyReportSrc       Source
}

// Default returns the national rules as found in the texts.
func Default() Rules {
	meetingSrc := Source{Text: Decision24, Article: 4, Clause: 2, Via: viaProcedure,
		Note: "\"lấy ý kiến thống nhất của ít nhất 50% tổng số người tham dự cuộc họp … trường hợp ý kiến thống nhất dưới 50%, thực hiện rà soát lại … và tổ chức họp dân lại\""}
	postingStep := Step{ID: StepPosting, Name: "Niêm yết, thông báo công khai",
		Actors:      []Role{CommuneOfficer},
		Source:      Source{Text: Decision24, Article: 4, Clause: 3, Note: "clause number from the order of Điều 4 (listing, survey and meeting, posting, recognition); the wording was not read here"},
		Provisional: true,
		Note:        "posted at the commune office (trụ sở UBND cấp xã) and in the village (nhà văn hóa / nhà sinh hoạt cộng đồng thôn); complaints and re-checks (phúc tra) belong to this step"}
	decisionSrc := Source{Text: Decision24, Article: 4, Clause: 4,
		Note: "the text also has the commune chair report to, and seek the opinion of, the district chair; there is no district level since 1 July 2025, and who takes that part now was not confirmed"}
	r := Rules{
		PeriodicWindow: Window{FromMonth: time.September, FromDay: 1, ToMonth: time.December, ToDay: 14,
			Source: Source{Text: Decision24, Article: 3, Clause: 1, Point: "a", Via: viaTVPL,
				Note: "\"Định kỳ mỗi năm 01 lần: thực hiện từ ngày 01 tháng 9 đến hết ngày 14 tháng 12 của năm\""}},
		RegularStartDay: 15,
		RegularStartSrc: Source{Text: Decision24, Article: 3, Clause: 1, Point: "b", Via: viaTVPL,
			Note: "\"Thường xuyên hằng năm: mỗi tháng 01 lần, thực hiện từ ngày 15 hằng tháng\""},
		Meeting:       Threshold{Numerator: 50, Denominator: 100, Inclusive: true, Source: meetingSrc},
		MinutesCopies: 2,
		Steps: map[Kind][]Step{
			Periodic: {
				{ID: StepListing, Name: "Lập danh sách hộ gia đình cần rà soát",
					Actors: []Role{CommuneOfficer, VillageHead, Collaborator}, Forms: []Form{FormList, Form01},
					Source: Source{Text: Decision24, Article: 4, Clause: 1, Via: viaTVPL},
					Note:   "the Ban Chỉ đạo rà soát cấp xã leads, with the villages and the collaborators; it has no role of its own, the commune officer acts for it; the list is the households on the current poor and near-poor lists plus those that filed form 01"},
				{ID: StepSurvey, Name: "Tổ chức rà soát, phân loại hộ gia đình",
					Actors: []Role{Collaborator}, Forms: []Form{FormPhieuA, FormPhieuB},
					Source: Source{Text: Decision24, Article: 4, Clause: 2, Via: viaProcedure},
					Note:   "phiếu A screens the households that filed form 01; phiếu B collects the information that is scored"},
				{ID: StepMeeting, Name: "Tổ chức họp dân để thống nhất kết quả rà soát",
					Actors: []Role{VillageHead}, Forms: []Form{FormMinutes}, Source: meetingSrc,
					Note: "chaired by the village head (trưởng thôn chủ trì); below the threshold the household is surveyed again and discussed again"},
				postingStep,
				{ID: StepDecision, Name: "Công nhận hộ nghèo, hộ cận nghèo, hộ thoát nghèo, hộ thoát cận nghèo",
					Actors: []Role{CommuneChair}, Forms: []Form{Form02}, Source: decisionSrc, Provisional: true},
				{ID: StepCert, Name: "Cấp Giấy chứng nhận hộ nghèo, hộ cận nghèo",
					Actors: []Role{CommuneChair}, Forms: []Form{Form03}, Source: decisionSrc, Provisional: true},
			},
			Regular: {
				{ID: StepRequest, Name: "Hộ gia đình nộp Giấy đề nghị",
					Actors: []Role{CommuneOfficer}, Forms: []Form{Form01, Form04},
					Source: Source{Text: Decision24, Article: 5, Clause: 1, Via: viaLawnet},
					Note:   "filed in person, by post or online with the commune chair; the officer records it"},
				{ID: StepSurvey, Name: "Thu thập thông tin, tính điểm, phân loại hộ gia đình",
					Actors: []Role{Collaborator}, Forms: []Form{FormPhieuA, FormPhieuB},
					Source: Source{Text: Decision24, Article: 5, Clause: 2, Via: viaLawnet, Note: "Art. 5 cl. 2 runs the steps of Art. 4 cl. 2–4"}},
				{ID: StepMeeting, Name: "Tổ chức họp dân để thống nhất kết quả rà soát",
					Actors: []Role{VillageHead}, Forms: []Form{FormMinutes}, Source: meetingSrc},
				postingStep,
				{ID: StepDecision, Name: "Quyết định công nhận, hoặc trả lời bằng văn bản nêu rõ lý do",
					Actors: []Role{CommuneChair}, Forms: []Form{Form02},
					Source: Source{Text: Decision24, Article: 5, Clause: 2, Via: viaLawnet},
					Note:   "a household that does not qualify gets a written answer with the reason"},
				{ID: StepCert, Name: "Cấp Giấy chứng nhận hộ nghèo, hộ cận nghèo",
					Actors: []Role{CommuneChair}, Forms: []Form{Form03},
					Source: Source{Text: Decision24, Article: 5, Clause: 2, Via: viaLawnet}},
			},
		},
		Periods: map[PeriodID]Period{
			PeriodRegularDecision: {ID: PeriodRegularDecision, Name: "Thời hạn công nhận, cấp giấy chứng nhận (rà soát thường xuyên)",
				Days: 15, Kind: CalendarDays, From: "the day the monthly regular review begins (the 15th), not the day the request was filed",
				Source: Source{Text: Decision24, Article: 5, Clause: 2, Via: viaLawnet,
					Note: "\"within 15 days from the date the review begins as stipulated at point b clause 1 Article 3\"; counted in calendar days because the rendering does not say working days (ngày làm việc) — an interpretation"}},
			PeriodPosting: {ID: PeriodPosting, Name: "Thời gian niêm yết công khai", Kind: WorkingDays,
				From:   "the day the results are posted",
				Source: Source{Text: Decision24, Article: 4, Clause: 3, Note: "the length was not found in any source available here"}, Provisional: true},
			PeriodComplaints: {ID: PeriodComplaints, Name: "Thời gian tiếp nhận khiếu nại", Kind: WorkingDays,
				From:   "the day the results are posted",
				Source: Source{Text: Decision24, Article: 4, Clause: 3, Note: "the length was not found in any source available here"}, Provisional: true},
			PeriodRecheck: {ID: PeriodRecheck, Name: "Thời gian phúc tra", Kind: WorkingDays,
				From:   "the day the complaint is received",
				Source: Source{Text: Decision24, Article: 4, Clause: 3, Note: "the length was not found in any source available here"}, Provisional: true},
		},
		MonthlyReportDay:       5,
		MonthlyReportFromMonth: time.February,
		MonthlyReportToMonth:   time.September,
		MonthlyReportSrc: Source{Text: Decision24, Article: 7, Clause: 1, Via: viaTVPL,
			Note: "\"Ngày 05 hằng tháng (từ tháng 02 đến tháng 9), Chủ tịch Ủy ban nhân dân cấp xã tổng hợp, báo cáo … kết quả rà soát hộ nghèo, hộ cận nghèo thường xuyên\""},
	}
	return r
}

// Set returns a copy of r with a period set by the province, citing the
// province's own text. A period set this way is no longer provisional: it
// is the province's rule, with its source.
func (r Rules) Set(id PeriodID, days int, kind DayKind, src Source) (Rules, error) {
	p, ok := r.Periods[id]
	if !ok {
		return r, fmt.Errorf("set period %q: unknown period", id)
	}
	if days <= 0 {
		return r, fmt.Errorf("set period %q: days must be positive, got %d", id, days)
	}
	if kind != CalendarDays && kind != WorkingDays {
		return r, fmt.Errorf("set period %q: unknown day kind %d", id, kind)
	}
	if src.Text == "" {
		return r, fmt.Errorf("set period %q: a source text is required", id)
	}
	periods := make(map[PeriodID]Period, len(r.Periods))
	for k, v := range r.Periods {
		periods[k] = v
	}
	p.Days, p.Kind, p.Source, p.Provisional = days, kind, src, false
	periods[id] = p
	r.Periods = periods
	return r, nil
}

// Unset lists the periods nobody has set, in a stable order, so a server
// can say which ones a province must set before deadlines can be shown.
func (r Rules) Unset() []PeriodID {
	var out []PeriodID
	for _, id := range []PeriodID{PeriodRegularDecision, PeriodPosting, PeriodComplaints, PeriodRecheck} {
		if p, ok := r.Periods[id]; ok && !p.Set() {
			out = append(out, id)
		}
	}
	return out
}

// MeetingStands reports whether a village meeting's result for a household
// stands: at least 50 % of the attendees agree. When it does not, the
// household is surveyed again and discussed at another meeting.
func (r Rules) MeetingStands(agreeing, attendees int) bool {
	return r.Meeting.Met(agreeing, attendees)
}

// RegularStart is the day the regular review that takes up a request filed
// on filed begins: the 15th of the same month if filed on or before it, else
// the 15th of the next month. (The text says the review runs "mỗi tháng 01
// lần, thực hiện từ ngày 15 hằng tháng"; that a request filed on the 15th
// itself joins that month's review is our reading.)
func (r Rules) RegularStart(filed time.Time) time.Time {
	d := civil(filed)
	start := time.Date(d.Year(), d.Month(), r.RegularStartDay, 0, 0, 0, 0, time.UTC)
	if d.After(start) {
		start = start.AddDate(0, 1, 0)
	}
	return start
}

// RegularDue is the last day on which the chair may decide a regular review
// begun on start (see PeriodRegularDecision). A decision on a later day is
// late.
func (r Rules) RegularDue(start time.Time) (time.Time, error) {
	return r.Periods[PeriodRegularDecision].End(start)
}

// ListYear is the year whose household list a review of kind k dated on
// decides. A periodic review (1 September – 14 December of year Y) decides
// the list of year Y+1; a regular review changes the list of the year in
// which its monthly review runs (Decision 24/2021, Art. 3 cl. 1 and Art. 5).
// A regular review is dated by the household's request (Giấy đề nghị, form
// 01 or 04), so it runs from RegularStart(on): a request filed on
// 20 December 2026 is taken up on 15 January 2027 and changes the 2027 list,
// the year its 15-day deadline falls in. A periodic review dated outside its
// window is refused with ErrOutsideWindow.
func (r Rules) ListYear(k Kind, on time.Time) (int, error) {
	switch k {
	case Periodic:
		if !r.PeriodicWindow.Contains(on) {
			return 0, fmt.Errorf("list year for %s: %w", on.Format(time.DateOnly), ErrOutsideWindow)
		}
		return on.Year() + 1, nil
	case Regular:
		return r.RegularStart(on).Year(), nil
	}
	return 0, fmt.Errorf("list year: %w %d", ErrUnknownKind, int(k))
}

// civil is t's civil date at midnight UTC, so day arithmetic ignores zones.
func civil(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
