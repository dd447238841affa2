//go:build linux

// Package peerbench measures rasoat against the peer a user would otherwise
// pick, PouchDB 9 replicating from an express-pouchdb server, on the same
// data, in the same run, on the same machine, and prints the ratio.
//
// It runs only when asked (make bench-peer, or
// go test -run TestPeer -v ./internal/peerbench -peerbench): a plain
// go test ./... skips it at once and needs neither Node nor node_modules.
//
// The data, the same on both sides: storetest's commune (households of 4
// members, every field of the contract filled) is generated once; its
// changes are pushed into a real rasoatd SQLite file, and the same changes
// are folded into PouchDB documents, one per entity, as a PouchDB
// application would model them:
//
//   - a household entity is a document {_id: its UUIDv7, type: "household",
//     village, ...fields}, each field path nested as in the household's
//     JSON form ("housing.floorAreaM2": 36.5 is {"housing": {"floorAreaM2":
//     36.5}}), each value the very JSON the change carries;
//   - a member entity is a document {_id, type: "member", household: the
//     household's _id, village, ...fields}.
//
// With -peerbench.embed the members are instead an array "members" inside
// their household's document (each {id, ...fields}), as the household's JSON
// form has them: a quarter of the documents, the same values; but then an
// edit to any member is a new revision of the whole household, and two
// collaborators editing different members of one household conflict.
//
// storetest makes no review entity, so neither side holds review records.
// rasoat's tablet keeps per-field stamps and the change log beside the
// values; PouchDB keeps a revision tree per document: each side stores what
// its own model needs, and the timing is of its whole sync.
//
// The scenarios, each timed on both sides, runs interleaved (which side goes
// first alternates), one untimed warm-up run per side first:
//
//  1. first sync: a fresh on-disk replica (rasoat: client.Open on a new file;
//     PouchDB: new PouchDB(dir), leveldb) takes the whole commune from the
//     server process over loopback;
//  2. ten edits: that replica in sync, ten households get a new
//     housing.floorAreaM2 on the server (rasoat: another tablet writes and
//     pushes them; PouchDB: the documents are updated over HTTP), untimed;
//     then the replica's incremental sync is timed.
package peerbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/server/store"

	"github.com/rasoat/rasoat/client"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	enabled    = flag.Bool("peerbench", false, "run the peer benchmark (needs node, and npm ci in internal/peerbench)")
	runs       = flag.Int("peerbench.runs", 7, "timed runs of each side, after one warm-up run each")
	households = flag.Int("peerbench.households", 2000, "households in the commune (4 members each)")
	docsPath   = flag.String("peerbench.docs", "", "also keep PouchDB's documents (JSON Lines) in this file, for running pouch.mjs on its own")
	embed      = flag.Bool("peerbench.embed", false, "PouchDB: members inside their household's document (2,000 documents) instead of one document per entity")
	pouchBatch = flag.Int("peerbench.pouchbatch", 0, "PouchDB's replication batch_size (0: its default, 100 documents)")
)

const (
	members = 4
	edited  = 10
)

// village is the commune's one village; codes are enrolment codes made
// with the commune, one for each replica the benchmark enrols (the editor,
// then a tablet a run): both run with authentication on, as in the field.
var (
	village = authtest.Village(1)
	codes   []string
)

// enrol enrols c for the commune's officer with the next code.
func enrol(t *testing.T, c *client.Client, conn *grpc.ClientConn) {
	t.Helper()
	if len(codes) == 0 {
		t.Fatal("no enrolment code left")
	}
	code := codes[0]
	codes = codes[1:]
	if _, err := c.Enrol(context.Background(), conn, "peerbench", code, "peerbench"); err != nil {
		t.Fatal(err)
	}
}

