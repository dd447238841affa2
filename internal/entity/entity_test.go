package entity_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	hhID  = "0192f0c1-0000-7000-8000-000000000001"
	mem1  = "0192f0c1-0000-7000-8000-000000000002"
	mem2  = "0192f0c1-0000-7000-8000-000000000003"
	revID = "0192f0c1-0000-7000-8000-000000000004"
)

func stamp(ts uint64, r string) *rasoatv1.Stamp { return &rasoatv1.Stamp{Hlc: ts, ReplicaId: r} }

// hh is a valid household change.
func hh(field, value string) *rasoatv1.Change {
	return &rasoatv1.Change{
		EntityId: hhID, Kind: rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, VillageCode: "00001",
		Field: field, Value: []byte(value), Stamp: stamp(100, "tab-a"), Seq: 1,
	}
}

func member(id, field, value string) *rasoatv1.Change {
	c := hh(field, value)
	c.EntityId, c.Kind, c.HouseholdId = id, rasoatv1.EntityKind_ENTITY_KIND_MEMBER, hhID
	return c
}

func review(field, value string) *rasoatv1.Change {
	c := hh(field, value)
	c.EntityId, c.Kind, c.HouseholdId = revID, rasoatv1.EntityKind_ENTITY_KIND_REVIEW, hhID
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func() *rasoatv1.Change
		field  string // "" means valid
	}{
		{"household name is a valid change", func() *rasoatv1.Change { return hh("headName", `"Nguyễn Văn A"`) }, ""},
		{"nested path housing.floorAreaM2 takes a number", func() *rasoatv1.Change { return hh("housing.floorAreaM2", `24.5`) }, ""},
		{"repeated enum information.infoDevices takes a list", func() *rasoatv1.Change {
			return hh("information.infoDevices", `["INFO_DEVICE_TV","INFO_DEVICE_SMARTPHONE"]`)
		}, ""},
		{"income is one value because it is a oneof", func() *rasoatv1.Change {
			return hh("income", `{"annual":{"wagesVnd":"36000000","farmingVnd":"0","forestryVnd":"0","fisheryVnd":"0","businessVnd":"0","pensionsAllowancesVnd":"0","otherVnd":"0"}}`)
		}, ""},
		{"a oneof case is not a path of its own", func() *rasoatv1.Change { return hh("income.annual", `{}`) }, "field"},
		{"income with two cases is refused", func() *rasoatv1.Change { return hh("income", `{"scoreA":10,"monthlyPerCapitaVnd":"1"}`) }, "value"},
		{"null clears a field with presence", func() *rasoatv1.Change { return hh("housing.floorAreaM2", `null`) }, ""},
		{"an empty string clears a text field", func() *rasoatv1.Change { return hh("address", `""`) }, ""},
		{"null for a text field is refused: its one form is the empty string", func() *rasoatv1.Change { return hh("address", `null`) }, "value"},
		{"a name with padding spaces is refused: one value, one form", func() *rasoatv1.Change { return hh("headName", `" Nguyễn Văn A "`) }, "value"},
		{"a name in decomposed Unicode is refused: its form is NFC", func() *rasoatv1.Change { return hh("headName", "\"Nguye\u0302\u0303n\"") }, "value"},
		{"a NUL character in a name is refused", func() *rasoatv1.Change { return hh("headName", `"A\u0000B"`) }, "value"},
		{"invalid UTF-8 in a review comment is refused", func() *rasoatv1.Change { return review("comment", "\"\xff\xfe\"") }, "value"},
		{"a NUL character in a review comment is refused", func() *rasoatv1.Change { return review("comment", `"ok\u0000"`) }, "value"},
		{"a line break in a review comment is taken", func() *rasoatv1.Change { return review("comment", `"dòng 1\ndòng 2"`) }, ""},
		{"an acknowledgement of a quality flag with a comment is taken", func() *rasoatv1.Change { return review("ack.AREA_HALVED", `"nhà xây lại sau lũ"`) }, ""},
		{"an acknowledgement is withdrawn with null", func() *rasoatv1.Change { return review("ack.AREA_HALVED", `null`) }, ""},
		{"an acknowledgement without a comment is refused", func() *rasoatv1.Change { return review("ack.AREA_HALVED", `""`) }, "value"},
		{"an acknowledgement over its bound is refused", func() *rasoatv1.Change { return review("ack.AREA_HALVED", `"`+strings.Repeat("x", 2001)+`"`) }, "value"},
		{"an acknowledgement holding NUL is refused", func() *rasoatv1.Change { return review("ack.AREA_HALVED", `"ok\u0000"`) }, "value"},
		{"an open conflict is not acknowledged: it is resolved", func() *rasoatv1.Change { return review("ack.OPEN_CONFLICT", `"đã xem"`) }, "field"},
		{"an unknown flag code is no field", func() *rasoatv1.Change { return review("ack.NOT_A_RULE", `"đã xem"`) }, "field"},
		{"a number written with a trailing zero is refused", func() *rasoatv1.Change { return hh("housing.floorAreaM2", `24.50`) }, "value"},
		{"a sequence number past 2^63-1 is refused", func() *rasoatv1.Change { c := hh("headName", `"A"`); c.Seq = 1 << 63; return c }, "seq"},
		{"an enum number the contract does not define is refused", func() *rasoatv1.Change { return hh("waterSanitation.latrine", `42`) }, "value"},
		{"an unknown enum number in a list is refused", func() *rasoatv1.Change { return hh("information.infoDevices", `[1, 99]`) }, "value"},
		{"an enum given by its number is refused: its one form is the name", func() *rasoatv1.Change { return hh("area", `2`) }, "value"},
		{"member birthDate", func() *rasoatv1.Change { return member(mem1, "birthDate", `"1990-01-02"`) }, ""},
		{"member removed takes a removal", func() *rasoatv1.Change { return member(mem1, "removed", `"REMOVAL_DIED"`) }, ""},
		{"review status draft", func() *rasoatv1.Change {
			c := member(revID, "status", `"draft"`)
			c.Kind = rasoatv1.EntityKind_ENTITY_KIND_REVIEW
			return c
		}, ""},
		{"review status outside the workflow is refused", func() *rasoatv1.Change {
			c := member(revID, "status", `"done"`)
			c.Kind = rasoatv1.EntityKind_ENTITY_KIND_REVIEW
			return c
		}, "value"},
		{"review date must be a date", func() *rasoatv1.Change {
			c := member(revID, "reviewDate", `"2025-13-01"`)
			c.Kind = rasoatv1.EntityKind_ENTITY_KIND_REVIEW
			return c
		}, "value"},
		{"entity id must be a UUID", func() *rasoatv1.Change { c := hh("headName", `"A"`); c.EntityId = "hh-1"; return c }, "entity_id"},
		{"entity id must be canonical lower case", func() *rasoatv1.Change {
			c := hh("headName", `"A"`)
			c.EntityId = "0192F0C1-0000-7000-8000-000000000001"
			return c
		}, "entity_id"},
		{"kind must be known", func() *rasoatv1.Change { c := hh("headName", `"A"`); c.Kind = 0; return c }, "kind"},
		{"member needs its household id", func() *rasoatv1.Change { c := member(mem1, "fullName", `"A"`); c.HouseholdId = ""; return c }, "household_id"},
		{"household id of a household is itself", func() *rasoatv1.Change { c := hh("headName", `"A"`); c.HouseholdId = mem1; return c }, "household_id"},
		{"village code is required", func() *rasoatv1.Change { c := hh("headName", `"A"`); c.VillageCode = ""; return c }, "village_code"},
		{"field must not be empty", func() *rasoatv1.Change { return hh("", `"A"`) }, "field"},
		{"field must be a path of the kind", func() *rasoatv1.Change { return hh("fullName", `"A"`) }, "field"},
		{"member id is not a writable field", func() *rasoatv1.Change { return member(mem1, "id", `"x"`) }, "field"},
		{"household members are entities, not a field", func() *rasoatv1.Change { return hh("members", `[]`) }, "field"},
		{"empty value is refused", func() *rasoatv1.Change { return hh("headName", ``) }, "value"},
		{"value must be JSON", func() *rasoatv1.Change { return hh("headName", `Nguyen`) }, "value"},
		{"value must not smuggle sibling keys", func() *rasoatv1.Change { return hh("headName", `"A","address":"B"`) }, "value"},
		{"value must fit the field type", func() *rasoatv1.Change { return hh("housing.floorAreaM2", `"big"`) }, "value"},
		{"enum value must be known", func() *rasoatv1.Change { return hh("area", `"AREA_MOON"`) }, "value"},
		{"stamp hlc must be set", func() *rasoatv1.Change { c := hh("headName", `"A"`); c.Stamp.Hlc = 0; return c }, "stamp.hlc"},
		{"stamp replica must be set", func() *rasoatv1.Change { c := hh("headName", `"A"`); c.Stamp.ReplicaId = ""; return c }, "stamp.replica_id"},
		{"seq starts at 1", func() *rasoatv1.Change { c := hh("headName", `"A"`); c.Seq = 0; return c }, "seq"},
		{"base must be before the stamp", func() *rasoatv1.Change {
			c := hh("headName", `"A"`)
			c.Base = []*rasoatv1.Stamp{stamp(50, "tab-b"), stamp(100, "tab-b")}
			return c
		}, "base[1].hlc"},
		{"base must be sorted and distinct", func() *rasoatv1.Change {
			c := hh("headName", `"A"`)
			c.Base = []*rasoatv1.Stamp{stamp(50, "tab-b"), stamp(50, "tab-b")}
			return c
		}, "base[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := entity.Validate(tt.change())
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *entity.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, entity.ErrInvalid) {
				t.Fatalf("Validate = %v, want a *FieldError", err)
			}
			if fe.Field != tt.field {
				t.Fatalf("Validate blames %q (%v), want %q", fe.Field, err, tt.field)
			}
		})
	}
}

