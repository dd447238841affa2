package scoring_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/server/scoring"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// startServer runs the real server (server.New: interceptors, health,
// reflection) on lis until the test ends, and returns a connection to it.
func startServer(tb testing.TB, lis net.Listener, dial func(context.Context, string) (net.Conn, error)) *grpc.ClientConn {
	tb.Helper()
	srv, err := server.New(server.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	target := "passthrough:///" + lis.Addr().String()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if dial != nil {
		opts = append(opts, grpc.WithContextDialer(dial))
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-served; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	return conn
}

// newConn serves over an in-memory bufconn listener.
func newConn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	return startServer(t, lis, func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })
}

func newClient(t *testing.T) rasoatv1.ScoringServiceClient {
	return rasoatv1.NewScoringServiceClient(newConn(t))
}

// example is survey/testdata/household-example.json (the issue's): a rural Nùng household of Lạng Sơn
// reviewed on 2025-10-20, which the 2021–2025 standard finds poor.
func example(t testing.TB) *rasoatv1.Household {
	t.Helper()
	b, err := os.ReadFile("../../survey/testdata/household-example.json")
	if err != nil {
		t.Fatal(err)
	}
	h := new(rasoatv1.Household)
	if err := protojson.Unmarshal(b, h); err != nil {
		t.Fatal(err)
	}
	return h
}

// childBornAfterReview is the example with the child born after the review.
func childBornAfterReview(t testing.TB) *rasoatv1.Household {
	h := example(t)
	h.Id = "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9e01"
	h.Members[1].BirthDate = "2026-01-01"
	return h
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// badRequest checks err is InvalidArgument with BadRequest details and
// returns the violations by field.
func badRequest(t *testing.T, err error) map[string]string {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
	fields := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields[v.GetField()] = v.GetDescription()
			}
		}
	}
	if len(fields) == 0 {
		t.Fatalf("%v: no google.rpc.BadRequest field violations in details %v", err, st.Details())
	}
	return fields
}

var exampleDeprived = []string{"HEALTH_INSURANCE", "HOUSING_QUALITY", "HOUSING_AREA", "LATRINE"}

func checkExample(t *testing.T, a *rasoatv1.Assessment) {
	t.Helper()
	if a.GetStandard() != "2021-2025" {
		t.Errorf("standard %q, want 2021-2025", a.GetStandard())
	}
	if a.GetClassification() != rasoatv1.Classification_CLASSIFICATION_POOR {
		t.Errorf("classification %v, want POOR", a.GetClassification())
	}
	if a.GetDeprivationCount() != 4 || !slices.Equal(a.GetDeprived(), exampleDeprived) {
		t.Errorf("deprived %d %v, want 4 %v", a.GetDeprivationCount(), a.GetDeprived(), exampleDeprived)
	}
	if a.GetHouseholdId() != "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d01" {
		t.Errorf("household id %q", a.GetHouseholdId())
	}
	if a.GetIncomePerCapitaVnd() != 1_350_000 || a.GetPovertyLineVnd() != 1_500_000 || a.GetMemberCount() != 2 {
		t.Errorf("income %d, line %d, members %d; want 1350000, 1500000, 2",
			a.GetIncomePerCapitaVnd(), a.GetPovertyLineVnd(), a.GetMemberCount())
	}
	for _, ir := range a.GetIndicators() {
		if len(ir.GetReasons()) == 0 || ir.GetReasons()[0].GetText() == "" {
			t.Errorf("indicator %s has no reason in words", ir.GetIndicator())
		}
	}
}

func TestAssessExampleHouseholdIsPoorWithFourDeprivations(t *testing.T) {
	c := newClient(t)
	for _, std := range []string{"", "2021-2025"} {
		t.Run("standard="+std, func(t *testing.T) {
			res, err := c.Assess(ctxT(t), &rasoatv1.AssessRequest{Household: example(t), Standard: std})
			if err != nil {
				t.Fatal(err)
			}
			checkExample(t, res.GetAssessment())
		})
	}
}

