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
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b State) int { return strings.Compare(a.ID, b.ID) })
	for i := range ms {
		if m := &ms[i]; m.Kind != rasoatv1.EntityKind_ENTITY_KIND_MEMBER || m.HouseholdID != household.ID {
			return nil, fmt.Errorf("materialise household %s: entity %s is not one of its members", household.ID, m.ID)
		}
	}
	// The JSON is written straight from the sorted winners: building maps
	// for encoding/json to sort and re-encode was most of the cost of
	// deriving a household's report facts on every push.
	var w jsonWriter
	w.open(household.ID, household.VillageCode, household.winners())
	if len(ms) > 0 {
		w.b = append(w.b, `,"members":[`...)
		for i := range ms {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.open(ms[i].ID, "", ms[i].winners())
			w.b = append(w.b, '}')
		}
		w.b = append(w.b, ']')
	}
	b := append(w.b, '}')
	h := &rasoatv1.Household{}
	// A field a newer app added is kept in the state (it syncs on) but not
	// shown by a build that does not know it.
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, h); err != nil {
		return nil, fmt.Errorf("materialise household %s: %w", household.ID, err)
	}
	return h, nil
}

// leaf is a field's winning value at its path.
type leaf struct {
	path  string
	value []byte
}

// winners returns the winning value of every field that has one other
// than null, in the order of the fields' paths.
func (s *State) winners() []leaf {
	out := make([]leaf, 0, len(s.fields))
	for i := range s.fields {
		w, ok := s.fields[i].field.Winner()
		if !ok || bytes.Equal(bytes.TrimSpace(w.Value), []byte("null")) {
			continue
		}
		out = append(out, leaf{s.fields[i].path, w.Value})
	}
	return out
}

// jsonWriter writes the protojson object of an entity, nesting its
// winners by the dots of their paths.
type jsonWriter struct{ b []byte }

// open writes {"id":…,"villageCode":…, …leaves nested…, leaving out
// villageCode when it is empty and the object open for more members.
func (w *jsonWriter) open(id, village string, leaves []leaf) {
	// Sorted segment by segment ('.' first), a path's descendants follow
	// it without another path between them, whatever its characters.
	slices.SortFunc(leaves, func(a, b leaf) int { return comparePaths(a.path, b.path) })
	w.b = append(w.b, `{"id":`...)
	w.b = append(w.b, jsonString(id)...)
	if village != "" {
		w.b = append(w.b, `,"villageCode":`...)
		w.b = append(w.b, jsonString(village)...)
	}
	if len(leaves) > 0 {
		w.b = append(w.b, ',')
		w.members(leaves, 0)
	}
}

// members writes the members of an object whose leaves share the path
// prefix of length off. A path that is both a leaf and the parent of
// others (which no schema path is) gives way to the others, as the map it
// was once built into did.
func (w *jsonWriter) members(leaves []leaf, off int) {
	for i := 0; i < len(leaves); {
		key, nested := segment(leaves[i].path, off)
		j := i + 1
		for j < len(leaves) {
			k, n := segment(leaves[j].path, off)
			if k != key {
				break
			}
			nested = nested || n
			j++
		}
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = append(w.b, jsonString(key)...)
		w.b = append(w.b, ':')
		if nested {
			sub := leaves[i:j]
			for len(sub) > 0 && len(sub[0].path) == off+len(key) {
				sub = sub[1:] // the leaf that gives way
			}
			w.b = append(w.b, '{')
			w.members(sub, off+len(key)+1)
			w.b = append(w.b, '}')
		} else {
			w.b = append(w.b, leaves[j-1].value...)
		}
		i = j
	}
}

// segment returns the path's segment starting at off, and whether more
// segments follow it.
func segment(path string, off int) (string, bool) {
	rest := path[off:]
	if k := strings.IndexByte(rest, '.'); k >= 0 {
		return rest[:k], true
	}
	return rest, false
}

// comparePaths orders paths segment by segment.
func comparePaths(a, b string) int {
	for {
		ka, ra, okA := strings.Cut(a, ".")
		kb, rb, okB := strings.Cut(b, ".")
		if c := strings.Compare(ka, kb); c != 0 {
			return c
		}
		switch {
		case !okA && !okB:
			return 0
		case !okA:
			return -1
		case !okB:
			return 1
		}
		a, b = ra, rb
	}
}

// jsonString is s as a JSON string: as written when it needs no escape
// (ids, village codes, field names), else as encoding/json writes it.
func jsonString(s string) []byte {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	if plain {
		return append(append(append(make([]byte, 0, len(s)+2), '"'), s...), '"')
	}
	b, _ := json.Marshal(s) // a string always marshals
	return b
}
