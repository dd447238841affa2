// Package entity is what the tablet client and the sync server share about
// the entities changes write to: which kinds and field paths exist, how a
// wire change is checked and converted to a merge.Change, the merged State
// of one entity with its deterministic encoding, and Materialise, which
// builds a Household from the winners of its fields.
//
// Field paths are the entity's protojson field names joined by dots
// ("headName", "housing.floorAreaM2"), taken from the contract's
// descriptors, so a field added to household.proto syncs without code here.
// A message holding a oneof (Income) is one value: its cases exclude each
// other, and merging them field by field could leave two set.
package entity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	"github.com/rasoat/rasoat/internal/quality"
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Bounds on what one change may carry, checked by Validate before anything
// is stored: an append-only log keeps what it takes for ever, and every
// replica's first sync carries it, so an unbounded field could break sync
// for a whole commune.
const (
	// MaxValueSize bounds one change's value. The largest legitimate value
	// is a review comment or a long name; a bigger one is a bug or an attack.
	MaxValueSize = 16 << 10
	// MaxReplicaIDLen bounds a replica id: tablets use a UUID (36 bytes), a
	// commune server its own id of the same kind; 64 leaves room for a
	// prefix without letting an id weigh on every stamp that names it.
	MaxReplicaIDLen = 64
	// MaxVillageCodeLen bounds a village code. National unit codes are 5
	// digits for a commune; a village's code adds a few characters.
	MaxVillageCodeLen = 32
	// MaxBase bounds the stamps a change's base lists: the heads its author
	// saw, which a store keeps to at most MaxHeads per field.
	MaxBase = MaxHeads
	// MaxHeads bounds the concurrent values of one field a store keeps: a
	// field written by more than 16 people who had not seen each other's
	// values is not a review but an attack or a bug, and a write that would
	// add a 17th is refused until someone resolves the field.
	MaxHeads = 16
	// MaxStateSize bounds an entity's stored state (its fields' values,
	// stamps and conflicts, encoded): every Snapshot response carries whole
	// states and must stay far under a client's 4 MiB receive limit, and
	// every write to an entity rewrites its state.
	MaxStateSize = 256 << 10
)

// ValidReplicaID reports why s cannot be a replica id, or nil: not empty,
// at most MaxReplicaIDLen bytes of ASCII letters, digits and . _ : -.
func ValidReplicaID(s string) error { return validCode(s, MaxReplicaIDLen) }

// ValidVillageCode reports why s cannot be a village code, or nil: not
// empty, at most MaxVillageCodeLen bytes of ASCII letters, digits and . _ : -.
func ValidVillageCode(s string) error { return validCode(s, MaxVillageCodeLen) }

func validCode(s string, limit int) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > limit:
		return fmt.Errorf("%w: %d bytes, over the limit of %d", ErrTooLong, len(s), limit)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return fmt.Errorf("holds %q: only ASCII letters, digits and . _ : - are allowed", c)
		}
	}
	return nil
}

// ErrInvalid is wrapped by every FieldError.
var ErrInvalid = errors.New("invalid change")

// FieldError is a change rejected because of one of its fields. Field is the
// path within rasoatv1.Change in proto names ("entity_id", "stamp.hlc",
// "base[1]"), so a caller can prefix it with the change's place in a
// request ("changes[3].field").
type FieldError struct {
	Field string
	Desc  string
	// OverLimit is set when the field is refused for a size, count or
	// length over one of this package's bounds (the caller may split or
	// shorten), rather than for its content.
	OverLimit bool
	// Reason, when set, is a sentinel error saying why, for a caller to
	// branch on with errors.Is (ErrUnknownValue); Desc is for people and
	// its wording may change.
	Reason error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Desc }

// Unwrap returns ErrInvalid, and Reason when set.
func (e *FieldError) Unwrap() []error {
	if e.Reason != nil {
		return []error{ErrInvalid, e.Reason}
	}
	return []error{ErrInvalid}
}

// ErrUnknownValue is the Reason of a FieldError for an enum value the
// contract does not define (a misspelt name, a number from a newer
// contract); its Desc lists the names the field takes.
var ErrUnknownValue = errors.New("unknown enum value")

