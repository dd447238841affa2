package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/server/store"
)

// view is a store.View over one push: what is stored, with the batch's
// changes so far applied (states), read in the push's transaction. Reads
// are cached for the push, so a guard asking about one household for each
// of a batch's changes reads it once.
type view struct {
	w       *writer
	states  map[string]*pending
	others  map[string]*entity.State   // entities read for the guard, not written
	members map[string][]*entity.State // per household, as stored
	persons map[string]string
}

func newView(w *writer, states map[string]*pending) *view {
	return &view{w: w, states: states, others: map[string]*entity.State{}, members: map[string][]*entity.State{}, persons: map[string]string{}}
}

func (v *view) Entity(ctx context.Context, id string) (*entity.State, error) {
	if p := v.states[id]; p != nil {
		if p.state.ID == "" {
			return nil, nil
		}
		return &p.state, nil
	}
	if s, ok := v.others[id]; ok {
		return s, nil
	}
	var b []byte
	err := v.w.queryRow(ctx, "SELECT state FROM entities WHERE id = ?", id).Scan(&b)
	var s *entity.State
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("push: read entity %s: %w", id, err)
	default:
		s = &entity.State{}
		if err := s.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("push: read entity %s: %w", id, err)
		}
	}
	v.others[id] = s
	return s, nil
}

func (v *view) Household(ctx context.Context, hh string) ([]*entity.State, error) {
	stored, ok := v.members[hh]
	if !ok {
		rows, err := v.w.query(ctx, "SELECT id, state FROM entities WHERE household_id = ?", hh)
		if err != nil {
			return nil, fmt.Errorf("push: read household %s: %w", hh, err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var b []byte
			if err := rows.Scan(&id, &b); err != nil {
				return nil, fmt.Errorf("push: read household %s: %w", hh, err)
			}
			s := &entity.State{}
			if err := s.UnmarshalBinary(b); err != nil {
				return nil, fmt.Errorf("push: read entity %s: %w", id, err)
			}
			stored = append(stored, s)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("push: read household %s: %w", hh, err)
		}
		v.members[hh] = stored
	}
	// The batch's states stand in for the stored ones they were loaded
	// from, and add the entities it creates.
	out := make([]*entity.State, 0, len(stored))
	for _, s := range stored {
		if v.states[s.ID] == nil {
			out = append(out, s)
		}
	}
	for _, p := range v.states {
		if p.state.ID != "" && p.state.HouseholdID == hh {
			out = append(out, &p.state)
		}
	}
	return out, nil
}

func (v *view) PersonOf(ctx context.Context, replica string) (string, error) {
	if p, ok := v.persons[replica]; ok {
		return p, nil
	}
	var p string
	err := v.w.queryRow(ctx, "SELECT person_id FROM replicas WHERE replica_id = ?", replica).Scan(&p)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("push: read replica %s: %w", replica, err)
	}
	v.persons[replica] = p
	return p, nil
}

// guardRefusal reports whether err is a guard's refusal of a change
// (rather than a failure to read), and the change's field it names.
func guardRefusal(err error) (string, bool) {
	if !errors.Is(err, store.ErrWorkflow) && !errors.Is(err, store.ErrLocked) {
		return "", false
	}
	var f interface{ Field() string }
	if errors.As(err, &f) && f.Field() != "" {
		return f.Field(), true
	}
	return "value", true
}

var _ store.View = (*view)(nil)
