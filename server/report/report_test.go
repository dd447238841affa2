package report_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/client"
	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/pgtest"
	"github.com/rasoat/rasoat/internal/rpcerr"
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store/postgres"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/syncsvc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// backend is a store a server runs on.
type backend interface {
	syncsvc.Store
	server.Directory
	authtest.Store
	Close() error
}

// commune serves st with authentication on a free port and seeds the
// commune's three villages, an officer, a village head of village 1, and a
// collaborator per village.
type commune struct {
	st   backend
	addr string
}

func serve(t *testing.T, st backend) *commune {
	t.Helper()
	srv, err := server.New(server.WithSync(st), server.WithAuth(st, nil))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		st.Close()
	})
	people := []directory.Person{
		authtest.Officer("officer"),
		authtest.Person("head1", []rasoatv1.Role{rasoatv1.Role_ROLE_VILLAGE_HEAD}, authtest.Village(1)),
	}
	for v := 1; v <= 3; v++ {
		people = append(people, authtest.Collaborator(fmt.Sprintf("col%d", v), authtest.Village(v)))
	}
	if err := authtest.Seed(t.Context(), st, 3, people...); err != nil {
		t.Fatal(err)
	}
	return &commune{st: st, addr: lis.Addr().String()}
}

func (c *commune) conn(t *testing.T, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, authtest.Bearer(token))
	}
	cc, err := grpc.NewClient(c.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// tablet is an enrolled collaborator's tablet.
func (c *commune) tablet(t *testing.T, person string) (*client.Client, *grpc.ClientConn) {
	t.Helper()
	tb, err := client.Open(t.Context(), filepath.Join(t.TempDir(), person+".db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	conn := c.conn(t, "")
	code, err := authtest.Code(t.Context(), c.st, person)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Enrol(t.Context(), conn, "test", code, "tablet of "+person); err != nil {
		t.Fatal(err)
	}
	return tb, conn
}

func (c *commune) reports(t *testing.T, person string) rasoatv1.ReportServiceClient {
	t.Helper()
	tok, err := authtest.Enrol(t.Context(), c.st, c.conn(t, ""), person, "report-"+person)
	if err != nil {
		t.Fatal(err)
	}
	return rasoatv1.NewReportServiceClient(c.conn(t, tok))
}

func example(t *testing.T) *rasoatv1.Household {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "survey", "testdata", "household-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	h := &rasoatv1.Household{}
	if err := protojson.Unmarshal(b, h); err != nil {
		t.Fatal(err)
	}
	return h
}

// generated is a household as a collaborator enters it: the example's
// roster and answers, varied.
func generated(r *rand.Rand, base *rasoatv1.Household) *rasoatv1.Household {
	h := proto.Clone(base).(*rasoatv1.Household)
	h.Id = ""
	for _, m := range h.Members {
		m.Id = ""
		m.HasHealthInsurance = proto.Bool(r.IntN(3) > 0)
	}
	h.Area = []rasoatv1.Area{rasoatv1.Area_AREA_RURAL, rasoatv1.Area_AREA_RURAL, rasoatv1.Area_AREA_URBAN}[r.IntN(3)]
	h.HeadEthnicity = []string{"Tày", "Nùng", "Kinh", ""}[r.IntN(4)]
	h.AgriForestryFisherySalt = proto.Bool(r.IntN(2) == 0)
	h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: int64(400_000 + r.IntN(36)*100_000)}, StateAssistanceAnnualVnd: proto.Int64(0)}
	h.Housing.FloorAreaM2 = proto.Float64(float64(8 + r.IntN(60)))
	h.Housing.WallDurable = proto.Bool(r.IntN(2) == 0)
	h.WaterSanitation.Latrine = []rasoatv1.Latrine{rasoatv1.Latrine_LATRINE_NONE, rasoatv1.Latrine_LATRINE_FLUSH_SEPTIC}[r.IntN(2)]
	h.ReviewDate = "2025-10-20"
	if r.IntN(10) == 0 {
		h.Housing.FloorAreaM2 = nil // not yet surveyed: cannot be scored
	}
	return h
}

// want is the report computed in the test from the tablets' households,
// scored by the engine directly: no report code.
type want struct {
	total, village, ethnicity, area map[string]*rasoatv1.ReportCounts
	deprived, deprivedPoor          map[string]int32
	md                              int
	mdShare                         float64
	scored                          int
	progress                        map[[3]string]int32
}

func (w *want) add(key string, m map[string]*rasoatv1.ReportCounts, class string, reviewed bool) {
	c := m[key]
	if c == nil {
		c = &rasoatv1.ReportCounts{}
		m[key] = c
	}
	c.Households++
	if reviewed {
		c.Reviewed++
	}
	switch class {
	case "POOR":
		c.Poor++
	case "NEAR_POOR":
		c.NearPoor++
	case "MIDDLE":
		c.Middle++
	case "NOT_POOR":
		c.NotPoor++
	default:
		c.Unscored++
	}
	c.PovertyRate = float64(c.Poor) / float64(c.Households)
	c.MultidimensionalPovertyRate = float64(c.Poor+c.NearPoor) / float64(c.Households)
}

func testReport(t *testing.T, st backend) {
	c := serve(t, st)
	ctx := t.Context()
	r := rand.New(rand.NewPCG(9, 2026))
	base := example(t)
	w := &want{total: map[string]*rasoatv1.ReportCounts{}, village: map[string]*rasoatv1.ReportCounts{}, ethnicity: map[string]*rasoatv1.ReportCounts{},
		area: map[string]*rasoatv1.ReportCounts{}, deprived: map[string]int32{}, deprivedPoor: map[string]int32{}, progress: map[[3]string]int32{}}
	for v := 1; v <= 3; v++ {
		person := fmt.Sprintf("col%d", v)
		tb, conn := c.tablet(t, person)
		var hs []*rasoatv1.Household
		for range 40 {
			h := generated(r, base)
			h.VillageCode = authtest.Village(v)
			hs = append(hs, h)
		}
		ids, err := tb.CreateHouseholds(ctx, authtest.Village(v), hs)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			reviewed := i%4 != 0
			status := ""
			if reviewed {
				rv, err := tb.StartRound(ctx, id, client.Round{Date: "2025-10-20"})
				if err != nil {
					t.Fatal(err)
				}
				status = string(workflow.Draft)
				if i%3 == 0 {
					if err := tb.Submit(ctx, rv); err != nil {
						t.Fatal(err)
					}
					status = string(workflow.Submitted)
				}
				w.progress[[3]string{authtest.Village(v), person, status}]++
			}
			a, h, err := tb.Assess(ctx, id)
			class := ""
			if err == nil {
				_, class, _ = workflow.Result(a)
				w.scored++
				for _, d := range a.Deprived() {
					w.deprived[d]++
					if class == "POOR" {
						w.deprivedPoor[d]++
					}
				}
				if a.Deprivations >= a.Standard.DeprivationThreshold {
					w.md++
					w.mdShare += float64(a.Deprivations) / float64(len(a.Indicators))
				}
			}
			eth := map[string]string{"Tày": "minority", "Nùng": "minority", "Kinh": "kinh", "": "unknown"}[h.GetHeadEthnicity()]
			area := map[rasoatv1.Area]string{rasoatv1.Area_AREA_RURAL: "rural", rasoatv1.Area_AREA_URBAN: "urban"}[h.GetArea()]
			w.add("", w.total, class, reviewed)
			w.add(authtest.Village(v), w.village, class, reviewed)
			w.add(eth, w.ethnicity, class, reviewed)
			w.add(area, w.area, class, reviewed)
		}
		if _, err := tb.Sync(ctx, conn); err != nil {
			t.Fatal(err)
		}
	}

	got, err := c.reports(t, "officer").Report(ctx, &rasoatv1.ReportRequest{UnitCode: authtest.Commune, ListYear: 2026})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.GetTotal(), w.total[""]) {
		t.Errorf("total\n got %v\nwant %v", got.GetTotal(), w.total[""])
	}
	for _, b := range []struct {
		name string
		got  []*rasoatv1.ReportBreakdown
		want map[string]*rasoatv1.ReportCounts
	}{{"village", got.GetByVillage(), w.village}, {"ethnicity", got.GetByEthnicity(), w.ethnicity}, {"area", got.GetByArea(), w.area}} {
		if len(b.got) != len(b.want) {
			t.Errorf("by %s: %d rows, want %d", b.name, len(b.got), len(b.want))
		}
		for _, row := range b.got {
			if !proto.Equal(row.GetCounts(), b.want[row.GetKey()]) {
				t.Errorf("by %s %q\n got %v\nwant %v", b.name, row.GetKey(), row.GetCounts(), b.want[row.GetKey()])
			}
		}
	}
	if bc := got.GetByCommune(); len(bc) != 1 || bc[0].GetKey() != authtest.Commune || !proto.Equal(bc[0].GetCounts(), w.total[""]) {
		t.Errorf("by commune %v; want the one commune with the total", bc)
	}
	households, poor := float64(w.total[""].GetHouseholds()), float64(w.total[""].GetPoor())
	if len(got.GetIndicators()) != len(w.deprived) {
		t.Errorf("%d indicators reported, %d deprived anywhere", len(got.GetIndicators()), len(w.deprived))
	}
	for _, in := range got.GetIndicators() {
		id := in.GetIndicator()
		if in.GetDeprived() != w.deprived[id] || in.GetDeprivedPoor() != w.deprivedPoor[id] ||
			!near(in.GetShare(), float64(w.deprived[id])/households) || !near(in.GetShareOfPoor(), float64(w.deprivedPoor[id])/poor) {
			t.Errorf("indicator %s: %v; want %d deprived (%d poor)", id, in, w.deprived[id], w.deprivedPoor[id])
		}
	}
	h := float64(w.md) / float64(w.scored)
	a := w.mdShare / float64(w.md)
	if af := got.GetAlkireFoster(); !near(af.GetH(), h) || !near(af.GetA(), a) || !near(af.GetM0(), h*a) {
		t.Errorf("Alkire–Foster %v; want H %.6f A %.6f M0 %.6f", af, h, a, h*a)
	}
	if len(got.GetProgress()) != len(w.progress) {
		t.Errorf("progress has %d rows, want %d: %v", len(got.GetProgress()), len(w.progress), got.GetProgress())
	}
	for _, p := range got.GetProgress() {
		if k := [3]string{p.GetVillageCode(), p.GetCollaborator(), p.GetStatus()}; p.GetReviews() != w.progress[k] {
			t.Errorf("progress %v: %d reviews, want %d", k, p.GetReviews(), w.progress[k])
		}
	}
	if w.total[""].GetPoor() == 0 || w.total[""].GetUnscored() == 0 || w.md == 0 {
		t.Fatalf("the generated commune does not exercise the report: %v, %d deprived in k or more", w.total[""], w.md)
	}

	// A village head reports on the village, not the commune; a
	// collaborator reports on nothing.
	head := c.reports(t, "head1")
	if v, err := head.Report(ctx, &rasoatv1.ReportRequest{UnitCode: authtest.Village(1), ListYear: 2026}); err != nil || !proto.Equal(v.GetTotal(), w.village[authtest.Village(1)]) {
		t.Errorf("the village head's report on village 1: %v, %v", v.GetTotal(), err)
	}
	if _, err := head.Report(ctx, &rasoatv1.ReportRequest{UnitCode: authtest.Commune, ListYear: 2026}); status.Code(err) != codes.PermissionDenied || rpcerr.Reason(err) != rasoatv1.ErrorReason_OUT_OF_SCOPE {
		t.Errorf("the village head's report on the commune: %v; want OUT_OF_SCOPE", err)
	}
	if _, err := c.reports(t, "col1").Report(ctx, &rasoatv1.ReportRequest{UnitCode: authtest.Village(1), ListYear: 2026}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a collaborator's report: %v; want PermissionDenied", err)
	}
	for _, bad := range []*rasoatv1.ReportRequest{{ListYear: 2026}, {UnitCode: strings.Repeat("0", 65), ListYear: 2026}, {UnitCode: authtest.Commune, ListYear: 1999}} {
		if _, err := head.Report(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Report(%v): %v; want InvalidArgument", bad, err)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestReportAgreesWithTheEngine: a generated commune of three villages,
// entered on three tablets and synced, reports what the engine says of each
// household, counted in the test; on both stores.
func TestReportAgreesWithTheEngine(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rasoat.db"))
		if err != nil {
			t.Fatal(err)
		}
		testReport(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(t.Context(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		testReport(t, st)
	})
}
