package client

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/syncsvc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
)

// skewClock is a wall clock a test can set ahead or back.
type skewClock struct{ offset atomic.Int64 }

func (c *skewClock) now() time.Time           { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *skewClock) set(offset time.Duration) { c.offset.Store(int64(offset)) }

func open(t testing.TB, path string, opts ...Option) *Client {
	t.Helper()
	c, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tablet opens a fresh tablet file in a temporary directory.
func tablet(t testing.TB, opts ...Option) *Client {
	t.Helper()
	return open(t, filepath.Join(t.TempDir(), "tablet.db"), opts...)
}

// server is a real sync server (syncsvc over a SQLite file) reached
// through an in-memory connection.
type server struct {
	db   *sqlite.DB
	conn *grpc.ClientConn
}

func newServer(t testing.TB, opts ...syncsvc.Option) *server {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20))
	rasoatv1.RegisterSyncServiceServer(srv, syncsvc.New(db, opts...))
	go srv.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		db.Close()
	})
	return &server{db: db, conn: conn}
}

// log returns every change the server stored, in server order.
func (s *server) log(t testing.TB) []*rasoatv1.Change {
	t.Helper()
	var out []*rasoatv1.Change
	var after store.Position
	for {
		next, more, err := s.db.Pull(context.Background(), store.AllVillages(), after, 10000, func(c *rasoatv1.Change, _ store.Position) error {
			out = append(out, c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			return out
		}
		after = next
	}
}

func syncOK(t testing.TB, c *Client, s *server, opts ...SyncOption) SyncStats {
	t.Helper()
	st, err := c.Sync(context.Background(), s.conn, opts...)
	if err != nil {
		t.Fatalf("sync %s: %v", c.ReplicaID(), err)
	}
	return st
}

// dump returns every row of the tablet file, to compare before and after.
func dump(t testing.TB, c *Client) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		"SELECT replica_id, next_seq, hlc_last, hlc_known, pull_cursor, acked_seq FROM meta",
		"SELECT id, kind, household_id, village_code, hex(state), conflicted FROM entities ORDER BY id",
		"SELECT origin_seq, entity_id, hlc, hex(payload) FROM outbox ORDER BY origin_seq",
	} {
		rows, err := c.r.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				fmt.Fprintf(&b, "%s|", v.String)
			}
			b.WriteByte('\n')
		}
		rows.Close()
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }

// fullHousehold has every field of the form filled, with members members.
func fullHousehold(members int) *rasoatv1.Household {
	h := &rasoatv1.Household{
		Area:          rasoatv1.Area_AREA_RURAL,
		HeadName:      "Hoàng Văn Thắng",
		Address:       "Thôn Nà Pàn, xã Quang Thành",
		HeadEthnicity: "Tày",
		PolicyFlags:   []rasoatv1.PolicyFlag{rasoatv1.PolicyFlag_POLICY_FLAG_SOCIAL_PROTECTION},
		ReviewDate:    "2025-11-15",
		Housing:       &rasoatv1.Housing{WallDurable: ptr(true), FrameDurable: ptr(true), RoofDurable: ptr(false), FloorAreaM2: ptr(36.5)},
		WaterSanitation: &rasoatv1.WaterSanitation{
			WaterSource: rasoatv1.WaterSource_WATER_SOURCE_PROTECTED_SPRING,
			Latrine:     rasoatv1.Latrine_LATRINE_DOUBLE_VAULT,
		},
		Information: &rasoatv1.Information{
			UsesTelecom: ptr(true), UsesDigitalServices: ptr(false), HearsLoudspeaker: true,
			InfoDevices: []rasoatv1.InfoDevice{rasoatv1.InfoDevice_INFO_DEVICE_TV, rasoatv1.InfoDevice_INFO_DEVICE_SMARTPHONE},
		},
		Environment: &rasoatv1.Environment{WasteTreatment: rasoatv1.WasteTreatment_WASTE_TREATMENT_TREATED_ON_SITE},
		Income: &rasoatv1.Income{Basis: &rasoatv1.Income_Annual{Annual: &rasoatv1.AnnualIncome{
			WagesVnd: 24_000_000, FarmingVnd: 18_500_000,
		}}},
	}
	for i := range members {
		m := &rasoatv1.Member{
			FullName:           fmt.Sprintf("Hoàng Thị Mai %d", i),
			Sex:                rasoatv1.Sex_SEX_FEMALE,
			BirthDate:          "2012-04-09",
			Relation:           rasoatv1.Relation_RELATION_CHILD,
			Ethnicity:          "Tày",
			HighestEducation:   rasoatv1.EducationLevel_EDUCATION_LEVEL_PRIMARY,
			InSchool:           ptr(true),
			SchoolLevel:        rasoatv1.SchoolLevel_SCHOOL_LEVEL_LOWER_SECONDARY,
			HasHealthInsurance: ptr(true),
			Employment:         rasoatv1.Employment_EMPLOYMENT_NOT_IN_LABOUR_FORCE,
			DisabilitySevere:   true,
			ChildStunted:       true,
			ChildUnderweight:   true,
			IllUntreated:       true,
		}
		if i == 0 {
			m.Relation, m.BirthDate, m.InSchool, m.SchoolLevel = rasoatv1.Relation_RELATION_HEAD, "1980-02-01", ptr(false), rasoatv1.SchoolLevel_SCHOOL_LEVEL_UNSPECIFIED
			m.Employment, m.HighestEducation = rasoatv1.Employment_EMPLOYMENT_SELF_EMPLOYED, rasoatv1.EducationLevel_EDUCATION_LEVEL_LOWER_SECONDARY
			m.ChildStunted, m.ChildUnderweight = false, false
		}
		h.Members = append(h.Members, m)
	}
	return h
}

// withIDs returns h with the ids and village the tablet gave it, for
// comparing with what it materialises.
func withIDs(t testing.TB, c *Client, id, village string, h *rasoatv1.Household) *rasoatv1.Household {
	t.Helper()
	got, err := c.Household(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := proto.Clone(h).(*rasoatv1.Household)
	want.Id, want.VillageCode = id, village
	if len(got.Members) != len(want.Members) {
		t.Fatalf("household has %d members, want %d", len(got.Members), len(want.Members))
	}
	for i := range want.Members {
		if want.Members[i].Id == "" {
			want.Members[i].Id = got.Members[i].Id
		}
	}
	return want
}
