package entity

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
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

// String returns the winning value of a string field, "" when the field is
// unset, null or not a string.
func (s *State) String(path string) string {
	f := s.Field(path)
	if f == nil {
		return ""
	}
	h, ok := f.Winner()
	if !ok {
		return ""
	}
	var v string
	_ = json.Unmarshal(h.Value, &v) // null or not a string: ""
	return v
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

// Grow makes room for n more fields, so that applying changes to up to n
// fields not yet written allocates nothing more for them.
func (s *State) Grow(n int) {
	if n > 0 {
		s.fields = slices.Grow(s.fields, n)
	}
}

// ApplyMerge merges an already checked change into the field it names and
// reports whether s changed. c.Value is kept without copying.
func (s *State) ApplyMerge(c merge.Change) bool { return s.ApplyMergeDropping(c, nil) }

// ApplyMergeDropping is ApplyMerge, calling dropped as
// merge.Field.ApplyDropping does.
func (s *State) ApplyMergeDropping(c merge.Change, dropped func(merge.Stamp, uint64)) bool {
	i, ok := s.find(c.Field)
	if !ok {
		s.fields = slices.Insert(s.fields, i, pathField{path: c.Field})
	}
	changed := s.fields[i].field.ApplyDropping(c, dropped)
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
//
// stateVersion 2 is the compact encoding (see AppendBinary); version 1,
// which repeated replica ids and paths in every field, never left a
// development build.
const stateVersion = 2

var errCorruptState = errors.New("corrupt entity state encoding")

// MarshalBinary encodes s. States holding the same set of changes encode
// byte for byte equal, whatever order the changes came in.
func (s State) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the MarshalBinary form of s to b:
//
//	version (2), kind, id, household id ("" for a household), village
//	replica table: count, then each replica id, sorted and distinct
//	base: the smallest HLC in the state
//	field count; per field, sorted by path: the path as its contract
//	field numbers (count, numbers; count 0 then the path text when it has
//	none), then the field in merge's compact form against table and base
//
// Replica ids (36 bytes) and stamps are shared by all the fields instead of
// repeated in each, and field numbers are stable under the contract's
// compatibility rules where JSON names and indexes into a list would not be.
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
	table, base := s.replicaTable()
	b = binary.AppendUvarint(b, uint64(len(table)))
	for _, r := range table {
		b = appendString(b, r)
	}
	b = binary.AppendUvarint(b, uint64(base))
	b = binary.AppendUvarint(b, uint64(len(s.fields)))
	codes := pathCodes()[s.Kind]
	for i := range s.fields {
		f := &s.fields[i]
		if i > 0 && s.fields[i-1].path >= f.path {
			return nil, fmt.Errorf("encode entity %s: fields not sorted at %q", s.ID, f.path)
		}
		if nums, ok := codes.byPath[f.path]; ok {
			b = binary.AppendUvarint(b, uint64(len(nums)))
			for _, n := range nums {
				b = binary.AppendUvarint(b, uint64(n))
			}
		} else {
			b = append(b, 0)
			b = appendString(b, f.path)
		}
		var err error
		if b, err = f.field.AppendCompact(b, table, base); err != nil {
			return nil, fmt.Errorf("encode entity %s field %s: %w", s.ID, f.path, err)
		}
	}
	return b, nil
}

// replicaTable returns the sorted distinct replicas and the smallest HLC of
// all the fields.
func (s *State) replicaTable() ([]string, hlc.Timestamp) {
	var table []string
	var base hlc.Timestamp
	add := func(r string) {
		if i, ok := slices.BinarySearch(table, r); !ok {
			table = slices.Insert(table, i, r)
		}
	}
	for i := range s.fields {
		f := &s.fields[i].field
		f.AddReplicas(add)
		if m := f.MinHLC(); m != 0 && (base == 0 || m < base) {
			base = m
		}
	}
	return table, base
}

func appendString[S string | []byte](b []byte, s S) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary decodes what MarshalBinary wrote, replacing s; on error s
// is unchanged. It accepts only the canonical form, so a corrupt row is
// caught rather than merged.
func (s *State) UnmarshalBinary(data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("decode entity state: %w", errCorruptState)
	}
	if data[0] != stateVersion {
		return fmt.Errorf("decode entity state: unknown encoding version %d", data[0])
	}
	data = append([]byte(nil), data...) // field values alias this one copy
	rd := stateReader{data: data, off: 1}
	fail := func() error { return fmt.Errorf("decode entity state: %w", errCorruptState) }
	var g State
	k, ok := rd.uv()
	if !ok || KindName(rasoatv1.EntityKind(k)) == "" {
		return fail()
	}
	g.Kind = rasoatv1.EntityKind(k)
	var id, hh, village []byte
	if id, ok = rd.bs(); !ok {
		return fail()
	}
	if hh, ok = rd.bs(); !ok {
		return fail()
	}
	if village, ok = rd.bs(); !ok {
		return fail()
	}
	g.ID, g.HouseholdID, g.VillageCode = string(id), string(hh), string(village)
	if g.Kind == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
		if g.HouseholdID != "" {
			return fail()
		}
		g.HouseholdID = g.ID
	}
	n, ok := rd.uv()
	if !ok || n > uint64(rd.left())/2 {
		return fail()
	}
	table := make([]string, n)
	for i := range table {
		r, ok := rd.bs()
		if !ok || len(r) == 0 || i > 0 && table[i-1] >= string(r) {
			return fail()
		}
		table[i] = string(r)
	}
	b, ok := rd.uv()
	if !ok {
		return fail()
	}
	base := hlc.Timestamp(b)
	if n, ok = rd.uv(); !ok || n > uint64(rd.left())/3 {
		return fail()
	}
	codes := pathCodes()[g.Kind]
	g.fields = make([]pathField, n)
	for i := range g.fields {
		f := &g.fields[i]
		count, ok := rd.uv()
		if !ok || count > 8 {
			return fail()
		}
		if count == 0 {
			p, ok := rd.bs()
			if !ok || len(p) == 0 {
				return fail()
			}
			if _, coded := codes.byPath[string(p)]; coded {
				return fail() // the encoder would have used its numbers
			}
			f.path = string(p)
		} else {
			key := make([]byte, 0, 2*count)
			for range count {
				v, ok := rd.uv()
				if !ok {
					return fail()
				}
				key = binary.AppendUvarint(key, v)
			}
			if f.path, ok = codes.byKey[string(key)]; !ok {
				return fail()
			}
		}
		if i > 0 && g.fields[i-1].path >= f.path {
			return fail()
		}
		field, used, err := merge.DecodeCompact(rd.data[rd.off:], table, base)
		if err != nil {
			return fmt.Errorf("decode entity state field %s: %w", f.path, err)
		}
		f.field = field
		rd.off += used
	}
	if rd.off != len(data) {
		return fail()
	}
	// Canonical: the table holds exactly the replicas used and base is the
	// smallest HLC, as the encoder writes them.
	if t, m := g.replicaTable(); !slices.Equal(t, table) || m != base {
		return fail()
	}
	*s = g
	return nil
}

