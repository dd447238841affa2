package client

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/rpcerr"
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The periods no national text fixes are the province's to set, and the
// meetings day is the commune's plan: set once on the server, they reach
// every tablet at its next sync, and its deadlines read them offline.
func TestProcedureSettingsReachTheTabletsDeadlines(t *testing.T) {
	s := workflowServer(t)
	ctx := t.Context()
	if _, _, err := s.db.PutPeople(ctx, []directory.Person{authtest.Person("province-officer", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}, authtest.Province)}); err != nil {
		t.Fatal(err)
	}
	col, head, off, prov := s.device(t, "col1"), s.device(t, "head1"), s.device(t, "officer"), s.device(t, "province-officer")
	api := rasoatv1.NewProcedureServiceClient(s.conn)
	set := func(c *Client, unit string, st *rasoatv1.ProcedureSettings) error {
		t.Helper()
		cctx, err := c.WithToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = api.SetProcedure(cctx, &rasoatv1.SetProcedureRequest{UnitCode: unit, Settings: st})
		return err
	}
	posting := &rasoatv1.ProcedurePeriod{Id: "posting", Days: 3, WorkingDays: true, Source: "Quyết định 1/QĐ-UBND tỉnh, Điều 2"}
	if err := set(prov, authtest.Province, &rasoatv1.ProcedureSettings{Periods: []*rasoatv1.ProcedurePeriod{posting}}); err != nil {
		t.Fatalf("the province's officer sets the province's posting period: %v", err)
	}
	if err := set(off, authtest.Commune, &rasoatv1.ProcedureSettings{MeetingsBy: "2025-10-25"}); err != nil {
		t.Fatalf("the commune's officer plans its meetings: %v", err)
	}
	for _, tc := range []struct {
		name   string
		c      *Client
		unit   string
		st     *rasoatv1.ProcedureSettings
		code   codes.Code
		field  string
		reason rasoatv1.ErrorReason
	}{
		{"a commune officer does not set the province's periods", off, authtest.Province, &rasoatv1.ProcedureSettings{Periods: []*rasoatv1.ProcedurePeriod{posting}}, codes.PermissionDenied, "", rasoatv1.ErrorReason_ROLE_DENIED},
		{"a collaborator sets nothing", col, authtest.Commune, &rasoatv1.ProcedureSettings{MeetingsBy: "2025-10-01"}, codes.PermissionDenied, "", rasoatv1.ErrorReason_ROLE_DENIED},
		{"a commune does not set periods of its own", off, authtest.Commune, &rasoatv1.ProcedureSettings{Periods: []*rasoatv1.ProcedurePeriod{posting}}, codes.InvalidArgument, "settings.periods", rasoatv1.ErrorReason_INVALID_FIELD},
		{"the meetings day is a commune's, not the province's", prov, authtest.Province, &rasoatv1.ProcedureSettings{MeetingsBy: "2025-10-01"}, codes.InvalidArgument, "settings.meetings_by", rasoatv1.ErrorReason_INVALID_FIELD},
		{"a period has a length", prov, authtest.Province, &rasoatv1.ProcedureSettings{Periods: []*rasoatv1.ProcedurePeriod{{Id: "posting", Days: 0, Source: "x"}}}, codes.InvalidArgument, "settings.periods[0].days", rasoatv1.ErrorReason_INVALID_FIELD},
		{"the national 15 days are not a province's to change", prov, authtest.Province, &rasoatv1.ProcedureSettings{Periods: []*rasoatv1.ProcedurePeriod{{Id: "regular-decision", Days: 30, Source: "x"}}}, codes.InvalidArgument, "settings.periods[0].id", rasoatv1.ErrorReason_INVALID_FIELD},
		{"a period cites its text", prov, authtest.Province, &rasoatv1.ProcedureSettings{Periods: []*rasoatv1.ProcedurePeriod{{Id: "recheck", Days: 5}}}, codes.InvalidArgument, "settings.periods[0].source", rasoatv1.ErrorReason_INVALID_FIELD},
		{"a citation is bounded", prov, authtest.Province, &rasoatv1.ProcedureSettings{Periods: []*rasoatv1.ProcedurePeriod{{Id: "recheck", Days: 5, Source: strings.Repeat("x", workflow.MaxPeriodSource+1)}}}, codes.InvalidArgument, "settings.periods[0].source", rasoatv1.ErrorReason_INVALID_FIELD},
		{"a planned day is a date", off, authtest.Commune, &rasoatv1.ProcedureSettings{MeetingsBy: "25/10/2025"}, codes.InvalidArgument, "settings.meetings_by", rasoatv1.ErrorReason_INVALID_FIELD},
		{"a unit code is bounded", off, strings.Repeat("9", 65), &rasoatv1.ProcedureSettings{}, codes.InvalidArgument, "unit_code", rasoatv1.ErrorReason_TOO_LARGE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := set(tc.c, tc.unit, tc.st)
			if status.Code(err) != tc.code || rpcerr.Reason(err) != tc.reason {
				t.Fatalf("got %v (%s); want %s with %s", err, rpcerr.Reason(err), tc.code, tc.reason)
			}
			if tc.field != "" && !strings.Contains(status.Convert(err).Message(), tc.field) {
				t.Fatalf("%v does not name %s", err, tc.field)
			}
		})
	}

	// A household posted on Monday 3 November 2025, and another still
	// submitted on the planned meetings day.
	hh, err := col.CreateHousehold(ctx, authtest.Village(1), fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := col.StartRound(ctx, hh, Round{Date: "2025-10-05"})
	if err != nil {
		t.Fatal(err)
	}
	hh2, err := col.CreateHousehold(ctx, authtest.Village(1), fullHousehold(2))
	if err != nil {
		t.Fatal(err)
	}
	rv2, err := col.StartRound(ctx, hh2, Round{Date: "2025-10-05"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{rv, rv2} {
		if err := col.Submit(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	s.sync(t, col)
	s.sync(t, head)
	if err := head.Move(ctx, rv, workflow.Transition{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: "2025-10-20", Attendees: 10, Agreeing: 8}}); err != nil {
		t.Fatal(err)
	}
	s.sync(t, head)
	s.sync(t, off)
	if err := off.Move(ctx, rv, workflow.Transition{State: workflow.Posted}); err != nil {
		t.Fatal(err)
	}
	s.sync(t, off)
	s.sync(t, col)

	got, err := col.Procedure(ctx, authtest.Village(1))
	if err != nil || got == nil {
		t.Fatalf("the tablet kept no settings for its village: %v", err)
	}
	if len(got.GetPeriods()) != 1 || got.GetPeriods()[0].GetSetBy() != authtest.Province || got.GetMeetingsBy() != "2025-10-25" {
		t.Fatalf("settings in force at the village: %v; want the province's posting period and the commune's meetings day", got)
	}
	r, err := col.Review(ctx, rv)
	if err != nil {
		t.Fatal(err)
	}
	// Posted when the officer's change was stamped: the period counts
	// three working days from that day, the day in Vietnam (from 17:00
	// UTC the next one).
	since := r.Since.In(workflow.Vietnam)
	want, _ := workflow.Apply(got)
	end, err := want.Periods["posting"].End(since)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := col.Deadlines(ctx, r, end.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Open || ds[0].By.Format(time.DateOnly) != end.Format(time.DateOnly) {
		t.Fatalf("posting deadline the day after its end: %+v; want closed on %s", ds, end.Format(time.DateOnly))
	}
	r2, err := col.Review(ctx, rv2)
	if err != nil {
		t.Fatal(err)
	}
	late, err := col.Deadlines(ctx, r2, time.Date(2025, 10, 26, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if !workflow.Overdue(late) {
		t.Fatalf("a review with no meeting the day after the commune's planned day: %+v; want late", late)
	}
	onTime, _ := col.Deadlines(ctx, r2, time.Date(2025, 10, 25, 0, 0, 0, 0, time.UTC))
	if workflow.Overdue(onTime) {
		t.Fatalf("on the planned day itself: %+v; want not late", onTime)
	}

	// Cleared, the settings leave the tablet at its next sync.
	if err := set(off, authtest.Commune, &rasoatv1.ProcedureSettings{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t, col)
	if got, _ := col.Procedure(ctx, authtest.Village(1)); got.GetMeetingsBy() != "" || len(got.GetPeriods()) != 1 {
		t.Fatalf("after the commune cleared its plan: %v", got)
	}

	// A tablet that holds no village before it syncs (a first sync that
	// replays the log) is asked for the settings while it pulls, of no
	// village, and gets those of the villages the pull brought.
	fresh := s.device(t, "officer")
	if _, err := fresh.Sync(ctx, s.conn, WithoutSnapshot()); err != nil {
		t.Fatal(err)
	}
	if got, err := fresh.Procedure(ctx, authtest.Village(1)); err != nil || got == nil || len(got.GetPeriods()) != 1 {
		t.Fatalf("a first sync replaying the log kept the settings %v, %v; want the province's period", got, err)
	}
}

// TestVillagesAreTheFilesOwnSorted: Villages lists each village the file
// holds an entity of, once, in order, whatever the order they came in.
func TestVillagesAreTheFilesOwnSorted(t *testing.T) {
	ctx := t.Context()
	c := tablet(t)
	if got, err := c.Villages(ctx); err != nil || len(got) != 0 {
		t.Fatalf("an empty file's villages: %v, %v", got, err)
	}
	for _, v := range []int{3, 1, 3, 2, 1} {
		if _, err := c.CreateHousehold(ctx, authtest.Village(v), fullHousehold(v)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{authtest.Village(1), authtest.Village(2), authtest.Village(3)}
	if got, err := c.Villages(ctx); err != nil || !slices.Equal(got, want) {
		t.Fatalf("Villages = %v, %v; want %v", got, err, want)
	}
}

// TestFileOfSchemaV3OpensAndKeepsProcedure: a file written at schema 3
// (before procedure settings were kept) migrates, holds what it held,
// syncs its household and review, and keeps the settings it fetches.
func TestFileOfSchemaV3OpensAndKeepsProcedure(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v3.db")
	copyFile(t, filepath.Join("testdata", "v3.db"), path)
	c := open(t, path)
	if n, _ := c.Pending(ctx); n == 0 {
		t.Fatal("the v3 file's household and review are not pending")
	}
	if got, err := c.Procedure(ctx, authtest.Village(1)); err != nil || got != nil {
		t.Fatalf("settings of a file that never fetched any: %v, %v", got, err)
	}
	s := workflowServer(t)
	s.enrol(t, c, "col1")
	if st := s.sync(t, c); st.Refused != 0 || st.Pushed == 0 {
		t.Fatalf("the v3 file's changes: %+v", st)
	}
	if got, err := c.Procedure(ctx, authtest.Village(1)); err != nil || got == nil {
		t.Fatalf("no settings kept after a sync: %v, %v", got, err)
	}
}
