// Package upstream is a commune server's link to its province (DESIGN.md
// "Architecture", issue 11): it pushes every change its store holds to the
// province, in its own log order, and pulls back what the province holds
// for the commune (a province officer's correction), applying it to its
// own store so that its tablets receive it. It runs continuously, with
// jittered exponential backoff while the link is down.
//
// It reuses the server's store and the shared merge (internal/apply,
// through the store's Push), not the tablet library: a change that reaches
// the province through its commune keeps its origin replica id, seq and
// stamps, so it is the same change, applied once everywhere, and all three
// tiers converge.
//
// What it keeps, durably, in the store's settings (so that it lives and
// dies with the log it counts in): the enrolment (token and replica id),
// the push cursor (a position in the commune's own log, advanced only
// after the province acknowledged everything before it), the pull cursor
// (a position in the province's log, with its log id and check, advanced
// only after what it covers is stored here), the last status, and the
// changes set aside, each with the reason it was refused.
package upstream

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/proceduresvc"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Store is what the link needs of the commune's own store (server/store/
// sqlite and server/store/postgres implement it).
type Store interface {
	// Push stores changes (the province's, pulled back) all or nothing;
	// store.Refused names the changes the stored data forbids.
	Push(ctx context.Context, by store.Sender, changes []*rasoatv1.Change) (store.PushResult, error)
	// Pull reads the store's own log in server order.
	Pull(ctx context.Context, villages store.Villages, from store.Position, limit int, fn func(*rasoatv1.Change, store.Position) error) (store.Position, bool, error)
	// Setting, PutSettings and Settings keep the link's state.
	Setting(ctx context.Context, key string) (string, bool, error)
	PutSettings(ctx context.Context, set map[string]string, del []string) error
	Settings(ctx context.Context, prefix, after string, limit int, fn func(key, value string) error) (int, error)
}

// Keys of the link's settings.
const (
	keyEnrolment = "upstream.enrolment"
	keyPush      = "upstream.push"
	keyPull      = "upstream.pull"
	keyStatus    = "upstream.status"
	prefixAside  = "upstream.aside."
)

// Limits and defaults.
const (
	// DefaultPushBatch is how many changes one push to the province
	// carries: about 0.4 MB, far under the province's syncsvc.MaxPushBatch
	// (20,000), so that a cut link costs at most one such batch again.
	DefaultPushBatch = 2_000
	// MaxPushBatch is the province's own bound (syncsvc.MaxPushBatch).
	MaxPushBatch = 20_000
	// pullBatch is what a pull asks the province for per response (its
	// syncsvc.DefaultPullBatch); a response is also bounded to about 3 MiB.
	pullBatch = 5_000
	// maxRetryAside bounds the set-aside changes one retry pass reads: one
	// push batch's worth, oldest first.
	maxRetryAside = 1_000
	// DefaultEvery is how often a link in sync looks for new work.
	DefaultEvery = 10 * time.Second
	// DefaultRetryAside is how often the changes set aside are tried again
	// (a province clock that lagged, a unit the province admin added since).
	DefaultRetryAside = 10 * time.Minute
	// MinBackoff and DefaultMaxBackoff bound the wait after a failure: it
	// doubles from MinBackoff up to the maximum, jittered.
	MinBackoff        = 500 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Minute
	// pushTimeout and pullIdle bound one push and the wait for one pull
	// response: a link that hangs is dropped and retried, not waited on.
	pushTimeout = 2 * time.Minute
	pullIdle    = 2 * time.Minute
	// statusEvery is how often the status is kept in the store when its
	// state does not change (its counters and times do).
	statusEvery = 15 * time.Second
)

// Enrolment is who the province takes this commune server for.
type Enrolment struct {
	Server   string `json:"server"` // as given at enrolment
	Token    string `json:"token"`
	Replica  string `json:"replica"`
	PersonID string `json:"person"`
	DeviceID string `json:"device"`
	At       time.Time
}

// ErrNotEnrolled: the store holds no enrolment with a province.
var ErrNotEnrolled = errors.New("not enrolled with a province: run rasoatd upstream enrol")

