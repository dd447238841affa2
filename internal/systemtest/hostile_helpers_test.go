//go:build linux

package systemtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/rasoat/rasoat/server/store"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec sends a request as the bytes it is given and receives responses
// as bytes: a hostile client builds its 16 MB message on the wire directly,
// without holding millions of decoded messages itself. Its name is "proto",
// so the server decodes with its usual codec.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case []byte:
		return m, nil
	case *[]byte:
		return *m, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// floodMessage returns the wire form of a message of at most size bytes:
// prefix (other fields, already encoded), then field repeated with empty
// length-delimited entries (an empty message or string, two bytes each) as
// many times as fit. It is what a hostile client sends to make the server
// decode millions of elements from a message under its receive limit.
func floodMessage(prefix []byte, field protowire.Number, size int) (msg []byte, entries int) {
	entry := protowire.AppendBytes(protowire.AppendTag(nil, field, protowire.BytesType), nil)
	msg = make([]byte, 0, size)
	msg = append(msg, prefix...)
	// Double the filled part rather than append entry by entry.
	start := len(msg)
	msg = append(msg, entry...)
	for len(msg)+(len(msg)-start) <= size {
		msg = append(msg, msg[start:]...)
	}
	for len(msg)+len(entry) <= size {
		msg = append(msg, entry...)
	}
	return msg, (len(msg) - start) / len(entry)
}

// stringField is the wire form of one string field.
func stringField(field protowire.Number, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, field, protowire.BytesType), s)
}

// callRaw sends body to method on conn and reads every response, returning
// the call's final error (nil if the server answered OK). clientStreams
// and serverStreams describe the method; a unary method is neither.
func callRaw(ctx context.Context, conn *grpc.ClientConn, method string, clientStreams, serverStreams bool, body []byte) error {
	codec := grpc.ForceCodec(rawCodec{})
	if !clientStreams && !serverStreams {
		var resp []byte
		return conn.Invoke(ctx, method, body, &resp, codec)
	}
	desc := &grpc.StreamDesc{StreamName: method, ClientStreams: clientStreams, ServerStreams: serverStreams}
	s, err := conn.NewStream(ctx, desc, method, codec)
	if err != nil {
		return err
	}
	// io.EOF from SendMsg means the server ended the call: RecvMsg says how.
	if err := s.SendMsg(body); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for {
		var m []byte
		if err := s.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// procStatus reads fields of /proc/PID/status given in kB (VmRSS, VmHWM,
// VmData...), in bytes.
func procStatus(pid int, keys ...string) (map[string]uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make(map[string]uint64, len(keys))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !slices.Contains(keys, k) {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		out[k] = kb << 10
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) != len(keys) {
		return nil, fmt.Errorf("/proc/%d/status lacks some of %v", pid, keys)
	}
	return out, nil
}

// limitData caps the process's data segment (RLIMIT_DATA: its private
// writable memory, the Go heap included) so that a runaway server fails its
// own allocations instead of eating the shared machine, should the RSS
// watch below be too slow to catch it.
func limitData(pid int, limit uint64) error {
	rl := syscall.Rlimit{Cur: limit, Max: limit}
	_, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_DATA,
		uintptr(unsafe.Pointer(&rl)), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("prlimit RLIMIT_DATA on %d: %w", pid, errno)
	}
	return nil
}

// rssWatch samples a server's resident memory every 2 ms and kills the
// server with SIGKILL if it goes over a guard, so that a test of a server
// that does not bound its memory fails instead of taking the machine down.
type rssWatch struct {
	p       *proc
	peak    atomic.Uint64 // greatest VmHWM seen
	killed  atomic.Uint64 // VmRSS at which the guard killed it, 0 if not
	stopped chan struct{}
	done    chan struct{}
	once    sync.Once
}

func watchRSS(p *proc, guard uint64) *rssWatch {
	w := &rssWatch{p: p, stopped: make(chan struct{}), done: make(chan struct{})}
	pid := p.cmd.Process.Pid
	go func() {
		defer close(w.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			st, err := procStatus(pid, "VmRSS", "VmHWM")
			if err != nil {
				return // exited
			}
			w.peak.Store(max(w.peak.Load(), st["VmHWM"]))
			if st["VmRSS"] > guard {
				w.killed.Store(st["VmRSS"])
				p.kill()
				return
			}
			select {
			case <-w.stopped:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// stop ends the watch and returns the server's peak resident memory
// (VmHWM) and, if the guard killed it, the resident memory it had then.
func (w *rssWatch) stop() (peak, killedAt uint64) {
	w.once.Do(func() { close(w.stopped) })
	<-w.done
	if st, err := procStatus(w.p.cmd.Process.Pid, "VmHWM"); err == nil {
		w.peak.Store(max(w.peak.Load(), st["VmHWM"]))
	}
	return w.peak.Load(), w.killed.Load()
}

// fillVillage writes households of members members each into village of
// the store at path, before rasoatd opens it, as tablets enrolling them
// would have pushed; it returns the number of changes.
func fillVillage(t testing.TB, path, replica, village string, households, members int) int {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := storetest.New(replica, village)
	n, err := g.Commune(households, members, func(batch []*rasoatv1.Change) error {
		_, err := st.Push(ctx, store.Sender{Replica: g.Replica}, batch)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// median of ds (which it sorts).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// fileSize is the size of path, 0 if it does not exist.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
