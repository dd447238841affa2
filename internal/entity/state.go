package entity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// ErrMismatch is wrapped by the error for a change whose kind, household or
// village differs from the entity's: an entity keeps the identity its first
// change gave it (moving a household between villages is not a field yet).
var ErrMismatch = errors.New("change does not match its entity")

// State is the merged state of one entity: its identity and, per field path,
// the merge.Field of every change applied. It is a pure function of the set
// of changes applied, and so is its encoding.
type State struct {
	ID          string
	Kind        rasoatv1.EntityKind
	HouseholdID string // the entity's own id for a household
	VillageCode string
	fields      []pathField // sorted by path
}

type pathField struct {
	path  string
	field merge.Field
}

// Paths returns the paths of the fields written so far, sorted.
func (s *State) Paths() []string {
	p := make([]string, len(s.fields))
	for i := range s.fields {
		p[i] = s.fields[i].path
	}
	return p
}

// Field returns the merge state of path, or nil if no change wrote it. It
// shares memory with s.
func (s *State) Field(path string) *merge.Field {
	i, ok := s.find(path)
	if !ok {
		return nil
	}
	return &s.fields[i].field
}

func (s *State) find(path string) (int, bool) {
	return slices.BinarySearchFunc(s.fields, path, func(f pathField, p string) int { return strings.Compare(f.path, p) })
}

// Apply validates c and merges it into s, taking s's identity from c if s
// is the zero State. It reports whether s changed (and needs storing). An
// error leaves s unchanged: a *FieldError for an invalid change, or one
// wrapping ErrMismatch (and a *FieldError naming the field) when c belongs
// to another entity, kind, household or village.
func (s *State) Apply(c *rasoatv1.Change) (changed bool, err error) {
	m, err := FromProto(c)
	if err != nil {
		return false, err
	}
	if err := s.Check(c); err != nil {
		return false, err
	}
	if s.ID == "" {
		s.ID, s.Kind, s.HouseholdID, s.VillageCode = c.GetEntityId(), c.GetKind(), HouseholdOf(c), c.GetVillageCode()
	}
	return s.ApplyMerge(m), nil
}

// Check reports whether c, a valid change, may apply to s: same entity,
// kind, household and village. The zero State accepts any change.
func (s *State) Check(c *rasoatv1.Change) error {
	if s.ID == "" {
		return nil
	}
	var field, got, want string
	switch {
	case c.GetEntityId() != s.ID:
		field, got, want = "entity_id", c.GetEntityId(), s.ID
	case c.GetKind() != s.Kind:
		field, got, want = "kind", c.GetKind().String(), s.Kind.String()
	case HouseholdOf(c) != s.HouseholdID:
		field, got, want = "household_id", c.GetHouseholdId(), s.HouseholdID
	case c.GetVillageCode() != s.VillageCode:
		field, got, want = "village_code", c.GetVillageCode(), s.VillageCode
	default:
		return nil
	}
	return fmt.Errorf("%w: %w", ErrMismatch, invalid(field, "%q differs from %q of entity %s", got, want, s.ID))
}

// ApplyMerge merges an already checked change into the field it names and
// reports whether s changed. c.Value is kept without copying.
func (s *State) ApplyMerge(c merge.Change) bool {
	i, ok := s.find(c.Field)
	if !ok {
		s.fields = slices.Insert(s.fields, i, pathField{path: c.Field})
	}
	changed := s.fields[i].field.Apply(c)
	if !ok && !changed {
		s.fields = slices.Delete(s.fields, i, i+1) // keep "applied nothing" identical to "never applied"
	}
	return changed
}

// Encoding, version 1; integers are uvarints, strings and bytes length-prefixed:
//
//	version (1), kind, id, household id (empty for a household), village code
//	number of fields
//	per field, sorted by path: path, merge.Field encoding
const stateVersion = 1

var errCorruptState = errors.New("corrupt entity state encoding")

