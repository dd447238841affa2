package entity

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaterialiseOf is Materialise of household hh from the states of its
// entities (the household, its members, its reviews, in any order).
func MaterialiseOf(hh string, states []*State) (*rasoatv1.Household, error) {
	var house State
	var members []State
	for _, s := range states {
		switch {
		case s.ID == hh:
			house = *s
		case s.Kind == rasoatv1.EntityKind_ENTITY_KIND_MEMBER:
			members = append(members, *s)
		}
	}
	if house.ID == "" {
		return nil, fmt.Errorf("household %s: no state", hh)
	}
	return Materialise(house, members)
}

// Materialise builds the Household that household and members hold now:
// the winner of every field path set at its place in the message, members
// (removed ones too, with their removal) ordered by entity id — UUIDv7, so
// creation order. A value is read as protojson reads it there (a winner of
// null leaves its field unset, a field a newer app added is left out); no
// field needs code of its own. Every push derives its households' report
// facts from this, inside the writer's transaction: values in their
// canonical form (entity.Canonical) are set directly, and only others go
// through protojson, which decoding a whole household's JSON spent most of
// the deriving on.
func Materialise(household State, members []State) (*rasoatv1.Household, error) {
	if household.Kind != rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
		return nil, fmt.Errorf("materialise: entity %s is a %v, not a household", household.ID, household.Kind)
	}
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b State) int { return strings.Compare(a.ID, b.ID) })
	h := &rasoatv1.Household{Id: household.ID, VillageCode: household.VillageCode}
	if err := household.setWinners(h.ProtoReflect(), schemas()[rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD]); err != nil {
		return nil, fmt.Errorf("materialise household %s: %w", household.ID, err)
	}
	for i := range ms {
		m := &ms[i]
		if m.Kind != rasoatv1.EntityKind_ENTITY_KIND_MEMBER || m.HouseholdID != household.ID {
			return nil, fmt.Errorf("materialise household %s: entity %s is not one of its members", household.ID, m.ID)
		}
		mm := &rasoatv1.Member{Id: m.ID}
		if err := m.setWinners(mm.ProtoReflect(), schemas()[rasoatv1.EntityKind_ENTITY_KIND_MEMBER]); err != nil {
			return nil, fmt.Errorf("materialise household %s: member %s: %w", household.ID, m.ID, err)
		}
		h.Members = append(h.Members, mm)
	}
	return h, nil
}

// setWinners sets in msg the winner of each of s's fields that sc knows,
// other than null.
func (s *State) setWinners(msg protoreflect.Message, sc *schema) error {
	for i := range s.fields {
		chain := sc.chains[s.fields[i].path]
		if chain == nil {
			continue // a field a newer app added: kept in the state, not shown
		}
		w, ok := s.fields[i].field.Winner()
		if !ok || bytes.Equal(bytes.TrimSpace(w.Value), []byte("null")) {
			continue
		}
		parent := msg
		for _, fd := range chain[:len(chain)-1] {
			parent = parent.Mutable(fd).Message()
		}
		leaf := chain[len(chain)-1]
		if v, ok := canonicalValue(parent, leaf, w.Value); ok {
			parent.Set(leaf, v)
			continue
		}
		// Any other form, as protojson reads it in its place.
		tmp := msg.New()
		path := strings.Split(s.fields[i].path, ".")
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(wrap(path, w.Value), tmp.Interface()); err != nil {
			return err
		}
		from := tmp
		for _, fd := range chain[:len(chain)-1] {
			from = from.Get(fd).Message()
		}
		if from.Has(leaf) {
			parent.Set(leaf, from.Get(leaf))
		}
	}
	return nil
}

// canonicalValue returns v, in the canonical form of leaf's kind
// (isCanonical), as a value of leaf in parent; ok is false for any other
// form, and for lists of other kinds, maps and messages.
func canonicalValue(parent protoreflect.Message, leaf protoreflect.FieldDescriptor, v []byte) (protoreflect.Value, bool) {
	if leaf.IsMap() || leaf.Kind() == protoreflect.MessageKind || !isCanonical(leaf, v) {
		return protoreflect.Value{}, false
	}
	if !leaf.IsList() {
		return scalarValue(leaf, v)
	}
	list := parent.NewField(leaf).List()
	if !listItems(v, func(item []byte) bool {
		x, ok := scalarValue(leaf, item)
		if ok {
			list.Append(x)
		}
		return ok
	}) {
		return protoreflect.Value{}, false
	}
	return protoreflect.ValueOfList(list), true
}

// scalarValue reads v, which isCanonicalScalar passed for leaf's kind.
func scalarValue(leaf protoreflect.FieldDescriptor, v []byte) (protoreflect.Value, bool) {
	switch leaf.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(string(v) == "true"), true
	case protoreflect.EnumKind:
		name, _ := plainString(v)
		return protoreflect.ValueOfEnum(leaf.Enum().Values().ByName(protoreflect.Name(name)).Number()), true
	case protoreflect.StringKind:
		s, _ := plainString(v)
		return protoreflect.ValueOfString(s), true
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(string(v), 10, 32)
		return protoreflect.ValueOfInt32(int32(n)), err == nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(string(v), 10, 32)
		return protoreflect.ValueOfUint32(uint32(n)), err == nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		digits, _ := plainString(v)
		n, err := strconv.ParseInt(digits, 10, 64)
		return protoreflect.ValueOfInt64(n), err == nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		digits, _ := plainString(v)
		n, err := strconv.ParseUint(digits, 10, 64)
		return protoreflect.ValueOfUint64(n), err == nil
	case protoreflect.DoubleKind:
		n, err := strconv.ParseFloat(string(v), 64)
		return protoreflect.ValueOfFloat64(n), err == nil
	case protoreflect.FloatKind:
		n, err := strconv.ParseFloat(string(v), 32)
		return protoreflect.ValueOfFloat32(float32(n)), err == nil
	}
	return protoreflect.Value{}, false
}
