// Package reporttest serves a store holding a province's report facts
// over a real gRPC server, with authentication on, and checks what
// ReportService answers for the province against the facts counted in Go
// (storetest.ExpectReport, the conformance suite's own counting): the
// province report's figures measured end to end, on either engine.
package reporttest

import (
	"context"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/report"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
	"github.com/rasoat/rasoat/server/syncsvc"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Store is a store that serves a province: sync, the directory, reports.
type Store interface {
	syncsvc.Store
	server.Directory
	authtest.Store
}

// Province is the province's code in the units Serve stores.
const Province = authtest.Province

// Service is ReportService on a real server over a store, and a province
// officer's client of it.
type Service struct {
	client rasoatv1.ReportServiceClient
}

// Serve stores the province's units (the communes and villages named by
// villages, codes "<commune>-NN") and a province officer in st, serves st
// on a loopback port until tb ends and enrols the officer through the
// real EnrolService.
func Serve(tb testing.TB, st Store, villages []string) *Service {
	tb.Helper()
	ctx := context.Background()
	units := []*rasoatv1.Unit{{Code: Province, Name: "Lạng Sơn", Level: rasoatv1.UnitLevel_UNIT_LEVEL_PROVINCE, Kind: "tỉnh"}}
	seen := map[string]bool{}
	for _, v := range villages {
		commune, _, ok := strings.Cut(v, "-")
		if !ok {
			tb.Fatalf("village %q: want <commune>-NN", v)
		}
		if !seen[commune] {
			seen[commune] = true
			units = append(units, &rasoatv1.Unit{Code: commune, Name: "Xã " + commune, Level: rasoatv1.UnitLevel_UNIT_LEVEL_COMMUNE, Kind: "xã", ParentCode: Province})
		}
		units = append(units, &rasoatv1.Unit{Code: v, Name: "Thôn " + v, Level: rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE, Kind: "thôn", ParentCode: commune})
	}
	if _, _, err := st.PutUnits(ctx, units, Province); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := st.PutPeople(ctx, []directory.Person{authtest.Person("so-ld", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}, Province)}); err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(server.WithSync(st), server.WithAuth(st, nil))
	if err != nil {
		tb.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, lis) }()
	tb.Cleanup(func() { stop(); <-done })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	token, err := authtest.Enrol(ctx, st, conn, "so-ld", "so-ld-laptop")
	if err != nil {
		tb.Fatal(err)
	}
	as, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), authtest.Bearer(token))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { as.Close() })
	return &Service{client: rasoatv1.NewReportServiceClient(as)}
}

// Report asks for the province's report for year, as rasoat report does.
func (s *Service) Report(ctx context.Context, year int32) (*rasoatv1.ReportResponse, error) {
	res, err := s.client.Report(ctx, &rasoatv1.ReportRequest{UnitCode: Province, ListYear: year})
	if err != nil {
		return nil, fmt.Errorf("report %s %d: %w", Province, year, err)
	}
	return res, nil
}

// Check asks for the province's report once and fails tb unless every
// figure of it is what the facts fs give for the province's villages,
// counted in Go; it returns how long the call took.
func (s *Service) Check(tb testing.TB, fs []store.HouseholdFacts, villages []string, year int32) time.Duration {
	tb.Helper()
	start := time.Now()
	got, err := s.Report(context.Background(), year)
	took := time.Since(start)
	if err != nil {
		tb.Fatal(err)
	}
	// The service dates overdue reviews by its own clock.
	// The service asks for the watch list with the built-in standards'
	// lines and its default length.
	q := store.ReportQuery{Villages: store.OnlyVillages(villages...), ListYear: int(year), Today: time.Now().Format(time.DateOnly),
		Watch: report.WatchRule(survey.Builtin(), report.DefaultWatchLimit)}
	rows := storetest.ExpectReport(fs, q)
	want := report.Build(rows)
	want.UnitCode, want.ListYear = Province, year
	want.PreviousYear.ListYear = year - 1
	want.WatchList = report.Watched(rows, q.Watch)
	if n := len(got.GetByCommune()); n == 0 || n != len(want.GetByCommune()) {
		tb.Fatalf("%d communes in the report, want %d", n, len(want.GetByCommune()))
	}
	// Sums of shares come out of the database and out of Go in other
	// orders: equal to 1e-9, not to the last bit.
	if !approxEqual(got.ProtoReflect(), want.ProtoReflect()) {
		tb.Errorf("the province's report is not what its facts give:\n got total %v\nwant total %v\n got AF %v\nwant AF %v",
			got.GetTotal(), want.GetTotal(), got.GetAlkireFoster(), want.GetAlkireFoster())
		for i := range min(len(got.GetByCommune()), len(want.GetByCommune())) {
			if g, w := got.GetByCommune()[i], want.GetByCommune()[i]; !approxEqual(g.ProtoReflect(), w.ProtoReflect()) {
				tb.Errorf("first commune that differs: got %v, want %v", g, w)
				break
			}
		}
	}
	return took
}

// approxEqual is proto.Equal with doubles equal to 1e-9 relative, field
// by field in the descriptor's order, at any depth.
func approxEqual(a, b protoreflect.Message) bool {
	fields := a.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if a.Has(fd) != b.Has(fd) {
			return false
		}
		va, vb := a.Get(fd), b.Get(fd)
		switch {
		case fd.IsMap():
			if !va.Equal(vb) {
				return false
			}
		case fd.IsList():
			la, lb := va.List(), vb.List()
			if la.Len() != lb.Len() {
				return false
			}
			for j := range la.Len() {
				if !approxValue(fd, la.Get(j), lb.Get(j)) {
					return false
				}
			}
		default:
			if !approxValue(fd, va, vb) {
				return false
			}
		}
	}
	return true
}

func approxValue(fd protoreflect.FieldDescriptor, a, b protoreflect.Value) bool {
	switch {
	case fd.Message() != nil:
		return approxEqual(a.Message(), b.Message())
	case fd.Kind() == protoreflect.DoubleKind:
		x, y := a.Float(), b.Float()
		return math.Abs(x-y) <= 1e-9*max(1, math.Abs(x), math.Abs(y))
	}
	return a.Equal(b)
}
