// Package hlc is the hybrid logical clock that stamps every change.
//
// A Timestamp packs Unix milliseconds (upper 48 bits) and a logical counter
// (lower 16 bits) into one uint64, so timestamps compare as plain integers
// and a replica's timestamps keep increasing even when its wall clock stalls
// or is set back.
//
// Merge picks the change with the greatest timestamp, so a tablet whose clock
// is set to next year would otherwise win every field it touches until next
// year. The clock therefore refuses remote timestamps more than MaxDrift
// ahead of its own wall clock, and CheckDrift lets a server refuse such a
// change at the door (DESIGN.md, "Sync model").
package hlc

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

const (
	logicalBits = 16
	logicalMask = 1<<logicalBits - 1
	maxPhysical = 1<<(64-logicalBits) - 1 // Unix ms, until the year 10889
)

// DefaultMaxDrift is how far ahead of the local wall clock a remote
// timestamp may be before Observe rejects it.
const DefaultMaxDrift = 24 * time.Hour

// ErrTooFarAhead is wrapped by the error for a timestamp more than the
// allowed drift ahead of the local wall clock.
var ErrTooFarAhead = errors.New("timestamp too far ahead of this clock")

// Timestamp is a hybrid logical clock reading: Unix milliseconds in the upper
// 48 bits, a logical counter in the lower 16. The zero value means "unset".
type Timestamp uint64

// At returns the timestamp for wall time t (truncated to the millisecond and
// clamped to the representable range) with the given logical counter.
func At(t time.Time, logical uint16) Timestamp {
	return physical(t) | Timestamp(logical)
}

func physical(t time.Time) Timestamp {
	ms := t.UnixMilli()
	switch {
	case ms < 0:
		ms = 0
	case ms > maxPhysical:
		ms = maxPhysical
	}
	return Timestamp(ms) << logicalBits
}

// UnixMilli returns the physical part in Unix milliseconds.
func (t Timestamp) UnixMilli() int64 { return int64(t >> logicalBits) }

// Wall returns the physical part as a UTC time.
func (t Timestamp) Wall() time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// Logical returns the logical counter.
func (t Timestamp) Logical() uint16 { return uint16(t & logicalMask) }

// IsZero reports whether t is unset.
func (t Timestamp) IsZero() bool { return t == 0 }

// String returns t as 16 lowercase hex digits, so string order is time order.
func (t Timestamp) String() string {
	var b [16]byte
	return string(t.append(b[:0]))
}

// AppendText implements encoding.TextAppender with the String form.
func (t Timestamp) AppendText(b []byte) ([]byte, error) { return t.append(b), nil }

// MarshalText implements encoding.TextMarshaler with the String form.
func (t Timestamp) MarshalText() ([]byte, error) { return t.append(make([]byte, 0, 16)), nil }

// UnmarshalText implements encoding.TextUnmarshaler; see Parse.
func (t *Timestamp) UnmarshalText(b []byte) error {
	v, err := parse(b)
	if err != nil {
		return fmt.Errorf("parse hlc timestamp %q: %w", b, err)
	}
	*t = v
	return nil
}

const hexDigits = "0123456789abcdef"

func (t Timestamp) append(b []byte) []byte {
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hexDigits[(t>>shift)&0xf])
	}
	return b
}

// Parse reads the String form: exactly 16 lowercase hex digits.
func Parse(s string) (Timestamp, error) {
	v, err := parse([]byte(s))
	if err != nil {
		return 0, fmt.Errorf("parse hlc timestamp %q: %w", s, err)
	}
	return v, nil
}

var errSyntax = errors.New("want 16 lowercase hex digits")

func parse(b []byte) (Timestamp, error) {
	if len(b) != 16 {
		return 0, errSyntax
	}
	var v Timestamp
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		default:
			// Upper case is refused so that each timestamp has one text form.
			return 0, errSyntax
		}
		v = v<<4 | Timestamp(d)
	}
	return v, nil
}

