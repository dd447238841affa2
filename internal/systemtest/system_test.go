// Package systemtest runs rasoat as its users do: a real rasoatd process on
// a loopback port over a real SQLite file, tablets as client libraries on
// their own files, and the server killed with SIGKILL in the middle of a
// push (as rqlite's system_test does with real nodes).
package systemtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rasoat/rasoat/client"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// The built server and command line.
var rasoatd, rasoatBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rasoat-systemtest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rasoatd, rasoatBin = filepath.Join(dir, "rasoatd"), filepath.Join(dir, "rasoat")
	build := exec.Command("go", "build", "-o", dir, "github.com/rasoat/rasoat/server/cmd/rasoatd", "github.com/rasoat/rasoat/client/cmd/rasoat")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build rasoatd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running rasoatd.
type proc struct {
	cmd  *exec.Cmd
	addr string
	db   string
	// After setup: the admin's token and API.
	adminToken string
	admin      rasoatv1.AdminServiceClient
	done       chan error
	killed     sync.Once
}

var addrRE = regexp.MustCompile(`addr=(\S+)`)

// startServer runs rasoatd on a free loopback port over db, with the
// flags extra, and waits for it to say where it listens.
func startServer(t testing.TB, db string, extra ...string) *proc {
	t.Helper()
	cmd := exec.Command(rasoatd, append([]string{"--addr", "127.0.0.1:0", "--db", db}, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, db: db, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "listening") {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.kill() })
	select {
	case p.addr = <-addr:
		return p
	case err := <-p.done:
		t.Fatalf("rasoatd exited before listening: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("rasoatd did not say where it listens")
	}
	return nil
}

// kill sends SIGKILL: no graceful stop, no flush, as a power cut would.
func (p *proc) kill() {
	p.killed.Do(func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	})
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func household(i int) *rasoatv1.Household {
	b := func(v bool) *bool { return &v }
	return &rasoatv1.Household{
		Area: rasoatv1.Area_AREA_RURAL, HeadName: fmt.Sprintf("Hoàng Văn Sáng %d", i),
		Address: "Bản Nà Pàn", HeadEthnicity: "Nùng", ReviewDate: "2025-10-20",
		Members: []*rasoatv1.Member{
			{FullName: fmt.Sprintf("Hoàng Văn Sáng %d", i), Sex: rasoatv1.Sex_SEX_MALE, BirthDate: "1979-04-02",
				Relation: rasoatv1.Relation_RELATION_HEAD, Ethnicity: "Nùng", HasHealthInsurance: b(true), InSchool: b(false),
				HighestEducation: rasoatv1.EducationLevel_EDUCATION_LEVEL_LOWER_SECONDARY, Employment: rasoatv1.Employment_EMPLOYMENT_SELF_EMPLOYED},
			{FullName: "Vi Thị Mai", Sex: rasoatv1.Sex_SEX_FEMALE, BirthDate: "2012-11-30", Relation: rasoatv1.Relation_RELATION_CHILD,
				Ethnicity: "Nùng", HasHealthInsurance: b(false), InSchool: b(true), SchoolLevel: rasoatv1.SchoolLevel_SCHOOL_LEVEL_LOWER_SECONDARY,
				HighestEducation: rasoatv1.EducationLevel_EDUCATION_LEVEL_PRIMARY, Employment: rasoatv1.Employment_EMPLOYMENT_NOT_IN_LABOUR_FORCE},
		},
		Housing:         &rasoatv1.Housing{WallDurable: b(false), FrameDurable: b(true), RoofDurable: b(false), FloorAreaM2: proto.Float64(14.5)},
		WaterSanitation: &rasoatv1.WaterSanitation{WaterSource: rasoatv1.WaterSource_WATER_SOURCE_PROTECTED_WELL, Latrine: rasoatv1.Latrine_LATRINE_NONE},
		Information:     &rasoatv1.Information{UsesTelecom: b(true), UsesDigitalServices: b(false), InfoDevices: []rasoatv1.InfoDevice{rasoatv1.InfoDevice_INFO_DEVICE_SMARTPHONE}},
		Environment:     &rasoatv1.Environment{WasteTreatment: rasoatv1.WasteTreatment_WASTE_TREATMENT_NONE},
		Income:          &rasoatv1.Income{Basis: &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: 1_350_000}},
	}
}

func syncOK(t *testing.T, c *client.Client, conn *grpc.ClientConn) client.SyncStats {
	t.Helper()
	st, err := c.Sync(context.Background(), conn)
	if err != nil {
		t.Fatalf("sync %s: %v", c.ReplicaID(), err)
	}
	return st
}

