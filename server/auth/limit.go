package auth

import (
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/peer"
)

// Limiter counts failed attempts (a bad token, a wrong enrolment code) per
// client address: each address may fail Burst times at once, then once per
// Every. An enrolment from a blocked address is refused before its code is
// looked up, so that guessing 40-bit codes costs the guesser time; a call
// with a valid token is never refused for its address's failures. (Per
// code, the store counts wrong secrets: directory.CodeAttempts.)
type Limiter struct {
	every time.Duration
	burst int
	now   func() time.Time

	mu    sync.Mutex
	addrs map[string]*rate.Limiter
}

// Default failure allowance: ten mistakes, then one a minute. A collaborator
// retyping a code a few times is never blocked; a guesser gets 1,440 tries a
// day per address, against 2^40 secrets.
const (
	DefaultFailEvery = time.Minute
	DefaultFailBurst = 10
	// maxAddrs bounds the addresses tracked; past it the map is swept of
	// those whose allowance has refilled, then of everything (a flood of
	// addresses resets the count rather than the server's memory).
	maxAddrs = 100_000
)

// NewLimiter returns a Limiter allowing burst failures, then one per every.
func NewLimiter(every time.Duration, burst int) *Limiter {
	return &Limiter{every: every, burst: burst, now: time.Now, addrs: map[string]*rate.Limiter{}}
}

// Blocked reports whether addr has no failure left, and how long until it
// has one.
func (l *Limiter) Blocked(addr string) (time.Duration, bool) {
	if l == nil {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.addrs[addr]
	if !ok {
		return 0, false
	}
	now := l.now()
	if lim.TokensAt(now) >= 1 {
		return 0, false
	}
	r := lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return wait, true
}

// Fail counts one failure for addr.
func (l *Limiter) Fail(addr string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.addrs[addr]
	if !ok {
		if len(l.addrs) >= maxAddrs {
			l.sweep()
		}
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.addrs[addr] = lim
	}
	lim.AllowN(l.now(), 1)
}

func (l *Limiter) sweep() {
	now := l.now()
	for a, lim := range l.addrs {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.addrs, a)
		}
	}
	if len(l.addrs) >= maxAddrs {
		clear(l.addrs)
	}
}

// PeerAddr is the caller's IP address (without the port: one machine's
// connections share an allowance), or "" when unknown.
func PeerAddr(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
		return host
	}
	return p.Addr.String()
}
