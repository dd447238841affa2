package client

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// workflowServer is a real server with the people of a review round:
// collaborators col1 and col1b of village 1, its head, two officers and
// the chair.
func workflowServer(t *testing.T) *authServer {
	t.Helper()
	srv := authtest.Serve(t, nil)
	v1 := authtest.Village(1)
	people := []struct {
		id   string
		role rasoatv1.Role
		unit string
	}{
		{"col1", rasoatv1.Role_ROLE_COLLABORATOR, v1},
		{"col1b", rasoatv1.Role_ROLE_COLLABORATOR, v1},
		{"head1", rasoatv1.Role_ROLE_VILLAGE_HEAD, v1},
		{"officer", rasoatv1.Role_ROLE_COMMUNE_OFFICER, authtest.Commune},
		{"officer2", rasoatv1.Role_ROLE_COMMUNE_OFFICER, authtest.Commune},
		{"chair", rasoatv1.Role_ROLE_COMMUNE_CHAIR, authtest.Commune},
	}
	var ps []directory.Person
	for _, p := range people {
		ps = append(ps, authtest.Person(p.id, []rasoatv1.Role{p.role}, p.unit))
	}
	if err := authtest.Seed(t.Context(), srv.Store, 3, ps...); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &authServer{db: srv.Store, conn: conn}
}

// device is an enrolled tablet of person.
func (s *authServer) device(t *testing.T, person string) *Client {
	t.Helper()
	c := tablet(t)
	s.enrol(t, c, person)
	return c
}

