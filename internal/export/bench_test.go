package export

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/workflow"
)

// generatedPosted is a posted list of n households, as a province's
// largest communes would post them, built before the clock starts.
func generatedPosted(n int) workflow.PostedList {
	p := workflow.PostedList{Unit: "06517", Lists: map[string][]workflow.PostedHousehold{}}
	results := []string{"POOR", "NEAR_POOR", "NOT_POOR", "MIDDLE"}
	for i := range n {
		r := results[i%len(results)]
		h := workflow.PostedHousehold{ReviewID: fmt.Sprintf("0193a1f2-7c4e-7b1a-9d2e-%012d", i), HouseholdID: fmt.Sprintf("0193a1f2-7c4e-7b1a-8c2e-%012d", i),
			VillageCode: fmt.Sprintf("06517-%02d", i%20+1), HeadName: "Hoàng Văn Thắng", Address: "Thôn Nà Pàn, xã Quang Thành", Year: 2026,
			Round: "periodic", Status: workflow.Posted, Result: r, Deprivations: i % 7, IncomePerCapita: int64(900_000 + i%1_500_000),
			Since: "2025-11-03", PostedOn: "2025-11-03", ComplaintsUntil: "2025-11-17"}
		for _, l := range workflow.ListsOf("", r) {
			p.Lists[l] = append(p.Lists[l], h)
		}
	}
	return p
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// heapPeak samples the live heap (as the last garbage collection marked
// it: what is still referenced, not garbage awaiting collection) every
// millisecond until stopped, and returns the most it saw above what was
// live at the start.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	read := func() uint64 { metrics.Read(s); return s[0].Value.Uint64() }
	base := read()
	var peak uint64
	done, wg := make(chan struct{}), sync.WaitGroup{}
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > peak {
				peak = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		if v := read(); v > peak {
			peak = v
		}
		if peak < base {
			return 0
		}
		return peak - base
	}
}

// BenchmarkPostedXLSX writes a posted list as a workbook, 2,000 and
// 20,000 households (and 200,000, past the 16 MiB excelize keeps of a
// sheet in memory), in the same run: the bytes allocated per row and the
// live heap's peak show whether memory grows with the list.
//
//	go test -run '^$' -bench PostedXLSX -benchtime 3x ./internal/export/
func BenchmarkPostedXLSX(b *testing.B) {
	for _, n := range []int{2_000, 20_000, 200_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			p := generatedPosted(n)
			var size int64
			var peak uint64
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := &countingWriter{}
				stop := heapPeak()
				if err := WriteXLSX(w, Posted(p)); err != nil {
					b.Fatal(err)
				}
				peak = max(peak, stop())
				size = w.n
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			rows := float64(b.N) * float64(n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/rows, "B/row")
			b.ReportMetric(float64(peak)/(1<<20), "peak-live-MiB")
			b.ReportMetric(float64(size)/float64(n), "file-B/row")
		})
	}
}
