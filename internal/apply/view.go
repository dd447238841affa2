package apply

import (
	"context"
	"fmt"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/server/store"
)

// view is a store.View over one push: what is stored, with the batch's
// changes so far applied (states), read in the push's transaction. Reads
// are cached for the push, so a guard asking about one household for each
// of a batch's changes reads it once.
type view struct {
	tx      Tx
	states  *States
	others  map[string]*entity.State   // entities read for the guard, not written
	members map[string][]*entity.State // per household, as stored
	persons map[string]string
	// households caches Household's answers while the batch creates no
	// entity: the guard asks for each change, and collecting the batch's
	// entities of the household each time cost a twentieth of a push.
	households map[string]householdView
}

type householdView struct {
	created int // States.created when cached
	states  []*entity.State
}

func newView(tx Tx, states *States) *view {
	return &view{tx: tx, states: states, others: map[string]*entity.State{}, members: map[string][]*entity.State{},
		persons: map[string]string{}, households: map[string]householdView{}}
}

func (v *view) Entity(ctx context.Context, id string) (*entity.State, error) {
	if p := v.states.Get(id); p != nil {
		if p.State.ID == "" {
			return nil, nil
		}
		return &p.State, nil
	}
	if s, ok := v.others[id]; ok {
		return s, nil
	}
	b, err := v.tx.Entity(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("push: read entity %s: %w", id, err)
	}
	var s *entity.State
	if b != nil {
		s = &entity.State{}
		if err := s.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("push: read entity %s: %w", id, err)
		}
	}
	v.others[id] = s
	return s, nil
}

func (v *view) Household(ctx context.Context, hh string) ([]*entity.State, error) {
	if c, ok := v.households[hh]; ok && c.created == v.states.created {
		return c.states, nil // the same entities, their states applied in place
	}
	stored, ok := v.members[hh]
	if p := v.states.Get(hh); !ok && p != nil && !p.Found {
		// A household new in this batch has nothing stored under it: a
		// member or review is stored only once its household is.
		ok = true
		v.members[hh] = nil
	}
	if !ok {
		err := v.tx.Household(ctx, hh, func(b []byte) error {
			s := &entity.State{}
			if err := s.UnmarshalBinary(b); err != nil {
				return err
			}
			stored = append(stored, s)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("push: read household %s: %w", hh, err)
		}
		v.members[hh] = stored
	}
	// The batch's states stand in for the stored ones they were loaded
	// from, and add the entities it creates.
	out := make([]*entity.State, 0, len(stored))
	for _, s := range stored {
		if v.states.Get(s.ID) == nil {
			out = append(out, s)
		}
	}
	for _, id := range v.states.IDs() {
		if p := v.states.Get(id); p.State.ID != "" && p.State.HouseholdID == hh {
			out = append(out, &p.State)
		}
	}
	out = out[:len(out):len(out)] // a caller's append copies, leaving the cache whole
	v.households[hh] = householdView{v.states.created, out}
	return out, nil
}

func (v *view) PersonOf(ctx context.Context, replica string) (string, error) {
	if p, ok := v.persons[replica]; ok {
		return p, nil
	}
	p, err := v.tx.PersonOf(ctx, replica)
	if err != nil {
		return "", fmt.Errorf("push: read replica %s: %w", replica, err)
	}
	v.persons[replica] = p
	return p, nil
}

func (v *view) Decided(ctx context.Context, hh string) ([]store.DecidedFact, error) {
	d, err := v.tx.Decided(ctx, hh)
	if err != nil {
		return nil, fmt.Errorf("push: read the decided results of %s: %w", hh, err)
	}
	return d, nil
}

func (v *view) SamePeople(ctx context.Context, hh string, keys []string) ([]store.PersonMatch, error) {
	m, err := v.tx.SamePeople(ctx, hh, keys)
	if err != nil {
		return nil, fmt.Errorf("push: find the members of %s in other households: %w", hh, err)
	}
	return m, nil
}

var _ store.View = (*view)(nil)
