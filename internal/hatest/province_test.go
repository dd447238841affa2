package hatest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/pgtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Lạng Sơn's 65 communes (since 1 July 2025), each with its own commune
// server pushing up to the province. A commune's batch relays one new
// household, 4 members, every field filled (storetest), from each of its
// 5 villages' tablets: 5 × (18 + 4 × 15) = 390 changes.
const (
	communes         = 65
	villagesPerCS    = 5
	membersPerHH     = 4
	changesPerHH     = 18 + membersPerHH*15
	changesPerBatch  = villagesPerCS * changesPerHH
	provinceCode     = authtest.Province
	firstCommuneCode = 6001
)

// rasoatdBin is the built server, made once by the first test that needs
// it (a run that skips every test builds nothing).
var (
	buildOnce  sync.Once
	rasoatdBin string
	buildErr   error
)

func buildRasoatd(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rasoat-hatest-bin")
		if err != nil {
			buildErr = err
			return
		}
		rasoatdBin = filepath.Join(dir, "rasoatd")
		out, err := exec.Command("go", "build", "-o", rasoatdBin, "github.com/rasoat/rasoat/server/cmd/rasoatd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build rasoatd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return rasoatdBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if rasoatdBin != "" {
		os.RemoveAll(filepath.Dir(rasoatdBin))
	}
	os.Exit(code)
}

// needPostgres skips tb unless RASOAT_TEST_POSTGRES is set: the gate CI
// sets when it has PostgreSQL (the clusters here are this package's own,
// made with the binaries beside the one CI started).
func needPostgres(tb testing.TB) {
	tb.Helper()
	if !pgtest.Available() {
		tb.Skipf("%s is not set: no PostgreSQL to build a primary and a standby with (bash .ci/run sets it)", pgtest.Env)
	}
}

// server is a running rasoatd process.
type server struct {
	cmd  *exec.Cmd
	addr string
	db   string
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	logs bytes.Buffer // its stderr
}

var addrRE = regexp.MustCompile(`addr=(\S+)`)

// startServer runs rasoatd on a free loopback port over db (a SQLite file
// or a postgres:// URL) and waits for it to say where it listens.
func startServer(tb testing.TB, db string) *server {
	tb.Helper()
	// At info, a successful call is not logged (debug), a failed one is.
	cmd := exec.Command(buildRasoatd(tb), "--addr", "127.0.0.1:0", "--db", db)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	s := &server{cmd: cmd, db: db, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := addrRE.FindStringSubmatch(line); m != nil && strings.Contains(line, "listening") {
				addr <- m[1]
			}
			s.mu.Lock()
			if s.logs.Len() < 1<<20 {
				s.logs.WriteString(line + "\n")
			}
			s.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(s.done)
	}()
	tb.Cleanup(s.kill)
	select {
	case s.addr = <-addr:
		return s
	case <-s.done:
		tb.Fatalf("rasoatd exited before listening:\n%s", s.log())
	case <-time.After(30 * time.Second):
		tb.Fatalf("rasoatd did not say where it listens:\n%s", s.log())
	}
	return nil
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// kill sends SIGKILL: whatever rasoatd acknowledged must already be
// durable in its store.
func (s *server) kill() {
	s.once.Do(func() {
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	})
}

// stop asks rasoatd to stop gracefully (SIGTERM), so a SQLite file is
// checkpointed and its size is the store's.
func (s *server) stop() {
	s.once.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Signal(syscall.SIGKILL)
			<-s.done
		}
	})
}

// dialReady opens a connection of its own (a commune server is one
// client) and waits until it is ready, so that connecting is outside a
// measured run.
func dialReady(ctx context.Context, addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		return nil, err
	}
	conn.Connect()
	for {
		st := conn.GetState()
		if st == connectivity.Ready {
			return conn, nil
		}
		if !conn.WaitForStateChange(ctx, st) {
			conn.Close()
			return nil, fmt.Errorf("connect to %s: %v (last state %v)", addr, ctx.Err(), st)
		}
	}
}

// communeServer is one commune's server as the province sees it: a device
// enrolled for a person with the COMMUNE_SERVER role in its commune, under
// a replica of its own, relaying the changes its villages' tablets made
// (their origins, seqs and stamps unchanged), in batches made before the
// run so that making them costs the shared cores nothing while measured.
type communeServer struct {
	code     string   // the commune's national code
	person   string   // its COMMUNE_SERVER person
	replica  string   // the commune server's own replica
	villages []string // one tablet each
	tablets  []string // the tablets' replicas, the changes' origins
	batches  [][]*rasoatv1.Change
	token    string
	conn     *grpc.ClientConn
}