// unknownEnum is the error for v (a name or a number, as given) that is
// not a value of the enum e: it lists every name e takes, which is what
// someone typing the value needs, and is never protojson's own wording.
func unknownEnum(e protoreflect.EnumDescriptor, v string) error {
	vals := e.Values()
	names := make([]string, vals.Len())
	for i := range names {
		names[i] = string(vals.Get(i).Name())
	}
	return enumError("unknown value " + v + "; valid: " + strings.Join(names, ", "))
}

// enumError is unknownEnum's error: its text, and errors.Is(ErrUnknownValue).
type enumError string

func (e enumError) Error() string        { return string(e) }
func (e enumError) Is(target error) bool { return target == ErrUnknownValue }

// enumNames refuses, before protojson sees it, a name in v (a JSON string,
// or a list holding strings) that the enum leaf fd does not define. It
// leaves everything else to protojson.
func enumNames(fd protoreflect.FieldDescriptor, v []byte) error {
	if fd.Kind() != protoreflect.EnumKind {
		return nil
	}
	check := func(raw json.RawMessage) error {
		var s string
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return nil // not a string: protojson decides
		}
		if fd.Enum().Values().ByName(protoreflect.Name(s)) == nil {
			q, _ := json.Marshal(s)
			if len(s) > 64 { // an enum name is short; a long string is shown cut
				q, _ = json.Marshal(string([]rune(s)[:min(len([]rune(s)), 64)]) + "…")
			}
			return unknownEnum(fd.Enum(), string(q))
		}
		return nil
	}
	if !fd.IsList() {
		return check(v)
	}
	var list []json.RawMessage
	if json.Unmarshal(v, &list) != nil {
		return nil
	}
	for _, raw := range list {
		if err := check(raw); err != nil {
			return err
		}
	}
	return nil
}

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Desc: fmt.Sprintf(format, args...)}
}

// ErrTooLong is wrapped by ValidReplicaID's and ValidVillageCode's error for
// a code over its length bound.
var ErrTooLong = errors.New("too long")

// invalidCode is the FieldError for a code refused by validCode.
func invalidCode(field string, err error) error {
	return &FieldError{Field: field, Desc: err.Error(), OverLimit: errors.Is(err, ErrTooLong)}
}

// Kind names of merge.Change.Kind, one per rasoatv1.EntityKind.
const (
	KindHousehold = "household"
	KindMember    = "member"
	KindReview    = "review"
)

// KindName returns the merge.Change.Kind for k, or "" if k is not known.
func KindName(k rasoatv1.EntityKind) string {
	switch k {
	case rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD:
		return KindHousehold
	case rasoatv1.EntityKind_ENTITY_KIND_MEMBER:
		return KindMember
	case rasoatv1.EntityKind_ENTITY_KIND_REVIEW:
		return KindReview
	}
	return ""
}

// KindOf is the inverse of KindName (ENTITY_KIND_UNSPECIFIED if unknown).
func KindOf(name string) rasoatv1.EntityKind {
	switch name {
	case KindHousehold:
		return rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD
	case KindMember:
		return rasoatv1.EntityKind_ENTITY_KIND_MEMBER
	case KindReview:
		return rasoatv1.EntityKind_ENTITY_KIND_REVIEW
	}
	return rasoatv1.EntityKind_ENTITY_KIND_UNSPECIFIED
}

// Review rounds (đợt rà soát) and the requests that start a regular one
// (Decision 24/2021/QĐ-TTg, Điều 3 khoản 1 and Điều 5 khoản 1).
var (
	reviewRounds   = []string{"periodic", "regular"}
	reviewRequests = []string{"form01", "form04"}
)

// schema is what one kind's field paths accept.
type schema struct {
	paths  []string                                  // sorted
	canon  map[string]func(v []byte) ([]byte, error) // per path: v's canonical form, or why v is refused
	chains map[string][]protoreflect.FieldDescriptor // per path: its fields from the message down (protoSchema's)
}

var schemas = sync.OnceValue(func() map[rasoatv1.EntityKind]*schema {
	return map[rasoatv1.EntityKind]*schema{
		rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD: protoSchema(&rasoatv1.Household{}, "id", "villageCode", "members"),
		rasoatv1.EntityKind_ENTITY_KIND_MEMBER:    protoSchema(&rasoatv1.Member{}, "id"),
		rasoatv1.EntityKind_ENTITY_KIND_REVIEW:    reviewSchema(),
	}
})

