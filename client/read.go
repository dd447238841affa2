package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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

// Bounds on ResolveID.
const (
	// MinIDPrefix is the shortest prefix ResolveID looks up, as git's
	// shortest abbreviation: shorter ones match most of a file.
	MinIDPrefix = 4
	// MaxIDCandidates bounds the ids an ambiguous prefix's error lists: a
	// screen's worth to choose from, not a dump of the file.
	MaxIDCandidates = 10
	// uuidLen is the length of an id, a UUID in canonical form.
	uuidLen = 36
)

// ErrAmbiguous is wrapped by ResolveID's error (an *AmbiguousError) for a
// prefix that more than one entity's id begins with.
var ErrAmbiguous = errors.New("ambiguous id prefix")

// IDCandidate is one entity an id prefix matches.
type IDCandidate struct {
	ID          string
	Kind        string // "household", "member", "review"
	HouseholdID string
}

// AmbiguousError is ResolveID's error for a prefix that matches more than
// one entity: the first of them in id order.
type AmbiguousError struct {
	Prefix     string
	Candidates []IDCandidate // at most MaxIDCandidates
	More       bool          // more entities match than Candidates lists
}

func (e *AmbiguousError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "id prefix %q matches more than one entity:", e.Prefix)
	for _, c := range e.Candidates {
		fmt.Fprintf(&b, " %s (%s),", c.ID, c.Kind)
	}
	s := strings.TrimSuffix(b.String(), ",")
	if e.More {
		s += " and more"
	}
	return s + "; type more of the id"
}

// Unwrap returns ErrAmbiguous.
func (e *AmbiguousError) Unwrap() error { return ErrAmbiguous }

// ResolveID returns the id of the one entity (of one of kinds, any kind
// if none) whose id begins with typed, so that a person need not type a
// whole UUID: typed is a whole id (returned as it is, without a lookup:
// the operation says if it is unknown), or at least MinIDPrefix of its
// first characters, in either case. A prefix no entity matches returns an
// error wrapping ErrNotFound; one several match, an *AmbiguousError.
func (c *Client) ResolveID(ctx context.Context, typed string, kinds ...rasoatv1.EntityKind) (string, error) {
	if entity.ValidID(typed) {
		return typed, nil
	}
	p := strings.ToLower(typed)
	if entity.ValidID(p) {
		return p, nil
	}
	switch {
	case len(p) < MinIDPrefix:
		return "", fieldError("id", "%q is too short: give at least %d characters of the id", typed, MinIDPrefix)
	case len(p) >= uuidLen:
		return "", fieldError("id", "%q is not an id: an id is a UUID in canonical form", typed)
	}
	for i := 0; i < len(p); i++ {
		if ch := p[i]; !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || ch == '-') {
			return "", fieldError("id", "%q is not an id or the start of one: an id has only hexadecimal digits and -", typed)
		}
	}
	// Ids are lower-case hex and '-', all below '~': the prefix's ids are
	// the key range [p, p+"~"), read from the primary key's index.
	q := "SELECT id, kind, household_id FROM entities WHERE id >= ? AND id < ?"
	args := []any{p, p + "~"}
	if len(kinds) > 0 {
		q += " AND kind IN (" + strings.TrimSuffix(strings.Repeat("?,", len(kinds)), ",") + ")"
		for _, k := range kinds {
			args = append(args, int64(k))
		}
	}
	q += fmt.Sprintf(" ORDER BY id LIMIT %d", MaxIDCandidates+1)
	rows, err := c.r.QueryContext(ctx, q, args...)
	if err != nil {
		return "", fmt.Errorf("look up id prefix %q: %w", typed, err)
	}
	defer rows.Close()
	var found []IDCandidate
	for rows.Next() {
		var cand IDCandidate
		var kind int64
		if err := rows.Scan(&cand.ID, &kind, &cand.HouseholdID); err != nil {
			return "", fmt.Errorf("look up id prefix %q: %w", typed, err)
		}
		cand.Kind = entity.KindName(rasoatv1.EntityKind(kind))
		found = append(found, cand)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("look up id prefix %q: %w", typed, err)
	}
	switch len(found) {
	case 0:
		what := "entity"
		if len(kinds) == 1 {
			what = entity.KindName(kinds[0])
		}
		return "", fmt.Errorf("%w: no %s id in this file begins with %q", ErrNotFound, what, typed)
	case 1:
		return found[0].ID, nil
	}
	e := &AmbiguousError{Prefix: typed, Candidates: found, More: len(found) > MaxIDCandidates}
	if e.More {
		e.Candidates = found[:MaxIDCandidates]
	}
	return "", e
}
