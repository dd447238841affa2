package client

import (
	"slices"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
)

// TestPostedListThroughRealRPCs: the posted list (niêm yết công khai) an
// officer's tablet makes after a round went through a real server, each
// step by its own person: a poor household posted, a near-poor one under
// a complaint's re-check, one posted again after its re-check, one decided
// poor the year before and now above the line (left poverty), and one still
// at the village meeting (not posted: not listed); the last day for
// complaints once the province has set the period on the server.
func TestPostedListThroughRealRPCs(t *testing.T) {
	s := workflowServer(t)
	ctx := t.Context()
	col, head, officer, officer2, chair := s.device(t, "col1"), s.device(t, "head1"), s.device(t, "officer"), s.device(t, "officer2"), s.device(t, "chair")
	v1 := authtest.Village(1)

	// Incomes per person a month, and a latrine or none: under the rural
	// line of 1,500,000 VND with the deprivations fullHousehold has, or
	// above it (Decree 07/2021).
	household := func(head string, income int64, latrine rasoatv1.Latrine) string {
		t.Helper()
		h := fullHousehold(2)
		h.HeadName = head
		// Each roster its own people: the same name and birth date on two
		// rosters is a quality flag (DUPLICATE_PERSON) that stops the
		// chair's decision until acknowledged.
		h.Members[0].FullName, h.Members[1].FullName = head, head+" (con)"
		h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: income}}
		h.WaterSanitation.Latrine = latrine
		id, err := col.CreateHousehold(ctx, v1, h)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	poor := household("Lò Văn Páo", 1_000_000, rasoatv1.Latrine_LATRINE_NONE)
	rechecking := household("Vi Thị Mai", 1_400_000, rasoatv1.Latrine_LATRINE_DOUBLE_VAULT)
	reposted := household("Hà Văn Tùng", 1_200_000, rasoatv1.Latrine_LATRINE_NONE)
	leaving := household("Nông Thị Hoa", 1_000_000, rasoatv1.Latrine_LATRINE_NONE)
	meeting := household("Lường Văn Sơn", 1_000_000, rasoatv1.Latrine_LATRINE_NONE)

	// round takes reviews through the steps, each on its person's tablet.
	start := func(hh, date string) string {
		t.Helper()
		rv, err := col.StartRound(ctx, hh, Round{Date: date})
		if err != nil {
			t.Fatal(err)
		}
		if err := col.Submit(ctx, rv); err != nil {
			t.Fatal(err)
		}
		return rv
	}
	move := func(c *Client, rv string, ts ...workflow.Transition) {
		t.Helper()
		for _, tr := range ts {
			if err := c.Move(ctx, rv, tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	agreed := workflow.Transition{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: "2025-10-20", Attendees: 30, Agreeing: 25}}
	posted := workflow.Transition{State: workflow.Posted}

	// The year before: the leaving household decided poor for 2025.
	old := start(leaving, "2024-10-07")
	s.sync(t, col)
	s.sync(t, head)
	move(head, old, agreed)
	s.sync(t, head)
	s.sync(t, officer)
	move(officer, old, posted, workflow.Transition{State: workflow.Passed})
	s.sync(t, officer)
	s.sync(t, chair)
	if err := chair.Decide(ctx, old, "98/QĐ-UBND", "2024-12-10"); err != nil {
		t.Fatal(err)
	}
	s.sync(t, chair)
	s.sync(t, col)

	// This year: the leaving household now earns over the line.
	rvs := map[string]string{}
	for _, hh := range []string{poor, rechecking, reposted, leaving, meeting} {
		rvs[hh] = start(hh, "2025-10-06")
	}
	if err := col.SetField(ctx, leaving, "income", []byte(`{"monthlyPerCapitaVnd":"2600000"}`)); err != nil {
		t.Fatal(err)
	}
	s.sync(t, col)
	s.sync(t, head)
	for _, hh := range []string{poor, rechecking, reposted, leaving} {
		move(head, rvs[hh], agreed)
	}
	s.sync(t, head)
	s.sync(t, officer)
	for _, hh := range []string{poor, rechecking, reposted, leaving} {
		move(officer, rvs[hh], posted)
	}
	move(officer, rvs[rechecking], workflow.Transition{State: workflow.Rechecking, Note: "Hộ khiếu nại: nhà tiêu đã xây"})
	move(officer, rvs[reposted], workflow.Transition{State: workflow.Rechecking, Note: "Khiếu nại thu nhập"},
		workflow.Transition{State: workflow.Posted, Note: "Phúc tra: giữ nguyên kết quả"})
	s.sync(t, officer)
	s.sync(t, officer2) // another officer's tablet, holding only what the server sent
	postedOn := time.Now().In(time.FixedZone("ICT", 7*3600)).Format(time.DateOnly)

	// The results the engine gives now, each household scored on its own
	// through the tablet's Assess (not the list's code), and the list
	// each goes on as form 02 groups them.
	result := func(hh string) string {
		a, _, err := officer2.Assess(ctx, hh)
		if err != nil {
			t.Fatal(err)
		}
		_, r, _ := workflow.Result(a)
		return r
	}
	if got := result(poor); got != "POOR" {
		t.Fatalf("the poor household scores %s; the test's households are not what it means", got)
	}
	if got := result(rechecking); got != "NEAR_POOR" {
		t.Fatalf("the near-poor household scores %s", got)
	}
	if got := result(leaving); got != "NOT_POOR" && got != "MIDDLE" {
		t.Fatalf("the leaving household scores %s", got)
	}

	// Before the province sets the complaint period, no last day shows.
	p, err := officer2.Posted(ctx, PostedOptions{Unit: v1})
	if err != nil {
		t.Fatal(err)
	}
	if x := p.Lists[workflow.ListPoor][0]; x.PostedOn != postedOn || x.ComplaintsUntil != "" {
		t.Errorf("national rules: posted %q, complaints until %q; want %s and none", x.PostedOn, x.ComplaintsUntil, postedOn)
	}
	// The province's officer sets it on the server; the tablet has it at
	// its next sync.
	if _, _, err := s.db.PutPeople(ctx, []directory.Person{authtest.Person("province-officer", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}, authtest.Province)}); err != nil {
		t.Fatal(err)
	}
	prov := s.device(t, "province-officer")
	pctx, err := prov.WithToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rasoatv1.NewProcedureServiceClient(s.conn).SetProcedure(pctx, &rasoatv1.SetProcedureRequest{UnitCode: authtest.Province, Settings: &rasoatv1.ProcedureSettings{
		Periods: []*rasoatv1.ProcedurePeriod{{Id: "complaints", Days: 10, WorkingDays: true, Source: "Quyết định 1/QĐ-UBND tỉnh, Điều 3"}}}}); err != nil {
		t.Fatal(err)
	}
	s.sync(t, officer2)
	// Ten working days after the posting day, counted here.
	day, _ := time.Parse(time.DateOnly, postedOn)
	for n := 0; n < 10; {
		day = day.AddDate(0, 0, 1)
		if day.Weekday() != time.Saturday && day.Weekday() != time.Sunday {
			n++
		}
	}
	until := day.Format(time.DateOnly)

	p, err = officer2.Posted(ctx, PostedOptions{Unit: authtest.Commune})
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		list, hh, head, result, before string
		status                         workflow.State
		postedOn, until                string
	}
	var got []line
	for _, list := range workflow.ListOrder {
		for _, x := range p.Lists[list] {
			got = append(got, line{list, x.HouseholdID, x.HeadName, x.Result, x.Before, x.Status, x.PostedOn, x.ComplaintsUntil})
			if x.Year != 2026 || x.ReviewID != rvs[x.HouseholdID] || x.VillageCode != v1 || x.Since != postedOn {
				t.Errorf("%s: year %d, review %s, village %s, since %s; want 2026, %s, %s, %s", x.HeadName, x.Year, x.ReviewID, x.VillageCode, x.Since, rvs[x.HouseholdID], v1, postedOn)
			}
		}
	}
	want := []line{
		{workflow.ListPoor, poor, "Lò Văn Páo", "POOR", "", workflow.Posted, postedOn, until},
		{workflow.ListPoor, reposted, "Hà Văn Tùng", result(reposted), "", workflow.Posted, "", ""},
		{workflow.ListNearPoor, rechecking, "Vi Thị Mai", "NEAR_POOR", "", workflow.Rechecking, "", ""},
		{workflow.ListLeftPoverty, leaving, "Nông Thị Hoa", result(leaving), "POOR", workflow.Posted, postedOn, until},
	}
	if want[1].result != "POOR" {
		t.Fatalf("the re-posted household scores %s; want POOR", want[1].result)
	}
	slices.SortStableFunc(want, func(a, b line) int {
		return slices.Index(workflow.ListOrder, a.list) - slices.Index(workflow.ListOrder, b.list)
	})
	// Within a list, review (creation) order: poor's review was started
	// before reposted's.
	if !slices.Equal(got, want) {
		t.Errorf("posted list:\n got %+v\nwant %+v", got, want)
	}
	if p.Len() != 4 {
		t.Errorf("Len = %d; want 4 (the household at its meeting is not posted)", p.Len())
	}

	// Another commune's list is empty.
	if p, err := officer2.Posted(ctx, PostedOptions{Unit: "06518"}); err != nil || p.Len() != 0 {
		t.Errorf("another commune's posted list: %d households, %v; want none", p.Len(), err)
	}
}

func TestInUnit(t *testing.T) {
	for _, c := range []struct {
		village, unit string
		want          bool
	}{
		{"06517-01", "", true},
		{"06517-01", "06517", true},
		{"06517-01", "06517-01", true},
		{"06517-01", "06517-02", false},
		{"065170-01", "06517", false}, // another commune whose code begins the same
	} {
		if got := inUnit(c.village, c.unit); got != c.want {
			t.Errorf("inUnit(%q, %q) = %v; want %v", c.village, c.unit, got, c.want)
		}
	}
}