// LoadEnrolment returns the store's enrolment (ErrNotEnrolled if none).
func LoadEnrolment(ctx context.Context, st Store) (Enrolment, error) {
	var e Enrolment
	ok, err := load(ctx, st, keyEnrolment, &e)
	if err == nil && !ok {
		err = ErrNotEnrolled
	}
	return e, err
}

// SaveEnrolment keeps e in the store.
func SaveEnrolment(ctx context.Context, st Store, e Enrolment) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return st.PutSettings(ctx, map[string]string{keyEnrolment: string(b)}, nil)
}

// State is the link's state, as its status and log lines name it.
type State string

const (
	StateStarting State = "starting"
	StateSyncing  State = "syncing" // pushing or pulling
	StateInSync   State = "in-sync" // both ways caught up at the last pass
	StateDown     State = "down"    // the province cannot be reached; retrying with backoff
	StateRefused  State = "refused" // the province refuses the link itself (token, role): retrying, but an operator must act
	StateResync   State = "resync"  // the province's log changed: pulling it again from its start, pushing everything again
	StateStopped  State = "stopped" // the server is shutting down
	stateNoChange State = ""
)

// Status is what an operator reads of the link (rasoatd upstream status,
// and the health service "rasoat.v1.Upstream").
type Status struct {
	Upstream    string    `json:"upstream"`
	State       State     `json:"state"`
	Since       time.Time `json:"since"`                 // when State began
	LastError   string    `json:"last_error,omitempty"`  // the failure that made it down or refused
	LastReason  string    `json:"last_reason,omitempty"` // its rasoat reason, when it has one
	LastInSync  time.Time `json:"last_in_sync,omitzero"` // the end of the last pass that caught up both ways
	NextAttempt time.Time `json:"next_attempt,omitzero"` // when down: the next try
	PushCursor  uint64    `json:"push_cursor"`           // the commune's log is at the province up to here
	PullLogID   string    `json:"pull_log_id,omitempty"` // the province's log
	PullCursor  uint64    `json:"pull_cursor"`           // the province's log is here up to here
	Pushed      uint64    `json:"pushed"`                // changes the province stored new, since start
	PushedDup   uint64    `json:"pushed_duplicates"`     // changes it held already, since start
	Pulled      uint64    `json:"pulled"`                // changes pulled back and stored new here, since start
	SetAside    int       `json:"set_aside"`             // changes set aside (rasoatd upstream status lists them)
	Resyncs     int       `json:"resyncs"`               // times the province's log changed, since start
}

// Aside is a change one side refused for good, set aside with the reason
// so that nothing behind it waits, and tried again now and then.
type Aside struct {
	// Dir is "push" (the province refused it; it stays in the commune's
	// log at LocalSeq) or "pull" (this store refused it; Change holds it).
	Dir      string           `json:"dir"`
	Origin   string           `json:"origin"`
	Seq      uint64           `json:"seq"`
	LocalSeq uint64           `json:"local_seq,omitempty"`
	Reason   string           `json:"reason"`
	Message  string           `json:"message"`
	At       time.Time        `json:"at"`
	Change   *json.RawMessage `json:"change,omitempty"` // protojson of the pulled change
}

func asideKey(dir, origin string, seq uint64) string {
	return prefixAside + dir + "." + origin + "." + fmt.Sprintf("%020d", seq)
}

