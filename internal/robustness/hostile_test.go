package robustness

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Hostile traffic beside the tablets: enrolled devices in the wrong hands
// that speak raw gRPC, not through the client library (people_test.go).
// A commune server's device, which may relay any replica's changes and so
// passes the scope, pushes what no honest tablet would (forged and future
// bases, oversized fields); a collaborator's device pushes changes its
// person may not write (another village, another device's replica, an
// approval). The server must refuse each batch whole, storing nothing of
// it. Beside them, readers open a Snapshot stream, read one response and
// stop reading, held open for the whole run, while the tablets go on
// syncing over the same server.

// The stalled readers read a village of their own, filled at setup with
// enough bulk (a few MiB of states) that its Snapshot takes several
// responses: the server's handler then blocks in Send, mid-snapshot, for
// as long as the reader does not read. Their person's units hold that
// village only, and no tablet's (nor the checker's) hold it.
var bulkVillage = authtest.Village(nVillages + 1)

const (
	bulkReplica    = "robustness-bulk"
	stallReplica   = "robustness-stall"
	bulkEntities   = 224
	bulkValueBytes = 15_000 // 224 × 15 kB ≈ 3.4 MB: four Snapshot responses of about 1 MiB
)

// stall is one Snapshot stream read once, then left.
type stall struct {
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	stream grpc.ServerStreamingClient[rasoatv1.SnapshotResponse]
	got    []string // entity ids received
}

// setupStalls fills the bulk village (in bulk worlds) and opens the
// stalled readers: three to five, more than the store's four read
// connections, so that a handler holding a read while blocked in Send
// would starve every pull.
func (w *world) setupStalls() {
	w.hclock = hlc.New(w.now)
	if w.bulk {
		w.fillBulk()
	}
	w.nstalls = 1 + w.r.IntN(2)
	if w.bulk {
		w.nstalls = 4 + w.r.IntN(2) // the store reads on a pool of four connections
	}
	w.openStalls()
}

// fillBulk pushes the bulk village's households, raw, from the bulk
// village's collaborator's device.
func (w *world) fillBulk() {
	api := rasoatv1.NewSyncServiceClient(w.reader.conn)
	name := []byte(`"` + strings.TrimSpace(strings.Repeat("Bùi Thị Bích ", bulkValueBytes/16)) + `"`)
	clock := hlc.New(w.now)
	seq := uint64(0)
	for start := 0; start < bulkEntities; start += 32 {
		var batch []*rasoatv1.Change
		for range 32 {
			seq++
			batch = append(batch, &rasoatv1.Change{
				EntityId: w.uuid(), Kind: rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, VillageCode: bulkVillage,
				Field: "headName", Value: name, Stamp: &rasoatv1.Stamp{Hlc: uint64(clock.Now()), ReplicaId: bulkReplica}, Seq: seq,
			})
		}
		ctx, cancel := context.WithTimeout(w.ctx, syncTimeout)
		_, err := api.Push(ctx, &rasoatv1.PushRequest{ReplicaId: bulkReplica, Changes: batch})
		cancel()
		if err != nil {
			w.fatalf("push the bulk village: %.500v", err)
		}
	}
}

// openStalls opens stalled readers until nstalls are open.
func (w *world) openStalls() {
	for len(w.stalls) < w.nstalls {
		w.openStall()
	}
}

// openStall opens one Snapshot stream over a connection of its own with
// the smallest flow-control windows (so that the server's sends block as
// soon as it stops reading), reads one response, and keeps it open.
func (w *world) openStall() {
	conn := w.dial(grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10), authtest.Bearer(w.reader.token))
	ctx, cancel := context.WithCancel(w.ctx)
	s := &stall{conn: conn, cancel: cancel}
	w.stalls = append(w.stalls, s) // closed with the others, whatever happens next
	req := &rasoatv1.SnapshotRequest{ReplicaId: stallReplica}
	if w.bulk {
		req.ReplicaId = bulkReplica
	}
	stream, err := rasoatv1.NewSyncServiceClient(conn).Snapshot(ctx, req)
	if err != nil {
		w.fatalf("open a Snapshot stream: %v", err)
	}
	s.stream = stream
	resp, err := recvWithin(stream, syncTimeout)
	if err != nil {
		w.fatalf("Snapshot stream %d (%d stalled before it): %v", len(w.stalls), len(w.stalls)-1, err)
	}
	for _, e := range resp.GetEntities() {
		if !slices.Contains(allVillages(w.reader.person.Units), e.GetVillageCode()) {
			w.fatalf("the Snapshot of %s, reading %v, sent entity %s of village %s", w.reader.person.ID, w.reader.person.Units, e.GetEntityId(), e.GetVillageCode())
		}
		s.got = append(s.got, e.GetEntityId())
	}
	if w.bulk && resp.GetDone() {
		w.fatalf("the bulk village fits in one Snapshot response (%d entities): its readers do not stall the server", len(s.got))
	}
}