// codes maps one kind's paths to the field numbers that name them.
type codes struct {
	byPath map[string][]int32 // path → field numbers
	byKey  map[string]string  // field numbers as uvarints → path
}

// pathCodes are derived once from the contract's descriptors; the review,
// which has no message yet, numbers its three fields here (append only).
var pathCodes = sync.OnceValue(func() map[rasoatv1.EntityKind]codes {
	out := map[rasoatv1.EntityKind]codes{}
	add := func(k rasoatv1.EntityKind, path string, nums []int32) {
		c, ok := out[k]
		if !ok {
			c = codes{byPath: map[string][]int32{}, byKey: map[string]string{}}
			out[k] = c
		}
		var key []byte
		for _, n := range nums {
			key = binary.AppendUvarint(key, uint64(n))
		}
		c.byPath[path] = nums
		c.byKey[string(key)] = path
	}
	var walk func(k rasoatv1.EntityKind, md protoreflect.MessageDescriptor, prefix string, nums []int32)
	walk = func(k rasoatv1.EntityKind, md protoreflect.MessageDescriptor, prefix string, nums []int32) {
		fds := md.Fields()
		for i := range fds.Len() {
			fd := fds.Get(i)
			p := prefix + fd.JSONName()
			ns := append(slices.Clone(nums), int32(fd.Number()))
			add(k, p, ns)
			if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && len(ns) < 4 {
				walk(k, fd.Message(), p+".", ns)
			}
		}
	}
	walk(rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, (&rasoatv1.Household{}).ProtoReflect().Descriptor(), "", nil)
	walk(rasoatv1.EntityKind_ENTITY_KIND_MEMBER, (&rasoatv1.Member{}).ProtoReflect().Descriptor(), "", nil)
	for i, p := range []string{"comment", "reviewDate", "status"} {
		add(rasoatv1.EntityKind_ENTITY_KIND_REVIEW, p, []int32{int32(i + 1)})
	}
	return out
})

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

// Summary is what a replica storing an encoded state as it came needs to
// know of it: its identity, its greatest winning stamp (for the clock) and
// whether a field is in conflict. The byte slices alias the encoding.
type Summary struct {
	Kind        rasoatv1.EntityKind
	ID          []byte
	HouseholdID []byte // empty for a household, as encoded
	VillageCode []byte
	Top         hlc.Timestamp // the greatest HLC of a field's winner
	Conflicted  bool          // some field has an open conflict (merge.Field.Conflict)
}

