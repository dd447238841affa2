package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/protobuf/proto"
)

// MaxRefused bounds the changes a refused push lists: enough for a tablet
// to set each aside, few enough that the error stays a small message.
const MaxRefused = 100

// Tx is a server store's push transaction: the rows a push reads and
// writes. Every method reads or writes inside the one transaction, so the
// checks and the writes they allow commit together.
type Tx interface {
	Loader
	// StoredRange calls fn with the payload of each change of origin stored
	// with a seq in [lo, hi]: one range read, for a batch whose seqs are
	// dense (a tablet's batch is consecutive).
	StoredRange(ctx context.Context, origin string, lo, hi uint64, fn func(seq uint64, payload []byte)) error
	// StoredSeqs is StoredRange for the listed seqs (sorted, distinct): point
	// reads, so a batch naming seqs 1 and 2^63 costs two probes, not a scan
	// between.
	StoredSeqs(ctx context.Context, origin string, seqs []uint64, fn func(seq uint64, payload []byte)) error
	// ReplicaHighSeq is the greatest seq stored with replica as origin, 0
	// if none.
	ReplicaHighSeq(ctx context.Context, replica string) (uint64, error)
	// NextStamp is the stamp (hlc) of origin's stored change with the
	// least seq above seq, and whether there is one.
	NextStamp(ctx context.Context, origin string, seq uint64) (uint64, bool, error)
	// BaseStored reports whether the store holds a change to field of
	// entity stamped s that PutDropped recorded (an engine may answer from
	// every change of its log instead: the check asks only of stamps that
	// are no head of the field).
	BaseStored(ctx context.Context, s merge.Stamp, entity, field string) (bool, error)
	// PutDropped records the changes a push made no longer heads of their
	// field, or stored without making them heads (each stored in the log,
	// before or by this push), for BaseStored.
	PutDropped(ctx context.Context, dropped []Dropped) error
	// LogEnd is the log's last position and its running digest (0, 0 for
	// an empty log).
	LogEnd(ctx context.Context) (seq, chain uint64, err error)
	// AppendLog appends rows to the log, at the positions following
	// LogEnd's, in order.
	AppendLog(ctx context.Context, rows []LogRow) error
	// PutEntities stores the rows' states, creating or replacing them.
	PutEntities(ctx context.Context, rows []Row) error
	// Entity returns the stored state of id, nil if none (for a Guard).
	Entity(ctx context.Context, id string) ([]byte, error)
	// Household calls fn with the stored state of each entity of a
	// household (itself, its members, its reviews), for a Guard.
	Household(ctx context.Context, householdID string, fn func(state []byte) error) error
	// PersonOf returns the person a replica id is bound to, "" if none.
	PersonOf(ctx context.Context, replica string) (string, error)
	// PutFacts stores the households' report facts, replacing what was
	// stored for them (store.HouseholdFacts).
	PutFacts(ctx context.Context, facts []store.HouseholdFacts) error
	// Decided returns the household's decided results as its facts hold
	// them, with the figures (store.View.Decided).
	Decided(ctx context.Context, householdID string) ([]store.DecidedFact, error)
	// SamePeople returns other households' members with one of keys
	// (store.View.SamePeople).
	SamePeople(ctx context.Context, householdID string, keys []string) ([]store.PersonMatch, error)
}

// LogRow is one change appended to the log.
type LogRow struct {
	Seq     uint64 // its server position
	Chain   uint64 // the log's digest up to it (store.NextChain)
	Change  *rasoatv1.Change
	Payload []byte // Change, deterministic proto encoding
}

// Batch is one push prepared outside the store's transaction: encoded once,
// for storing and for comparing with what is stored.
type Batch struct {
	replica  string
	changes  []*rasoatv1.Change
	payloads [][]byte
	merges   []merge.Change
}

var (
	marshal = proto.MarshalOptions{Deterministic: true}
	// marshalSized marshals a message whose size marshal.Size has just
	// computed and cached in it, without computing it again.
	marshalSized = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}
)