// DriftError is the error for a timestamp too far ahead of the local clock.
// It unwraps to ErrTooFarAhead.
type DriftError struct {
	Timestamp Timestamp
	Ahead     time.Duration // how far Timestamp's wall time is ahead of the local clock
	Max       time.Duration // the allowed drift
}

func (e *DriftError) Error() string {
	ahead := e.Ahead
	// Round up, so a timestamp just over the bound never reads as on it.
	if r := ahead % time.Millisecond; r > 0 && ahead < 1<<63-1-time.Millisecond {
		ahead += time.Millisecond - r
	}
	return fmt.Sprintf("timestamp %s is %s ahead of this clock (max %s)",
		e.Timestamp.Wall().Format(time.RFC3339Nano), ahead, e.Max)
}

func (e *DriftError) Unwrap() error { return ErrTooFarAhead }

// CheckDrift returns a *DriftError (wrapping ErrTooFarAhead) when ts's wall
// time is more than maxDrift ahead of now; exactly maxDrift is allowed. A server
// uses it to refuse a change without observing it.
func CheckDrift(ts Timestamp, now time.Time, maxDrift time.Duration) error {
	ahead := ts.Wall().Sub(now)
	if ahead <= maxDrift {
		return nil
	}
	return &DriftError{Timestamp: ts, Ahead: ahead, Max: maxDrift}
}

// Clock issues timestamps for one replica. It is safe for concurrent use.
type Clock struct {
	now      func() time.Time
	maxDrift time.Duration
	last     atomic.Uint64
}

// Option configures a Clock.
type Option func(*Clock)

// WithMaxDrift sets how far ahead of the wall clock an observed timestamp may
// be (default DefaultMaxDrift). A negative d is treated as zero.
func WithMaxDrift(d time.Duration) Option {
	return func(c *Clock) { c.maxDrift = max(d, 0) }
}

// New returns a clock reading wall time from now (time.Now if nil).
func New(now func() time.Time, opts ...Option) *Clock {
	if now == nil {
		now = time.Now
	}
	c := &Clock{now: now, maxDrift: DefaultMaxDrift}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Now returns a timestamp greater than every timestamp this clock has issued,
// observed or restored: the wall time if that is newer, otherwise the last
// timestamp plus one logical tick. A logical overflow carries into the
// physical part, i.e. advances it by one millisecond.
func (c *Clock) Now() Timestamp {
	wall := physical(c.now())
	for {
		last := c.last.Load()
		next := last + 1
		if uint64(wall) > last { // wall's logical part is 0, so this is a newer millisecond
			next = uint64(wall)
		}
		if c.last.CompareAndSwap(last, next) {
			return Timestamp(next)
		}
	}
}

// Observe records a timestamp received from another replica, so that every
// later Now is greater than it. It refuses (with a *DriftError wrapping
// ErrTooFarAhead) a timestamp more than MaxDrift ahead of the local wall
// clock, so one tablet with a wrong clock cannot drag every replica's clock
// into the future.
//
// Unlike the textbook receive rule, Observe does not tick the clock: it
// issues no timestamp, and ticking once per observed change would push the
// clock ahead of wall time while ingesting a large batch.
func (c *Clock) Observe(remote Timestamp) error {
	if err := CheckDrift(remote, c.now(), c.maxDrift); err != nil {
		return err
	}
	c.raise(remote)
	return nil
}

// Restore raises the clock to at least ts without a drift check. Call it
// after opening a store, with the greatest timestamp already written there:
// the clock's state lives only in memory, and without Restore a tablet whose
// clock was set back would stamp new edits below its own earlier ones, and
// those new edits would lose.
func (c *Clock) Restore(ts Timestamp) { c.raise(ts) }

// Last returns the greatest timestamp issued, observed or restored.
func (c *Clock) Last() Timestamp { return Timestamp(c.last.Load()) }

func (c *Clock) raise(ts Timestamp) {
	for {
		last := c.last.Load()
		if uint64(ts) <= last || c.last.CompareAndSwap(last, uint64(ts)) {
			return
		}
	}
}
