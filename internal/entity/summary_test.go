package entity_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// checkSummary compares Summarise with what decoding b says: both accept
// or both refuse, and the identity, the top winner's stamp and the
// conflict flag agree.
func checkSummary(t *testing.T, b []byte) (accepted bool) {
	t.Helper()
	var s entity.State
	derr := s.UnmarshalBinary(b)
	sum, serr := entity.Summarise(b)
	if (derr == nil) != (serr == nil) {
		t.Fatalf("state %x: UnmarshalBinary says %v, Summarise says %v", b, derr, serr)
	}
	if derr != nil {
		return false
	}
	var top hlc.Timestamp
	conflicted := false
	for _, p := range s.Paths() {
		f := s.Field(p)
		if w, ok := f.Winner(); ok {
			top = max(top, w.Stamp.HLC)
		}
		if _, _, ok := f.Conflict(); ok {
			conflicted = true
		}
	}
	hh := s.HouseholdID
	if s.Kind == 1 {
		hh = ""
	}
	switch {
	case sum.Kind != s.Kind || string(sum.ID) != s.ID || string(sum.HouseholdID) != hh || string(sum.VillageCode) != s.VillageCode:
		t.Fatalf("state %x: summary names %v %s/%s/%s, decoded %v %s/%s/%s", b, sum.Kind, sum.ID, sum.HouseholdID, sum.VillageCode, s.Kind, s.ID, hh, s.VillageCode)
	case sum.Top != top:
		t.Fatalf("state %x: summary's top %d, decoded %d", b, sum.Top, top)
	case sum.Conflicted != conflicted:
		t.Fatalf("state %x: summary's conflict flag %v, decoded %v", b, sum.Conflicted, conflicted)
	}
	return true
}

// TestSummariseAgreesWithDecoding: a first sync stores a server's state as
// it came, after Summarise read it; what it accepts must decode later, and
// what it says of the state must be what the decoded state says.
func TestSummariseAgreesWithDecoding(t *testing.T) {
	accepted, refused, conflicted := 0, 0, 0
	for iter := range 500 {
		rng := rand.New(rand.NewPCG(uint64(iter), 13))
		changes := randomChanges(rng)
		if iter%3 == 1 {
			// A member: its own paths, values of the right type.
			paths := map[string]string{"headName": "fullName", "address": "ethnicity", "housing.floorAreaM2": "disabilitySevere", "area": "birthDate"}
			for _, c := range changes {
				c.EntityId, c.Kind, c.HouseholdId = mem1, 2, hhID
				c.Field = paths[c.Field]
				switch c.Field {
				case "disabilitySevere":
					c.Value = []byte("true")
				case "birthDate":
					c.Value = []byte(`"1980-01-0` + string(rune('1'+rng.IntN(9))) + `"`)
				}
			}
		}
		b := encode(t, stateOf(t, changes))
		if !checkSummary(t, b) {
			t.Fatalf("iteration %d: a state MarshalBinary wrote was refused", iter)
		}
		if sum, _ := entity.Summarise(b); sum.Conflicted {
			conflicted++
		}
		// Corrupt copies: a flipped byte, a truncation, a byte added.
		for range 20 {
			c := bytes.Clone(b)
			switch rng.IntN(3) {
			case 0:
				c[rng.IntN(len(c))] ^= byte(1 + rng.IntN(255))
			case 1:
				c = c[:rng.IntN(len(c))]
			default:
				i := rng.IntN(len(c) + 1)
				c = append(c[:i:i], append([]byte{byte(rng.IntN(256))}, b[i:]...)...)
			}
			if checkSummary(t, c) {
				accepted++
			} else {
				refused++
			}
		}
	}
	if conflicted == 0 || conflicted == 500 {
		t.Errorf("%d of 500 states in conflict: the test does not see both kinds", conflicted)
	}
	t.Logf("%d states in conflict; corrupt copies: %d accepted by both, %d refused by both", conflicted, accepted, refused)
}

// A state written by more than 64 replicas takes Summarise's slower way of
// checking that every replica of its table is used.
func TestSummariseManyReplicas(t *testing.T) {
	for iter := range 20 {
		rng := rand.New(rand.NewPCG(uint64(iter), 17))
		var changes []*rasoatv1.Change
		for i := range 70 + rng.IntN(10) {
			c := hh([]string{"headName", "address"}[rng.IntN(2)], fmt.Sprintf(`"v%d"`, rng.IntN(3)))
			c.Stamp = stamp(uint64(1000+i), fmt.Sprintf("tab-%03d", i))
			c.Seq = uint64(i + 1)
			if i > 0 && rng.IntN(4) == 0 {
				prev := changes[rng.IntN(len(changes))]
				if prev.Field == c.Field && prev.Stamp.Hlc < c.Stamp.Hlc {
					c.Base = []*rasoatv1.Stamp{prev.Stamp}
				}
			}
			changes = append(changes, c)
		}
		b := encode(t, stateOf(t, changes))
		if !checkSummary(t, b) {
			t.Fatalf("iteration %d: a state MarshalBinary wrote was refused", iter)
		}
		if n := bytes.Count(b, []byte("tab-")); n <= 64 {
			t.Fatalf("iteration %d: a table of %d replicas", iter, n)
		}
		for range 20 {
			c := bytes.Clone(b)
			c[rng.IntN(len(c))] ^= byte(1 + rng.IntN(255))
			checkSummary(t, c)
		}
	}
}

func TestSummariseDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 13))
	b := encode(t, stateOf(t, randomChanges(rng)))
	if n := testing.AllocsPerRun(100, func() {
		if _, err := entity.Summarise(b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Summarise allocates %.0f times a state", n)
	}
}

func FuzzSummarise(f *testing.F) {
	for iter := range 10 {
		rng := rand.New(rand.NewPCG(uint64(iter), 13))
		f.Add(encode(f, stateOf(f, randomChanges(rng))))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkSummary(t, b) })
}

// BenchmarkSummarise reads the five states of a household of storetest's
// commune (4 members, every field filled), as a first sync reads 10,000.
func BenchmarkSummarise(b *testing.B) {
	g := storetest.New("0190f0c2-0000-7000-8000-0000000000e1", "001")
	states := map[string]*entity.State{}
	var order []string
	for _, c := range g.Household(4) {
		s := states[c.EntityId]
		if s == nil {
			s = &entity.State{}
			states[c.EntityId] = s
			order = append(order, c.EntityId)
		}
		if _, err := s.Apply(c); err != nil {
			b.Fatal(err)
		}
	}
	var encoded [][]byte
	size := 0
	for _, id := range order {
		e := encode(b, states[id])
		encoded = append(encoded, e)
		size += len(e)
	}
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, e := range encoded {
			if _, err := entity.Summarise(e); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(encoded)), "ns/state")
}