// Paths returns the field paths a change to an entity of kind k may write,
// sorted; nil for an unknown kind.
func Paths(k rasoatv1.EntityKind) []string {
	s := schemas()[k]
	if s == nil {
		return nil
	}
	return slices.Clone(s.paths)
}

// protoSchema lists the leaf paths of msg's JSON form, leaving out the
// top-level fields in skip (identity, and the member roster, which is made
// of member entities). A leaf is a scalar, an enum, a repeated or map field,
// or a message holding a oneof; other message fields are descended into.
// A value is checked by decoding {"a":{"b":value}} with protojson into a new
// msg, so it is exactly what the contract's JSON form accepts there; its
// canonical form is then written from the decoded field (canonicalLeaf).
func protoSchema(msg proto.Message, skip ...string) *schema {
	s := &schema{canon: map[string]func([]byte) ([]byte, error){}, chains: map[string][]protoreflect.FieldDescriptor{}}
	md := msg.ProtoReflect().Descriptor()
	var walk func(md protoreflect.MessageDescriptor, prefix []string, fds []protoreflect.FieldDescriptor)
	walk = func(md protoreflect.MessageDescriptor, prefix []string, fds []protoreflect.FieldDescriptor) {
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			name := fd.JSONName()
			if len(prefix) == 0 && slices.Contains(skip, name) {
				continue
			}
			path := append(slices.Clone(prefix), name)
			chain := append(slices.Clone(fds), fd)
			if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && !hasOneof(fd.Message()) {
				walk(fd.Message(), path, chain)
				continue
			}
			p := strings.Join(path, ".")
			s.paths = append(s.paths, p)
			s.chains[p] = chain
			leaf := chain[len(chain)-1]
			s.canon[p] = func(v []byte) ([]byte, error) {
				if isCanonical(leaf, v) {
					return v, nil // already in its one form: nothing to decode
				}
				if err := enumNames(leaf, v); err != nil {
					return nil, err
				}
				m := msg.ProtoReflect().New()
				if err := protojson.Unmarshal(wrap(path, v), m.Interface()); err != nil {
					return nil, err
				}
				if err := knownEnums(m); err != nil {
					return nil, err
				}
				return canonicalLeaf(m, chain)
			}
		}
	}
	walk(md, nil, nil)
	slices.Sort(s.paths)
	return s
}

// knownEnums refuses an enum number the contract does not define: proto3
// enums are open, so protojson takes 42 for a latrine, and the engine would
// read it as "not deprived".
func knownEnums(m protoreflect.Message) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		check := func(n protoreflect.EnumNumber) bool {
			if fd.Enum().Values().ByNumber(n) == nil {
				err = unknownEnum(fd.Enum(), strconv.Itoa(int(n)))
				return false
			}
			return true
		}
		switch {
		case fd.Kind() == protoreflect.EnumKind && fd.IsList():
			l := v.List()
			for i := range l.Len() {
				if !check(l.Get(i).Enum()) {
					return false
				}
			}
		case fd.Kind() == protoreflect.EnumKind:
			return check(v.Enum())
		case fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap():
			err = knownEnums(v.Message())
			return err == nil
		}
		return true
	})
	return err
}

func hasOneof(md protoreflect.MessageDescriptor) bool {
	oo := md.Oneofs()
	for i := range oo.Len() {
		if !oo.Get(i).IsSynthetic() {
			return true
		}
	}
	return false
}

// wrap nests v under path: ["a","b"] → {"a":{"b":v}}. v must be one valid
// JSON value (checked before), so it cannot smuggle in sibling keys.
func wrap(path []string, v []byte) []byte {
	var b bytes.Buffer
	for _, p := range path {
		b.WriteString(`{"`)
		b.WriteString(p) // JSON names are ASCII identifiers: no escaping needed
		b.WriteString(`":`)
	}
	b.Write(v)
	for range path {
		b.WriteByte('}')
	}
	return b.Bytes()
}