// The round's kind, not the calendar alone, chooses the standard: a
// regular review of October 2026 changes the 2026 list (Decree 07/2021's
// standard, kept through 2026), a periodic one decides the 2027 list.
func TestAssessRoundKindChoosesTheStandard(t *testing.T) {
	c := newClient(t)
	for _, tc := range []struct {
		round rasoatv1.ReviewRound
		date  string
		want  string
	}{
		{rasoatv1.ReviewRound_REVIEW_ROUND_REGULAR, "2026-10-20", "2021-2025"},
		{rasoatv1.ReviewRound_REVIEW_ROUND_PERIODIC, "2026-10-20", "2026-2030"},
		{rasoatv1.ReviewRound_REVIEW_ROUND_UNSPECIFIED, "2026-10-20", "2026-2030"},
		{rasoatv1.ReviewRound_REVIEW_ROUND_REGULAR, "2027-01-15", "2026-2030"},
	} {
		t.Run(tc.round.String()+"/"+tc.date, func(t *testing.T) {
			h := example(t)
			h.ReviewDate = tc.date
			for _, m := range h.GetMembers() {
				m.ReceivesMonthlySocialAllowance = proto.Bool(false) // 2026-2030 asks it of the elderly
			}
			res, err := c.Assess(ctxT(t), &rasoatv1.AssessRequest{Household: h, Round: tc.round, View: rasoatv1.AssessmentView_ASSESSMENT_VIEW_BASIC})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.GetAssessment().GetStandard(); got != tc.want {
				t.Errorf("scored under %s; want %s", got, tc.want)
			}
			stream, err := c.AssessStream(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&rasoatv1.AssessStreamRequest{Households: []*rasoatv1.Household{h}, Round: tc.round, View: rasoatv1.AssessmentView_ASSESSMENT_VIEW_BASIC}); err != nil {
				t.Fatal(err)
			}
			out, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if got := out.GetResults()[0].GetAssessment().GetStandard(); got != tc.want {
				t.Errorf("stream scored under %s; want %s", got, tc.want)
			}
			stream.CloseSend()
		})
	}
}

func TestAssessChildBornAfterReviewDateIsInvalidArgument(t *testing.T) {
	c := newClient(t)
	_, err := c.Assess(ctxT(t), &rasoatv1.AssessRequest{Household: childBornAfterReview(t)})
	fields := badRequest(t, err)
	desc, ok := fields["members[1].birthDate"]
	if !ok {
		t.Fatalf("violations %v do not name members[1].birthDate", fields)
	}
	if !strings.Contains(desc, "2026-01-01") {
		t.Errorf("description %q does not say which date", desc)
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "members[1].birthDate") {
		t.Errorf("status message %q does not list the violation", msg)
	}
}

func TestAssessUnknownStandardNamesStandard(t *testing.T) {
	c := newClient(t)
	_, err := c.Assess(ctxT(t), &rasoatv1.AssessRequest{Household: example(t), Standard: "2099-2100"})
	fields := badRequest(t, err)
	desc, ok := fields["standard"]
	if !ok {
		t.Fatalf("violations %v do not name standard", fields)
	}
	for _, id := range []string{"2099-2100", "2016-2020", "2021-2025", "2026-2030"} {
		if !strings.Contains(desc, id) {
			t.Errorf("description %q does not mention %s", desc, id)
		}
	}
}

func TestAssessReviewDateNoStandardDecidesNamesReviewDate(t *testing.T) {
	c := newClient(t)
	h := example(t)
	h.ReviewDate = "2040-10-20"
	_, err := c.Assess(ctxT(t), &rasoatv1.AssessRequest{Household: h})
	fields := badRequest(t, err)
	if desc, ok := fields["reviewDate"]; !ok || !strings.Contains(desc, "2040-10-20") {
		t.Fatalf("violations %v: want reviewDate naming 2040-10-20", fields)
	}
}

func TestAssessMissingHouseholdNamesHousehold(t *testing.T) {
	c := newClient(t)
	_, err := c.Assess(ctxT(t), &rasoatv1.AssessRequest{})
	if _, ok := badRequest(t, err)["household"]; !ok {
		t.Fatalf("%v does not name household", err)
	}
}

