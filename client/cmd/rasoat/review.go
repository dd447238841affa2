package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rasoat/rasoat/client"
	"github.com/rasoat/rasoat/internal/export"
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey/procedure"
)

const reviewUsage = `Usage:

  rasoat review start    [--date D] [--regular form01|form04] HOUSEHOLD_ID
  rasoat review submit   REVIEW_ID                       (collaborator)
  rasoat review meeting  --date D --attendees N --agreeing M REVIEW_ID
                                                         (village head)
  rasoat review post     REVIEW_ID                       (commune officer)
  rasoat review complaint --note TEXT REVIEW_ID          (commune officer)
  rasoat review recheck  --note TEXT [--resurvey] REVIEW_ID
                                                         (commune officer)
  rasoat review return   --note TEXT REVIEW_ID           (commune officer)
  rasoat review pass     REVIEW_ID                       (commune officer)
  rasoat review decide   --number N --date D REVIEW_ID…  (commune chair)
  rasoat review refuse   --note TEXT REVIEW_ID           (commune chair)
  rasoat review show     [--json] REVIEW_ID
  rasoat review certificate [--json] HOUSEHOLD_ID
  rasoat review decision --number N [--json | --csv | --xlsx FILE]
  rasoat review posted   [--unit CODE] [--json | --csv | --xlsx FILE]
  rasoat review list     [--state S] [--overdue] [--today D] [--meetings-by D] [--json]

Every command takes --db F, the tablet file (default tablet.db in the
working directory). None needs a network: the next rasoat sync sends the
step, and the server checks it against the review as it holds it.

Review runs a household's review (đợt rà soát) through the procedure of
Decision 24/2021/QĐ-TTg:

  draft → submitted → (village meeting) agreed → posted ⇄ rechecking
        → passed → decided (the chair's decision, form 02)

"start" opens a review in draft, dated --date (default today), in the
periodic round (rà soát định kỳ, 1 September – 14 December, deciding next
year's list), or with --regular in a regular review (rà soát thường
xuyên), started by the household's request: form01 to enter a list,
form04 to leave it. The round chooses the standard the household is scored
under. "submit" sends the survey to the village meeting.

"meeting" records the village meeting's minutes for the household: the
date, the number attending and the number agreeing with the result. When
at least 50 % agree the result stands (agreed); otherwise the household
goes back to be surveyed again (returned) and is discussed at another
meeting.

"post" posts an agreed result (niêm yết công khai); "complaint" opens a
re-check (phúc tra) of a posted result, "recheck" closes it, keeping the
result, or with --resurvey sending the household back to be surveyed.
"return" sends a review back to the collaborator with --note saying why,
and reopens a decided one (its answers are locked until then). "pass"
sends a posted review to the chair; nobody passes or decides a household
whose answers they wrote. "decide" records the chair's recognition
decision for each review named, with the seal of each household's answers
as this tablet holds them; "refuse" answers a regular review's request in
writing, with the reason.

"certificate" prints the certificate of a poor or near-poor household
(giấy chứng nhận, form 03): its members and a year-by-year grid of the
decided results, an X under each indicator the household was deprived in
that year, as the chair's decisions recorded them.

"decision" prints a recognition decision's lists (form 02): the poor,
near-poor, left-poverty and left-near-poverty households decided in it,
with a digest over every household decided, its result and seal: the same
digest on every copy of the data means the same list was decided, and any
household whose answers changed since is named.

"posted" prints the posted lists (danh sách niêm yết công khai) of the
commune or village --unit (default: every village this file holds): each
household whose review is posted or under re-check, with its provisional
result as the engine scores it now, on the list the decision would put
it on (poor, near-poor, left poverty, left near-poverty; MIDDLE and
NOT_POOR for the others), the day it was posted and, once the province
has set its complaint period (rasoat procedure set, fetched at sync), the
last day for complaints. A household posted again after a re-check shows
no posting day: this file holds only the status's last step (rasoat
history REVIEW_ID has them all).

"decision" and "posted" write --csv (standard output; UTF-8 with a
byte-order mark, Vietnamese headings, one household a row) or --xlsx FILE
(an Excel workbook: a sheet a list of form 02 and one with the digest for
a decision; the posted list on one sheet; - for standard output).

"show" prints a review's status, the step that set it and its deadlines;
"list" prints one line per review, --state keeping one status, --overdue
only those past a deadline on --today (default today): a regular review
not decided within 15 days of the monthly review it joined, a periodic
review whose village meeting has not been held by --meetings-by (the
commune's planned day). Who moved a review when, from which device, is
the server's record: rasoat history REVIEW_ID.

Exit status: 0 when written or shown; 1 when the id is unknown, a value
invalid, or the review's status does not allow the step (nothing is
written); 2 for bad usage or a file that cannot be opened.
`