// MarshalBinary encodes s. States holding the same set of changes encode
// byte for byte equal, whatever order the changes came in.
func (s State) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the MarshalBinary form of s to b.
func (s State) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateVersion)
	b = binary.AppendUvarint(b, uint64(s.Kind))
	b = appendString(b, s.ID)
	hh := s.HouseholdID
	if s.Kind == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
		hh = ""
	}
	b = appendString(b, hh)
	b = appendString(b, s.VillageCode)
	b = binary.AppendUvarint(b, uint64(len(s.fields)))
	var scratch []byte
	for i := range s.fields {
		f := &s.fields[i]
		if i > 0 && s.fields[i-1].path >= f.path {
			return nil, fmt.Errorf("encode entity %s: fields not sorted at %q", s.ID, f.path)
		}
		var err error
		scratch, err = f.field.AppendBinary(scratch[:0])
		if err != nil {
			return nil, fmt.Errorf("encode entity %s field %s: %w", s.ID, f.path, err)
		}
		b = appendString(b, f.path)
		b = appendString(b, scratch)
	}
	return b, nil
}

func appendString[S string | []byte](b []byte, s S) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary decodes what MarshalBinary wrote, replacing s; on error s
// is unchanged.
func (s *State) UnmarshalBinary(data []byte) error {
	off := 0
	fail := func() error { return fmt.Errorf("decode entity state: %w", errCorruptState) }
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(data[off:])
		if n <= 0 {
			return 0, false
		}
		off += n
		return v, true
	}
	bs := func() ([]byte, bool) {
		n, ok := uv()
		if !ok || n > uint64(len(data)-off) {
			return nil, false
		}
		b := data[off : off+int(n)]
		off += int(n)
		return b, true
	}
	if len(data) == 0 || data[0] != stateVersion {
		if len(data) > 0 {
			return fmt.Errorf("decode entity state: unknown encoding version %d", data[0])
		}
		return fail()
	}
	off = 1
	var g State
	k, ok := uv()
	if !ok || KindName(rasoatv1.EntityKind(k)) == "" {
		return fail()
	}
	g.Kind = rasoatv1.EntityKind(k)
	var id, hh, village []byte
	if id, ok = bs(); !ok {
		return fail()
	}
	if hh, ok = bs(); !ok {
		return fail()
	}
	if village, ok = bs(); !ok {
		return fail()
	}
	g.ID, g.HouseholdID, g.VillageCode = string(id), string(hh), string(village)
	if g.Kind == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
		if g.HouseholdID != "" {
			return fail()
		}
		g.HouseholdID = g.ID
	}
	n, ok := uv()
	if !ok || n > uint64(len(data)-off)/2 {
		return fail()
	}
	g.fields = make([]pathField, n)
	for i := range g.fields {
		p, ok := bs()
		if !ok {
			return fail()
		}
		enc, ok := bs()
		if !ok {
			return fail()
		}
		f := &g.fields[i]
		f.path = string(p)
		if i > 0 && g.fields[i-1].path >= f.path {
			return fail()
		}
		if err := f.field.UnmarshalBinary(enc); err != nil {
			return fmt.Errorf("decode entity state field %s: %w", f.path, err)
		}
	}
	if off != len(data) {
		return fail()
	}
	*s = g
	return nil
}

// Merge folds o, another replica's state of the same entity, into s (see
// merge.Field.Merge): the result is the state of the union of the changes
// both have applied. A first sync uses it to take the server's states whole.
func (s *State) Merge(o *State) (changed bool, err error) {
	if o.ID == "" && len(o.fields) == 0 {
		return false, nil
	}
	if s.ID == "" && len(s.fields) == 0 {
		s.ID, s.Kind, s.HouseholdID, s.VillageCode = o.ID, o.Kind, o.HouseholdID, o.VillageCode
	}
	if o.ID != s.ID || o.Kind != s.Kind || o.HouseholdID != s.HouseholdID || o.VillageCode != s.VillageCode {
		return false, fmt.Errorf("%w: merging state of %s %s into %s %s", ErrMismatch, KindName(o.Kind), o.ID, KindName(s.Kind), s.ID)
	}
	for _, of := range o.fields {
		i, ok := s.find(of.path)
		if !ok {
			s.fields = slices.Insert(s.fields, i, pathField{path: of.path})
		}
		if s.fields[i].field.Merge(&of.field) {
			changed = true
		} else if !ok {
			s.fields = slices.Delete(s.fields, i, i+1)
		}
	}
	return changed, nil
}
