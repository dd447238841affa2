package client

import (
	"strings"
	"testing"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/quality"
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// qualityServer is a real server with a round's people in two villages:
// col1 and head1 of village 1, col2 of village 2, the officer and the
// chair of the commune.
func qualityServer(t *testing.T) *authServer {
	t.Helper()
	srv := authtest.Serve(t, nil)
	v1, v2 := authtest.Village(1), authtest.Village(2)
	ps := []directory.Person{
		authtest.Person("col1", []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR}, v1),
		authtest.Person("col2", []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR}, v2),
		authtest.Person("head1", []rasoatv1.Role{rasoatv1.Role_ROLE_VILLAGE_HEAD}, v1),
		authtest.Person("officer", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}, authtest.Commune),
		authtest.Person("officer2", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}, authtest.Commune),
		authtest.Person("chair", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_CHAIR}, authtest.Commune),
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

// flagsOf asks the QualityService for unit's flags as the person whose
// tablet c is, by household.
func (s *authServer) flagsOf(t *testing.T, c *Client, unit string) (map[string]map[string]*rasoatv1.QualityFlag, *rasoatv1.FlagsResponse) {
	t.Helper()
	ctx, err := c.WithToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	res, err := rasoatv1.NewQualityServiceClient(s.conn).Flags(ctx, &rasoatv1.FlagsRequest{UnitCode: unit})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]*rasoatv1.QualityFlag{}
	for _, h := range res.GetHouseholds() {
		out[h.GetHouseholdId()] = map[string]*rasoatv1.QualityFlag{}
		for _, f := range h.GetFlags() {
			out[h.GetHouseholdId()][f.GetCode()] = f
		}
	}
	return out, res
}