func runReview(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "review", usage: reviewUsage, stdout: stdout, stderr: stderr}
	step := func(name string) sub {
		return sub{name, func(ctx context.Context, v *verb, args []string) int { return runReviewStep(ctx, v, name, args) }}
	}
	return runSub(ctx, v, args, []string{"db", "date", "regular", "attendees", "agreeing", "note", "number", "state", "today", "meetings-by", "unit", "xlsx"},
		sub{"start", runReviewStart}, step("submit"), step("meeting"), step("post"), step("complaint"), step("recheck"),
		step("return"), step("pass"), sub{"decide", runReviewDecide}, step("refuse"), sub{"show", runReviewShow},
		sub{"certificate", runReviewCertificate}, sub{"decision", runReviewDecision}, sub{"posted", runReviewPosted},
		sub{"list", runReviewList})
}

func runReviewStart(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	date := fs.String("date", time.Now().Format(time.DateOnly), "")
	regular := fs.String("regular", "", "")
	pos, code, ok := v.parse(fs, args, 1, 1, "HOUSEHOLD_ID")
	if !ok {
		return code
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	hh, err := c.ResolveID(ctx, pos[0], rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD)
	if err != nil {
		return v.fail(err)
	}
	id, err := c.StartRound(ctx, hh, client.Round{Date: *date, Regular: *regular != "", Request: *regular})
	if err != nil {
		return v.fail(err)
	}
	fmt.Fprintln(v.stdout, id)
	return exitOK
}

// runReviewStep writes one step of the procedure.
func runReviewStep(ctx context.Context, v *verb, sub string, args []string) int {
	fs, db := v.flags()
	note := fs.String("note", "", "")
	date := fs.String("date", "", "")
	attendees := fs.Int("attendees", -1, "")
	agreeing := fs.Int("agreeing", -1, "")
	resurvey := fs.Bool("resurvey", false, "")
	pos, code, ok := v.parse(fs, args, 1, 1, "REVIEW_ID")
	if !ok {
		return code
	}
	var t workflow.Transition
	needNote := func(why string) error {
		if strings.TrimSpace(*note) == "" {
			return fmt.Errorf("--note is required: %s", why)
		}
		t.Note = *note
		return nil
	}
	var err error
	switch sub {
	case "submit":
		t.State = workflow.Submitted
	case "meeting":
		switch {
		case *date == "" || *attendees < 0 || *agreeing < 0:
			err = errors.New("--date, --attendees and --agreeing are required: the minutes (biên bản họp dân) record them")
		default:
			t.Meeting = &workflow.Meeting{Date: *date, Attendees: *attendees, Agreeing: *agreeing}
			t.State = workflow.Returned
			if meetingStands(*agreeing, *attendees) {
				t.State = workflow.Agreed
			}
		}
	case "post":
		t.State = workflow.Posted
	case "complaint":
		t.State, err = workflow.Rechecking, needNote("what the complaint says")
	case "recheck":
		t.State, err = workflow.Posted, needNote("what the re-check found")
		if *resurvey {
			t.State = workflow.Returned
		}
	case "return":
		t.State, err = workflow.Returned, needNote("why the review goes back")
	case "pass":
		t.State = workflow.Passed
	case "refuse":
		t.State, err = workflow.Refused, needNote("the reason the request is refused, as the written answer gives it")
	}
	if err != nil {
		return v.usageError(err)
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	id, err := c.ResolveID(ctx, pos[0], review)
	if err != nil {
		return v.fail(err)
	}
	if err := c.Move(ctx, id, t); err != nil {
		return v.fail(err)
	}
	fmt.Fprintf(v.stdout, "%s: %s\n", id, t.State)
	return exitOK
}

func runReviewDecide(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	number := fs.String("number", "", "")
	date := fs.String("date", "", "")
	pos, code, ok := v.parse(fs, args, 1, maxDecided, "REVIEW_ID")
	if !ok {
		return code
	}
	if *number == "" || *date == "" {
		return v.usageError(errors.New("--number and --date are required: the decision's number and date (Quyết định số … ngày …)"))
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	for _, typed := range pos {
		id, err := c.ResolveID(ctx, typed, review)
		if err != nil {
			return v.fail(err)
		}
		if err := c.Decide(ctx, id, *number, *date); err != nil {
			return v.fail(err)
		}
		s, err := c.Seal(ctx, id)
		if err != nil {
			return v.fail(err)
		}
		fmt.Fprintf(v.stdout, "%s: decided in %s, seal %s\n", id, *number, s)
	}
	return exitOK
}

const review = rasoatv1.EntityKind_ENTITY_KIND_REVIEW

// maxDecided bounds the reviews one decide call names: a commune's
// decision lists a few hundred households at most, and a village's list
// goes through one shell command line.
const maxDecided = 5000

// meetingStands is the procedure's threshold (at least 50 % agreeing).
var meetingStands = procedure.Default().MeetingStands

// reviewJSON is a review as --json prints it.
type reviewJSON struct {
	ID          string         `json:"id"`
	HouseholdID string         `json:"householdId"`
	VillageCode string         `json:"villageCode"`
	Date        string         `json:"reviewDate"`
	Round       string         `json:"round"`
	Request     string         `json:"request,omitempty"`
	Status      workflow.State `json:"status"`
	Since       string         `json:"since,omitempty"`
	Note        string         `json:"note,omitempty"`
	Meeting     *meetingJSON   `json:"meeting,omitempty"`
	Decision    *decisionJSON  `json:"decision,omitempty"`
	Comment     string         `json:"comment,omitempty"`
	Conflict    bool           `json:"conflict,omitempty"`
	Due         []dueJSON      `json:"due,omitempty"`
	Overdue     bool           `json:"overdue"`
}

type meetingJSON struct {
	Date      string `json:"date"`
	Attendees int    `json:"attendees"`
	Agreeing  int    `json:"agreeing"`
}

type decisionJSON struct {
	Number string `json:"number"`
	Date   string `json:"date"`
	Seal   string `json:"seal"`
	Intact *bool  `json:"intact,omitempty"`
}

type dueJSON struct {
	What string `json:"what"`
	By   string `json:"by,omitempty"`
	Late bool   `json:"late,omitempty"`
	Open bool   `json:"open,omitempty"`
}

func toJSON(r client.Review, due []workflow.Due) reviewJSON {
	j := reviewJSON{ID: r.ID, HouseholdID: r.HouseholdID, VillageCode: r.VillageCode, Date: r.Date, Round: r.Round, Request: r.Request,
		Status: r.Status, Note: r.Step.Note, Comment: r.Comment, Conflict: r.Conflict, Overdue: workflow.Overdue(due)}
	if !r.Since.IsZero() {
		j.Since = r.Since.UTC().Format(time.RFC3339)
	}
	if m := r.Step.Meeting; m != nil {
		j.Meeting = &meetingJSON{m.Date, m.Attendees, m.Agreeing}
	}
	if d := r.Step.Decision; d != nil {
		j.Decision = &decisionJSON{Number: d.Number, Date: d.Date, Seal: d.Seal}
	}
	for _, d := range due {
		x := dueJSON{What: d.What, Late: d.Late, Open: d.Open}
		if !d.By.IsZero() {
			x.By = d.By.Format(time.DateOnly)
		}
		j.Due = append(j.Due, x)
	}
	return j
}

// dayFlag parses a YYYY-MM-DD flag value ("" is zero).
func dayFlag(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return t, fmt.Errorf("--%s %q is not a date YYYY-MM-DD", name, s)
	}
	return t, nil
}

func runReviewShow(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	asJSON := fs.Bool("json", false, "")
	todayS := fs.String("today", time.Now().Format(time.DateOnly), "")
	pos, code, ok := v.parse(fs, args, 1, 1, "REVIEW_ID")
	if !ok {
		return code
	}
	today, err := dayFlag("today", *todayS)
	if err != nil {
		return v.usageError(err)
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	id, err := c.ResolveID(ctx, pos[0], review)
	if err != nil {
		return v.fail(err)
	}
	r, err := c.Review(ctx, id)
	if err != nil {
		return v.fail(err)
	}
	due, err := c.Deadlines(ctx, r, today)
	if err != nil {
		return v.fail(err)
	}
	j := toJSON(r, due)
	if d := j.Decision; d != nil {
		intact, _, _, err := c.Sealed(ctx, r.ID)
		if err != nil {
			return v.fail(err)
		}
		d.Intact = &intact
	}
	if *asJSON {
		return writeJSONLine(v, j)
	}
	w := tabwriter.NewWriter(v.stdout, 0, 0, 2, ' ', 0)
	row := func(k, val string) { fmt.Fprintf(w, "%s\t%s\n", k, val) }
	row("review", r.ID)
	row("household", r.HouseholdID+" (village "+r.VillageCode+")")
	round := r.Round
	if r.Request != "" {
		round += ", request " + r.Request
	}
	row("round", round+", dated "+r.Date)
	status := string(r.Status) + " (" + r.Status.Vietnamese() + ")"
	if j.Since != "" {
		status += " since " + j.Since
	}
	if r.Conflict {
		status += "; moved at two places at once: the later stands"
	}
	row("status", status)
	if r.Step.Note != "" {
		row("note", r.Step.Note)
	}
	if m := r.Step.Meeting; m != nil {
		row("meeting", fmt.Sprintf("%s: %d of %d attendees agreed", m.Date, m.Agreeing, m.Attendees))
	}
	if d := j.Decision; d != nil {
		seal := "the household's answers are as decided"
		if !*d.Intact {
			seal = "the household CHANGED since the decision (its seal no longer matches)"
		}
		row("decision", fmt.Sprintf("%s of %s; %s", d.Number, d.Date, seal))
	}
	if r.Comment != "" {
		row("comment", r.Comment)
	}
	for _, d := range j.Due {
		row("due", dueText(d))
	}
	if err := w.Flush(); err != nil {
		return v.fail(err)
	}
	return exitOK
}

func dueText(d dueJSON) string {
	s := d.What
	switch {
	case d.By == "" && d.Open:
		return s + ": open, period not set by the province"
	case d.Late:
		return s + ": LATE, due by " + d.By
	case d.Open:
		return s + ": open until " + d.By
	}
	return s + ": by " + d.By
}

func writeJSONLine(v *verb, x any) int {
	b, err := json.Marshal(x)
	if err != nil {
		return v.fail(err)
	}
	fmt.Fprintf(v.stdout, "%s\n", b)
	return exitOK
}

func runReviewList(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	state := fs.String("state", "", "")
	overdue := fs.Bool("overdue", false, "")
	asJSON := fs.Bool("json", false, "")
	todayS := fs.String("today", time.Now().Format(time.DateOnly), "")
	meetingsBy := fs.String("meetings-by", "", "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	today, err := dayFlag("today", *todayS)
	if err != nil {
		return v.usageError(err)
	}
	by, err := dayFlag("meetings-by", *meetingsBy)
	if err != nil {
		return v.usageError(err)
	}
	if *state != "" && !workflow.Known(workflow.State(*state)) {
		return v.usageError(fmt.Errorf("--state %q is not a review status: want one of %s", *state, stateNames()))
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	w := tabwriter.NewWriter(v.stdout, 0, 0, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(w, "REVIEW\tHOUSEHOLD\tVILLAGE\tROUND\tDATE\tSTATUS\tDUE")
	}
	// The rules in force at each village, read before the listing
	// (Client.Rules), with --meetings-by over the commune's planned day.
	type inForce struct {
		rules procedure.Rules
		plan  workflow.Plan
	}
	villages, err := c.Villages(ctx)
	if err != nil {
		return v.fail(err)
	}
	at := map[string]inForce{}
	for _, vc := range villages {
		rules, plan, err := c.Rules(ctx, vc)
		if err != nil {
			return v.fail(err)
		}
		if !by.IsZero() {
			plan.MeetingsBy = by
		}
		at[vc] = inForce{rules, plan}
	}
	err = c.Reviews(ctx, workflow.State(*state), func(r client.Review) error {
		f, ok := at[r.VillageCode]
		if !ok {
			f = inForce{procedure.Default(), workflow.Plan{MeetingsBy: by}}
		}
		due := r.DeadlinesUnder(today, f.rules, f.plan)
		if *overdue && !workflow.Overdue(due) {
			return nil
		}
		j := toJSON(r, due)
		if *asJSON {
			b, err := json.Marshal(j)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(v.stdout, "%s\n", b)
			return err
		}
		var dues []string
		for _, d := range j.Due {
			dues = append(dues, dueText(d))
		}
		_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.HouseholdID, r.VillageCode, r.Round, r.Date, r.Status, strings.Join(dues, "; "))
		return err
	})
	if err != nil {
		return v.fail(err)
	}
	if !*asJSON {
		if err := w.Flush(); err != nil {
			return v.fail(err)
		}
	}
	return exitOK
}

func stateNames() string {
	s := make([]string, len(workflow.States))
	for i, x := range workflow.States {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

// certificateJSON is a certificate as --json prints it.
type certificateJSON struct {
	HouseholdID string            `json:"householdId"`
	Kind        string            `json:"kind"`
	HeadName    string            `json:"headName"`
	Address     string            `json:"address,omitempty"`
	VillageCode string            `json:"villageCode"`
	Members     []certMemberJSON  `json:"members"`
	Indicators  []string          `json:"indicators"`
	Years       []certificateYear `json:"years"`
}

type certMemberJSON struct {
	FullName  string `json:"fullName"`
	BirthDate string `json:"birthDate,omitempty"`
	Relation  string `json:"relation,omitempty"`
}

type certificateYear struct {
	Year     int      `json:"year"`
	Standard string   `json:"standard"`
	Result   string   `json:"result"`
	Deprived []string `json:"deprived"`
	Decision string   `json:"decision"`
	Date     string   `json:"date"`
}

func runReviewCertificate(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	asJSON := fs.Bool("json", false, "")
	pos, code, ok := v.parse(fs, args, 1, 1, "HOUSEHOLD_ID")
	if !ok {
		return code
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	hh, err := c.ResolveID(ctx, pos[0], rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD)
	if err != nil {
		return v.fail(err)
	}
	cert, err := c.Certificate(ctx, hh)
	if err != nil {
		return v.fail(err)
	}
	h := cert.Household
	j := certificateJSON{HouseholdID: h.GetId(), Kind: cert.Kind(), HeadName: h.GetHeadName(), Address: h.GetAddress(), VillageCode: h.GetVillageCode()}
	for _, m := range h.GetMembers() {
		if m.GetRemoved() != rasoatv1.Removal_REMOVAL_UNSPECIFIED {
			continue
		}
		j.Members = append(j.Members, certMemberJSON{FullName: m.GetFullName(), BirthDate: m.GetBirthDate(), Relation: strings.TrimPrefix(m.GetRelation().String(), "RELATION_")})
	}
	for _, ind := range cert.Indicators {
		j.Indicators = append(j.Indicators, ind.ID)
	}
	for _, y := range cert.Years {
		j.Years = append(j.Years, certificateYear{Year: y.Year, Standard: y.Standard, Result: y.Result, Deprived: y.Deprived, Decision: y.Number, Date: y.Date})
	}
	if *asJSON {
		return writeJSONLine(v, j)
	}
	title := "GIẤY CHỨNG NHẬN HỘ NGHÈO"
	if j.Kind == "NEAR_POOR" {
		title = "GIẤY CHỨNG NHẬN HỘ CẬN NGHÈO"
	}
	fmt.Fprintf(v.stdout, "%s (form 03, Decision 24/2021/QĐ-TTg; the form's number is provisional)\n", title)
	fmt.Fprintf(v.stdout, "Chủ hộ (head): %s, village %s", j.HeadName, j.VillageCode)
	if j.Address != "" {
		fmt.Fprintf(v.stdout, ", %s", j.Address)
	}
	fmt.Fprintf(v.stdout, "\nHousehold %s\n\nThành viên (members):\n", j.HouseholdID)
	for i, m := range j.Members {
		fmt.Fprintf(v.stdout, "  %d. %s, born %s, %s\n", i+1, m.FullName, m.BirthDate, strings.ToLower(m.Relation))
	}
	fmt.Fprintln(v.stdout, "\nKết quả rà soát (results by year; X: deprived):")
	w := tabwriter.NewWriter(v.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprint(w, "YEAR\tRESULT\tSTANDARD\tDECISION")
	for i := range j.Indicators {
		fmt.Fprintf(w, "\t%d", i+1)
	}
	fmt.Fprintln(w)
	for _, y := range j.Years {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s of %s", y.Year, y.Result, y.Standard, y.Decision, y.Date)
		for _, id := range j.Indicators {
			mark := "."
			if slices.Contains(y.Deprived, id) {
				mark = "X"
			}
			fmt.Fprintf(w, "\t%s", mark)
		}
		fmt.Fprintln(w)
	}
	if err := w.Flush(); err != nil {
		return v.fail(err)
	}
	fmt.Fprintln(v.stdout, "\nIndicators (chỉ số):")
	for i, ind := range cert.Indicators {
		fmt.Fprintf(v.stdout, "  %d. %s — %s\n", i+1, ind.ID, ind.Name)
	}
	if last := cert.Years[len(cert.Years)-1]; !last.Intact {
		fmt.Fprintf(v.stdout, "\nWARNING: the household's answers changed since decision %s: its seal no longer matches.\n", last.Number)
	}
	return exitOK
}

func runReviewDecision(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	number := fs.String("number", "", "")
	out := v.exportFlags(fs, true)
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	if *number == "" {
		return v.usageError(errors.New("--number is required: the decision's number (Quyết định số …)"))
	}
	if err := out.check(); err != nil {
		return v.usageError(err)
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	d, err := c.Decision(ctx, *number)
	if err != nil {
		return v.fail(err)
	}
	switch {
	case out.csv:
		return v.writeCSV(export.DecisionRows(d))
	case out.xlsx != "":
		return v.writeWorkbook(out.xlsx, export.DecisionSheets(d)...)
	case out.json:
		return writeJSONLine(v, d)
	}
	fmt.Fprintf(v.stdout, "Quyết định %s ngày %s (form 02)\ndigest %s\n", d.Number, d.Date, d.Digest)
	for _, list := range workflow.ListOrder {
		rows := d.Lists[list]
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(v.stdout, "\n%s (%d):\n", workflow.ListName(list), len(rows))
		for _, r := range rows {
			fmt.Fprintf(v.stdout, "  %s  village %s  %d: %s (before: %s)\n", r.HouseholdID, r.VillageCode, r.Year, r.Result, orDash(r.Before))
		}
	}
	if len(d.Changed) > 0 {
		fmt.Fprintf(v.stdout, "\nCHANGED since the decision (seal no longer matches): %s\n", strings.Join(d.Changed, ", "))
	}
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func runReviewPosted(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	unit := fs.String("unit", "", "")
	out := v.exportFlags(fs, true)
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	if err := out.check(); err != nil {
		return v.usageError(err)
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	p, err := c.Posted(ctx, client.PostedOptions{Unit: *unit})
	if err != nil {
		return v.fail(err)
	}
	switch {
	case out.csv:
		return v.writeCSV(export.Posted(p))
	case out.xlsx != "":
		return v.writeWorkbook(out.xlsx, export.Posted(p))
	case out.json:
		return writeJSONLine(v, p)
	}
	title := "mọi thôn trong tệp (every village this file holds)"
	if p.Unit != "" {
		title = "đơn vị " + p.Unit
	}
	fmt.Fprintf(v.stdout, "Danh sách niêm yết công khai — %s: %d hộ\n", title, p.Len())
	for _, list := range workflow.ListOrder {
		rows := p.Lists[list]
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(v.stdout, "\n%s (%d):\n", workflow.ListName(list), len(rows))
		w := tabwriter.NewWriter(v.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  STT\tCHỦ HỘ\tTHÔN\tKẾT QUẢ\tNĂM TRƯỚC\tTRẠNG THÁI\tNIÊM YẾT\tHẠN KHIẾU NẠI\tHỘ")
		for i, h := range rows {
			result := workflow.ResultName(h.Result)
			if h.Result == "" {
				result = "— " + h.Problem
			}
			fmt.Fprintf(w, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, h.HeadName, h.VillageCode, result, orDash(workflow.ResultName(h.Before)),
				h.Status.Vietnamese(), orDash(h.PostedOn), orDash(h.ComplaintsUntil), h.HouseholdID)
		}
		if err := w.Flush(); err != nil {
			return v.fail(err)
		}
	}
	return exitOK
}