func TestAssessStreamAnswersEachBatchInOrderAndSurvivesBadHouseholds(t *testing.T) {
	c := newClient(t)
	stream, err := c.AssessStream(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}

	valid := example(t)
	valid2 := example(t)
	valid2.Id = "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9f01"
	valid2.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: 5_000_000}}
	noDate := example(t)
	noDate.Id = "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9f02"
	noDate.ReviewDate = ""

	// Batch 1: valid, invalid, valid, invalid.
	if err := stream.Send(&rasoatv1.AssessStreamRequest{Households: []*rasoatv1.Household{valid, childBornAfterReview(t), valid2, noDate}}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	r := res.GetResults()
	if len(r) != 4 {
		t.Fatalf("got %d results, want 4", len(r))
	}
	wantIDs := []string{valid.Id, "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9e01", valid2.Id, noDate.Id}
	for i, want := range wantIDs {
		if r[i].GetHouseholdId() != want {
			t.Errorf("result %d is household %q, want %q", i, r[i].GetHouseholdId(), want)
		}
	}
	checkExample(t, r[0].GetAssessment())
	if got := violationFields(r[1]); !slices.Contains(got, "members[1].birthDate") {
		t.Errorf("result 1 violations %v, want members[1].birthDate", got)
	}
	if got := r[2].GetAssessment().GetClassification(); got != rasoatv1.Classification_CLASSIFICATION_NOT_POOR {
		t.Errorf("result 2 classification %v, want NOT_POOR", got)
	}
	if got := violationFields(r[3]); !slices.Contains(got, "reviewDate") {
		t.Errorf("result 3 violations %v, want reviewDate", got)
	}

	// Batch 2 names an unknown standard: every household says so, and the
	// stream stays open.
	if err := stream.Send(&rasoatv1.AssessStreamRequest{Standard: "nope", Households: []*rasoatv1.Household{valid, valid2}}); err != nil {
		t.Fatal(err)
	}
	res, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetResults()) != 2 {
		t.Fatalf("got %d results, want 2", len(res.GetResults()))
	}
	for i, r := range res.GetResults() {
		if got := violationFields(r); !slices.Equal(got, []string{"standard"}) {
			t.Errorf("batch 2 result %d violations %v, want [standard]", i, got)
		}
	}

	// Batch 3 names the standard; then the client closes and so does the server.
	if err := stream.Send(&rasoatv1.AssessStreamRequest{Standard: "2021-2025", Households: []*rasoatv1.Household{valid}}); err != nil {
		t.Fatal(err)
	}
	res, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	checkExample(t, res.GetResults()[0].GetAssessment())

	if err := stream.Send(&rasoatv1.AssessStreamRequest{}); err != nil {
		t.Fatal(err)
	}
	if res, err = stream.Recv(); err != nil || len(res.GetResults()) != 0 {
		t.Fatalf("empty batch: got %v, %v; want an empty response", res, err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after CloseSend got %v, want EOF", err)
	}
}

func violationFields(r *rasoatv1.AssessResult) []string {
	var out []string
	for _, v := range r.GetViolations().GetViolations() {
		out = append(out, v.GetField())
	}
	return out
}

func TestAssessStreamRefusesOversizedBatch(t *testing.T) {
	c := newClient(t)
	stream, err := c.AssessStream(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	hs := make([]*rasoatv1.Household, scoring.MaxBatch+1)
	for i := range hs {
		hs[i] = &rasoatv1.Household{Id: "x"}
	}
	if err := stream.Send(&rasoatv1.AssessStreamRequest{Households: hs}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if _, ok := badRequest(t, err)["households"]; !ok {
		t.Fatalf("%v does not name households", err)
	}
}

// The server answers what the engine answers, under concurrent calls that
// share its pooled scratch memory (run with -race).
func TestConcurrentCallsMatchTheEngine(t *testing.T) {
	c := newClient(t)
	hs := benchHouseholds(200)
	std, err := survey.Builtin().ByID("2021-2025")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]*rasoatv1.Assessment, len(hs))
	for i, h := range hs {
		a, err := std.Assess(h)
		if err != nil {
			t.Fatalf("household %d: %v", i, err)
		}
		want[i] = a.Proto(h)
	}
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			stream, err := c.AssessStream(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			for i := w; i < len(hs); i += 8 {
				res, err := c.Assess(ctx, &rasoatv1.AssessRequest{Household: hs[i]})
				if err != nil {
					t.Error(err)
					return
				}
				if !proto.Equal(res.GetAssessment(), want[i]) {
					t.Errorf("Assess household %d differs from the engine", i)
				}
				if err := stream.Send(&rasoatv1.AssessStreamRequest{Households: hs[i : i+1]}); err != nil {
					t.Error(err)
					return
				}
				sr, err := stream.Recv()
				if err != nil {
					t.Error(err)
					return
				}
				if !proto.Equal(sr.GetResults()[0].GetAssessment(), want[i]) {
					t.Errorf("AssessStream household %d differs from the engine", i)
				}
			}
			stream.CloseSend()
		})
	}
	wg.Wait()
}

