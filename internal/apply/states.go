// Package apply is the load-check-merge-store loop that every replica
// holding entity states runs over a batch of changes: the tablet applying a
// pulled batch (client), and each server store applying a push
// (server/store/sqlite, server/store/postgres). The engines differ only in
// how they read and write rows, which they give through small interfaces
// (Loader here, Tx in push.go); the rules — which entity a change may
// touch, in what order changes apply, what a push must refuse — are written
// once, here, so a new store does not make another copy of them.
//
// It imports no storage engine: the tablet's library builds for android
// without cgo and must not link a database driver it does not use.
package apply

import (
	"context"
	"fmt"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// Loader reads stored entity states.
type Loader interface {
	// LoadEntities calls fn with the stored state (entity.State encoding)
	// of each of ids held, in any order; ids is never empty and holds no
	// repeats. The bytes are only valid during the call.
	LoadEntities(ctx context.Context, ids []string, fn func(id string, state []byte) error) error
}

// Pending is one entity a batch touches: its state as loaded, with the
// batch's changes so far applied.
type Pending struct {
	State entity.State
	Found bool // held before the batch
	Dirty bool // changed by the batch: to be stored
	Last  int  // the index of the last change applied to it, for a size refusal

	writes int // changes of the batch to it (WantWrite)
}

// States is the entities a batch touches, each loaded once.
type States struct {
	m   map[string]*Pending
	ids []string // in first-wanted order, so that writes are deterministic
	// Dropped lists, once TrackDropped is called, the changes that
	// applying the batch made no longer heads of their field, or that it
	// applied covered.
	Dropped []Dropped
	drop    func(merge.Stamp, uint64) // appends to Dropped, made once
	created int                       // entities the batch has created so far
}

// TrackDropped has Apply list the changes it drops in s.Dropped: what a
// server records for checking bases (apply.Tx.PutDropped); a tablet has no
// use for it.
func (s *States) TrackDropped() {
	s.drop = func(st merge.Stamp, seq uint64) {
		s.Dropped = append(s.Dropped, Dropped{Stamp: st, Seq: seq})
	}
}

// Dropped is a stored change that is no head of its field.
type Dropped struct {
	Stamp merge.Stamp
	Seq   uint64 // its origin's seq: with Stamp.Replica, its row in the log
}

// NewStates returns an empty set sized for about n entities.
func NewStates(n int) *States {
	return &States{m: make(map[string]*Pending, n)}
}

// Want adds id to the entities to load (a no-op if it is already there).
func (s *States) Want(id string) {
	if s.m[id] == nil {
		s.m[id] = &Pending{}
		s.ids = append(s.ids, id)
	}
}

// WantWrite is Want for the entity of one of the batch's changes, counting
// them: a new entity's fields are then allocated once for all of its
// changes, not grown one field at a time.
func (s *States) WantWrite(id string) {
	s.Want(id)
	s.m[id].writes++
}

// Get returns the entity id, nil if it was not wanted.
func (s *States) Get(id string) *Pending { return s.m[id] }

// IDs returns the wanted ids in the order they were first wanted.
func (s *States) IDs() []string { return s.ids }

// Load reads every wanted entity's stored state through l.
func (s *States) Load(ctx context.Context, l Loader) error {
	if len(s.ids) == 0 {
		return nil
	}
	return l.LoadEntities(ctx, s.ids, func(id string, b []byte) error {
		p := s.m[id]
		if p == nil {
			return fmt.Errorf("read entities: %s was not asked for", id)
		}
		if err := p.State.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("read entity %s: %w", id, err)
		}
		p.Found = true
		return nil
	})
}

// Apply checks that c matches its entity (kind, household, village: see
// entity.State.Check), gives a new entity its identity from c, and merges
// m (c's merge form) into it, reporting whether the state changed. c's
// entity must have been wanted.
func (s *States) Apply(c *rasoatv1.Change, m merge.Change) (changed bool, err error) {
	p := s.m[c.GetEntityId()]
	if err := p.State.Check(c); err != nil {
		return false, err
	}
	if p.State.ID == "" {
		p.State.ID, p.State.Kind, p.State.HouseholdID, p.State.VillageCode = c.GetEntityId(), c.GetKind(), entity.HouseholdOf(c), c.GetVillageCode()
		p.State.Grow(p.writes)
		s.created++
	}
	if p.State.ApplyMergeDropping(m, s.drop) {
		p.Dirty = true
		return true, nil
	}
	return false, nil
}

// Row is one entity state to store.
type Row struct {
	ID, HouseholdID, VillageCode string
	Kind                         rasoatv1.EntityKind
	State                        []byte // entity.State encoding
	Entity                       *entity.State
}

// Encode returns the dirty entities' rows in first-wanted order, their
// encodings sharing one buffer. check, when not nil, is called with each
// row as encoded, and an error from it stops the encoding.
func (s *States) Encode(check func(p *Pending, r *Row) error) ([]Row, error) {
	rows := make([]Row, 0, len(s.ids))
	var buf []byte
	var offs []int
	for _, id := range s.ids {
		p := s.m[id]
		if !p.Dirty {
			continue
		}
		start := len(buf)
		var err error
		if buf, err = p.State.AppendBinary(buf); err != nil {
			return nil, fmt.Errorf("encode entity %s: %w", id, err)
		}
		offs = append(offs, start)
		st := &p.State
		rows = append(rows, Row{ID: id, HouseholdID: st.HouseholdID, VillageCode: st.VillageCode, Kind: st.Kind, Entity: st})
	}
	offs = append(offs, len(buf))
	for i := range rows {
		// Sliced only once buf stopped growing: an append may have moved it.
		rows[i].State = buf[offs[i]:offs[i+1]:offs[i+1]]
		if check != nil {
			if err := check(s.m[rows[i].ID], &rows[i]); err != nil {
				return nil, err
			}
		}
	}
	return rows, nil
}