func conflicts(t *testing.T, c *client.Client) []client.Conflict {
	t.Helper()
	var out []client.Conflict
	if err := c.Conflicts(context.Background(), func(cf client.Conflict) error {
		out = append(out, cf)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTwoTabletsEditOfflineThenAgree: two collaborators edit the same
// household with no connection; after syncing with a real rasoatd both hold
// the same household, and both list the same conflict with both values.
func TestTwoTabletsEditOfflineThenAgree(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, filepath.Join(t.TempDir(), "commune.db"))
	srv.setup(t, 2, collaborator("hoa", "06517-01"), officer("lan"))
	conn := dial(t, srv.addr)
	a, b := enrolledTablet(t, srv, "a", "hoa"), enrolledTablet(t, srv, "b", "lan")

	id, err := a.CreateHousehold(ctx, "06517-01", household(1))
	if err != nil {
		t.Fatal(err)
	}
	syncOK(t, a, conn)
	syncOK(t, b, conn)

	// Offline on both: the same field, different values; and other fields.
	if err := a.SetField(ctx, id, "headName", []byte(`"Hoàng Văn Sáng"`)); err != nil {
		t.Fatal(err)
	}
	if err := b.SetField(ctx, id, "headName", []byte(`"Hoàng Văn Sang"`)); err != nil {
		t.Fatal(err)
	}
	if err := b.SetField(ctx, id, "housing.floorAreaM2", []byte(`32`)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{a, b, a} {
		syncOK(t, c, conn)
	}

	ha, err := a.Household(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := b.Household(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(ha, hb) {
		t.Fatalf("tablets disagree after sync:\n a: %v\n b: %v", ha, hb)
	}
	if ha.GetHousing().GetFloorAreaM2() != 32 {
		t.Errorf("b's edit of another field did not reach a: floor area %v", ha.GetHousing().GetFloorAreaM2())
	}
	ca, cb := conflicts(t, a), conflicts(t, b)
	if len(ca) != 1 || len(cb) != 1 {
		t.Fatalf("conflicts: a lists %d, b lists %d; want the one on headName on both", len(ca), len(cb))
	}
	if ca[0].Field != "headName" || len(ca[0].Others) != 1 {
		t.Fatalf("conflict %+v, want headName with one other value", ca[0])
	}
	values := map[string]bool{string(ca[0].Winner.Value): true, string(ca[0].Others[0].Value): true}
	if !values[`"Hoàng Văn Sáng"`] || !values[`"Hoàng Văn Sang"`] {
		t.Fatalf("conflict lists %v, want both names", values)
	}
	if fmt.Sprint(ca) != fmt.Sprint(cb) {
		t.Fatalf("tablets list different conflicts:\n a: %+v\n b: %+v", ca, cb)
	}
	if ca[0].Winner.Replica == ca[0].Others[0].Replica {
		t.Fatalf("both values attributed to %s", ca[0].Winner.Replica)
	}

	// The officer resolves it on a; after syncing, neither lists it.
	if err := a.SetField(ctx, id, "headName", []byte(`"Hoàng Văn Sáng"`)); err != nil {
		t.Fatal(err)
	}
	syncOK(t, a, conn)
	syncOK(t, b, conn)
	if ca, cb := conflicts(t, a), conflicts(t, b); len(ca)+len(cb) != 0 {
		t.Fatalf("after resolving: a lists %d, b lists %d conflicts", len(ca), len(cb))
	}
}

// TestKilledServerLosesNoAcknowledgedChange: SIGKILL rasoatd in the middle
// of a large push. Every batch the tablet saw acknowledged is in the file
// the dead server left; after a restart, a second sync completes and the
// log holds every change of the tablet exactly once.
func TestKilledServerLosesNoAcknowledgedChange(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "commune.db")
	srv := startServer(t, db)
	srv.setup(t, 1, collaborator("hoa", "06517-01"))
	tab := enrolledTablet(t, srv, "a", "hoa")
	const households = 600
	for i := range households {
		if _, err := tab.CreateHousehold(ctx, "06517-01", household(i)); err != nil {
			t.Fatal(err)
		}
	}
	total, err := tab.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}

	acked := 0
	killed := false
	conn := dial(t, srv.addr)
	_, err = tab.Sync(ctx, conn, client.WithBatchSize(500), client.WithProgress(func(p client.Progress) {
		if p.Phase != client.PhasePush {
			return
		}
		acked = p.Sent
		if !killed && p.Sent >= total/3 {
			killed = true
			// Kill from aside, a moment later, so that the next batch is
			// on its way or being committed when the server dies.
			victim := srv
			go func() {
				time.Sleep(3 * time.Millisecond)
				victim.kill()
			}()
		}
	}))
	if err == nil {
		t.Fatalf("sync succeeded although the server was killed (acked %d of %d)", acked, total)
	}
	if acked == 0 || acked >= total {
		t.Fatalf("killed after %d of %d acknowledged: the test did not kill mid-push", acked, total)
	}

	// What the dead server left on disk holds every acknowledged change.
	seqs := logSeqs(t, db, tab.ReplicaID())
	for s := uint64(1); s <= uint64(acked); s++ {
		if seqs[s] != 1 {
			t.Fatalf("acknowledged change %d is in the log %d times after the kill", s, seqs[s])
		}
	}

	srv = startServer(t, db)
	syncOK(t, tab, dial(t, srv.addr))
	if n, _ := tab.Pending(ctx); n != 0 {
		t.Fatalf("%d changes still pending after the retry", n)
	}
	srv.kill()
	seqs = logSeqs(t, db, tab.ReplicaID())
	if len(seqs) != total {
		t.Fatalf("log holds %d distinct changes of the tablet, want %d", len(seqs), total)
	}
	for s, n := range seqs {
		if n != 1 || s < 1 || s > uint64(total) {
			t.Fatalf("change %d appears %d times (want each of 1..%d once)", s, n, total)
		}
	}
}

// logSeqs opens the server's file directly and counts, per origin sequence
// number, the changes of replica in its log.
func logSeqs(t *testing.T, path, replica string) map[uint64]int {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seqs := map[uint64]int{}
	var cursor store.Position
	for {
		next, more, err := db.Pull(ctx, store.AllVillages(), cursor, 10_000, func(c *rasoatv1.Change, _ store.Position) error {
			if c.GetStamp().GetReplicaId() == replica {
				seqs[c.GetSeq()]++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		cursor = next
		if !more {
			return seqs
		}
	}
}
