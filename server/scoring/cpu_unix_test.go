//go:build unix

package scoring_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used, user and system. On a
// shared machine it is a steadier measure than wall-clock throughput.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
