package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
)

// Household returns the household as this tablet holds it now: every
// field's winning value, members (removed ones too, with their removal) in
// creation order.
func (c *Client) Household(ctx context.Context, id string) (*rasoatv1.Household, error) {
	tx, err := c.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read household %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	var b []byte
	err = tx.QueryRowContext(ctx, "SELECT state FROM entities WHERE id = ? AND kind = ?", id, int64(rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD)).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("household %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read household %s: %w", id, err)
	}
	var hs entity.State
	if err := hs.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("read household %s: %w", id, err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT state FROM entities WHERE household_id = ? AND kind = ?", id, int64(rasoatv1.EntityKind_ENTITY_KIND_MEMBER))
	if err != nil {
		return nil, fmt.Errorf("read members of %s: %w", id, err)
	}
	defer rows.Close()
	var members []entity.State
	for rows.Next() {
		var mb []byte
		if err := rows.Scan(&mb); err != nil {
			return nil, fmt.Errorf("read members of %s: %w", id, err)
		}
		var ms entity.State
		if err := ms.UnmarshalBinary(mb); err != nil {
			return nil, fmt.Errorf("read members of %s: %w", id, err)
		}
		members = append(members, ms)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read members of %s: %w", id, err)
	}
	return entity.Materialise(hs, members)
}

// Assess scores a household locally, with no network: the standard in
// force on its review date (from WithStandards, default survey.Builtin())
// classifies it. It returns the household assessed too. Answers the
// standard finds missing or invalid return a *survey.ValidationError.
func (c *Client) Assess(ctx context.Context, id string) (*survey.Assessment, *rasoatv1.Household, error) {
	h, err := c.Household(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	std, err := c.standardFor(ctx, h)
	if err != nil {
		return nil, h, fmt.Errorf("assess household %s: %w", id, err)
	}
	a, err := std.Assess(h)
	if err != nil {
		return nil, h, fmt.Errorf("assess household %s: %w", id, err)
	}
	return a, h, nil
}

// Households calls fn with the id of every household of villageCode (every
// village if empty), in creation order, reading them one at a time. An
// error from fn stops the iteration and is returned.
func (c *Client) Households(ctx context.Context, villageCode string, fn func(id string) error) error {
	q := "SELECT id FROM entities WHERE kind = ? ORDER BY id"
	args := []any{int64(rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD)}
	if villageCode != "" {
		q = "SELECT id FROM entities WHERE village_code = ? AND kind = ? ORDER BY id"
		args = []any{villageCode, args[0]}
	}
	rows, err := c.r.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("list households: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("list households: %w", err)
		}
		if err := fn(id); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list households: %w", err)
	}
	return nil
}

// Conflict is a concurrent edit (DESIGN.md "Sync model"): two or more
// authors wrote different values to one field without seeing each other's.
// Winner is the value that stands (greatest stamp) until someone resolves
// the conflict by writing the field (SetField), which covers every value
// listed here.
type Conflict struct {
	EntityID    string
	Kind        string // "household", "member", "review"
	HouseholdID string
	Field       string // path, e.g. "headName", "housing.floorAreaM2"
	Winner      ConflictValue
	Others      []ConflictValue // in stamp order
}

// ConflictValue is one of a conflict's values and who wrote it when.
type ConflictValue struct {
	Value   []byte    // protojson of the field
	Replica string    // the replica (tablet or server) that wrote it
	At      time.Time // wall time of its stamp, UTC
	HLC     uint64    // its hybrid logical clock stamp
}

func conflictValue(h merge.Head) ConflictValue {
	return ConflictValue{
		Value:   append([]byte(nil), h.Value...),
		Replica: h.Stamp.Replica,
		At:      hlc.Timestamp(h.Stamp.HLC).Wall(),
		HLC:     uint64(h.Stamp.HLC),
	}
}

// Conflicts calls fn for every open conflict, in entity id then field
// order, reading the conflicted entities one at a time. An error from fn
// stops the iteration and is returned.
func (c *Client) Conflicts(ctx context.Context, fn func(Conflict) error) error {
	rows, err := c.r.QueryContext(ctx, "SELECT state FROM entities WHERE conflicted ORDER BY id")
	if err != nil {
		return fmt.Errorf("list conflicts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return fmt.Errorf("list conflicts: %w", err)
		}
		var s entity.State
		if err := s.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("list conflicts: %w", err)
		}
		for _, p := range s.Paths() {
			w, others, ok := s.Field(p).Conflict()
			if !ok {
				continue
			}
			cf := Conflict{EntityID: s.ID, Kind: entity.KindName(s.Kind), HouseholdID: s.HouseholdID, Field: p, Winner: conflictValue(w)}
			for _, o := range others {
				cf.Others = append(cf.Others, conflictValue(o))
			}
			if err := fn(cf); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list conflicts: %w", err)
	}
	return nil
}