// reviewSchema is the review round (đợt rà soát) of one household: its
// date, the round's kind (periodic or regular: it chooses the standard),
// the request that started a regular one, the workflow status and a
// comment. It has no message in the contract yet, so its values are
// checked here; each is a JSON string (or null), written canonically as a
// string field of the contract would be, except the status, which is a
// workflow transition (internal/workflow: a state name, or an object
// recording the step).
func reviewSchema() *schema {
	str := func(multiline bool, check func(string) error) func([]byte) ([]byte, error) {
		return func(v []byte) ([]byte, error) {
			if string(v) == "null" {
				return []byte("null"), nil
			}
			var s string
			if !utf8.Valid(v) {
				return nil, errors.New("is not valid UTF-8")
			}
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, errors.New("want a JSON string")
			}
			s, err := canonicalString(s, multiline)
			if err != nil {
				return nil, err
			}
			if err := check(s); err != nil {
				return nil, err
			}
			return appendJSONString(nil, s), nil
		}
	}
	any := func(string) error { return nil }
	oneOf := func(names []string) func(string) error {
		return func(s string) error {
			if !slices.Contains(names, s) {
				return fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
			}
			return nil
		}
	}
	sc := &schema{
		paths: []string{"comment", "request", "reviewDate", "round", "status"},
		canon: map[string]func([]byte) ([]byte, error){
			"comment": str(true, any),
			"reviewDate": str(false, func(s string) error {
				if _, err := time.Parse(time.DateOnly, s); err != nil {
					return fmt.Errorf("%q is not a date YYYY-MM-DD", s)
				}
				return nil
			}),
			"round":   str(false, oneOf(reviewRounds)),
			"request": str(false, oneOf(reviewRequests)),
			"status": func(v []byte) ([]byte, error) {
				if !utf8.Valid(v) {
					return nil, errors.New("is not valid UTF-8")
				}
				t, err := workflow.Parse(v, canonicalString)
				if err != nil {
					return nil, err
				}
				return t.AppendJSON(nil, appendJSONString), nil
			},
		},
	}
	// An officer's acknowledgement of a quality flag (xác nhận cờ kiểm
	// tra, internal/quality): one field per flag code, whose value is the
	// comment saying why the flag does not change the result (required,
	// bounded), or null to withdraw it. A field per code merges each
	// acknowledgement on its own, and the sync log says who wrote it.
	for _, p := range quality.AckPaths() {
		sc.paths = append(sc.paths, p)
		sc.canon[p] = str(true, quality.CheckComment)
	}
	slices.Sort(sc.paths)
	return sc
}

// ValidID reports whether s is a UUID in canonical form (lower-case,
// hyphenated), so that one entity has one id text: exactly what
// uuid.Parse(s) accepts and String gives back unchanged, checked byte by
// byte, since a push checks two ids a change and parsing then formatting
// each cost an allocation.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// Validate checks a change as received on the wire: identity, field path and
// value, stamp, sequence and base. The error is a *FieldError naming the
// first bad field of c.
func Validate(c *rasoatv1.Change) error {
	if !ValidID(c.GetEntityId()) {
		return invalid("entity_id", "%q is not a UUID in canonical form", c.GetEntityId())
	}
	sc := schemas()[c.GetKind()]
	if sc == nil {
		return invalid("kind", "%v is not a known entity kind", c.GetKind())
	}
	if c.GetKind() == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
		if h := c.GetHouseholdId(); h != "" && h != c.GetEntityId() {
			return invalid("household_id", "a household's change must leave household_id empty or equal to entity_id, not %q", h)
		}
	} else if !ValidID(c.GetHouseholdId()) {
		return invalid("household_id", "%q is not a UUID in canonical form", c.GetHouseholdId())
	}
	if err := ValidVillageCode(c.GetVillageCode()); err != nil {
		return invalidCode("village_code", err)
	}
	if c.GetField() == "" {
		return invalid("field", "is empty")
	}
	canon := sc.canon[c.GetField()]
	if canon == nil {
		return invalid("field", "%q is not a field path of a %s", c.GetField(), KindName(c.GetKind()))
	}
	v := c.GetValue()
	switch {
	case len(v) == 0:
		return invalid("value", "is empty (write null to clear the field)")
	case len(v) > MaxValueSize:
		return &FieldError{Field: "value", OverLimit: true, Desc: fmt.Sprintf("is %d bytes, over the limit of %d", len(v), MaxValueSize)}
	case !json.Valid(v):
		return invalid("value", "is not valid JSON")
	}
	cv, err := canon(v)
	if err != nil {
		return invalid("value", "not a valid %s.%s: %v", KindName(c.GetKind()), c.GetField(), err)
	}
	if !bytes.Equal(cv, v) {
		// One value, one form: a value stored as written would show as a
		// conflict against the same value written canonically elsewhere.
		return invalid("value", "is not in canonical form: send %s", cv)
	}
	if c.GetStamp().GetHlc() == 0 {
		return invalid("stamp.hlc", "is zero")
	}
	if err := ValidReplicaID(c.GetStamp().GetReplicaId()); err != nil {
		return invalidCode("stamp.replica_id", err)
	}
	if c.GetSeq() == 0 {
		return invalid("seq", "is zero (origin sequence numbers start at 1)")
	}
	if c.GetSeq() > math.MaxInt64 {
		return invalid("seq", "%d is beyond 2^63-1", c.GetSeq())
	}
	if n := len(c.GetBase()); n > MaxBase {
		return &FieldError{Field: "base", OverLimit: true,
			Desc: fmt.Sprintf("lists %d stamps, over the limit of %d (a base names the values its author saw, at most %d per field)", n, MaxBase, MaxHeads)}
	}
	stamp := stampOf(c.GetStamp())
	for i, pb := range c.GetBase() {
		b, f := stampOf(pb), fmt.Sprintf("base[%d]", i)
		if err := ValidReplicaID(b.Replica); err != nil {
			return invalidCode(f+".replica_id", err)
		}
		switch {
		case b.HLC.IsZero():
			return invalid(f+".hlc", "is zero")
		case b.HLC >= stamp.HLC:
			return invalid(f+".hlc", "%s is not before the change's stamp %s", b, stamp)
		case i > 0 && !stampOf(c.GetBase()[i-1]).Less(b):
			return invalid(f, "%s is not after base[%d] %s (entries must be sorted and distinct)", b, i-1, stampOf(c.GetBase()[i-1]))
		}
	}
	if err := toMerge(c).Validate(); err != nil {
		return invalid("stamp", "%v", err)
	}
	return nil
}