// Prepare encodes a batch of changes pushed by replica (a tablet, or a
// commune server relaying; not necessarily the changes' origin), which
// have passed entity.Validate. The batch's encodings share one buffer,
// sized first: grown by appending instead, it was allocated three times
// over and copied at each growth, and encoding a batch of 390 took twice
// as long (BenchmarkPrepare).
func Prepare(replica string, changes []*rasoatv1.Change) (*Batch, error) {
	b := &Batch{replica: replica, changes: changes, payloads: make([][]byte, len(changes)), merges: make([]merge.Change, len(changes))}
	n := 0
	for _, c := range changes {
		n += marshal.Size(c)
	}
	buf := make([]byte, 0, n)
	for i, c := range changes {
		start := len(buf)
		var err error
		if buf, err = marshalSized.MarshalAppend(buf, c); err != nil {
			return nil, fmt.Errorf("push: encode changes[%d]: %w", i, err)
		}
		b.payloads[i] = buf[start:len(buf):len(buf)]
		b.merges[i] = entity.MergeOf(c)
	}
	// Should buf have grown after all, the payloads sliced before stay
	// valid and unchanged in the old array.
	return b, nil
}

// Len is the number of changes in the batch.
func (b *Batch) Len() int { return len(b.changes) }

// Apply runs the push in tx; an error leaves tx to be rolled back. What it
// checks against what is stored (store.Refused lists each refused change,
// at most MaxRefused, and nothing of the batch is to be stored):
//   - a change whose origin (stamp.replica_id, seq) is stored, or earlier in
//     the batch, with the same bytes is a duplicate, skipped; with other
//     bytes it is refused (store.ErrContentMismatch), never counted as a
//     duplicate: the author's tablet shows it, so it must reach everyone;
//   - a change's kind, household and village are its entity's, and a member
//     or review belongs to a household held here, in the same village
//     (store.ErrEntityMismatch);
//   - every base stamp names a change to the same field stored in the log
//     (even if superseded) or earlier in the batch (store.ErrBaseUnknown);
//   - guard, when not nil, passes each new change, seeing the batch so far
//     applied; a refusal wrapping store.ErrWorkflow, store.ErrLocked or
//     store.ErrQuality refuses the change, any other error fails the push;
//   - no field keeps more than entity.MaxHeads concurrent values, no state
//     grows past entity.MaxStateSize (store.ErrEntityTooLarge).
//
// The cost is in proportion to the batch: stored changes are looked up by
// their (origin, seq) and stamps by index, never by scanning a range of the
// log.
//
// derive, when not nil, makes the report facts of every household the
// batch changed (itself, a member or a review), stored in the same
// transaction.
func (b *Batch) Apply(ctx context.Context, tx Tx, guard store.Guard, derive store.Deriver) (res store.PushResult, err error) {
	fresh, refused, err := b.newChanges(ctx, tx)
	if err != nil {
		return res, err
	}
	if len(refused) > 0 {
		return res, refused
	}
	res.Accepted = len(fresh)
	res.Duplicates = len(b.changes) - len(fresh)
	states, refused, err := b.merge(ctx, tx, fresh, guard)
	if err != nil {
		return res, err
	}
	if len(refused) > 0 {
		return res, refused
	}
	if res.ServerSeq, err = b.appendLog(ctx, tx, fresh); err != nil {
		return res, err
	}
	if len(states.Dropped) > 0 {
		if err := tx.PutDropped(ctx, states.Dropped); err != nil {
			return res, fmt.Errorf("push: record %d superseded changes: %w", len(states.Dropped), err)
		}
	}
	// The state's size is known once it is encoded, after the log rows
	// went in: a refusal here rolls them back with the rest.
	rows, err := states.Encode(func(p *Pending, r *Row) error {
		if n := len(r.State); n > entity.MaxStateSize && len(refused) < MaxRefused {
			refused = append(refused, &store.ChangeError{Index: p.Last, Field: "value",
				Err: fmt.Errorf("%w: entity %s would be %d bytes, over the limit of %d", store.ErrEntityTooLarge, r.ID, n, entity.MaxStateSize)})
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("push: %w", err)
	}
	if len(refused) > 0 {
		return res, refused
	}
	if len(rows) > 0 {
		if err := tx.PutEntities(ctx, rows); err != nil {
			return res, fmt.Errorf("push: write %d entities: %w", len(rows), err)
		}
		if derive != nil {
			if err := putFacts(ctx, tx, states, rows, derive); err != nil {
				return res, err
			}
		}
	}
	if res.ReplicaHighSeq, err = tx.ReplicaHighSeq(ctx, b.replica); err != nil {
		return res, fmt.Errorf("push: read the replica's last seq: %w", err)
	}
	return res, nil
}

type originKey struct {
	origin string
	seq    uint64
}

// newChanges returns the indexes of the changes not yet stored, in batch
// order, and refuses those whose (origin, seq) is stored or earlier in the
// batch with other content. Per origin it reads the stored payloads of the
// batch's seqs: one range read when they are dense, point reads otherwise.
func (b *Batch) newChanges(ctx context.Context, tx Tx) ([]int, store.Refused, error) {
	bySeq := map[string][]uint64{}
	var origins []string
	for _, c := range b.changes {
		o := c.GetStamp().GetReplicaId()
		if bySeq[o] == nil {
			origins = append(origins, o)
		}
		bySeq[o] = append(bySeq[o], c.GetSeq())
	}
	stored := make(map[originKey][]byte, len(b.changes)) // each fresh change goes in too
	for _, o := range origins {
		seqs := bySeq[o]
		add := func(s uint64, p []byte) { stored[originKey{o, s}] = bytes.Clone(p) }
		lo, hi := slices.Min(seqs), slices.Max(seqs)
		var err error
		if hi-lo < uint64(2*len(seqs)) {
			err = tx.StoredRange(ctx, o, lo, hi, add)
		} else {
			err = tx.StoredSeqs(ctx, o, slices.Compact(slices.Sorted(slices.Values(seqs))), add)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("push: look up stored changes of %s: %w", o, err)
		}
	}
	var refused store.Refused
	var high *uint64
	fresh := make([]int, 0, len(b.changes))
	for i, c := range b.changes {
		k := originKey{c.GetStamp().GetReplicaId(), c.GetSeq()}
		prev, ok := stored[k]
		if !ok {
			stored[k] = b.payloads[i] // a repeat later in the batch is a duplicate
			fresh = append(fresh, i)
			continue
		}
		if bytes.Equal(prev, b.payloads[i]) {
			continue
		}
		if high == nil {
			h, err := tx.ReplicaHighSeq(ctx, b.replica)
			if err != nil {
				return nil, nil, fmt.Errorf("push: read the replica's last seq: %w", err)
			}
			high = &h
		}
		refused = append(refused, &store.ChangeError{Index: i, Field: "seq", Err: mismatch(k, *high, prev, c)})
		if len(refused) == MaxRefused {
			break
		}
	}
	// In batch order with the reused seqs: the first refusal is where the
	// origin moves to a fresh id, and all after it move with it, in order.
	out, err := b.outOfOrder(ctx, tx, fresh)
	if err != nil {
		return nil, nil, err
	}
	if len(out) > 0 {
		refused = append(refused, out...)
		slices.SortStableFunc(refused, func(a, b *store.ChangeError) int { return a.Index - b.Index })
		refused = refused[:min(len(refused), MaxRefused)]
	}
	return fresh, refused, nil
}

// outOfOrder refuses a new change whose seq is below one its origin has
// stored already but whose stamp is not below that change's: an origin
// stamps its changes in seq order, so only a restored copy of its file,
// writing into a seq the server never took (a change refused and discarded
// there), does that. Taken, it would break what merging rests on (a
// replica's stamps grow with its seqs: having seen one of its stamps is
// having seen its earlier ones), and hide a change from those who saw the
// later stamp. Refused as a content mismatch, it moves the copy to a fresh
// replica id, as a reused seq does. A change set aside and retried later
// keeps its earlier stamp, and passes. One point read per such change,
// none for a change above its origin's last seq.
func (b *Batch) outOfOrder(ctx context.Context, tx Tx, fresh []int) (store.Refused, error) {
	highs := map[string]uint64{}
	var refused store.Refused
	for _, i := range fresh {
		c := b.changes[i]
		o := c.GetStamp().GetReplicaId()
		h, ok := highs[o]
		if !ok {
			var err error
			if h, err = tx.ReplicaHighSeq(ctx, o); err != nil {
				return nil, fmt.Errorf("push: read the last seq of %s: %w", o, err)
			}
			highs[o] = h
		}
		if c.GetSeq() >= h {
			continue
		}
		next, ok, err := tx.NextStamp(ctx, o, c.GetSeq())
		if err != nil {
			return nil, fmt.Errorf("push: read the stamps of %s: %w", o, err)
		}
		if !ok || c.GetStamp().GetHlc() < next {
			continue
		}
		high, err := tx.ReplicaHighSeq(ctx, b.replica)
		if err != nil {
			return nil, fmt.Errorf("push: read the replica's last seq: %w", err)
		}
		refused = append(refused, &store.ChangeError{Index: i, Field: "seq", Err: &store.MismatchError{Origin: o, Seq: c.GetSeq(), ReplicaHighSeq: high}})
		if len(refused) == MaxRefused {
			break
		}
	}
	return refused, nil
}

// mismatch is the refusal of c, whose (origin, seq) k is stored as the
// payload stored, saying whether the stored change is the same write as c,
// re-stamped: the same entity, kind, field and value, over the same base.
// Re-stamping keeps the base (the origin renames only its own moved
// stamps, and renames those to the stored ones before it sends a later
// change), so a change with another base is another write, even with the
// same value: one a restored file made after seeing other writes, which
// must be issued again, not dropped as stored.
func mismatch(k originKey, high uint64, stored []byte, c *rasoatv1.Change) *store.MismatchError {
	e := &store.MismatchError{Origin: k.origin, Seq: k.seq, ReplicaHighSeq: high}
	s := &rasoatv1.Change{}
	if err := proto.Unmarshal(stored, s); err == nil &&
		s.GetEntityId() == c.GetEntityId() && s.GetKind() == c.GetKind() && s.GetField() == c.GetField() && bytes.Equal(s.GetValue(), c.GetValue()) &&
		slices.EqualFunc(s.GetBase(), c.GetBase(), func(a, b *rasoatv1.Stamp) bool {
			return a.GetHlc() == b.GetHlc() && a.GetReplicaId() == b.GetReplicaId()
		}) {
		e.SameWrite, e.StoredHLC = true, s.GetStamp().GetHlc()
	}
	return e
}

// stampKey is one change's stamp on one field of one entity.
type stampKey struct {
	entity, field string
	stamp         merge.Stamp
}

// merge reads each entity the fresh changes touch (and each household a
// member or review names) once, checks and applies the changes in batch
// order, and returns the states to store.
func (b *Batch) merge(ctx context.Context, tx Tx, fresh []int, guard store.Guard) (*States, store.Refused, error) {
	states := NewStates(len(fresh) / 4)
	states.TrackDropped()
	for _, i := range fresh {
		states.WantWrite(b.changes[i].GetEntityId())
		if h := entity.HouseholdOf(b.changes[i]); h != b.changes[i].GetEntityId() {
			states.Want(h)
		}
	}
	if err := states.Load(ctx, tx); err != nil {
		return nil, nil, fmt.Errorf("push: %w", err)
	}
	// The stamps of the batch, so a base may name a change earlier in it.
	inBatch := make(map[stampKey]int, len(b.changes))
	var refused store.Refused
	refuse := func(i int, field string, err error) {
		if len(refused) < MaxRefused {
			refused = append(refused, &store.ChangeError{Index: i, Field: field, Err: err})
		}
	}
	var v *view // made on the guard's first use
	isFresh := make([]bool, len(b.changes))
	for _, i := range fresh {
		isFresh[i] = true
	}
	for i, c := range b.changes {
		m := &b.merges[i]
		key := stampKey{m.Entity, m.Field, m.Stamp}
		if !isFresh[i] {
			inBatch[key] = i // a duplicate is stored: a later base may name it
			continue
		}
		st := states.Get(c.GetEntityId())
		if err := st.State.Check(c); err != nil {
			var fe *entity.FieldError
			field := "entity_id"
			if errors.As(err, &fe) {
				field = fe.Field
			}
			refuse(i, field, fmt.Errorf("%w: %w", store.ErrEntityMismatch, err))
			continue
		}
		if hh := entity.HouseholdOf(c); hh != c.GetEntityId() {
			h := states.Get(hh)
			switch {
			case h.State.ID == "":
				refuse(i, "household_id", fmt.Errorf("%w: household %s is not held by this server: push the household first", store.ErrEntityMismatch, hh))
				continue
			case h.State.Kind != rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD:
				refuse(i, "household_id", fmt.Errorf("%w: %s is a %s, not a household", store.ErrEntityMismatch, hh, entity.KindName(h.State.Kind)))
				continue
			case h.State.VillageCode != c.GetVillageCode():
				refuse(i, "village_code", fmt.Errorf("%w: %q is not the village of household %s (%q)", store.ErrEntityMismatch, c.GetVillageCode(), hh, h.State.VillageCode))
				continue
			}
		}
		if j, err := checkBase(ctx, tx, st, m, inBatch); err != nil {
			return nil, nil, err
		} else if j >= 0 {
			refuse(i, fmt.Sprintf("base[%d]", j), fmt.Errorf("%w: %s", store.ErrBaseUnknown, m.Base[j]))
			continue
		}
		if guard != nil {
			if v == nil {
				v = newView(tx, states)
			}
			if err := guard.Check(ctx, c, v); err != nil {
				field, ok := GuardRefusal(err)
				if !ok {
					return nil, nil, err
				}
				refuse(i, field, err)
				// A later change whose base names this one is refused for
				// the same rule, not as naming a change nobody wrote.
				inBatch[key] = i
				continue
			}
		}
		before := len(states.Dropped)
		changed, err := states.Apply(c, *m)
		if err != nil {
			// Checked above; only a change of identity could fail here.
			return nil, nil, fmt.Errorf("push: changes[%d]: %w", i, err)
		}
		// A later base may name what this change superseded, which is
		// recorded only once the batch is applied.
		for _, d := range states.Dropped[before:] {
			inBatch[stampKey{m.Entity, m.Field, d.Stamp}] = i
		}
		if f := st.State.Field(m.Field); changed && f != nil && len(f.Heads) > entity.MaxHeads {
			refuse(i, "field", fmt.Errorf("%w: %s would hold %d concurrent values, over the limit of %d: resolve its conflict first", store.ErrEntityTooLarge, m.Field, len(f.Heads), entity.MaxHeads))
			continue
		}
		st.Last = i
		inBatch[key] = i
	}
	return states, refused, nil
}

// checkBase returns the index of the first base stamp of m that names no
// change to m's field held here (-1 if all do): one earlier in the batch, a
// current head of the field, or, failing both, one recorded as dropped
// (PutDropped). Every stored change is one of the last two (see
// merge.Field.ApplyDropping), so the store reads only for a base naming a
// value since superseded, and indexes only those: an index of every
// change's stamp cost a sixth of appending to the log.
func checkBase(ctx context.Context, tx Tx, st *Pending, m *merge.Change, inBatch map[stampKey]int) (int, error) {
	f := st.State.Field(m.Field)
	for j, b := range m.Base {
		if _, ok := inBatch[stampKey{m.Entity, m.Field, b}]; ok {
			continue
		}
		if f != nil && slices.ContainsFunc(f.Heads, func(h merge.Head) bool { return h.Stamp == b }) {
			continue
		}
		ok, err := tx.BaseStored(ctx, b, m.Entity, m.Field)
		if err != nil {
			return -1, fmt.Errorf("push: look up base %s: %w", b, err)
		}
		if !ok {
			return j, nil
		}
	}
	return -1, nil
}

// appendLog appends the fresh changes to the log, each with the log's
// running digest, and returns the log's last position.
func (b *Batch) appendLog(ctx context.Context, tx Tx, fresh []int) (uint64, error) {
	last, chain, err := tx.LogEnd(ctx)
	if err != nil {
		return 0, fmt.Errorf("push: read the log's end: %w", err)
	}
	if len(fresh) == 0 {
		return last, nil
	}
	rows := make([]LogRow, len(fresh))
	for k, i := range fresh {
		c := b.changes[i]
		chain = store.NextChain(chain, c.GetStamp().GetReplicaId(), c.GetSeq())
		rows[k] = LogRow{Seq: last + uint64(k) + 1, Chain: chain, Change: c, Payload: b.payloads[i]}
	}
	if err := tx.AppendLog(ctx, rows); err != nil {
		return 0, fmt.Errorf("push: append %d changes to the log: %w", len(rows), err)
	}
	return last + uint64(len(fresh)), nil
}

// GuardRefusal reports whether err is a guard's refusal of a change
// (rather than a failure to read), and the change's field it names.
func GuardRefusal(err error) (string, bool) {
	if !errors.Is(err, store.ErrWorkflow) && !errors.Is(err, store.ErrLocked) && !errors.Is(err, store.ErrQuality) {
		return "", false
	}
	var f interface{ Field() string }
	if errors.As(err, &f) && f.Field() != "" {
		return f.Field(), true
	}
	return "value", true
}

// putFacts derives and stores the facts of the households rows changed.
func putFacts(ctx context.Context, tx Tx, states *States, rows []Row, derive store.Deriver) error {
	seen := make(map[string]bool, len(rows))
	households := make([]string, 0, len(rows))
	for _, r := range rows {
		if !seen[r.HouseholdID] {
			seen[r.HouseholdID] = true
			households = append(households, r.HouseholdID)
		}
	}
	return deriveFacts(ctx, tx, newView(tx, states), households, derive, func(hh string) bool {
		p := states.Get(hh)
		return p != nil && !p.Found
	})
}

// PutFacts derives and stores the facts of households as stored: for a
// store that keeps households from before it kept facts, or that was given
// other standards.
func PutFacts(ctx context.Context, tx Tx, households []string, derive store.Deriver) error {
	return deriveFacts(ctx, tx, newView(tx, NewStates(0)), households, derive, nil)
}

// deriveFacts derives and stores the facts of households; isNew, when not
// nil, says which the push created.
func deriveFacts(ctx context.Context, tx Tx, v store.View, households []string, derive store.Deriver, isNew func(string) bool) error {
	facts := make([]store.HouseholdFacts, 0, len(households))
	for _, hh := range households {
		f, err := derive.Derive(ctx, hh, v)
		if err != nil {
			return fmt.Errorf("push: report facts of %s: %w", hh, err)
		}
		f.New = isNew != nil && isNew(hh)
		facts = append(facts, f)
	}
	if err := tx.PutFacts(ctx, facts); err != nil {
		return fmt.Errorf("push: write the report facts of %d households: %w", len(facts), err)
	}
	return nil
}
