package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// injected marks every error a fault makes, so that a sync error can be
// told from a real one.
const injected = "robustness: injected"

// faultPlan is what goes wrong during one Sync of one tablet. Each push
// fault names the index of the Push call (0-based, within this Sync) it
// hits; -1 is none. The counters are atomic: a snapshot is received on a
// goroutine of its own.
type faultPlan struct {
	failBefore int32 // the push never reaches the server
	lostAck    int32 // the server commits the push, the answer is lost
	dup        int32 // the push is sent twice
	cutPull    int32 // the pull stream breaks after this many responses
	cutSnap    int32 // the snapshot stream breaks after this many responses
	cancelPush int32 // the caller cancels once the server has answered this push
	cancelRecv int32 // the caller cancels once this many pull or snapshot responses arrived
	cancelAt   int   // the caller cancels at this progress report (1-based); 0 is none
	cancel     context.CancelFunc

	pushes, recvs                    atomic.Int32
	hitFail, hitLost, hitDup, hitCut atomic.Bool
	cancelled                        atomic.Bool
}

func noFaults() *faultPlan {
	return &faultPlan{failBefore: -1, lostAck: -1, dup: -1, cutPull: -1, cutSnap: -1, cancelPush: -1, cancelRecv: -1}
}

// randomFaults returns a plan with one or two faults.
func randomFaults(r *rand.Rand) *faultPlan {
	p := noFaults()
	for range 1 + r.IntN(2) {
		switch r.IntN(8) {
		case 0:
			p.failBefore = pushIndex(r)
		case 1:
			p.lostAck = pushIndex(r)
		case 2:
			p.dup = pushIndex(r)
		case 3:
			p.cutPull = int32(r.IntN(3))
		case 4:
			p.cutSnap = int32(r.IntN(2))
		case 5:
			p.cancelAt = 1 + r.IntN(4)
		case 6:
			p.cancelPush = pushIndex(r)
		case 7:
			p.cancelRecv = 1 + int32(r.IntN(3))
		}
	}
	return p
}

// pushIndex is mostly the first push: a tablet often has one batch only.
func pushIndex(r *rand.Rand) int32 {
	if r.IntN(2) == 0 {
		return 0
	}
	return int32(r.IntN(3))
}

func (p *faultPlan) String() string {
	var parts []string
	add := func(name string, v int32) {
		if v >= 0 {
			parts = append(parts, fmt.Sprintf("%s@%d", name, v))
		}
	}
	add("failBefore", p.failBefore)
	add("lostAck", p.lostAck)
	add("dup", p.dup)
	add("cutPull", p.cutPull)
	add("cutSnap", p.cutSnap)
	add("cancelAfterPush", p.cancelPush)
	add("cancelAfterRecv", p.cancelRecv)
	if p.cancelAt > 0 {
		parts = append(parts, fmt.Sprintf("cancelAtProgress@%d", p.cancelAt))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// hit says which faults struck.
func (p *faultPlan) hit() string {
	var parts []string
	for _, f := range []struct {
		name string
		b    *atomic.Bool
	}{{"failBefore", &p.hitFail}, {"lostAck", &p.hitLost}, {"dup", &p.hitDup}, {"cut", &p.hitCut}, {"cancel", &p.cancelled}} {
		if f.b.Load() {
			parts = append(parts, f.name)
		}
	}
	return strings.Join(parts, ",")
}

// mustFail reports whether a fault struck that Sync cannot survive.
func (p *faultPlan) mustFail() bool {
	return p.hitFail.Load() || p.hitLost.Load() || p.hitCut.Load()
}

// mayFail reports whether a fault struck that may make Sync fail.
func (p *faultPlan) mayFail() bool { return p.mustFail() || p.cancelled.Load() }

// explained reports whether err is one the faults made: an injected error
// or the cancellation.
func explained(err error) bool {
	return strings.Contains(err.Error(), injected) || errors.Is(err, context.Canceled) ||
		status.Code(err) == codes.Canceled || strings.Contains(err.Error(), "code = Canceled")
}

// clockRefused reports whether err is the server refusing stamps too far
// ahead of its clock.
func clockRefused(err error) bool {
	return strings.Contains(err.Error(), "code = InvalidArgument") && strings.Contains(err.Error(), "ahead")
}

// unary injects the push faults of the tablet's current plan.
func (tb *tablet) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	p := tb.plan.Load()
	if p == nil || method != rasoatv1.SyncService_Push_FullMethodName {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	n := p.pushes.Add(1) - 1
	if n == p.cancelPush {
		// The answer arrives, but the app is stopped before it records it.
		err := invoker(ctx, method, req, reply, cc, opts...)
		p.stop()
		return err
	}
	switch n {
	case p.failBefore:
		p.hitFail.Store(true)
		return status.Error(codes.Unavailable, injected+": push dropped before reaching the server")
	case p.lostAck:
		if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
			return err
		}
		p.hitLost.Store(true)
		return status.Error(codes.Unavailable, injected+": push answer lost after the server committed")
	case p.dup:
		if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
			return err
		}
		p.hitDup.Store(true)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// stop cancels the Sync's context.
func (p *faultPlan) stop() {
	p.cancelled.Store(true)
	p.cancel()
}

// stream cuts the pull or snapshot stream of the tablet's current plan, or
// cancels the Sync once a response has arrived.
func (tb *tablet) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	p := tb.plan.Load()
	cut := int32(-1)
	if p != nil {
		switch method {
		case rasoatv1.SyncService_Pull_FullMethodName:
			cut = p.cutPull
		case rasoatv1.SyncService_Snapshot_FullMethodName:
			cut = p.cutSnap
		}
	}
	if p == nil || cut < 0 && p.cancelRecv < 0 {
		return streamer(ctx, desc, cc, method, opts...)
	}
	ctx, cancel := context.WithCancel(ctx)
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	return &faultStream{ClientStream: s, left: cut, cancel: cancel, p: p}, nil
}

// faultStream breaks after left responses, as a dropped connection would
// (the call is cancelled, so the server stops sending too), or cancels
// the Sync after the plan's cancelRecv-th response.
type faultStream struct {
	grpc.ClientStream
	left   int32 // only the receiving goroutine touches it
	cancel context.CancelFunc
	p      *faultPlan
}

func (s *faultStream) RecvMsg(m any) error {
	if s.left == 0 {
		s.p.hitCut.Store(true)
		s.cancel()
		return status.Error(codes.Unavailable, injected+": stream cut")
	}
	if err := s.ClientStream.RecvMsg(m); err != nil {
		return err
	}
	s.left--
	if s.p.recvs.Add(1) == s.p.cancelRecv {
		s.p.stop()
	}
	return nil
}