func (cs *communeServer) changes() int { return len(cs.batches) * changesPerBatch }

// newCommuneServers makes n commune servers with batches batches each.
func newCommuneServers(n, batches int) []*communeServer {
	out := make([]*communeServer, n)
	for i := range out {
		code := fmt.Sprintf("%05d", firstCommuneCode+i)
		cs := &communeServer{code: code, person: "cs-" + code, replica: uuid.Must(uuid.NewV7()).String()}
		gens := make([]*storetest.Gen, villagesPerCS)
		for v := range gens {
			village := fmt.Sprintf("%s-%02d", code, v+1)
			tablet := uuid.Must(uuid.NewV7()).String()
			cs.villages, cs.tablets = append(cs.villages, village), append(cs.tablets, tablet)
			gens[v] = storetest.New(tablet, village)
		}
		for range batches {
			batch := make([]*rasoatv1.Change, 0, changesPerBatch)
			for _, g := range gens {
				batch = append(batch, g.Household(membersPerHH)...)
			}
			for _, c := range batch {
				c.Value = canonical(c)
			}
			cs.batches = append(cs.batches, batch)
		}
		out[i] = cs
	}
	return out
}

// canonicalValues caches entity.Canonical of the generator's values,
// which are the same few per field path.
var canonicalValues sync.Map

// canonical is c's value in the one form a tablet writes (entity.Canonical,
// as the client library stores it).
func canonical(c *rasoatv1.Change) []byte {
	k := fmt.Sprintf("%d\x00%s\x00%s", c.GetKind(), c.GetField(), c.GetValue())
	if v, ok := canonicalValues.Load(k); ok {
		return v.([]byte)
	}
	v, err := entity.Canonical(c.GetKind(), c.GetField(), c.GetValue())
	if err != nil {
		panic(fmt.Sprintf("load generator: %s: %v", c.GetField(), err))
	}
	canonicalValues.Store(k, v)
	return v
}

// setupProvince makes the province on a running rasoatd as an operator
// would: the first admin's code from rasoatd bootstrap, the admin enrolled
// over the API, the units (Lạng Sơn, its communes and villages, served),
// a COMMUNE_SERVER person per commune, and each commune server's device
// enrolled with a code, connected and ready. Outside any measured time.
func setupProvince(tb testing.TB, ctx context.Context, s *server, css []*communeServer) {
	tb.Helper()
	out, err := exec.CommandContext(ctx, buildRasoatd(tb), "bootstrap", "--db", s.db).Output()
	if err != nil {
		tb.Fatalf("rasoatd bootstrap: %v", err)
	}
	anon, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	defer anon.Close()
	enrol := rasoatv1.NewEnrolServiceClient(anon)
	res, err := enrol.Enrol(ctx, &rasoatv1.EnrolRequest{Code: strings.TrimSpace(string(out)), ReplicaId: "admin-laptop", DeviceName: "admin laptop"})
	if err != nil {
		tb.Fatalf("enrol the admin: %v", err)
	}
	adminConn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), authtest.Bearer(res.GetToken()))
	if err != nil {
		tb.Fatal(err)
	}
	defer adminConn.Close()
	admin := rasoatv1.NewAdminServiceClient(adminConn)

	units := []*rasoatv1.Unit{{Code: provinceCode, Name: "Lạng Sơn", Level: rasoatv1.UnitLevel_UNIT_LEVEL_PROVINCE, Kind: "tỉnh"}}
	var people []*rasoatv1.Person
	for _, cs := range css {
		units = append(units, &rasoatv1.Unit{Code: cs.code, Name: "Xã " + cs.code, Level: rasoatv1.UnitLevel_UNIT_LEVEL_COMMUNE, Kind: "xã", ParentCode: provinceCode})
		for i, v := range cs.villages {
			units = append(units, &rasoatv1.Unit{Code: v, Name: fmt.Sprintf("Thôn %d", i+1), Level: rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE, Kind: "thôn", ParentCode: cs.code})
		}
		people = append(people, &rasoatv1.Person{Id: cs.person, Name: "Máy chủ xã " + cs.code, Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_SERVER}, UnitCodes: []string{cs.code}})
	}
	if _, err := admin.PutUnits(ctx, &rasoatv1.PutUnitsRequest{Units: units, ServedUnitCode: provinceCode}); err != nil {
		tb.Fatalf("put units: %v", err)
	}
	if _, err := admin.PutPeople(ctx, &rasoatv1.PutPeopleRequest{People: people}); err != nil {
		tb.Fatalf("put people: %v", err)
	}
	for _, cs := range css {
		code, err := admin.IssueCode(ctx, &rasoatv1.IssueCodeRequest{PersonId: cs.person})
		if err != nil {
			tb.Fatalf("issue a code for %s: %v", cs.person, err)
		}
		res, err := enrol.Enrol(ctx, &rasoatv1.EnrolRequest{Code: code.GetCode(), ReplicaId: cs.replica, DeviceName: "commune server " + cs.code})
		if err != nil {
			tb.Fatalf("enrol %s: %v", cs.person, err)
		}
		cs.token = res.GetToken()
		if cs.conn, err = dialReady(ctx, s.addr, authtest.Bearer(cs.token)); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { cs.conn.Close() })
	}
}