func TestListStandardsReviewDatesChooseThatStandard(t *testing.T) {
	c := newClient(t)
	res, err := c.ListStandards(ctxT(t), &rasoatv1.ListStandardsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range res.GetStandards() {
		ids = append(ids, s.GetId())
		if s.GetName() == "" || s.GetSource() == "" || len(s.GetIndicators()) == 0 {
			t.Errorf("%s: missing name, source or indicators: %v", s.GetId(), s)
		}
	}
	if want := []string{"2016-2020", "2021-2025", "2026-2030"}; !slices.Equal(ids, want) {
		t.Fatalf("standards %v, want %v", ids, want)
	}
	reg := survey.Builtin()
	for _, s := range res.GetStandards() {
		// The first and last review dates choose the standard; the days
		// either side do not.
		for _, d := range []string{s.GetValidFrom(), s.GetValidTo()} {
			if got, err := reg.Choose("", d); err != nil || got.ID != s.GetId() {
				t.Errorf("%s: review on %s chooses %v, %v", s.GetId(), d, got, err)
			}
		}
		for _, d := range []string{addDays(t, s.GetValidFrom(), -1), addDays(t, s.GetValidTo(), 1)} {
			if got, err := reg.Choose("", d); err == nil && got.ID == s.GetId() {
				t.Errorf("%s: review on %s, outside %s..%s, chooses it", s.GetId(), d, s.GetValidFrom(), s.GetValidTo())
			}
		}
	}
	if s := res.GetStandards()[1]; !slices.Contains(s.GetIndicators(), "HOUSING_AREA") {
		t.Errorf("2021-2025 indicators %v lack HOUSING_AREA", s.GetIndicators())
	}
}

func addDays(t *testing.T, d string, n int) string {
	tm, err := time.Parse(time.DateOnly, d)
	if err != nil {
		t.Fatal(err)
	}
	return tm.AddDate(0, 0, n).Format(time.DateOnly)
}

func TestHealthIsServing(t *testing.T) {
	hc := healthpb.NewHealthClient(newConn(t))
	for _, svc := range []string{"", "rasoat.v1.ScoringService"} {
		res, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("check %q: %v", svc, err)
		}
		if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("check %q: %v, want SERVING", svc, res.GetStatus())
		}
	}
}

func TestReflectionListsScoringService(t *testing.T) {
	rc := reflectionpb.NewServerReflectionClient(newConn(t))
	stream, err := rc.ServerReflectionInfo(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"rasoat.v1.ScoringService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	// grpcurl also needs the file descriptors to describe the messages.
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "rasoat.v1.ScoringService"}}); err != nil {
		t.Fatal(err)
	}
	res, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.GetFileDescriptorResponse().GetFileDescriptorProto()); n == 0 {
		t.Errorf("no file descriptor for rasoat.v1.ScoringService: %v", res)
	}
}