func (s *authServer) sync(t *testing.T, c *Client) SyncStats {
	t.Helper()
	st, err := c.Sync(t.Context(), s.conn)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func reviewStatus(t *testing.T, c *Client, id string) workflow.State {
	t.Helper()
	r, err := c.Review(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

// refusedOnce syncs c and returns the one change the server set aside,
// with its reason, then discards it as the collaborator would after
// reading why.
func (s *authServer) refusedOnce(t *testing.T, c *Client, reason string) RefusedChange {
	t.Helper()
	st := s.sync(t, c)
	rs, err := c.Refused(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Refused != 1 || len(rs) != 1 || rs[0].Reason != reason {
		t.Fatalf("sync set aside %d (%+v); want one change refused with %s", st.Refused, rs, reason)
	}
	if err := c.Discard(t.Context(), rs[0].Seq); err != nil {
		t.Fatal(err)
	}
	s.sync(t, c) // rebuilds what the tablet shows from the server's state
	return rs[0]
}

// TestReviewWorkflowThroughRealRPCs runs a periodic round as the law has
// it, each step on its own person's tablet through a real server: survey
// and submit; a village meeting where 40 % agree sends the household back,
// one where 60 % agree lets it stand; posting, a complaint's re-check, the
// officer passing it, the chair's decision; and the writes the workflow
// refuses, each set aside on the tablet with why.
func TestReviewWorkflowThroughRealRPCs(t *testing.T) {
	s := workflowServer(t)
	ctx := t.Context()
	col, colB, head := s.device(t, "col1"), s.device(t, "col1b"), s.device(t, "head1")
	officer, officer2, chair := s.device(t, "officer"), s.device(t, "officer2"), s.device(t, "chair")

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

	// A collaborator cannot record the meeting, even over the status the
	// server holds: the server refuses the role, the tablet shows why.
	s.sync(t, colB)
	if err := colB.Move(ctx, rv, workflow.Transition{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: "2025-10-20", Attendees: 10, Agreeing: 9}}); err != nil {
		t.Fatal(err)
	}
	if r := s.refusedOnce(t, colB, "TRANSITION_REFUSED"); !strings.Contains(r.Description, "is for village_head") {
		t.Errorf("refusal says %q; want it to name the village head's step", r.Description)
	}

	meeting := func(agreeing int) workflow.Transition {
		m := &workflow.Meeting{Date: "2025-10-20", Attendees: 40, Agreeing: agreeing}
		if agreeing*2 >= m.Attendees {
			return workflow.Transition{State: workflow.Agreed, Meeting: m}
		}
		return workflow.Transition{State: workflow.Returned, Meeting: m}
	}
	s.sync(t, head)
	if err := head.Move(ctx, rv, meeting(16)); err != nil { // 40 %
		t.Fatal(err)
	}
	s.sync(t, head)

	s.sync(t, col)
	if got := reviewStatus(t, col, rv); got != workflow.Returned {
		t.Fatalf("after a meeting where 40 %% agreed the review is %s; want returned", got)
	}
	r, _ := col.Review(ctx, rv)
	if r.Step.Meeting == nil || r.Step.Meeting.Agreeing != 16 {
		t.Errorf("the collaborator does not see the meeting's count: %+v", r.Step)
	}
	// col1b, offline from here, still holds the review as returned.
	s.sync(t, colB)

	if err := col.SetField(ctx, hh, "housing.floorAreaM2", []byte("30")); err != nil {
		t.Fatal(err)
	}
	if err := col.Submit(ctx, rv); err != nil {
		t.Fatal(err)
	}
	s.sync(t, col)
	// The officer corrects an answer before the meeting: now he wrote the
	// household's answers, and may not pass it.
	s.sync(t, officer)
	if err := officer.SetField(ctx, hh, "headName", []byte(`"Lò Văn Páo"`)); err != nil {
		t.Fatal(err)
	}
	s.sync(t, officer)
	s.sync(t, head)
	if err := head.Move(ctx, rv, meeting(24)); err != nil { // 60 %
		t.Fatal(err)
	}
	s.sync(t, head)

	s.sync(t, officer)
	for _, step := range []workflow.Transition{
		{State: workflow.Posted},
		{State: workflow.Rechecking, Note: "Hộ khiếu nại diện tích nhà"},
		{State: workflow.Posted, Note: "Phúc tra: giữ nguyên kết quả"},
	} {
		if err := officer.Move(ctx, rv, step); err != nil {
			t.Fatal(err)
		}
	}
	if err := officer.Move(ctx, rv, workflow.Transition{State: workflow.Passed}); err != nil {
		t.Fatal(err)
	}
	if r := s.refusedOnce(t, officer, "TRANSITION_REFUSED"); !strings.Contains(r.Description, "nobody approves a household they surveyed") {
		t.Errorf("refusal says %q", r.Description)
	}
	s.sync(t, officer2)
	if err := officer2.Move(ctx, rv, workflow.Transition{State: workflow.Passed}); err != nil {
		t.Fatal(err)
	}
	s.sync(t, officer2)

	s.sync(t, chair)
	// A decision recording another result than the household's, or a seal
	// of other answers, is refused: the certificate is made of it.
	seal, err := chair.Seal(ctx, rv)
	if err != nil {
		t.Fatal(err)
	}
	forged := &workflow.Decision{Number: "124/QĐ-UBND", Date: "2025-12-10", Seal: seal, Standard: "2021-2025", Result: "NOT_POOR"}
	if err := chair.Move(ctx, rv, workflow.Transition{State: workflow.Decided, Decision: forged}); err != nil {
		t.Fatal(err)
	}
	if r := s.refusedOnce(t, chair, "TRANSITION_REFUSED"); !strings.Contains(r.Description, "the decision records NOT_POOR") {
		t.Errorf("a decision with a forged result: refusal says %q", r.Description)
	}
	// A seal of other answers than the meeting agreed on is refused on the
	// chair's own tablet (and by the server: internal/workflow CheckSeal).
	forged.Seal, forged.Result = strings.Repeat("0", 64), "POOR"
	if err := chair.Move(ctx, rv, workflow.Transition{State: workflow.Decided, Decision: forged}); !errors.Is(err, ErrWorkflow) || !strings.Contains(err.Error(), "changed after the village meeting") {
		t.Errorf("a decision with a wrong seal: %v; want it refused as answers the meeting did not agree on", err)
	}
	if err := chair.Decide(ctx, rv, "125/QĐ-UBND", "2025-12-10"); err != nil {
		t.Fatal(err)
	}
	s.sync(t, chair)

	// Everyone converges on decided, with the decision's seal intact.
	for name, c := range map[string]*Client{"col1": col, "officer": officer, "chair": chair} {
		s.sync(t, c)
		if got := reviewStatus(t, c, rv); got != workflow.Decided {
			t.Errorf("%s shows the review %s; want decided", name, got)
		}
		ok, decided, now, err := c.Sealed(ctx, rv)
		if err != nil || !ok {
			t.Errorf("%s: the decided household does not match its seal (%s, now %s): %v", name, decided, now, err)
		}
	}

	// The decision's list reads the same on every tablet.
	var digests []string
	for _, c := range []*Client{col, officer, chair} {
		d, err := c.Decision(ctx, "125/QĐ-UBND")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(d.Lists["POOR"]) + len(d.Lists["NEAR_POOR"]) + len(d.Lists["NOT_POOR"]) + len(d.Lists["MIDDLE"]); n != 1 || len(d.Changed) != 0 {
			t.Errorf("decision 125/QĐ-UBND lists %v (changed %v); want the one household, unchanged", d.Lists, d.Changed)
		}
		digests = append(digests, d.Digest)
	}
	if digests[0] != digests[1] || digests[1] != digests[2] {
		t.Errorf("the decision's digest differs between tablets: %v", digests)
	}

	// col1b's stale offline submit, made over the returned status it
	// holds, is refused after the decision, and the tablet says why.
	if err := colB.Submit(ctx, rv); err != nil {
		t.Fatal(err)
	}
	if r := s.refusedOnce(t, colB, "TRANSITION_REFUSED"); !strings.Contains(r.Description, "is decided now") {
		t.Errorf("refusal says %q; want it to say the review moved on", r.Description)
	}
	if got := reviewStatus(t, colB, rv); got != workflow.Decided {
		t.Errorf("after discarding its stale submit col1b shows %s; want decided", got)
	}
	// And the household is locked: an answer written now is refused.
	if err := colB.SetField(ctx, hh, "housing.floorAreaM2", []byte("12")); err != nil {
		t.Fatal(err)
	}
	if r := s.refusedOnce(t, colB, "REVIEW_LOCKED"); !strings.Contains(r.Description, "reopen") {
		t.Errorf("refusal says %q; want it to say an officer must reopen", r.Description)
	}

	// Nor can a new periodic review for the decided year unlock it.
	if _, err := colB.StartRound(ctx, hh, Round{Date: "2025-11-01"}); err != nil {
		t.Fatal(err)
	}
	if st := s.sync(t, colB); st.Refused == 0 {
		t.Fatalf("a second periodic review for the decided 2026 list was accepted: %+v", st)
	}
	rs, err := colB.Refused(ctx)
	if err != nil || len(rs) == 0 || rs[0].Reason != "REVIEW_LOCKED" || !strings.Contains(rs[len(rs)-1].Description, "list of household") && !strings.Contains(rs[0].Description, "list of household") {
		t.Errorf("the second periodic review's refusal: %+v, %v; want REVIEW_LOCKED naming the decided list", rs, err)
	}

	// Reopening is the officer's, with a note; then the answer may change,
	// and the old decision's seal no longer matches.
	s.sync(t, officer2)
	if err := officer2.Move(ctx, rv, workflow.Transition{State: workflow.Returned, Note: "Sai diện tích nhà"}); err != nil {
		t.Fatal(err)
	}
	s.sync(t, officer2)
	s.sync(t, col)
	if err := col.SetField(ctx, hh, "housing.floorAreaM2", []byte("12")); err != nil {
		t.Fatal(err)
	}
	if st := s.sync(t, col); st.Refused != 0 {
		t.Fatalf("after reopening, the collaborator's correction was refused: %+v", st)
	}
}

// TestDecisionSealDetectsAChange: a decided household whose answer changes
// afterwards no longer matches the seal its decision records.
func TestDecisionSealDetectsAChange(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	hh, err := c.CreateHousehold(ctx, "06517-01", fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := c.StartRound(ctx, hh, Round{Date: "2025-10-05"})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []workflow.Transition{{State: workflow.Submitted},
		{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: "2025-10-20", Attendees: 10, Agreeing: 5}},
		{State: workflow.Posted}, {State: workflow.Passed}} {
		if err := c.Move(ctx, rv, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Decide(ctx, rv, "1/QĐ-UBND", "2025-12-10"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _, err := c.Sealed(ctx, rv); err != nil || !ok {
		t.Fatalf("Sealed right after deciding = %v, %v; want true", ok, err)
	}
	if err := c.SetField(ctx, hh, "housing.floorAreaM2", []byte("7.5")); err != nil {
		t.Fatal(err)
	}
	ok, decided, now, err := c.Sealed(ctx, rv)
	if err != nil || ok || decided == now {
		t.Fatalf("Sealed after changing a decided answer = %v (%s → %s), %v; want false", ok, decided, now, err)
	}
	// A step the status does not allow is refused on the tablet.
	if err := c.Move(ctx, rv, workflow.Transition{State: workflow.Submitted}); !errors.Is(err, ErrWorkflow) {
		t.Errorf("submitting a decided review: %v; want ErrWorkflow", err)
	}
}

// decideRound runs a review of hh from draft to decided on one tablet (the
// server checks who takes each step; this tablet takes them all).
func decideRound(t *testing.T, c *Client, hh, date, number string) string {
	t.Helper()
	ctx := t.Context()
	rv, err := c.StartRound(ctx, hh, Round{Date: date})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []workflow.Transition{{State: workflow.Submitted},
		{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: date, Attendees: 10, Agreeing: 5}},
		{State: workflow.Posted}, {State: workflow.Passed}} {
		if err := c.Move(ctx, rv, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Decide(ctx, rv, number, date); err != nil {
		t.Fatal(err)
	}
	return rv
}

// TestCertificateGrid: the certificate (form 03) lists a household's
// decided results year by year, with the indicators each was deprived in,
// as the decisions recorded them.
func TestCertificateGrid(t *testing.T) {
	ctx := t.Context()
	c := tablet(t)
	hh, err := c.CreateHousehold(ctx, "06517-01", fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Certificate(ctx, hh); !errors.Is(err, ErrWorkflow) {
		t.Fatalf("a certificate before any decision: %v; want ErrWorkflow", err)
	}
	// Under the line, and without a latrine.
	for path, v := range map[string]string{"income": `{"monthlyPerCapitaVnd":"1000000"}`, "waterSanitation.latrine": `"LATRINE_NONE"`} {
		if err := c.SetField(ctx, hh, path, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	decideRound(t, c, hh, "2024-10-05", "90/QĐ-UBND")
	before, _, err := c.Assess(ctx, hh)
	if err != nil {
		t.Fatal(err)
	}
	// A year later the household has a latrine: one deprivation fewer.
	if err := c.SetField(ctx, hh, "waterSanitation.latrine", []byte(`"LATRINE_FLUSH_SEPTIC"`)); err != nil {
		t.Fatal(err)
	}
	decideRound(t, c, hh, "2025-10-06", "125/QĐ-UBND")
	after, _, err := c.Assess(ctx, hh)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.Certificate(ctx, hh)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Years) != 2 || cert.Years[0].Year != 2025 || cert.Years[1].Year != 2026 {
		t.Fatalf("grid years %+v; want 2025 and 2026 (periodic reviews decide next year's list)", cert.Years)
	}
	for i, want := range []*survey.Assessment{before, after} {
		_, result, deprived := workflow.Result(want)
		if got := cert.Years[i]; got.Result != result || !slices.Equal(got.Deprived, deprived) {
			t.Errorf("row %d: %s deprived in %v; want %s in %v", got.Year, got.Result, got.Deprived, result, deprived)
		}
	}
	if slices.Contains(cert.Years[1].Deprived, "LATRINE") || !slices.Contains(cert.Years[0].Deprived, "LATRINE") {
		t.Errorf("the latrine built in 2025 does not show in the grid: %v → %v", cert.Years[0].Deprived, cert.Years[1].Deprived)
	}
	if !cert.Years[1].Intact {
		t.Error("the latest decision's household reads as changed")
	}
	if len(cert.Indicators) < 12 {
		t.Errorf("%d indicator columns; want the standard's", len(cert.Indicators))
	}
	// The second decision lists the household under its result; an answer
	// changed afterwards shows in the list as changed, and the digest,
	// made of what was decided, stays.
	d, err := c.Decision(ctx, "125/QĐ-UBND")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Lists[cert.Years[1].Result]) != 1 || len(d.Changed) != 0 || d.Digest == "" {
		t.Fatalf("decision 125/QĐ-UBND: %+v; want the household under %s", d, cert.Years[1].Result)
	}
	if err := c.SetField(ctx, hh, "housing.floorAreaM2", []byte("9")); err != nil {
		t.Fatal(err)
	}
	changed, err := c.Decision(ctx, "125/QĐ-UBND")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed.Changed, []string{hh}) || changed.Digest != d.Digest {
		t.Errorf("after changing a decided answer: changed %v, digest %s (was %s); want the household changed, the digest kept", changed.Changed, changed.Digest, d.Digest)
	}
	if _, err := c.Decision(ctx, "999/QĐ-UBND"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown decision: %v; want ErrNotFound", err)
	}
}
