package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
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
)

// BenchmarkCommuneFirstSync measures each side apart: a real rasoatd
// process serves a commune (2,000 households of 4 members, every field
// filled: 156,000 changes) over loopback TCP to a fresh tablet in this
// process. ms/sync is the tablet's wall time; tablet-heap-MB its peak heap
// in use during the sync (sampled every 2 ms); server-rss-MB the server
// process's peak resident memory (VmHWM, Linux), start-up included.
// tablet-cpu-ms and server-cpu-ms are the CPU time (user + system) each
// process used per sync (the tablet's is this whole process's, the
// server's read from /proc in 10 ms ticks): on a shared machine they vary
// much less than wall time.
func BenchmarkCommuneFirstSync(b *testing.B) {
	ctx := context.Background()
	db := filepath.Join(b.TempDir(), "commune.db")
	fill(b, db)
	srv := startServer(b, db)
	srv.setup(b, 1, officer("lan"))
	conn := dial(b, srv.addr)
	var elapsed time.Duration
	var heap uint64
	var tabCPU, srvCPU float64
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		tab, err := client.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("tablet-%d.db", i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tab.Enrol(ctx, conn, srv.addr, srv.code(b, "lan"), "bench tablet"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		runtime.GC()
		stop := storetest.HeapPeak()
		own := ownCPU()
		other, _ := procCPU(srv.cmd.Process.Pid)
		start := time.Now()
		st, err := tab.Sync(ctx, conn)
		elapsed += time.Since(start)
		tabCPU += ownCPU() - own
		after, _ := procCPU(srv.cmd.Process.Pid)
		srvCPU += float64((after - other).Microseconds()) / 1000
		heap = max(heap, stop())
		if err != nil {
			b.Fatal(err)
		}
		if st.Snapshot != 2000*5 {
			b.Fatalf("tablet took %d entity states, want %d", st.Snapshot, 2000*5)
		}
		tab.Close()
	}
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/sync")
	b.ReportMetric(float64(heap)/(1<<20), "tablet-heap-MB")
	b.ReportMetric(tabCPU/float64(b.N), "tablet-cpu-ms/sync")
	b.ReportMetric(srvCPU/float64(b.N), "server-cpu-ms/sync")
	if rss, ok := peakRSS(srv.cmd.Process.Pid); ok {
		b.ReportMetric(float64(rss)/(1<<20), "server-rss-MB")
	}
}

// fill writes the commune into the server's file before rasoatd opens it,
// as tablets enrolling it would have pushed it.
func fill(b *testing.B, path string) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	g := storetest.New("0190f0c2-0000-7000-8000-0000000000e1", authtest.Village(1))
	if _, err := g.Commune(2000, 4, func(batch []*rasoatv1.Change) error {
		_, err := st.Push(ctx, store.Sender{Replica: g.Replica}, batch)
		return err
	}); err != nil {
		b.Fatal(err)
	}
}

// peakRSS reads a process's peak resident set size from /proc.
func peakRSS(pid int) (uint64, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// ownCPU is this process's CPU time (user + system) so far, in ms.
func ownCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

// procCPU is the CPU time, user and system, the process pid has used so
// far (Linux). On a machine shared with other work, the server's CPU per
// change is steadier than its rate, which follows the share of the cores
// the server is given.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15, in clock ticks.
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
	const tick = 10 * time.Millisecond // USER_HZ, 100 on every Linux we run on
	return time.Duration(user+sys) * tick, true
}