// benchHouseholds builds n realistic rural and urban households of four
// (head 45, spouse 42, children 14 and 9) with answers varied by index, so
// that every classification and most indicators occur.
func benchHouseholds(n int) []*rasoatv1.Household {
	b := proto.Bool
	hs := make([]*rasoatv1.Household, n)
	for i := range hs {
		id := func(k int) string { return fmt.Sprintf("0193a1f2-7c4e-7b1a-9d2e-%08x%04x", i, k) }
		area := rasoatv1.Area_AREA_RURAL
		if i%4 == 3 {
			area = rasoatv1.Area_AREA_URBAN
		}
		employment := rasoatv1.Employment_EMPLOYMENT_SELF_EMPLOYED
		if i%5 == 1 {
			employment = rasoatv1.Employment_EMPLOYMENT_WAGE_NO_CONTRACT
		}
		inSchool14 := i%7 != 2
		h := &rasoatv1.Household{
			Id:            id(0),
			VillageCode:   "06517-01",
			Area:          area,
			HeadName:      "Hoàng Văn Sáng",
			HeadEthnicity: "Nùng",
			ReviewDate:    "2025-10-20",
			Members: []*rasoatv1.Member{
				{Id: id(1), FullName: "Hoàng Văn Sáng", Sex: rasoatv1.Sex_SEX_MALE, BirthDate: "1980-03-15", Relation: rasoatv1.Relation_RELATION_HEAD,
					Ethnicity: "Nùng", HighestEducation: rasoatv1.EducationLevel_EDUCATION_LEVEL_LOWER_SECONDARY, InSchool: b(false),
					HasHealthInsurance: b(true), Employment: employment},
				{Id: id(2), FullName: "Vi Thị Lan", Sex: rasoatv1.Sex_SEX_FEMALE, BirthDate: "1983-06-10", Relation: rasoatv1.Relation_RELATION_SPOUSE,
					Ethnicity: "Nùng", HighestEducation: rasoatv1.EducationLevel_EDUCATION_LEVEL_PRIMARY, InSchool: b(false),
					HasHealthInsurance: b(i%3 != 0), Employment: rasoatv1.Employment_EMPLOYMENT_SELF_EMPLOYED},
				{Id: id(3), FullName: "Hoàng Văn Minh", Sex: rasoatv1.Sex_SEX_MALE, BirthDate: "2011-05-20", Relation: rasoatv1.Relation_RELATION_CHILD,
					Ethnicity: "Nùng", HighestEducation: rasoatv1.EducationLevel_EDUCATION_LEVEL_PRIMARY, InSchool: b(inSchool14),
					SchoolLevel: rasoatv1.SchoolLevel_SCHOOL_LEVEL_LOWER_SECONDARY, HasHealthInsurance: b(true),
					Employment: rasoatv1.Employment_EMPLOYMENT_NOT_IN_LABOUR_FORCE},
				{Id: id(4), FullName: "Hoàng Thị Mai", Sex: rasoatv1.Sex_SEX_FEMALE, BirthDate: "2016-02-01", Relation: rasoatv1.Relation_RELATION_CHILD,
					Ethnicity: "Nùng", HighestEducation: rasoatv1.EducationLevel_EDUCATION_LEVEL_NONE, InSchool: b(true),
					SchoolLevel: rasoatv1.SchoolLevel_SCHOOL_LEVEL_PRIMARY, HasHealthInsurance: b(i%4 != 1),
					Employment: rasoatv1.Employment_EMPLOYMENT_NOT_IN_LABOUR_FORCE, ChildStunted: i%11 == 0},
			},
			Housing: &rasoatv1.Housing{
				WallDurable: b(i%2 == 0), FrameDurable: b(true), RoofDurable: b(i%3 != 1),
				FloorAreaM2: proto.Float64(float64(24 + i%40)),
			},
			WaterSanitation: &rasoatv1.WaterSanitation{
				WaterSource: []rasoatv1.WaterSource{rasoatv1.WaterSource_WATER_SOURCE_PIPED, rasoatv1.WaterSource_WATER_SOURCE_TUBE_WELL,
					rasoatv1.WaterSource_WATER_SOURCE_UNPROTECTED_WELL}[i%3],
				Latrine: []rasoatv1.Latrine{rasoatv1.Latrine_LATRINE_FLUSH_SEPTIC, rasoatv1.Latrine_LATRINE_SIMPLE_PIT,
					rasoatv1.Latrine_LATRINE_DOUBLE_VAULT, rasoatv1.Latrine_LATRINE_NONE}[i%4],
			},
			Information: &rasoatv1.Information{
				UsesTelecom: b(i%6 != 0), UsesDigitalServices: b(i%2 == 1),
				InfoDevices: []rasoatv1.InfoDevice{rasoatv1.InfoDevice_INFO_DEVICE_SMARTPHONE},
			},
			Environment: &rasoatv1.Environment{WasteTreatment: rasoatv1.WasteTreatment_WASTE_TREATMENT_COLLECTED},
		}
		if i%2 == 0 {
			h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: int64(900_000 + (i%30)*100_000)}}
		} else {
			h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_Annual{Annual: &rasoatv1.AnnualIncome{
				FarmingVnd: int64(40_000_000 + (i%25)*4_000_000), WagesVnd: 24_000_000, OtherVnd: 3_000_000,
			}}}
		}
		hs[i] = h
	}
	return hs
}

// TestBasicViewGivesTheVerdictWithoutTheReasons: the bulk view keeps the
// classification and the deprived ids but leaves out per-indicator results.
func TestBasicViewGivesTheVerdictWithoutTheReasons(t *testing.T) {
	c := newClient(t)
	full, err := c.Assess(ctxT(t), &rasoatv1.AssessRequest{Household: example(t)})
	if err != nil {
		t.Fatal(err)
	}
	basic, err := c.Assess(ctxT(t), &rasoatv1.AssessRequest{Household: example(t), View: rasoatv1.AssessmentView_ASSESSMENT_VIEW_BASIC})
	if err != nil {
		t.Fatal(err)
	}
	if len(basic.GetAssessment().GetIndicators()) != 0 {
		t.Errorf("basic view holds %d indicator results", len(basic.GetAssessment().GetIndicators()))
	}
	f := proto.Clone(full.GetAssessment()).(*rasoatv1.Assessment)
	f.Indicators = nil
	if !proto.Equal(f, basic.GetAssessment()) {
		t.Errorf("basic view differs from the full one beyond the indicators:\n basic %v\n full  %v", basic.GetAssessment(), f)
	}
}