// TestQualityFlagsStopTheDecisionUntilAcknowledged runs a round through
// a real server over a household whose roster has a child older than the
// head, and a member who is on another village's roster too: the chair's
// decision is refused (QUALITY_UNACKNOWLEDGED) and the tablet says which
// flags; acknowledgements by the collaborator, by the chair who decides and
// by an officer who corrected the household's answers are refused; once
// an officer acknowledges each with a comment and syncs, the decision is
// taken. The listing shows the flags, the acknowledgements and the
// counts, a village head does not see the other village's household, and
// a decided household leaves the listing.
func TestQualityFlagsStopTheDecisionUntilAcknowledged(t *testing.T) {
	s := qualityServer(t)
	ctx := t.Context()
	col, col2, head := s.device(t, "col1"), s.device(t, "col2"), s.device(t, "head1")
	officer, chair := s.device(t, "officer"), s.device(t, "chair")

	a := fullHousehold(3)
	a.Members[1].FullName = "Lò Thị Dung"
	a.Members[2].FullName, a.Members[2].BirthDate, a.Members[2].InSchool = "Lò Văn Cả", "1975-01-01", ptr(false)
	hhA, err := col.CreateHousehold(ctx, authtest.Village(1), a)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := col.StartRound(ctx, hhA, Round{Date: "2025-10-05"})
	if err != nil {
		t.Fatal(err)
	}
	if err := col.Submit(ctx, rv); err != nil {
		t.Fatal(err)
	}
	s.sync(t, col)

	// The same girl, typed without tone marks, in village 2.
	b := fullHousehold(2)
	b.Members[0].FullName = "Vi Văn Tuấn"
	b.Members[1].FullName = "Lo Thi Dung"
	hhB, err := col2.CreateHousehold(ctx, authtest.Village(2), b)
	if err != nil {
		t.Fatal(err)
	}
	s.sync(t, col2)

	flags, res := s.flagsOf(t, officer, authtest.Commune)
	if got := flags[hhA]; got[string(quality.ChildOlderThanParent)] == nil || got[string(quality.DuplicatePerson)] == nil || len(got) != 2 {
		t.Fatalf("household A's flags: %v; want CHILD_OLDER_THAN_PARENT and DUPLICATE_PERSON", got)
	}
	if d := flags[hhA][string(quality.DuplicatePerson)].GetDetail(); !strings.Contains(d, hhB) || b.GetHeadName() == "" || !strings.Contains(d, b.GetHeadName()) {
		t.Errorf("the officer's duplicate flag says %q; want it to name household %s (in the commune) and its head %q", d, hhB, b.GetHeadName())
	}
	if got := flags[hhB]; got[string(quality.DuplicatePerson)] == nil || len(got) != 1 {
		t.Errorf("household B's flags: %v; want DUPLICATE_PERSON", got)
	}
	if len(res.GetByVillage()) != 2 || res.GetByVillage()[0].GetUnacknowledged() != 2 || res.GetByVillage()[1].GetUnacknowledged() != 1 {
		t.Errorf("counts by village: %v", res.GetByVillage())
	}
	// The village head sees the flag, not the other village's household.
	s.sync(t, head)
	hf, _ := s.flagsOf(t, head, authtest.Village(1))
	if d := hf[hhA][string(quality.DuplicatePerson)].GetDetail(); d == "" || strings.Contains(d, hhB) || strings.Contains(d, b.GetHeadName()) {
		t.Errorf("the village head's duplicate flag says %q; want it without household %s of village 2 and its head", d, hhB)
	}

	// A second officer corrects an answer before the meeting: the
	// household's answers are now partly hers.
	officer2 := s.device(t, "officer2")
	s.sync(t, officer2)
	if err := officer2.SetField(ctx, hhA, "headName", []byte(`"Lò Văn Páo"`)); err != nil {
		t.Fatal(err)
	}
	s.sync(t, officer2)
	s.sync(t, head)
	if err := head.Move(ctx, rv, workflow.Transition{State: workflow.Agreed, Meeting: &workflow.Meeting{Date: "2025-10-28", Attendees: 40, Agreeing: 31}}); err != nil {
		t.Fatal(err)
	}
	s.sync(t, head)
	s.sync(t, officer)
	for _, st := range []workflow.Transition{{State: workflow.Posted}, {State: workflow.Passed}} {
		if err := officer.Move(ctx, rv, st); err != nil {
			t.Fatal(err)
		}
	}
	s.sync(t, officer)

	s.sync(t, chair)
	if err := chair.Decide(ctx, rv, "125/QĐ-UBND", "2025-12-10"); err != nil {
		t.Fatal(err)
	}
	r := s.refusedOnce(t, chair, "QUALITY_UNACKNOWLEDGED")
	t.Logf("the chair's tablet sets the decision aside: %s", r.Description)
	for _, code := range []quality.Code{quality.ChildOlderThanParent, quality.DuplicatePerson} {
		if !strings.Contains(r.Description, string(code)) {
			t.Errorf("the refusal says %q; want it to name %s", r.Description, code)
		}
	}
	if got := reviewStatus(t, chair, rv); got != workflow.Passed {
		t.Fatalf("after the refusal the chair's tablet shows %s; want passed", got)
	}

	// The collaborator who surveyed cannot clear a flag on her own work.
	s.sync(t, col)
	if _, err := col.Acknowledge(ctx, hhA, quality.ChildOlderThanParent, "nhập nhầm năm sinh"); err != nil {
		t.Fatal(err)
	}
	if r := s.refusedOnce(t, col, "ROLE_DENIED"); !strings.Contains(r.Description, "ack.CHILD_OLDER_THAN_PARENT") {
		t.Errorf("the collaborator's acknowledgement: refusal says %q", r.Description)
	}
	// No comment, no acknowledgement; an open conflict is resolved, not
	// acknowledged.
	if _, err := officer.Acknowledge(ctx, hhA, quality.ChildOlderThanParent, "  "); err == nil {
		t.Error("an acknowledgement without a comment was written")
	}
	if _, err := officer.Acknowledge(ctx, hhA, quality.OpenConflict, "đã xem"); err == nil {
		t.Error("an open conflict was acknowledged")
	}

	if _, err := officer.Acknowledge(ctx, hhA, quality.ChildOlderThanParent, "Lò Văn Cả là anh rể, ghi nhầm quan hệ; không ảnh hưởng kết quả"); err != nil {
		t.Fatal(err)
	}
	s.sync(t, officer)
	// Half acknowledged is not acknowledged.
	s.sync(t, chair)
	if err := chair.Decide(ctx, rv, "125/QĐ-UBND", "2025-12-10"); err != nil {
		t.Fatal(err)
	}
	if r := s.refusedOnce(t, chair, "QUALITY_UNACKNOWLEDGED"); !strings.Contains(r.Description, "DUPLICATE_PERSON") || strings.Contains(r.Description, "CHILD_OLDER_THAN_PARENT") ||
		!strings.Contains(r.Description, b.GetHeadName()+" ("+hhB) {
		t.Errorf("with one flag acknowledged the refusal says %q; want only DUPLICATE_PERSON, naming household B by its head %q", r.Description, b.GetHeadName())
	}
	// The chair decides, and does not also acknowledge; an officer who
	// wrote some of the answers does not clear a flag on them.
	if _, err := chair.Acknowledge(ctx, hhA, quality.DuplicatePerson, "Hai người trùng tên"); err != nil {
		t.Fatal(err)
	}
	if r := s.refusedOnce(t, chair, "ROLE_DENIED"); !strings.Contains(r.Description, "ack.DUPLICATE_PERSON") {
		t.Errorf("the chair's acknowledgement: refusal says %q", r.Description)
	}
	s.sync(t, officer2)
	if _, err := officer2.Acknowledge(ctx, hhA, quality.DuplicatePerson, "Hai người trùng tên"); err != nil {
		t.Fatal(err)
	}
	if r := s.refusedOnce(t, officer2, "TRANSITION_REFUSED"); !strings.Contains(r.Description, "nobody acknowledges a quality flag on their own survey") {
		t.Errorf("the acknowledgement of an officer who wrote answers: refusal says %q", r.Description)
	}
	s.sync(t, officer)
	if _, err := officer.Acknowledge(ctx, hhA, quality.DuplicatePerson, "Hai người trùng tên, khác cha mẹ; đã xác minh tại thôn"); err != nil {
		t.Fatal(err)
	}
	s.sync(t, officer)
	flags, res = s.flagsOf(t, officer, authtest.Commune)
	for _, code := range []quality.Code{quality.ChildOlderThanParent, quality.DuplicatePerson} {
		if f := flags[hhA][string(code)]; !f.GetAcknowledged() || f.GetComment() == "" {
			t.Errorf("%s after acknowledging: %v", code, f)
		}
	}
	if n := res.GetByVillage()[0].GetUnacknowledged(); n != 0 {
		t.Errorf("village 1 still counts %d flags unacknowledged", n)
	}
	s.sync(t, chair)
	if err := chair.Decide(ctx, rv, "125/QĐ-UBND", "2025-12-10"); err != nil {
		t.Fatal(err)
	}
	if st := s.sync(t, chair); st.Refused != 0 {
		rs, _ := chair.Refused(ctx)
		t.Fatalf("the decision after acknowledging every flag was refused: %+v", rs)
	}
	s.sync(t, officer)
	if got := reviewStatus(t, officer, rv); got != workflow.Decided {
		t.Fatalf("the officer's tablet shows %s; want decided", got)
	}
	rvw, err := officer.Review(ctx, rv)
	if err != nil || len(rvw.Acks()) != 2 {
		t.Errorf("the officer's tablet holds acknowledgements %v, %v; want two", rvw.Acks(), err)
	}

	// Decided, the household leaves the listing: its flags can no longer
	// be acknowledged, and would count for good.
	if flags, _ = s.flagsOf(t, officer, authtest.Commune); flags[hhA] != nil {
		t.Errorf("the decided household is still listed: %v", flags[hhA])
	}
	// An acknowledgement on a decided review is locked with it.
	if _, err := officer.Acknowledge(ctx, hhA, quality.DuplicatePerson, "sửa"); err == nil {
		t.Error("an acknowledgement was written on a decided review")
	}

	// The next round compares with the one decided: the house's area
	// typed as 10 m² after 36.5 decided is flagged; the acknowledgements
	// of the decided round do not carry over.
	s.sync(t, col)
	if _, err := col.StartRound(ctx, hhA, Round{Date: "2026-10-05"}); err != nil {
		t.Fatal(err)
	}
	if err := col.SetField(ctx, hhA, "housing.floorAreaM2", []byte("10")); err != nil {
		t.Fatal(err)
	}
	if st := s.sync(t, col); st.Refused != 0 {
		t.Fatalf("the next round was refused: %+v", st)
	}
	flags, _ = s.flagsOf(t, officer, authtest.Commune)
	if f := flags[hhA][string(quality.AreaHalved)]; f == nil || !strings.Contains(f.GetDetail(), "36,5") || f.GetAcknowledged() {
		t.Errorf("the next round's AREA_HALVED: %v; want it naming the decided 36,5 m², not acknowledged", f)
	}
	if f := flags[hhA][string(quality.DuplicatePerson)]; f == nil || f.GetAcknowledged() {
		t.Errorf("the next round's DUPLICATE_PERSON: %v; want it standing again", f)
	}
}