// ack is one batch acknowledged: when its first try started, when its
// last try was sent and answered, how many tries it took, and the answer.
type ack struct {
	commune, batch       int
	first, start, answer time.Time
	tries                int
	accepted, duplicates int
}

// loadResult is one run of pushAll.
type loadResult struct {
	acks     []ack
	failures int // tries that ended in an error and were retried
	wall     time.Duration
}

// retryable says whether a failed push is one to send again, unchanged:
// the server or its store is unreachable or busy for now. Anything else
// (a refusal of the changes or of the caller) is a bug in the test.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Internal, codes.Unknown, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}

// pushAll has every commune server push its batches over its own
// connection, one after the other, all at once from a common start. A
// batch is retried, the same changes, until it is acknowledged (with
// retry, false: the first error fails the run). onAck, if not nil, is
// called after every acknowledgement with the count so far.
func pushAll(ctx context.Context, css []*communeServer, retry bool, onAck func(n int)) (loadResult, error) {
	var (
		mu    sync.Mutex
		r     loadResult
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, len(css))
	)
	for i, cs := range css {
		cl := rasoatv1.NewSyncServiceClient(cs.conn)
		wg.Go(func() {
			<-start
			for bi, batch := range cs.batches {
				a := ack{commune: i, batch: bi, first: time.Now()}
				backoff := 20 * time.Millisecond
				for {
					a.tries++
					a.start = time.Now()
					pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					resp, err := cl.Push(pctx, &rasoatv1.PushRequest{ReplicaId: cs.replica, Changes: batch})
					cancel()
					a.answer = time.Now()
					if err == nil {
						a.accepted, a.duplicates = int(resp.GetAccepted()), int(resp.GetDuplicates())
						// All or nothing: a batch is new, or (a retry of one
						// committed but not answered) all duplicates.
						if !(a.accepted == len(batch) && a.duplicates == 0) && !(a.tries > 1 && a.accepted == 0 && a.duplicates == len(batch)) {
							errs[i] = fmt.Errorf("commune %s batch %d of %d changes, try %d: answered %d accepted, %d duplicates",
								cs.code, bi, len(batch), a.tries, a.accepted, a.duplicates)
							return
						}
						break
					}
					if !retry || !retryable(err) || ctx.Err() != nil {
						errs[i] = fmt.Errorf("commune %s batch %d, try %d: %w", cs.code, bi, a.tries, err)
						return
					}
					mu.Lock()
					r.failures++
					mu.Unlock()
					time.Sleep(backoff)
					backoff = min(2*backoff, 500*time.Millisecond)
				}
				mu.Lock()
				r.acks = append(r.acks, a)
				n := len(r.acks)
				mu.Unlock()
				if onAck != nil {
					onAck(n)
				}
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	r.wall = time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// percentile returns the p-quantile (0 < p <= 1) of sorted by nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procCPU is the CPU time, user and system, process pid has used so far
// (Linux /proc; clock ticks of 10 ms).
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	user, err1 := strconv.ParseUint(f[11], 10, 64)
	sys, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(user+sys) * 10 * time.Millisecond, true
}