func TestPathsComeFromTheContract(t *testing.T) {
	for _, want := range []string{"headName", "housing.floorAreaM2", "information.infoDevices", "income", "waterSanitation.latrine", "reviewDate"} {
		if !slices.Contains(entity.Paths(rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD), want) {
			t.Errorf("household paths lack %q", want)
		}
	}
	for _, want := range []string{"fullName", "birthDate", "removed", "inSchool"} {
		if !slices.Contains(entity.Paths(rasoatv1.EntityKind_ENTITY_KIND_MEMBER), want) {
			t.Errorf("member paths lack %q", want)
		}
	}
}

func TestConversionRoundTrips(t *testing.T) {
	c := member(mem1, "fullName", `"Lò Thị B"`)
	c.Base = []*rasoatv1.Stamp{stamp(40, "tab-b"), stamp(60, "tab-c")}
	m, err := entity.FromProto(c)
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != entity.KindMember || len(m.Base) != 2 || m.Base[1].Replica != "tab-c" {
		t.Fatalf("FromProto = %+v", m)
	}
	if back := entity.ToProto(m, hhID, "00001"); !proto.Equal(back, c) {
		t.Fatalf("ToProto(FromProto(c)) = %v, want %v", back, c)
	}
}

func TestStateRefusesAChangeOfAnotherVillage(t *testing.T) {
	var s entity.State
	if _, err := s.Apply(hh("headName", `"A"`)); err != nil {
		t.Fatal(err)
	}
	c := hh("address", `"B"`)
	c.VillageCode = "00002"
	_, err := s.Apply(c)
	var fe *entity.FieldError
	if !errors.Is(err, entity.ErrMismatch) || !errors.As(err, &fe) || fe.Field != "village_code" {
		t.Fatalf("Apply = %v, want ErrMismatch naming village_code", err)
	}
}

