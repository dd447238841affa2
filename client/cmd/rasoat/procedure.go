package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey/procedure"
)

const procedureUsage = `Usage:

  rasoat procedure show --unit CODE [--json]
  rasoat procedure set --unit CODE [--posting DAYS] [--complaints DAYS]
        [--recheck DAYS] [--working-days] [--source TEXT]
        [--meetings-by YYYY-MM-DD]

  (each also takes --db F, --server HOST:PORT, --ca FILE or --tls, --timeout D)

Procedure is what the texts leave to the province and the commune (quy
định của tỉnh, kế hoạch của xã): how long results stay posted (niêm yết),
how long complaints are received (khiếu nại) and how long a re-check takes
(phúc tra) — no national text available to us fixes these — and the day by
which the commune plans to hold its village meetings (họp dân) in the
periodic round. Tablets fetch them at each sync; rasoat review list
--overdue reads them offline.

"show" prints the settings in force at a unit (a village, a commune or the
province): each period with the unit that set it and the text it cites.

"set" replaces the unit's own settings with those given (a setting left
out is cleared at that unit; a unit below or above keeps its own). For a
commune officer of the unit or of a unit above it (a province's officer
sets the province's periods), or an admin. --source cites the province's
text and is required with a period; --working-days counts the periods in
working days (ngày làm việc) rather than calendar days.

Exit status: 0 when done; 1 when the server refused a setting (named);
2 for bad usage, a file that cannot be opened, a device not enrolled or not
allowed, or a server that cannot be reached.
`

func runProcedure(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "procedure", usage: procedureUsage, stdout: stdout, stderr: stderr}
	return runSub(ctx, v, args, []string{"db", "server", "ca", "timeout", "unit", "posting", "complaints", "recheck", "source", "meetings-by"},
		sub{"show", runProcedureShow}, sub{"set", runProcedureSet})
}

func runProcedureShow(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	unit := fs.String("unit", "", "")
	asJSON := fs.Bool("json", false, "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	if *unit == "" {
		return v.usageError(errors.New("--unit is required"))
	}
	if err := nf.check(); err != nil {
		return v.usageError(err)
	}
	cl, code := v.dialFile(ctx, nf, *db, false)
	if cl == nil {
		return code
	}
	defer cl.close()
	actx, err := cl.authed()
	if err != nil {
		return v.fail(err)
	}
	res, err := rasoatv1.NewProcedureServiceClient(cl.conn).Procedure(actx, &rasoatv1.ProcedureRequest{UnitCodes: []string{*unit}})
	if err != nil {
		return cl.fail(err, nil)
	}
	if len(res.GetUnits()) != 1 {
		return v.fail(fmt.Errorf("the server answered %d units for one asked", len(res.GetUnits())))
	}
	u := res.GetUnits()[0]
	if *asJSON {
		return writeJSONLine(v, procedureJSONOf(u))
	}
	writeProcedure(v.stdout, u)
	return exitOK
}

type periodJSON struct {
	ID          string `json:"id"`
	Days        int32  `json:"days"`
	WorkingDays bool   `json:"working_days"`
	Source      string `json:"source"`
	SetBy       string `json:"set_by"`
}

type procedureJSON struct {
	Unit       string       `json:"unit"`
	Periods    []periodJSON `json:"periods"`
	Unset      []string     `json:"unset"`
	MeetingsBy string       `json:"meetings_by,omitempty"`
}

func procedureJSONOf(u *rasoatv1.UnitProcedure) procedureJSON {
	j := procedureJSON{Unit: u.GetUnitCode(), Periods: []periodJSON{}, Unset: nonNil(u.GetUnset()), MeetingsBy: u.GetSettings().GetMeetingsBy()}
	for _, p := range u.GetSettings().GetPeriods() {
		j.Periods = append(j.Periods, periodJSON{p.GetId(), p.GetDays(), p.GetWorkingDays(), p.GetSource(), p.GetSetBy()})
	}
	return j
}

// writeProcedure prints a unit's settings, each period in the national
// rules' order with its Vietnamese name.
func writeProcedure(w io.Writer, u *rasoatv1.UnitProcedure) {
	fmt.Fprintf(w, "unit %s\n", u.GetUnitCode())
	national := procedure.Default().Periods
	for _, id := range workflow.Settable {
		name := national[id].Name
		var p *rasoatv1.ProcedurePeriod
		for _, q := range u.GetSettings().GetPeriods() {
			if q.GetId() == string(id) {
				p = q
			}
		}
		if p == nil {
			fmt.Fprintf(w, "  %-10s %s: not set (no national text fixes it; the province sets it)\n", id, name)
			continue
		}
		kind := "calendar days"
		if p.GetWorkingDays() {
			kind = "working days"
		}
		fmt.Fprintf(w, "  %-10s %s: %d %s, set by %s: %s\n", id, name, p.GetDays(), kind, p.GetSetBy(), p.GetSource())
	}
	if d := u.GetSettings().GetMeetingsBy(); d != "" {
		fmt.Fprintf(w, "  village meetings (họp dân) by %s\n", d)
	} else {
		fmt.Fprintln(w, "  village meetings (họp dân): no day planned")
	}
}

func runProcedureSet(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	unit := fs.String("unit", "", "")
	days := map[procedure.PeriodID]*string{}
	for _, id := range workflow.Settable {
		days[id] = fs.String(string(id), "", "")
	}
	working := fs.Bool("working-days", false, "")
	source := fs.String("source", "", "")
	meetingsBy := fs.String("meetings-by", "", "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	if *unit == "" {
		return v.usageError(errors.New("--unit is required"))
	}
	if err := nf.check(); err != nil {
		return v.usageError(err)
	}
	set := &rasoatv1.ProcedureSettings{MeetingsBy: *meetingsBy}
	for _, id := range workflow.Settable {
		s := *days[id]
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return v.usageError(fmt.Errorf("--%s %q: want a number of days", id, s))
		}
		set.Periods = append(set.Periods, &rasoatv1.ProcedurePeriod{Id: string(id), Days: int32(min(max(n, -1), workflow.MaxPeriodDays+1)), WorkingDays: *working, Source: *source})
	}
	cl, code := v.dialFile(ctx, nf, *db, false)
	if cl == nil {
		return code
	}
	defer cl.close()
	actx, err := cl.authed()
	if err != nil {
		return v.fail(err)
	}
	api := rasoatv1.NewProcedureServiceClient(cl.conn)
	if _, err := api.SetProcedure(actx, &rasoatv1.SetProcedureRequest{UnitCode: *unit, Settings: set}); err != nil {
		return cl.fail(err, procedureFlag)
	}
	// Stored: what follows only shows it. A read refused or odd says so
	// and still exits 0, since the setting was taken.
	res, err := api.Procedure(actx, &rasoatv1.ProcedureRequest{UnitCodes: []string{*unit}})
	if err != nil || len(res.GetUnits()) != 1 {
		fmt.Fprintf(v.stdout, "set: unit %s (the settings in force could not be read back: %v)\n", *unit, err)
		return exitOK
	}
	writeProcedure(v.stdout, res.GetUnits()[0])
	return exitOK
}

// procedureFlag names the flag behind a refused request field.
func procedureFlag(field string) string {
	switch {
	case strings.HasSuffix(field, ".source"):
		return "--source"
	case strings.HasSuffix(field, ".days"):
		return "the period's days"
	case field == "settings.meetings_by":
		return "--meetings-by"
	case field == "unit_code":
		return "--unit"
	}
	return field
}