// recvWithin receives one response, failing after d.
func recvWithin(stream grpc.ServerStreamingClient[rasoatv1.SnapshotResponse], d time.Duration) (*rasoatv1.SnapshotResponse, error) {
	type result struct {
		resp *rasoatv1.SnapshotResponse
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		resp, err := stream.Recv()
		ch <- result{resp, err}
	}()
	select {
	case r := <-ch:
		return r.resp, r.err
	case <-time.After(d):
		return nil, fmt.Errorf("no response in %v", d)
	}
}

// closeStalls closes the stalled readers (the server stops, or the run
// ends); startServer opens them again.
func (w *world) closeStalls() {
	for _, s := range w.stalls {
		s.cancel()
		s.conn.Close()
	}
	w.stalls = nil
}

// drainStall reads one stalled reader to its end, at the end of the run:
// the stream the server held blocked since it was opened (or since the
// last server restart) goes on where it stopped and sends the bulk village
// exactly once.
func (w *world) drainStall() {
	if !w.bulk || len(w.stalls) == 0 {
		return
	}
	s := w.stalls[0]
	for {
		resp, err := recvWithin(s.stream, syncTimeout)
		if err != nil {
			w.fatalf("drain a stalled Snapshot stream after %d entities: %v", len(s.got), err)
		}
		for _, e := range resp.GetEntities() {
			s.got = append(s.got, e.GetEntityId())
		}
		if resp.GetDone() {
			break
		}
	}
	if ids := slices.Compact(slices.Sorted(slices.Values(s.got))); len(s.got) != bulkEntities || len(ids) != bulkEntities {
		w.fatalf("a stalled Snapshot stream, drained, sent %d entities (%d distinct), want the bulk village's %d", len(s.got), len(ids), bulkEntities)
	}
	w.stalls = w.stalls[1:]
	s.cancel()
	s.conn.Close()
}

// hostileCase is one way a pushed change is bad, and what the server must
// answer.
type hostileCase struct {
	name   string
	reason rasoatv1.ErrorReason
	// field: the collaborator's device pushes; otherwise the commune
	// server's, which the scope lets relay any replica's changes, so that
	// the checks behind it are the ones that refuse.
	field bool
	// make spoils the valid change c, or replaces it, or spoils the
	// request; it returns false if it cannot apply to this target.
	make func(w *world, req *rasoatv1.PushRequest, c *rasoatv1.Change) bool
}