// ReadStatus returns the status last kept in the store and up to limit
// changes set aside, for an operator (rasoatd upstream status).
func ReadStatus(ctx context.Context, st Store, limit int) (Status, []Aside, error) {
	var s Status
	if _, err := load(ctx, st, keyStatus, &s); err != nil {
		return s, nil, err
	}
	var out []Aside
	n, err := st.Settings(ctx, prefixAside, "", limit, func(_, v string) error {
		var a Aside
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	s.SetAside = n
	return s, out, err
}

// Config is a link's configuration.
type Config struct {
	Store Store
	// Conn reaches the province; every call on it must carry the
	// enrolment's token (Token gives the dial option).
	Conn       grpc.ClientConnInterface
	Upstream   string // the province's address, for the status and logs
	Log        *slog.Logger
	PushBatch  int           // default DefaultPushBatch
	Every      time.Duration // default DefaultEvery
	MaxBackoff time.Duration // default DefaultMaxBackoff
	RetryAside time.Duration // default DefaultRetryAside
	// OnState, when set, is called on every change of state (the server's
	// health status).
	OnState func(State)
}

// Link is a running link to the province.
type Link struct {
	cfg     Config
	sync    rasoatv1.SyncServiceClient
	replica string
	log     *slog.Logger

	mu      sync.Mutex
	status  Status
	savedAt time.Time // when the status was last kept in the store
	kick    chan struct{}
}

// New returns the link over cfg; the store must hold an enrolment.
func New(ctx context.Context, cfg Config) (*Link, error) {
	e, err := LoadEnrolment(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	if cfg.PushBatch <= 0 || cfg.PushBatch > MaxPushBatch {
		cfg.PushBatch = DefaultPushBatch
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.RetryAside <= 0 {
		cfg.RetryAside = DefaultRetryAside
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	l := &Link{cfg: cfg, sync: rasoatv1.NewSyncServiceClient(cfg.Conn), replica: e.Replica, kick: make(chan struct{}, 1),
		log: cfg.Log.With("upstream", cfg.Upstream)}
	var push store.Position
	var pull pullState
	if _, err := load(ctx, cfg.Store, keyPush, &push); err != nil {
		return nil, err
	}
	if _, err := load(ctx, cfg.Store, keyPull, &pull); err != nil {
		return nil, err
	}
	n, err := cfg.Store.Settings(ctx, prefixAside, "", 0, func(string, string) error { return nil })
	if err != nil {
		return nil, err
	}
	l.status = Status{Upstream: cfg.Upstream, State: StateStarting, Since: time.Now(), PushCursor: push.Seq, PullLogID: pull.LogID, PullCursor: pull.Pos.Seq, SetAside: n}
	return l, nil
}

// Status returns the link's status now.
func (l *Link) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// Kick asks the link for a pass now (a tablet's push was stored: rasoatd
// calls it through syncsvc.WithOnStored). It never blocks and coalesces:
// any number of kicks before the next pass starts make one pass, and a
// kick during a pass makes one more right after it, so a change stored
// while a pass was past its push is not left for Every. A link that is
// down keeps its backoff: kicks do not hammer a province that cannot be
// reached.
func (l *Link) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// pullState is the pull cursor: a position in the province's log.
type pullState struct {
	LogID string         `json:"log_id"`
	Pos   store.Position `json:"pos"`
}

// errResync ends a pass whose pull found the province's log changed: the
// next pass starts at once, from the start of the new log.
var errResync = errors.New("the province's log changed")

// Run syncs until ctx is done, then returns nil: a pass (push, then pull,
// then, now and then, the changes set aside), then a wait of Every (or
// until a Kick); after a failure a wait that doubles from MinBackoff up to
// MaxBackoff, jittered so that a province's communes do not all come back
// at once.
func (l *Link) Run(ctx context.Context) error {
	backoff := MinBackoff
	var lastRetry time.Time
	for {
		// This pass pushes everything stored until now: a kick asked
		// before it is answered by it.
		select {
		case <-l.kick:
		default:
		}
		err := l.pass(ctx, time.Since(lastRetry) >= l.cfg.RetryAside)
		if err == nil && time.Since(lastRetry) >= l.cfg.RetryAside {
			lastRetry = time.Now()
		}
		if ctx.Err() != nil {
			l.set(StateStopped, nil, func(*Status) {})
			return nil
		}
		var wait time.Duration
		switch {
		case errors.Is(err, errResync):
			continue
		case err != nil:
			// Full jitter over the upper half: [backoff/2, backoff).
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(backoff*2, l.cfg.MaxBackoff)
			state := StateDown
			if refusedLink(err) {
				state = StateRefused
			}
			next := time.Now().Add(wait)
			l.set(state, err, func(s *Status) { s.NextAttempt = next })
		default:
			backoff = MinBackoff
			wait = l.cfg.Every
			l.set(StateInSync, nil, func(s *Status) { s.LastInSync = time.Now(); s.NextAttempt = time.Time{} })
		}
		// While down, only the backoff ends the wait (a nil channel is
		// never ready).
		kick := l.kick
		if err != nil {
			kick = nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			l.set(StateStopped, nil, func(*Status) {})
			return nil
		case <-kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// refusedLink reports whether err is the province refusing the link
// itself, which waiting alone does not mend.
func refusedLink(err error) bool {
	switch rpcerr.Reason(err) {
	case rasoatv1.ErrorReason_TOKEN_MISSING, rasoatv1.ErrorReason_TOKEN_UNKNOWN, rasoatv1.ErrorReason_TOKEN_REVOKED,
		rasoatv1.ErrorReason_ROLE_DENIED, rasoatv1.ErrorReason_REPLICA_NOT_BOUND:
		return true
	}
	c := status.Code(err)
	return c == codes.Unauthenticated || c == codes.PermissionDenied
}

// Sync runs one pass now, outside Run (which must not be running): push
// everything new, pull everything new, try the changes set aside again. A
// pass stopped by ctx part way leaves the cursors at what was
// acknowledged.
func (l *Link) Sync(ctx context.Context) error {
	err := l.pass(ctx, true)
	if errors.Is(err, errResync) {
		err = l.pass(ctx, true)
	}
	return err
}

// pass is one round: push everything new, pull everything new, and with
// retry, try the changes set aside again.
func (l *Link) pass(ctx context.Context, retry bool) error {
	if err := l.push(ctx); err != nil {
		return err
	}
	if err := l.pull(ctx); err != nil {
		return err
	}
	l.procedure(ctx)
	if retry {
		return l.retryAside(ctx)
	}
	return nil
}

// procedure keeps what the province has in force at the commune this
// server serves (its periods, proceduresvc.UpstreamKey), under which the
// commune's own settings stand, so the tablets here read the province's
// periods. Best effort: a province without the service, or a failure,
// keeps what was fetched before and does not fail the pass.
func (l *Link) procedure(ctx context.Context) {
	unit, ok, err := l.cfg.Store.Setting(ctx, "served_unit")
	if err != nil || !ok || unit == "" {
		return
	}
	res, err := rasoatv1.NewProcedureServiceClient(l.cfg.Conn).Procedure(ctx, &rasoatv1.ProcedureRequest{UnitCodes: []string{unit}})
	if err != nil {
		if status.Code(err) != codes.Unimplemented {
			l.log.Debug("the province's procedure settings not fetched", "err", err)
		}
		return
	}
	if len(res.GetUnits()) != 1 || res.GetUnits()[0].GetUnitCode() != unit {
		l.log.Warn("the province answered the procedure settings of other units", "asked", unit, "units", len(res.GetUnits()))
		return
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(res.GetUnits()[0].GetSettings())
	if err != nil {
		return
	}
	key := proceduresvc.UpstreamKey(unit)
	if old, ok, err := l.cfg.Store.Setting(ctx, key); err == nil && ok && old == string(b) {
		return
	}
	if err := l.cfg.Store.PutSettings(ctx, map[string]string{key: string(b)}, nil); err != nil {
		l.log.Warn("the province's procedure settings not kept", "err", err)
	}
}

// set records a state (stateNoChange keeps it) with its error, logs a line
// when the state or the error's reason changed, and keeps the status in
// the store.
func (l *Link) set(state State, err error, edit func(*Status)) {
	l.mu.Lock()
	prev := l.status
	if state != stateNoChange && state != l.status.State {
		l.status.State, l.status.Since = state, time.Now()
	}
	l.status.LastError, l.status.LastReason = "", ""
	if err != nil {
		l.status.LastError = err.Error()
		if r := rpcerr.Reason(err); r != rasoatv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			l.status.LastReason = r.String()
		} else {
			l.status.LastReason = status.Code(err).String()
		}
	}
	edit(&l.status)
	s := l.status
	l.mu.Unlock()

	changed := s.State != prev.State || s.LastReason != prev.LastReason
	l.mu.Lock()
	stale := time.Since(l.savedAt) >= statusEvery
	if changed || stale {
		l.savedAt = time.Now()
	}
	l.mu.Unlock()
	if !changed && !stale {
		return
	}
	if changed {
		l.logState(s, prev, err)
	}
	// The status is for an operator reading the store: a failure to keep
	// it costs nothing else, and the log line says the same.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if b, err := json.Marshal(s); err == nil {
		if err := l.cfg.Store.PutSettings(ctx, map[string]string{keyStatus: string(b)}, nil); err != nil {
			l.log.Warn("upstream link: keep status", "err", err)
		}
	}
}

// logState writes the line of a change of state (or of failure).
func (l *Link) logState(s, prev Status, err error) {
	attrs := []any{"state", string(s.State), "push_cursor", s.PushCursor, "pull_cursor", s.PullCursor, "set_aside", s.SetAside}
	switch {
	case err != nil:
		l.log.Warn("upstream link "+string(s.State), append(attrs, "err", s.LastError, "reason", s.LastReason, "retry_in", time.Until(s.NextAttempt).Round(time.Millisecond))...)
	default:
		l.log.Info("upstream link "+string(s.State), attrs...)
	}
	if l.cfg.OnState != nil && s.State != prev.State {
		l.cfg.OnState(s.State)
	}
}

// item is a change of the commune's log to push, with its position there.
type item struct {
	c   *rasoatv1.Change
	pos store.Position
}

// push sends the commune's log from the push cursor to its end, in log
// order, one batch at a time; the cursor advances after each batch the
// province acknowledged, so a cut link resends at most one batch, whose
// changes are then duplicates.
func (l *Link) push(ctx context.Context) error {
	var cur store.Position
	if _, err := load(ctx, l.cfg.Store, keyPush, &cur); err != nil {
		return err
	}
	batch := make([]item, 0, l.cfg.PushBatch)
	for {
		batch = batch[:0]
		_, more, err := l.cfg.Store.Pull(ctx, store.AllVillages(), cur, l.cfg.PushBatch, func(c *rasoatv1.Change, p store.Position) error {
			batch = append(batch, item{c, p})
			return nil
		})
		if errors.Is(err, store.ErrLogChanged) || errors.Is(err, store.ErrCursorAhead) {
			// This store was restored from a backup: its log after the
			// cursor is not what was pushed. Push it all again; what the
			// province holds comes back as duplicates.
			l.log.Warn("upstream link: the commune's own log changed under the push cursor: pushing it all again", "push_cursor", cur.Seq, "err", err)
			cur = store.Position{}
			if err := save(ctx, l.cfg.Store, keyPush, cur); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read the commune's log after %d: %w", cur.Seq, err)
		}
		if len(batch) == 0 {
			return nil
		}
		if len(batch) > 0 {
			l.set(StateSyncing, nil, func(*Status) {})
		}
		if err := l.pushBatch(ctx, batch, nil); err != nil {
			return err
		}
		cur = batch[len(batch)-1].pos
		if err := save(ctx, l.cfg.Store, keyPush, cur); err != nil {
			return err
		}
		l.set(stateNoChange, nil, func(s *Status) { s.PushCursor = cur.Seq })
		if !more {
			return nil
		}
	}
}

// pushBatch pushes items to the province. A change it refuses for good
// (its violations name the change) is set aside with the reason, and the
// rest is pushed again, so one refused change never holds up the others;
// a refusal that names no change is the link's (token, network), returned.
// accepted, when set, is called with the items the province stored or
// held.
func (l *Link) pushBatch(ctx context.Context, items []item, accepted func([]item) error) error {
	items = slices.Clone(items)
	for len(items) > 0 {
		req := &rasoatv1.PushRequest{ReplicaId: l.replica, Changes: make([]*rasoatv1.Change, len(items))}
		for i, it := range items {
			req.Changes[i] = it.c
		}
		cctx, cancel := context.WithTimeout(ctx, pushTimeout)
		res, err := l.sync.Push(cctx, req)
		cancel()
		if err == nil {
			l.set(stateNoChange, nil, func(s *Status) {
				s.Pushed += uint64(res.GetAccepted())
				s.PushedDup += uint64(res.GetDuplicates())
			})
			if accepted != nil {
				return accepted(items)
			}
			return nil
		}
		bad := refusedChanges(err, len(items))
		if len(bad) == 0 {
			if wholeRefusal(err) && len(items) > 1 {
				// A refusal of the request that names no change: find
				// the change by halves rather than block on it.
				half := len(items) / 2
				if err := l.pushBatch(ctx, items[:half], accepted); err != nil {
					return err
				}
				items = items[half:]
				continue
			}
			if wholeRefusal(err) {
				bad = map[int]rpcerr.Violation{0: {Desc: status.Convert(err).Message(), Reason: rpcerr.Reason(err)}}
			} else {
				return fmt.Errorf("push %d changes: %w", len(items), err)
			}
		}
		now := time.Now()
		set := make(map[string]string, len(bad))
		for i, v := range bad {
			it := items[i]
			a := Aside{Dir: "push", Origin: it.c.GetStamp().GetReplicaId(), Seq: it.c.GetSeq(), LocalSeq: it.pos.Seq, Reason: v.Reason.String(), Message: v.Desc, At: now}
			b, err := json.Marshal(a)
			if err != nil {
				return err
			}
			set[asideKey(a.Dir, a.Origin, a.Seq)] = string(b)
			l.log.Warn("upstream link: the province refused a change: set aside", "origin", a.Origin, "seq", a.Seq, "local_seq", a.LocalSeq, "reason", a.Reason, "message", a.Message)
		}
		// Durable before the cursor passes it: nothing is dropped in silence.
		if err := l.cfg.Store.PutSettings(ctx, set, nil); err != nil {
			return fmt.Errorf("set aside %d refused changes: %w", len(set), err)
		}
		if err := l.countAside(ctx); err != nil {
			return err
		}
		keep := items[:0]
		for i, it := range items {
			if _, ok := bad[i]; !ok {
				keep = append(keep, it)
			}
		}
		items = keep
	}
	return nil
}

// countAside refreshes the status's count of changes set aside.
func (l *Link) countAside(ctx context.Context) error {
	n, err := l.cfg.Store.Settings(ctx, prefixAside, "", 0, func(string, string) error { return nil })
	if err != nil {
		return err
	}
	l.set(stateNoChange, nil, func(s *Status) { s.SetAside = n })
	return nil
}

// refusedChanges returns the changes (by index) a push's error refuses one
// by one: a field violation naming changes[i], when the code says the
// request, not the link, is at fault.
func refusedChanges(err error, n int) map[int]rpcerr.Violation {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.PermissionDenied, codes.FailedPrecondition:
	default:
		return nil
	}
	out := map[int]rpcerr.Violation{}
	for _, v := range rpcerr.Violations(err) {
		if i, ok := rpcerr.ChangeIndex(v.Field); ok && i >= 0 && i < n {
			if _, seen := out[i]; !seen {
				out[i] = v
			}
		}
	}
	return out
}

// wholeRefusal reports whether err refuses the request's content without
// naming a change or any other field: worth bisecting, unlike the link's
// own failures (a field of the request itself, such as replica_id, is
// the link's: setting every change aside for it would be wrong).
func wholeRefusal(err error) bool {
	if refusedLink(err) || len(rpcerr.Violations(err)) > 0 {
		return false
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition:
		return true
	}
	return false
}

// pull streams the province's log for the commune from the pull cursor,
// storing each response's changes here before its cursor is kept. A
// cursor the province no longer knows (LOG_CHANGED, CURSOR_AHEAD: a
// province restored from a backup, or another province) starts the pull
// from the start of the province's log and the push from the start of
// this one: the province may have lost what was pushed after its backup,
// and what it holds comes back as duplicates. (Not from a Snapshot: a
// snapshot holds entity states, whose bases name superseded changes this
// store must hold to take later ones; the province's log holds them all.)
func (l *Link) pull(ctx context.Context) error {
	var cur pullState
	if _, err := load(ctx, l.cfg.Store, keyPull, &cur); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := l.sync.Pull(ctx, &rasoatv1.PullRequest{
		ReplicaId: l.replica, Cursor: cur.Pos.Seq, CursorCheck: cur.Pos.Check, LogId: cur.LogID, BatchSize: pullBatch,
	})
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	// A province that stops answering mid-stream is dropped after pullIdle.
	idle := time.AfterFunc(pullIdle, cancel)
	defer idle.Stop()
	for {
		idle.Reset(pullIdle)
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			switch rpcerr.Reason(err) {
			case rasoatv1.ErrorReason_LOG_CHANGED, rasoatv1.ErrorReason_CURSOR_AHEAD:
				return l.resync(ctx, cur, err)
			}
			return fmt.Errorf("pull after %d: %w", cur.Pos.Seq, err)
		}
		if len(res.GetChanges()) > 0 {
			l.set(StateSyncing, nil, func(*Status) {})
			if err := l.apply(ctx, res.GetChanges()); err != nil {
				return err
			}
		}
		next := pullState{LogID: res.GetLogId(), Pos: store.Position{Seq: res.GetCursor(), Check: res.GetCursorCheck()}}
		if next != cur {
			cur = next
			if err := save(ctx, l.cfg.Store, keyPull, cur); err != nil {
				return err
			}
			l.set(stateNoChange, nil, func(s *Status) { s.PullLogID, s.PullCursor = cur.LogID, cur.Pos.Seq })
		}
		if res.GetDone() {
			return nil
		}
	}
}

// resync forgets both cursors after the province's log changed.
func (l *Link) resync(ctx context.Context, was pullState, cause error) error {
	l.log.Warn("upstream link: the province's log changed: pulling it again from its start and pushing everything again",
		"log_id", was.LogID, "pull_cursor", was.Pos.Seq, "reason", rpcerr.Reason(cause).String())
	b1, _ := json.Marshal(store.Position{})
	b2, _ := json.Marshal(pullState{})
	if err := l.cfg.Store.PutSettings(ctx, map[string]string{keyPush: string(b1), keyPull: string(b2)}, nil); err != nil {
		return err
	}
	l.set(StateResync, cause, func(s *Status) { s.PushCursor, s.PullCursor, s.PullLogID = 0, 0, ""; s.Resyncs++ })
	return errResync
}

// apply stores changes pulled from the province here, as one push: the
// same merge, the same checks against what is stored (content-checked
// duplicates: the commune's own changes come back as duplicates; bases;
// entities in their household's village), without the review workflow's
// guard, which the province ran. A change refused here is set aside with
// the reason and the rest is stored.
func (l *Link) apply(ctx context.Context, changes []*rasoatv1.Change) error {
	changes = slices.Clone(changes)
	var aside []Aside
	keep := changes[:0]
	for _, c := range changes {
		if err := entity.Validate(c); err != nil {
			aside = append(aside, pulledAside(c, rasoatv1.ErrorReason_INVALID_FIELD, err))
			continue
		}
		keep = append(keep, c)
	}
	changes = keep
	for len(changes) > 0 {
		res, err := l.cfg.Store.Push(ctx, store.Sender{Replica: l.replica}, changes)
		var refused store.Refused
		if errors.As(err, &refused) && len(refused) > 0 {
			drop := map[int]bool{}
			for _, ce := range refused {
				if ce.Index >= 0 && ce.Index < len(changes) && !drop[ce.Index] {
					drop[ce.Index] = true
					aside = append(aside, pulledAside(changes[ce.Index], store.Reason(ce.Err), ce))
				}
			}
			keep := changes[:0]
			for i, c := range changes {
				if !drop[i] {
					keep = append(keep, c)
				}
			}
			changes = keep
			continue
		}
		if err != nil {
			return fmt.Errorf("store %d changes pulled from the province: %w", len(changes), err)
		}
		l.set(stateNoChange, nil, func(s *Status) { s.Pulled += uint64(res.Accepted) })
		break
	}
	if len(aside) == 0 {
		return nil
	}
	set := make(map[string]string, len(aside))
	for _, a := range aside {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		set[asideKey(a.Dir, a.Origin, a.Seq)] = string(b)
		l.log.Warn("upstream link: a change pulled from the province is refused here: set aside", "origin", a.Origin, "seq", a.Seq, "reason", a.Reason, "message", a.Message)
	}
	if err := l.cfg.Store.PutSettings(ctx, set, nil); err != nil {
		return fmt.Errorf("set aside %d pulled changes: %w", len(set), err)
	}
	return l.countAside(ctx)
}

func pulledAside(c *rasoatv1.Change, r rasoatv1.ErrorReason, err error) Aside {
	a := Aside{Dir: "pull", Origin: c.GetStamp().GetReplicaId(), Seq: c.GetSeq(), Reason: r.String(), Message: err.Error(), At: time.Now()}
	if b, err := protojsonMarshal(c); err == nil {
		raw := json.RawMessage(b)
		a.Change = &raw
	}
	return a
}

// retryAside tries the changes set aside again, oldest first: those the
// province refused, pushed again in the commune's log order (a change and
// the ones refused for its sake go together); those refused here, stored
// again. What is taken leaves the list; what is refused again stays, with
// the new reason.
func (l *Link) retryAside(ctx context.Context) error {
	var pushes []Aside
	var pulls []*rasoatv1.Change
	var pullKeys []string
	_, err := l.cfg.Store.Settings(ctx, prefixAside, "", maxRetryAside, func(k, v string) error {
		var a Aside
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return fmt.Errorf("set-aside %s: %w", k, err)
		}
		switch {
		case a.Dir == "push":
			pushes = append(pushes, a)
		case a.Dir == "pull" && a.Change != nil:
			c := &rasoatv1.Change{}
			if err := protojsonUnmarshal(*a.Change, c); err == nil {
				pulls = append(pulls, c)
				pullKeys = append(pullKeys, k)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(pushes) > 0 {
		slices.SortFunc(pushes, func(a, b Aside) int { return cmp.Compare(a.LocalSeq, b.LocalSeq) })
		items := make([]item, 0, len(pushes))
		for _, a := range pushes {
			var got *item
			_, _, err := l.cfg.Store.Pull(ctx, store.AllVillages(), store.Position{Seq: a.LocalSeq - 1}, 1, func(c *rasoatv1.Change, p store.Position) error {
				if c.GetStamp().GetReplicaId() == a.Origin && c.GetSeq() == a.Seq {
					got = &item{c, p}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("read set-aside change %s #%d: %w", a.Origin, a.Seq, err)
			}
			if got != nil {
				items = append(items, *got)
			}
		}
		err := l.pushBatch(ctx, items, func(ok []item) error {
			del := make([]string, len(ok))
			for i, it := range ok {
				del[i] = asideKey("push", it.c.GetStamp().GetReplicaId(), it.c.GetSeq())
			}
			return l.cfg.Store.PutSettings(ctx, nil, del)
		})
		if err != nil {
			return err
		}
	}
	if len(pulls) > 0 {
		// Taken out first: apply sets aside again what is refused again.
		if err := l.cfg.Store.PutSettings(ctx, nil, pullKeys); err != nil {
			return err
		}
		if err := l.apply(ctx, pulls); err != nil {
			return err
		}
	}
	return l.countAside(ctx)
}

// load reads the JSON setting key into v; ok is false if it is not set.
func load(ctx context.Context, st Store, key string, v any) (bool, error) {
	s, ok, err := st.Setting(ctx, key)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return false, fmt.Errorf("setting %s: %w", key, err)
	}
	return true, nil
}

// save keeps v as the JSON setting key, durably.
func save(ctx context.Context, st Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return st.PutSettings(ctx, map[string]string{key: string(b)}, nil)
}

func protojsonMarshal(c *rasoatv1.Change) ([]byte, error) { return protojson.Marshal(c) }

func protojsonUnmarshal(b []byte, c *rasoatv1.Change) error { return protojson.Unmarshal(b, c) }