// HouseholdOf returns the household c belongs to: its own id for a
// household, household_id otherwise.
func HouseholdOf(c *rasoatv1.Change) string {
	if c.GetKind() == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
		return c.GetEntityId()
	}
	return c.GetHouseholdId()
}

// FromProto validates c and converts it to the merge rule's form. The
// household id and village code stay on c (see HouseholdOf).
func FromProto(c *rasoatv1.Change) (merge.Change, error) {
	if err := Validate(c); err != nil {
		return merge.Change{}, err
	}
	return toMerge(c), nil
}

func toMerge(c *rasoatv1.Change) merge.Change {
	m := merge.Change{
		Entity: c.GetEntityId(),
		Kind:   KindName(c.GetKind()),
		Field:  c.GetField(),
		Value:  c.GetValue(),
		Stamp:  stampOf(c.GetStamp()),
		Seq:    c.GetSeq(),
	}
	if len(c.GetBase()) > 0 {
		m.Base = make([]merge.Stamp, len(c.GetBase()))
		for i, b := range c.GetBase() {
			m.Base[i] = stampOf(b)
		}
	}
	return m
}

// ToProto converts a merge change back to the wire form, with the
// household id (empty for a household) and village code it belongs to.
func ToProto(m merge.Change, householdID, villageCode string) *rasoatv1.Change {
	c := &rasoatv1.Change{
		EntityId:    m.Entity,
		Kind:        KindOf(m.Kind),
		HouseholdId: householdID,
		VillageCode: villageCode,
		Field:       m.Field,
		Value:       m.Value,
		Stamp:       &rasoatv1.Stamp{Hlc: uint64(m.Stamp.HLC), ReplicaId: m.Stamp.Replica},
		Seq:         m.Seq,
	}
	if c.Kind == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD && householdID == m.Entity {
		c.HouseholdId = ""
	}
	for _, b := range m.Base {
		c.Base = append(c.Base, &rasoatv1.Stamp{Hlc: uint64(b.HLC), ReplicaId: b.Replica})
	}
	return c
}

func stampOf(s *rasoatv1.Stamp) merge.Stamp {
	return merge.Stamp{HLC: hlc.Timestamp(s.GetHlc()), Replica: s.GetReplicaId()}
}

// MergeOf converts c to the merge rule's form without validating it: for a
// change that has already passed Validate (a store behind the sync service,
// or one read back from a log that only holds valid changes).
func MergeOf(c *rasoatv1.Change) merge.Change { return toMerge(c) }