func TestStateLaterWriteWinsAndStateRoundTrips(t *testing.T) {
	var s entity.State
	a := hh("headName", `"A"`)
	b := hh("headName", `"B"`)
	b.Stamp, b.Seq, b.Base = stamp(200, "tab-a"), 2, []*rasoatv1.Stamp{a.Stamp}
	for _, c := range []*rasoatv1.Change{b, a, b} {
		if _, err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	w, ok := s.Field("headName").Winner()
	if !ok || string(w.Value) != `"B"` {
		t.Fatalf("winner = %q, want \"B\"", w.Value)
	}
	enc, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back entity.State
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	enc2, _ := back.MarshalBinary()
	if !bytes.Equal(enc, enc2) || back.HouseholdID != hhID || back.VillageCode != "00001" {
		t.Fatalf("round trip changed the state: %+v", back)
	}
	for i := range enc {
		if err := back.UnmarshalBinary(enc[:i]); err == nil {
			t.Fatalf("UnmarshalBinary accepted %d of %d bytes", i, len(enc))
		}
	}
}

func TestMaterialiseNestsWinnersAndOrdersMembersById(t *testing.T) {
	var h, m1, m2 entity.State
	for _, c := range []*rasoatv1.Change{
		hh("headName", `"Nguyễn Văn A"`),
		hh("area", `"AREA_RURAL"`),
		hh("housing.floorAreaM2", `30`),
		hh("housing.roofDurable", `true`),
		hh("information.infoDevices", `["INFO_DEVICE_TV"]`),
		hh("income", `{"monthlyPerCapitaVnd":"1200000"}`),
		hh("address", `""`),
	} {
		if _, err := h.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*rasoatv1.Change{
		member(mem2, "fullName", `"Second"`),
		member(mem2, "removed", `"REMOVAL_MOVED_OUT"`),
	} {
		if _, err := m2.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m1.Apply(member(mem1, "fullName", `"First"`)); err != nil {
		t.Fatal(err)
	}
	got, err := entity.Materialise(h, []entity.State{m2, m1})
	if err != nil {
		t.Fatal(err)
	}
	want := &rasoatv1.Household{}
	if err := protojson.Unmarshal([]byte(`{
		"id": "`+hhID+`", "villageCode": "00001", "headName": "Nguyễn Văn A", "area": "AREA_RURAL",
		"housing": {"floorAreaM2": 30, "roofDurable": true},
		"information": {"infoDevices": ["INFO_DEVICE_TV"]},
		"income": {"monthlyPerCapitaVnd": "1200000"},
		"members": [
			{"id": "`+mem1+`", "fullName": "First"},
			{"id": "`+mem2+`", "fullName": "Second", "removed": "REMOVAL_MOVED_OUT"}
		]}`), want); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("Materialise =\n%v\nwant\n%v", got, want)
	}
}

func TestMaterialiseRefusesAMemberOfAnotherHousehold(t *testing.T) {
	var h, m entity.State
	if _, err := h.Apply(hh("headName", `"A"`)); err != nil {
		t.Fatal(err)
	}
	c := member(mem1, "fullName", `"X"`)
	c.HouseholdId = mem2
	if _, err := m.Apply(c); err != nil {
		t.Fatal(err)
	}
	if _, err := entity.Materialise(h, []entity.State{m}); err == nil {
		t.Fatal("Materialise accepted a member of another household")
	}
}

// TestStateConvergesWhateverTheOrder is the property the sync model rests
// on: random change sets, with concurrent writers, bases and duplicates,
// applied in random orders give byte-equal encodings.
// randomChanges is a random history of household field writes by three
// replicas, each base naming some earlier stamps of the same field.
func randomChanges(rng *rand.Rand) []*rasoatv1.Change {
	paths := []string{"headName", "address", "housing.floorAreaM2", "area"}
	values := map[string][]string{
		"headName":            {`"A"`, `"B"`, `"C"`, `""`},
		"address":             {`"x"`, `"y"`},
		"housing.floorAreaM2": {`10`, `12.5`, `null`},
		"area":                {`"AREA_RURAL"`, `"AREA_URBAN"`},
	}
	replicas := []string{"tab-a", "tab-b", "srv"}
	var changes []*rasoatv1.Change
	seen := map[string][]*rasoatv1.Stamp{} // stamps written per path so far
	for i := range 1 + rng.IntN(40) {
		p := paths[rng.IntN(len(paths))]
		vs := values[p]
		c := hh(p, vs[rng.IntN(len(vs))])
		c.Stamp = stamp(uint64(100+i*3+rng.IntN(5)), replicas[rng.IntN(len(replicas))])
		c.Seq = uint64(i + 1)
		for _, s := range seen[p] {
			if rng.IntN(3) == 0 && s.Hlc < c.Stamp.Hlc {
				c.Base = append(c.Base, s)
			}
		}
		slices.SortFunc(c.Base, func(a, b *rasoatv1.Stamp) int {
			return merge.Stamp{HLC: hlc.Timestamp(a.Hlc), Replica: a.ReplicaId}.Compare(merge.Stamp{HLC: hlc.Timestamp(b.Hlc), Replica: b.ReplicaId})
		})
		c.Base = slices.CompactFunc(c.Base, func(a, b *rasoatv1.Stamp) bool { return proto.Equal(a, b) })
		seen[p] = append(seen[p], c.Stamp)
		changes = append(changes, c)
	}
	return changes
}

func stateOf(t testing.TB, changes []*rasoatv1.Change) *entity.State {
	t.Helper()
	var s entity.State
	for _, c := range changes {
		if _, err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	return &s
}

func encode(t testing.TB, s *entity.State) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStateConvergesWhateverTheOrder(t *testing.T) {
	for iter := range 300 {
		rng := rand.New(rand.NewPCG(uint64(iter), 7))
		changes := randomChanges(rng)
		var want []byte
		for order := range 5 {
			perm := slices.Clone(changes)
			rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			perm = append(perm, perm[:rng.IntN(len(perm)+1)]...) // duplicates
			var s entity.State
			for _, c := range perm {
				if _, err := s.Apply(c); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if order == 0 {
				want = got
				continue
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("iteration %d order %d: encoding differs\n got %x\nwant %x", iter, order, got, want)
			}
		}
	}
}

func ExampleMaterialise() {
	var h entity.State
	for _, c := range []*rasoatv1.Change{hh("headName", `"Lò Văn C"`), hh("housing.floorAreaM2", `18`)} {
		if _, err := h.Apply(c); err != nil {
			panic(err)
		}
	}
	got, err := entity.Materialise(h, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.GetHeadName(), got.GetHousing().GetFloorAreaM2())
	// Output: Lò Văn C 18
}

// TestMergedStatesEqualTheStateOfTheUnion: a first sync takes the server's
// entity states whole and merges them into the tablet's; that must give
// exactly the state of applying both sides' changes.
func TestMergedStatesEqualTheStateOfTheUnion(t *testing.T) {
	for iter := range 300 {
		rng := rand.New(rand.NewPCG(uint64(iter), 11))
		changes := randomChanges(rng)
		var a, b []*rasoatv1.Change
		for _, c := range changes {
			switch rng.IntN(3) {
			case 0:
				a = append(a, c)
			case 1:
				b = append(b, c)
			default:
				a, b = append(a, c), append(b, c)
			}
		}
		want := encode(t, stateOf(t, changes))
		left := stateOf(t, a)
		right := stateOf(t, b)
		if len(a) == 0 {
			left = &entity.State{}
		}
		if _, err := left.Merge(right); err != nil {
			t.Fatal(err)
		}
		if got := encode(t, left); !bytes.Equal(got, want) {
			t.Fatalf("iteration %d: merged state differs from the union's\n got %x\nwant %x", iter, got, want)
		}
	}
}

// TestMaterialiseSkipsAFieldThisBuildDoesNotKnow: a newer app's field syncs
// through an older tablet; the household still reads.
func TestMaterialiseSkipsAFieldThisBuildDoesNotKnow(t *testing.T) {
	var h entity.State
	if _, err := h.Apply(hh("headName", `"Nguyễn Văn A"`)); err != nil {
		t.Fatal(err)
	}
	newer := entity.MergeOf(hh("headName", `true`))
	newer.Field = "solarPanels"
	if !h.ApplyMerge(newer) {
		t.Fatal("the unknown field was not kept in the state")
	}
	got, err := entity.Materialise(h, nil)
	if err != nil {
		t.Fatalf("a household with a field from a newer app does not read: %v", err)
	}
	if got.GetHeadName() != "Nguyễn Văn A" {
		t.Errorf("head name %q", got.GetHeadName())
	}
}