// Summarise reads an encoded state without decoding it. It accepts exactly
// what UnmarshalBinary accepts, so a state stored as received still decodes
// when read; a first sync takes a server's states so, which costs a scan
// of each instead of building it and encoding it again.
func Summarise(data []byte) (Summary, error) {
	fail := func() (Summary, error) { return Summary{}, fmt.Errorf("decode entity state: %w", errCorruptState) }
	if len(data) == 0 {
		return fail()
	}
	if data[0] != stateVersion {
		return Summary{}, fmt.Errorf("decode entity state: unknown encoding version %d", data[0])
	}
	rd := stateReader{data: data, off: 1}
	var s Summary
	k, ok := rd.uv()
	if !ok || KindName(rasoatv1.EntityKind(k)) == "" {
		return fail()
	}
	s.Kind = rasoatv1.EntityKind(k)
	if s.ID, ok = rd.bs(); !ok {
		return fail()
	}
	if s.HouseholdID, ok = rd.bs(); !ok {
		return fail()
	}
	if s.VillageCode, ok = rd.bs(); !ok {
		return fail()
	}
	if s.Kind == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD && len(s.HouseholdID) != 0 {
		return fail()
	}
	n, ok := rd.uv()
	if !ok || n > uint64(rd.left())/2 {
		return fail()
	}
	tableLen := int(n)
	var prev []byte
	for i := range tableLen {
		r, ok := rd.bs()
		if !ok || len(r) == 0 || i > 0 && string(prev) >= string(r) {
			return fail()
		}
		prev = r
	}
	// Canonical: every replica of the table is used, as the encoder writes
	// it. One or two replicas wrote almost every entity, so a word of bits
	// is enough; a larger table takes a slice for the rest.
	var usedWord uint64
	var usedMore []bool
	var more func(k int)
	if tableLen > 64 {
		usedMore = make([]bool, tableLen-64)
		more = func(k int) { usedMore[k-64] = true }
	}
	b, ok := rd.uv()
	if !ok {
		return fail()
	}
	base := hlc.Timestamp(b)
	if n, ok = rd.uv(); !ok || n > uint64(rd.left())/3 {
		return fail()
	}
	codes := pathCodes()[s.Kind]
	var minHLC hlc.Timestamp
	var prevPath string
	for i := range int(n) {
		count, ok := rd.uv()
		if !ok || count > 8 {
			return fail()
		}
		var path string
		if count == 0 {
			p, ok := rd.bs()
			if !ok || len(p) == 0 {
				return fail()
			}
			if _, coded := codes.byPath[string(p)]; coded {
				return fail() // the encoder would have used its numbers
			}
			path = string(p)
		} else {
			// The numbers as read are the key: uv accepts only minimal
			// uvarints, which is how the key encodes them.
			start := rd.off
			for range count {
				if _, ok := rd.uv(); !ok {
					return fail()
				}
			}
			if path, ok = codes.byKey[string(data[start:rd.off])]; !ok {
				return fail()
			}
		}
		if i > 0 && prevPath >= path {
			return fail()
		}
		prevPath = path
		f, err := merge.ScanCompact(rd.data[rd.off:], tableLen, base, more)
		if err != nil {
			return Summary{}, fmt.Errorf("decode entity state field %s: %w", path, err)
		}
		rd.off += f.Size
		usedWord |= f.Used
		s.Top = max(s.Top, f.Winner)
		s.Conflicted = s.Conflicted || f.Conflicted
		if f.Min != 0 && (minHLC == 0 || f.Min < minHLC) {
			minHLC = f.Min
		}
	}
	if rd.off != len(data) || minHLC != base {
		return fail()
	}
	if usedWord != 1<<min(tableLen, 64)-1 || slices.Contains(usedMore, false) { // all ones when tableLen is 64
		return fail()
	}
	return s, nil
}

// stateReader reads the entity state encoding: canonical uvarints (no
// trailing zero byte) and length-prefixed bytes, each slice capped so that
// an append to it cannot write into what follows.
type stateReader struct {
	data []byte
	off  int
}

func (r *stateReader) uv() (uint64, bool) {
	v, n := binary.Uvarint(r.data[r.off:])
	if n <= 0 || n > 1 && r.data[r.off+n-1] == 0 {
		return 0, false
	}
	r.off += n
	return v, true
}

func (r *stateReader) bs() ([]byte, bool) {
	n, ok := r.uv()
	if !ok || n > uint64(r.left()) {
		return nil, false
	}
	b := r.data[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return b, true
}

// left is how many bytes are still to read.
func (r *stateReader) left() int { return len(r.data) - r.off }
