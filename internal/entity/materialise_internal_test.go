package entity

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestMaterialiseReadsValuesAsProtojsonDoes pins Materialise, which sets
// canonical values directly, to what it did before: nest every winner
// into one JSON object and decode it with protojson. Values of every kind
// of leaf, in canonical and other forms protojson takes (numbers quoted,
// enums by number, escaped strings), unknown enum names, and values
// protojson refuses, on households with members: the same message, or an
// error from both.
func TestMaterialiseReadsValuesAsProtojsonDoes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	agreedErrors := 0
	for round := range 400 {
		hh := fmt.Sprintf("0192f0c1-0000-7000-8000-%012d", round)
		house := randomState(rng, rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, hh, hh, round%7 == 0)
		var members []State
		for i := range rng.IntN(4) {
			id := fmt.Sprintf("0192f0c1-0001-7000-8000-%012d", round*10+i)
			members = append(members, *randomState(rng, rasoatv1.EntityKind_ENTITY_KIND_MEMBER, id, hh, round%7 == 0))
		}
		got, gotErr := Materialise(*house, members)
		want, wantErr := materialiseViaJSON(*house, members)
		switch {
		case (gotErr == nil) != (wantErr == nil):
			t.Fatalf("round %d: error %v, protojson's %v", round, gotErr, wantErr)
		case gotErr != nil:
			agreedErrors++
		case !proto.Equal(got, want):
			t.Fatalf("round %d:\n got %v\nwant %v", round, got, want)
		}
	}
	if agreedErrors == 0 {
		t.Fatal("no round had a value protojson refuses")
	}
}

// randomState is an entity with a random value, in a random form, for
// about two thirds of its kind's paths; bad adds values protojson refuses.
func randomState(rng *rand.Rand, kind rasoatv1.EntityKind, id, hh string, bad bool) *State {
	s := &State{ID: id, Kind: kind, HouseholdID: hh, VillageCode: "06517-01"}
	sc := schemas()[kind]
	stamp := hlc.Timestamp(1 << 20)
	for _, p := range sc.paths {
		if rng.IntN(3) == 0 {
			continue
		}
		stamp++
		v := randomValue(rng, sc.chains[p][len(sc.chains[p])-1], bad && rng.IntN(8) == 0)
		s.ApplyMerge(merge.Change{Entity: id, Kind: KindName(kind), Field: p, Value: v, Stamp: merge.Stamp{HLC: stamp, Replica: "r"}, Seq: uint64(stamp)})
	}
	return s
}

func randomValue(rng *rand.Rand, fd protoreflect.FieldDescriptor, bad bool) []byte {
	if bad {
		return []byte([]string{`"x\u0000`, `{"nope":1}`, `[1,`, `12.5`, `"9999999999999999999999"`}[rng.IntN(5)])
	}
	if rng.IntN(10) == 0 {
		return []byte(`null`)
	}
	one := func() string {
		switch fd.Kind() {
		case protoreflect.BoolKind:
			return []string{`true`, `false`}[rng.IntN(2)]
		case protoreflect.EnumKind:
			vals := fd.Enum().Values()
			ev := vals.Get(rng.IntN(vals.Len()))
			return []string{`"` + string(ev.Name()) + `"`, fmt.Sprint(ev.Number()), `"NOT_A_VALUE"`}[rng.IntN(3)]
		case protoreflect.StringKind:
			return []string{`"Lò Văn Pọm"`, `"a\"b\\c"`, `"\u0041n"`, `" padded "`, `""`, `"Bản Nà Pàn"`}[rng.IntN(6)]
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
			n := rng.IntN(5000)
			return []string{fmt.Sprint(n), fmt.Sprintf(`"%d"`, n), fmt.Sprintf("%d.0", n), "0"}[rng.IntN(4)]
		case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			n := rng.Int64N(1 << 40)
			return []string{fmt.Sprintf(`"%d"`, n), fmt.Sprint(n), `"0"`}[rng.IntN(3)]
		case protoreflect.DoubleKind, protoreflect.FloatKind:
			return []string{`1.5`, `0`, `12`, `"2.25"`, `1e3`, `"NaN"`}[rng.IntN(6)]
		case protoreflect.MessageKind:
			return `{}`
		}
		return `null`
	}
	if fd.IsList() {
		var items []string
		for range rng.IntN(4) {
			items = append(items, one())
		}
		return []byte("[" + strings.Join(items, ",") + "]")
	}
	return []byte(one())
}

// materialiseViaJSON is Materialise as it was first written: the winners
// nested by the dots into maps, encoded with encoding/json and decoded
// with protojson.
func materialiseViaJSON(household State, members []State) (*rasoatv1.Household, error) {
	obj := object{}
	obj.set([]string{"id"}, jsonString(household.ID))
	obj.set([]string{"villageCode"}, jsonString(household.VillageCode))
	household.winnersInto(obj)
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b State) int { return strings.Compare(a.ID, b.ID) })
	list := make([]any, 0, len(ms))
	for i := range ms {
		mo := object{}
		mo.set([]string{"id"}, jsonString(ms[i].ID))
		ms[i].winnersInto(mo)
		list = append(list, mo)
	}
	if len(list) > 0 {
		obj["members"] = list
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	h := &rasoatv1.Household{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, h); err != nil {
		return nil, err
	}
	return h, nil
}

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

func (s *State) winnersInto(o object) {
	for _, p := range s.Paths() {
		w, ok := s.Field(p).Winner()
		if !ok || string(w.Value) == "null" {
			continue
		}
		o.set(strings.Split(p, "."), json.RawMessage(w.Value))
	}
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// BenchmarkMaterialise: a household of four members with every field in
// canonical form, read directly and, as its peer in the same run, through
// one JSON object and protojson (the way it was first written).
//
//	go test -run '^$' -bench Materialise ./internal/entity/
func BenchmarkMaterialise(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const hh = "0192f0c1-0000-7000-8000-000000000001"
	house := canonicalState(rng, rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, hh, hh)
	var members []State
	for i := range 4 {
		members = append(members, *canonicalState(rng, rasoatv1.EntityKind_ENTITY_KIND_MEMBER, fmt.Sprintf("0192f0c1-0001-7000-8000-%012d", i), hh))
	}
	for _, bc := range []struct {
		name string
		fn   func(State, []State) (*rasoatv1.Household, error)
	}{{"direct", Materialise}, {"via-json", materialiseViaJSON}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.fn(*house, members); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// canonicalState is randomState with every path written, each value in
// its canonical form.
func canonicalState(rng *rand.Rand, kind rasoatv1.EntityKind, id, hh string) *State {
	s := &State{ID: id, Kind: kind, HouseholdID: hh, VillageCode: "06517-01"}
	sc := schemas()[kind]
	stamp := hlc.Timestamp(1 << 20)
	for _, p := range sc.paths {
		var v []byte
		for range 50 {
			c, err := sc.canon[p](randomValue(rng, sc.chains[p][len(sc.chains[p])-1], false))
			if err == nil && string(c) != "null" {
				v = c
				break
			}
		}
		if v == nil {
			continue
		}
		stamp++
		s.ApplyMerge(merge.Change{Entity: id, Kind: KindName(kind), Field: p, Value: v, Stamp: merge.Stamp{HLC: stamp, Replica: "r"}, Seq: uint64(stamp)})
	}
	return s
}