var hostileCases = []hostileCase{
	{"change of a village not the person's", rasoatv1.ErrorReason_OUT_OF_SCOPE, true, func(w *world, req *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		others := w.logIn(func(v string) bool { return !slices.Contains(w.field.reads, v) })
		if len(others) == 0 {
			return false
		}
		m, ok := w.honestChange(w.field, pick(w.r, others), "", "")
		req.Changes[slices.Index(req.Changes, c)] = m
		return ok
	}},
	{"change stamped by another device's replica", rasoatv1.ErrorReason_REPLICA_NOT_BOUND, true, func(w *world, _ *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		var tablets []string
		for _, l := range w.log {
			if r := l.c.GetStamp().GetReplicaId(); !slices.Contains(tablets, r) {
				tablets = append(tablets, r)
			}
		}
		c.Stamp.ReplicaId = pick(w.r, tablets)
		return true
	}},
	{"a collaborator deciding a review", rasoatv1.ErrorReason_TRANSITION_REFUSED, true, func(w *world, req *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		reviews := w.logIn(func(v string) bool { return slices.Contains(w.field.reads, v) })
		reviews = slices.DeleteFunc(reviews, func(l *rasoatv1.Change) bool { return l.GetKind() != rasoatv1.EntityKind_ENTITY_KIND_REVIEW })
		if len(reviews) == 0 {
			return false
		}
		m, ok := w.honestChange(w.field, pick(w.r, reviews), "status", `{"state":"decided","decision":{"number":"1/QĐ-UBND","date":"2026-12-10","seal":"`+strings.Repeat("0", 64)+`","standard":"2021-2025","result":"POOR","deprived":[]}}`)
		req.Changes[slices.Index(req.Changes, c)] = m
		return ok
	}},
	{"base naming a stamp nobody wrote", rasoatv1.ErrorReason_BASE_UNKNOWN, false, func(w *world, _ *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		at := hlc.Timestamp(c.GetStamp().GetHlc()) - hlc.At(time.Unix(0, 0).Add(time.Duration(1+w.r.IntN(3600))*time.Second), uint16(w.r.IntN(1<<16)))
		return addBase(w, c, merge.Stamp{HLC: at, Replica: w.anyReplica()})
	}},
	{"base a day in the future (the change just within the drift bound)", rasoatv1.ErrorReason_BASE_UNKNOWN, false, func(w *world, _ *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		c.Stamp.Hlc = uint64(hlc.At(w.now().Add(23*time.Hour+50*time.Minute), 0))
		return addBase(w, c, merge.Stamp{HLC: hlc.At(w.now().Add(23*time.Hour), 0), Replica: w.anyReplica()})
	}},
	{"base in the future, after the change's own stamp", rasoatv1.ErrorReason_INVALID_FIELD, false, func(w *world, _ *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		return addBase(w, c, merge.Stamp{HLC: hlc.At(w.now().Add(24*time.Hour+time.Duration(w.r.IntN(48))*time.Hour), 0), Replica: w.anyReplica()})
	}},
	{"base and change a day and more in the future", rasoatv1.ErrorReason_CLOCK_AHEAD, false, func(w *world, _ *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		c.Stamp.Hlc = uint64(hlc.At(w.now().Add(25*time.Hour+time.Duration(w.r.IntN(48))*time.Hour), 0))
		return addBase(w, c, merge.Stamp{HLC: hlc.At(w.now().Add(24*time.Hour+30*time.Minute), 0), Replica: w.anyReplica()})
	}},
	{"base naming a stored stamp of another field", rasoatv1.ErrorReason_BASE_UNKNOWN, false, func(w *world, _ *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		var others []*rasoatv1.Change
		for _, l := range w.log {
			if (l.c.GetEntityId() == c.GetEntityId()) != (l.c.GetField() == c.GetField()) && l.c.GetStamp().GetHlc() < c.GetStamp().GetHlc() {
				others = append(others, l.c)
			}
		}
		if len(others) == 0 {
			return false
		}
		o := pick(w.r, others)
		return addBase(w, c, merge.Stamp{HLC: hlc.Timestamp(o.GetStamp().GetHlc()), Replica: o.GetStamp().GetReplicaId()})
	}},
	{"base listing more than entity.MaxBase stamps", rasoatv1.ErrorReason_TOO_LARGE, false, func(w *world, _ *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		for len(c.Base) <= entity.MaxBase {
			at := hlc.Timestamp(c.GetStamp().GetHlc()) - hlc.Timestamp(1+w.r.IntN(1<<30))
			if !addBase(w, c, merge.Stamp{HLC: at, Replica: w.anyReplica()}) {
				return false
			}
		}
		return true
	}},
	{"base replica id over the bound", rasoatv1.ErrorReason_TOO_LARGE, false, func(w *world, _ *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		return addBase(w, c, merge.Stamp{HLC: hlc.Timestamp(c.GetStamp().GetHlc()) - 1, Replica: longID(w)})
	}},
	{"origin replica id over the bound", rasoatv1.ErrorReason_TOO_LARGE, false, func(w *world, _ *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		c.Stamp.ReplicaId = longID(w)
		return true
	}},
	{"value over entity.MaxValueSize", rasoatv1.ErrorReason_TOO_LARGE, false, func(w *world, _ *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		field := map[rasoatv1.EntityKind]string{
			rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD: "headName",
			rasoatv1.EntityKind_ENTITY_KIND_MEMBER:    "fullName",
			rasoatv1.EntityKind_ENTITY_KIND_REVIEW:    "comment",
		}[c.GetKind()]
		c.Field = field
		c.Value = []byte(`"` + strings.Repeat("Ngô", entity.MaxValueSize/4+1+w.r.IntN(1000)) + `"`)
		c.Base = nil // a first write: otherwise valid
		return true
	}},
	{"an (origin, seq) stored with other content", rasoatv1.ErrorReason_CONTENT_MISMATCH, false, func(w *world, req *rasoatv1.PushRequest, c *rasoatv1.Change) bool {
		var same []*rasoatv1.Change
		for _, l := range w.log {
			if l.c.GetEntityId() == c.GetEntityId() {
				same = append(same, l.c)
			}
		}
		o := pick(w.r, same) // the change c was built from is in the log
		var vs []string
		for _, v := range domains[entity.KindName(o.GetKind())][o.GetField()] {
			if v != string(o.GetValue()) {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 {
			return false
		}
		m := cloneChange(o)
		m.Value = []byte(pick(w.r, vs))
		i := slices.Index(req.Changes, c)
		req.Changes[i] = m
		return true
	}},
	{"pushing replica id over the bound", rasoatv1.ErrorReason_TOO_LARGE, false, func(w *world, req *rasoatv1.PushRequest, _ *rasoatv1.Change) bool {
		req.ReplicaId = longID(w)
		return true
	}},
	{"pushing as a replica not bound to the device", rasoatv1.ErrorReason_REPLICA_NOT_BOUND, false, func(w *world, req *rasoatv1.PushRequest, _ *rasoatv1.Change) bool {
		req.ReplicaId = pick(w.r, w.log).c.GetStamp().GetReplicaId()
		return true
	}},
}

// longID is a replica id of valid characters, over entity.MaxReplicaIDLen.
func longID(w *world) string {
	return ("tab-" + strings.Repeat("0123456789abcdef", 20))[:entity.MaxReplicaIDLen+1+w.r.IntN(100)]
}

// anyReplica is one the log names, or a made-up one.
func (w *world) anyReplica() string {
	if len(w.log) == 0 || w.r.IntN(4) == 0 {
		return fmt.Sprintf("ghost-%d", w.r.IntN(1000))
	}
	return pick(w.r, w.log).c.GetStamp().GetReplicaId()
}

// addBase adds stamps to c's base, keeping it sorted and distinct, and
// makes sure none of them names a stored change to c's field (which would
// make the base honest).
func addBase(w *world, c *rasoatv1.Change, stamps ...merge.Stamp) bool {
	for _, s := range stamps {
		if s.HLC == 0 {
			return false
		}
		for _, l := range w.log {
			if l.c.GetEntityId() == c.GetEntityId() && l.c.GetField() == c.GetField() &&
				l.c.GetStamp().GetHlc() == uint64(s.HLC) && l.c.GetStamp().GetReplicaId() == s.Replica {
				return false
			}
		}
		for _, b := range c.Base {
			if b.GetHlc() == uint64(s.HLC) && b.GetReplicaId() == s.Replica {
				return false
			}
		}
		c.Base = append(c.Base, &rasoatv1.Stamp{Hlc: uint64(s.HLC), ReplicaId: s.Replica})
	}
	slices.SortFunc(c.Base, func(a, b *rasoatv1.Stamp) int {
		return merge.Stamp{HLC: hlc.Timestamp(a.GetHlc()), Replica: a.GetReplicaId()}.Compare(merge.Stamp{HLC: hlc.Timestamp(b.GetHlc()), Replica: b.GetReplicaId()})
	})
	return true
}

func cloneChange(c *rasoatv1.Change) *rasoatv1.Change {
	out := &rasoatv1.Change{
		EntityId: c.GetEntityId(), Kind: c.GetKind(), HouseholdId: c.GetHouseholdId(), VillageCode: c.GetVillageCode(),
		Field: c.GetField(), Value: slices.Clone(c.GetValue()), Seq: c.GetSeq(),
		Stamp: &rasoatv1.Stamp{Hlc: c.GetStamp().GetHlc(), ReplicaId: c.GetStamp().GetReplicaId()},
	}
	for _, b := range c.GetBase() {
		out.Base = append(out.Base, &rasoatv1.Stamp{Hlc: b.GetHlc(), ReplicaId: b.GetReplicaId()})
	}
	return out
}

// honestChange is a change device d could push on its own: a value of a
// field of an entity the server holds (field and value, unless given, at
// random), with the field's heads as base, stamped by its clock above
// them. ok is false when the heads are too recent for a stamp within the
// drift bound to be above them.
func (w *world) honestChange(d *device, l *rasoatv1.Change, field, value string) (*rasoatv1.Change, bool) {
	kind := entity.KindName(l.GetKind())
	if field == "" {
		field = pick(w.r, sortedKeys(domains[kind]))
		value = pick(w.r, domains[kind][field])
	}
	c := &rasoatv1.Change{
		EntityId: l.GetEntityId(), Kind: l.GetKind(), HouseholdId: l.GetHouseholdId(), VillageCode: l.GetVillageCode(),
		Field: field, Value: []byte(value),
	}
	st, found, err := w.srv.db.Entity(w.ctx, l.GetEntityId())
	if err != nil || !found {
		w.fatalf("read entity %s: found %v, %v", w.name(l.GetEntityId()), found, err)
	}
	if f := st.Field(field); f != nil {
		for _, b := range f.Base() {
			if b.HLC.Wall().After(w.now().Add(20 * time.Hour)) {
				return nil, false
			}
			w.hclock.Restore(b.HLC)
			c.Base = append(c.Base, &rasoatv1.Stamp{Hlc: uint64(b.HLC), ReplicaId: b.Replica})
		}
	}
	d.seq++
	c.Stamp = &rasoatv1.Stamp{Hlc: uint64(w.hclock.Now()), ReplicaId: d.replica}
	c.Seq = d.seq
	return c, true
}

// logIn returns the log's changes of the villages in.
func (w *world) logIn(in func(village string) bool) []*rasoatv1.Change {
	var out []*rasoatv1.Change
	for _, l := range w.log {
		if in(l.c.GetVillageCode()) {
			out = append(out, l.c)
		}
	}
	return out
}

// hostilePush has a device in the wrong hands push a batch of honest
// changes to the world's entities (of its person's villages) with one bad
// change among them, and checks the server refuses it with the case's
// reason, naming the bad change, and stores nothing: the log's end and
// the entities' states are unchanged.
func (w *world) hostilePush() {
	w.refresh()
	hc := pick(w.r, hostileCases)
	d := w.relay
	if hc.field {
		d = w.field
	}
	mine := w.logIn(func(v string) bool { return slices.Contains(d.reads, v) })
	if len(mine) == 0 {
		return
	}
	req := &rasoatv1.PushRequest{ReplicaId: d.replica}
	for range 1 + w.r.IntN(4) {
		if c, ok := w.honestChange(d, pick(w.r, mine), "", ""); ok {
			req.Changes = append(req.Changes, c)
		}
	}
	if len(req.Changes) == 0 {
		return
	}
	bad := w.r.IntN(len(req.Changes))
	if !hc.make(w, req, req.Changes[bad]) {
		return
	}
	touched := map[string][]byte{}
	for _, c := range req.Changes {
		touched[c.GetEntityId()] = w.serverState(c.GetEntityId())
	}
	end, err := w.srv.db.End(w.ctx)
	if err != nil {
		w.fatalf("read the log's end: %v", err)
	}
	ctx, cancel := context.WithTimeout(w.ctx, syncTimeout)
	defer cancel()
	_, err = rasoatv1.NewSyncServiceClient(d.conn).Push(ctx, req)
	desc := fmt.Sprintf("hostile push by %s's device of %d changes, change %d with a %s", d.person.ID, len(req.Changes), bad, hc.name)
	w.record("%s: %v", desc, err)
	if err == nil {
		w.fatalf("%s: the server accepted it", desc)
	}
	code := codes.InvalidArgument
	if slices.Contains([]rasoatv1.ErrorReason{rasoatv1.ErrorReason_OUT_OF_SCOPE, rasoatv1.ErrorReason_REPLICA_NOT_BOUND, rasoatv1.ErrorReason_ROLE_DENIED}, hc.reason) {
		code = codes.PermissionDenied
	}
	if hc.reason == rasoatv1.ErrorReason_TRANSITION_REFUSED {
		code = codes.FailedPrecondition
	}
	if status.Code(err) != code || rpcerr.Reason(err) != hc.reason {
		w.fatalf("%s: refused with %v (reason %v), want %v, %v", desc, status.Code(err), rpcerr.Reason(err), code, hc.reason)
	}
	if req.ReplicaId == d.replica {
		prefix := fmt.Sprintf("changes[%d].", bad)
		vs := rpcerr.Violations(err)
		if len(vs) == 0 || slices.ContainsFunc(vs, func(v rpcerr.Violation) bool { return !strings.HasPrefix(v.Field, prefix) || v.Reason != hc.reason }) {
			w.fatalf("%s: violations %+v, want only %s… with reason %v", desc, vs, prefix, hc.reason)
		}
	}
	if after, err := w.srv.db.End(w.ctx); err != nil || after != end {
		w.fatalf("%s: the log's end moved from %v to %v (%v)", desc, end, after, err)
	}
	for id, before := range touched {
		if after := w.serverState(id); !bytes.Equal(before, after) {
			w.fatalf("%s: the server's state of %s changed", desc, w.name(id))
		}
	}
	w.n.hostile++
	w.n.refusals[hc.reason.String()]++
}

// serverState is the server's encoded state of id.
func (w *world) serverState(id string) []byte {
	st, found, err := w.srv.db.Entity(w.ctx, id)
	if err != nil || !found {
		w.fatalf("read entity %s: found %v, %v", w.name(id), found, err)
	}
	b, err := st.MarshalBinary()
	if err != nil {
		w.fatalf("encode entity %s: %v", w.name(id), err)
	}
	return b
}
