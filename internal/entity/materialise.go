package entity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
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
// the winner of every field path, nested by the dots into the protojson
// object, members (removed ones too, with their removal) ordered by entity
// id — UUIDv7, so creation order — and decoded with protojson. No field
// needs code of its own; a winner of null leaves its field unset.
func Materialise(household State, members []State) (*rasoatv1.Household, error) {
	if household.Kind != rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
		return nil, fmt.Errorf("materialise: entity %s is a %v, not a household", household.ID, household.Kind)
	}
	obj := object{}
	obj.set([]string{"id"}, jsonString(household.ID))
	obj.set([]string{"villageCode"}, jsonString(household.VillageCode))
	household.winners(obj)
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b State) int { return strings.Compare(a.ID, b.ID) })
	list := make([]any, 0, len(ms))
	for i := range ms {
		m := &ms[i]
		if m.Kind != rasoatv1.EntityKind_ENTITY_KIND_MEMBER || m.HouseholdID != household.ID {
			return nil, fmt.Errorf("materialise household %s: entity %s is not one of its members", household.ID, m.ID)
		}
		mo := object{}
		mo.set([]string{"id"}, jsonString(m.ID))
		m.winners(mo)
		list = append(list, mo)
	}
	if len(list) > 0 {
		obj["members"] = list
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("materialise household %s: %w", household.ID, err)
	}
	h := &rasoatv1.Household{}
	// A field a newer app added is kept in the state (it syncs on) but not
	// shown by a build that does not know it.
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, h); err != nil {
		return nil, fmt.Errorf("materialise household %s: %w", household.ID, err)
	}
	return h, nil
}

// object is a JSON object under construction; leaves are json.RawMessage.
type object map[string]any

func (o object) set(path []string, v json.RawMessage) {
	for _, p := range path[:len(path)-1] {
		next, ok := o[p].(object)
		if !ok {
			next = object{}
			o[p] = next
		}
		o = next
	}
	o[path[len(path)-1]] = v
}

func (s *State) winners(o object) {
	for i := range s.fields {
		w, ok := s.fields[i].field.Winner()
		if !ok || bytes.Equal(bytes.TrimSpace(w.Value), []byte("null")) {
			continue
		}
		o.set(strings.Split(s.fields[i].path, "."), json.RawMessage(w.Value))
	}
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}