// TestPeer prints, for each scenario, rasoat's and PouchDB's min / median /
// max wall time in ms and the ratio of the medians.
func TestPeer(t *testing.T) {
	if !*enabled {
		t.Skip("the peer benchmark runs with -peerbench (make bench-peer)")
	}
	if *runs < 1 {
		t.Fatal("-peerbench.runs must be at least 1")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "pouchdb")); err != nil {
		t.Fatal("node_modules missing: run npm ci --prefix internal/peerbench (make bench-peer does)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	load0 := loadavg()

	// The commune: into rasoatd's file, and as documents for PouchDB.
	db, docs := filepath.Join(dir, "commune.db"), filepath.Join(dir, "commune.jsonl")
	if *docsPath != "" {
		docs = *docsPath
	}
	ids := fill(t, db, docs)
	srv := startServer(t, buildServer(t, dir), db)
	conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	editor, err := client.Open(ctx, filepath.Join(dir, "editor.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer editor.Close()
	enrol(t, editor, conn)
	if _, err := editor.Sync(ctx, conn); err != nil {
		t.Fatal(err)
	}

	pouch := startPouch(t, docs, filepath.Join(dir, "pouch"))
	batch := "PouchDB's default batch_size (100)"
	if *pouchBatch > 0 {
		batch = fmt.Sprintf("batch_size %d", *pouchBatch)
	}
	model := "one per entity"
	if *embed {
		model = "one per household, members inside"
	}
	fmt.Printf("PouchDB %s on Node %s, replicating with %s; server: %d documents (%s), adapter %q over %s, %.1f MB on disk (%s)\n",
		pouch.hello.PouchDB, pouch.hello.Node, batch, pouch.hello.Server.Docs, model, pouch.hello.Server.Adapter,
		pouch.hello.Server.Backend, mb(pouch.hello.Server.DiskBytes), strings.Join(pouch.hello.Server.Files, " "))

	var rs, ps []result
	for i := 0; i <= *runs; i++ { // run 0 is the warm-up
		var r, p result
		rasoatRun := func() {
			r = runRasoat(t, srv, conn, editor, ids, filepath.Join(dir, fmt.Sprintf("tablet-%d.db", i)), i)
		}
		pouchRun := func() { p = pouch.run(t) }
		if i%2 == 0 {
			rasoatRun()
			pouchRun()
		} else {
			pouchRun()
			rasoatRun()
		}
		warm := ""
		if i == 0 {
			warm = " (warm-up, not counted)"
		} else {
			rs, ps = append(rs, r), append(ps, p)
		}
		fmt.Printf("run %d%s: first sync rasoat %.1f ms, PouchDB %.1f ms; ten edits rasoat %.2f ms, PouchDB %.2f ms\n",
			i, warm, r.first, p.first, r.edits, p.edits)
	}
	last := ps[len(ps)-1]
	fmt.Printf("replica on disk after the first sync: rasoat %.1f MB (SQLite file and WAL), PouchDB %.1f MB (adapter %q over %s: %s)\n",
		mb(rs[len(rs)-1].disk), mb(last.disk), last.adapter, last.backend, strings.Join(last.files, " "))

	fmt.Printf("\n%d households × %d members (%d entities), %d runs each side, interleaved; wall time in ms\n",
		*households, members, *households*(1+members), *runs)
	fmt.Printf("%-24s  %-26s  %-26s  %s\n", "scenario", "rasoat min / median / max", "PouchDB min / median / max", "PouchDB ÷ rasoat (medians)")
	row := func(name string, f func(result) float64, target float64) {
		a, b := stats(rs, f), stats(ps, f)
		fmt.Printf("%-24s  %-26s  %-26s  %.1f× (target ≥ %.0f×)\n", name, a, b, b.median/a.median, target)
	}
	row("first sync", func(r result) float64 { return r.first }, 6)
	row("ten edited households", func(r result) float64 { return r.edits }, 5)

	fmt.Printf("\nCPU time in ms (user + system) used meanwhile, replica's process + server's (server in 10 ms ticks)\n")
	cpu := func(name string, f func(result) float64) {
		a, b := stats(rs, f), stats(ps, f)
		fmt.Printf("%-24s  %-26s  %-26s  %.1f×\n", name, a, b, b.median/a.median)
	}
	cpu("first sync", func(r result) float64 { return r.firstCPU + r.firstServerCPU })
	cpu("  replica alone", func(r result) float64 { return r.firstCPU })
	cpu("  server alone", func(r result) float64 { return r.firstServerCPU })
	cpu("ten edited households", func(r result) float64 { return r.editsCPU + r.editsServerCPU })
	fmt.Printf("load average (1 min) at the start %s, at the end %s, on %d cores\n", load0, loadavg(), runtime.NumCPU())
}

// result is one run of one side.
type result struct {
	first, edits float64 // ms, wall time
	// CPU time (user + system) in ms that the replica's process and the
	// server's used meanwhile: steadier than wall time on a shared machine.
	// The server's is read from /proc in clock ticks of 10 ms.
	firstCPU, firstServerCPU, editsCPU, editsServerCPU float64
	disk                                               int64 // replica's bytes on disk after the first sync
	// PouchDB's replica: which adapter wrote it, and what files it left.
	adapter, backend string
	files            []string
}

func runRasoat(t *testing.T, srv *proc, conn *grpc.ClientConn, editor *client.Client, ids []string, path string, n int) result {
	ctx := context.Background()
	tab, err := client.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		tab.Close()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
	}()
	var r result
	enrol(t, tab, conn)

	pid := srv.cmd.Process.Pid
	runtime.GC()
	own, other := ownCPU(), procCPU(pid)
	start := time.Now()
	st, err := tab.Sync(ctx, conn)
	r.first = ms(time.Since(start))
	r.firstCPU, r.firstServerCPU = ownCPU()-own, procCPU(pid)-other
	if err != nil {
		t.Fatal(err)
	}
	if want := *households * (1 + members); st.Snapshot != want {
		t.Fatalf("first sync took %d entity states, want %d", st.Snapshot, want)
	}
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(path + suffix); err == nil {
			r.disk += fi.Size()
		}
	}

	for _, id := range ids {
		if err := editor.SetField(ctx, id, "housing.floorAreaM2", fmt.Appendf(nil, "%d", 20+n)); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := editor.Sync(ctx, conn); err != nil || st.Pushed != edited {
		t.Fatalf("editor pushed %d of %d edits: %v", st.Pushed, edited, err)
	}

	runtime.GC()
	own, other = ownCPU(), procCPU(pid)
	start = time.Now()
	st, err = tab.Sync(ctx, conn)
	r.edits = ms(time.Since(start))
	r.editsCPU, r.editsServerCPU = ownCPU()-own, procCPU(pid)-other
	if err != nil {
		t.Fatal(err)
	}
	if st.Pulled != edited {
		t.Fatalf("incremental sync pulled %d changes, want %d", st.Pulled, edited)
	}
	return r
}

// fill writes the commune into the server's file before rasoatd opens it,
// as tablets enrolling it would have pushed it, and the same changes as
// PouchDB documents into docs (JSON Lines, in the order made). It returns
// the ids of the first ten households: the ones both sides edit.
func fill(t *testing.T, path, docs string) []string {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	byID := map[string]map[string]any{}
	var order, hhs []string
	g := storetest.New("0190f0c2-0000-7000-8000-0000000000e1", village)
	if _, err := g.Commune(*households, members, func(batch []*rasoatv1.Change) error {
		for _, c := range batch {
			d := byID[c.EntityId]
			if d == nil {
				d = map[string]any{"_id": c.EntityId, "village": c.VillageCode}
				switch c.Kind {
				case rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD:
					d["type"] = "household"
					hhs = append(hhs, c.EntityId)
				case rasoatv1.EntityKind_ENTITY_KIND_MEMBER:
					d["type"] = "member"
					d["household"] = c.HouseholdId
				default:
					return fmt.Errorf("unexpected entity kind %v", c.Kind)
				}
				byID[c.EntityId] = d
				order = append(order, c.EntityId)
			}
			setPath(d, c.Field, json.RawMessage(slices.Clone(c.Value)))
		}
		_, err := st.Push(ctx, store.Sender{Replica: g.Replica}, batch)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(docs)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	if *embed {
		var top []string
		for _, id := range order {
			d := byID[id]
			if d["type"] != "member" {
				top = append(top, id)
				continue
			}
			h := byID[d["household"].(string)]
			m := map[string]any{"id": id}
			for k, v := range d {
				switch k {
				case "_id", "type", "household", "village":
				default:
					m[k] = v
				}
			}
			ms, _ := h["members"].([]any)
			h["members"] = append(ms, m)
		}
		order = top
	}
	for _, id := range order {
		if err := enc.Encode(byID[id]); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	if err := authtest.Seed(ctx, st, 1, authtest.Officer("lan")); err != nil {
		t.Fatal(err)
	}
	codes = nil
	for range *runs + 2 { // the editor, the warm-up, the runs
		code, err := authtest.Code(ctx, st, "lan")
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, code)
	}
	return hhs[:edited]
}

// setPath sets a dotted field path in a document, nesting objects.
func setPath(d map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, _ := d[p].(map[string]any)
		if next == nil {
			next = map[string]any{}
			d[p] = next
		}
		d = next
	}
	d[parts[len(parts)-1]] = v
}

// ---- rasoatd, as internal/systemtest runs it ----------------------------------

func buildServer(t *testing.T, dir string) string {
	bin := filepath.Join(dir, "rasoatd")
	build := exec.Command("go", "build", "-o", bin, "github.com/rasoat/rasoat/server/cmd/rasoatd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal("build rasoatd:", err)
	}
	return bin
}

type proc struct {
	cmd  *exec.Cmd
	addr string
}

var addrRE = regexp.MustCompile(`addr=(\S+)`)

// startServer runs rasoatd on a free loopback port over db and waits for it
// to say where it listens; the test's cleanup kills it.
func startServer(t *testing.T, bin, db string) *proc {
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--db", db)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
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
	select {
	case a := <-addr:
		return &proc{cmd: cmd, addr: a}
	case <-time.After(20 * time.Second):
		t.Fatal("rasoatd did not say where it listens")
	}
	return nil
}

// ---- PouchDB: pouch.mjs, one run per line on its stdin -----------------------

type pouchProc struct {
	in    io.WriteCloser
	out   *bufio.Scanner
	hello struct {
		Node    string `json:"node"`
		PouchDB string `json:"pouchdb"`
		Server  struct {
			Docs      int      `json:"docs"`
			Adapter   string   `json:"adapter"`
			Backend   string   `json:"backend"`
			DiskBytes int64    `json:"diskBytes"`
			Files     []string `json:"files"`
		} `json:"server"`
	}
}

func startPouch(t *testing.T, docs, dir string) *pouchProc {
	cmd := exec.Command("node", "--expose-gc", "pouch.mjs", "--docs", docs, "--dir", dir, "--stdin",
		"--batch-size", strconv.Itoa(*pouchBatch))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal("node:", err)
	}
	p := &pouchProc{in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		io.WriteString(in, "quit\n")
		in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	p.read(t, &p.hello)
	if want := docCount(); p.hello.Server.Docs != want {
		t.Fatalf("PouchDB server holds %d documents, want %d", p.hello.Server.Docs, want)
	}
	return p
}

func (p *pouchProc) read(t *testing.T, v any) {
	if !p.out.Scan() {
		t.Fatalf("pouch.mjs stopped: %v", p.out.Err())
	}
	if err := json.Unmarshal(p.out.Bytes(), v); err != nil {
		t.Fatalf("pouch.mjs said %q: %v", p.out.Text(), err)
	}
}

func (p *pouchProc) run(t *testing.T) result {
	if _, err := io.WriteString(p.in, "run\n"); err != nil {
		t.Fatal(err)
	}
	var r struct {
		FirstMs          float64  `json:"firstMs"`
		EditsMs          float64  `json:"editsMs"`
		FirstCPUMs       float64  `json:"firstCpuMs"`
		FirstServerCPUMs float64  `json:"firstServerCpuMs"`
		EditsCPUMs       float64  `json:"editsCpuMs"`
		EditsServerCPUMs float64  `json:"editsServerCpuMs"`
		Adapter          string   `json:"adapter"`
		Backend          string   `json:"backend"`
		DiskBytes        int64    `json:"diskBytes"`
		Files            []string `json:"files"`
	}
	p.read(t, &r)
	return result{first: r.FirstMs, edits: r.EditsMs,
		firstCPU: r.FirstCPUMs, firstServerCPU: r.FirstServerCPUMs, editsCPU: r.EditsCPUMs, editsServerCPU: r.EditsServerCPUMs,
		disk: r.DiskBytes, adapter: r.Adapter, backend: r.Backend, files: r.Files}
}

// docCount is how many documents PouchDB holds for the commune.
func docCount() int {
	if *embed {
		return *households
	}
	return *households * (1 + members)
}

// ---- figures ----------------------------------------------------------------

type summary struct{ min, median, max float64 }

func (s summary) String() string {
	return fmt.Sprintf("%s / %s / %s", num(s.min), num(s.median), num(s.max))
}

func stats(rs []result, f func(result) float64) summary {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + m) / 2
	}
	return summary{v[0], m, v[len(v)-1]}
}

// num prints a time in ms with about three significant digits.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ownCPU is this process's CPU time (user + system) so far, in ms.
func ownCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

// procCPU is another process's CPU time so far, in ms, from /proc (clock
// ticks of 10 ms).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return math.NaN()
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return math.NaN()
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) * 10
}

// loadavg is the machine's 1-minute load average: how busy the shared
// cores were.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
func mb(b int64) float64 { return float64(b) / (1 << 20) }
