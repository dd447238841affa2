package survey_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// checkAppendProto: AppendProto and AppendProtoBasic write exactly the
// bytes proto.Marshal makes of Proto and ProtoBasic, after whatever b held.
func checkAppendProto(t *testing.T, name string, a *survey.Assessment, h *rasoatv1.Household) {
	t.Helper()
	for _, v := range []struct {
		view   string
		msg    *rasoatv1.Assessment
		append func([]byte, *rasoatv1.Household) []byte
	}{
		{"full", a.Proto(h), a.AppendProto},
		{"basic", a.ProtoBasic(h), a.AppendProtoBasic},
	} {
		want, err := proto.Marshal(v.msg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		prefix := []byte("prefix")
		got := v.append(bytes.Clone(prefix), h)
		if !bytes.HasPrefix(got, prefix) {
			t.Fatalf("%s, %s view: AppendProto overwrote what b held", name, v.view)
		}
		if !bytes.Equal(got[len(prefix):], want) {
			t.Errorf("%s, %s view: AppendProto differs from proto.Marshal(Proto) from byte %d (%d bytes, want %d)",
				name, v.view, diffAt(got[len(prefix):], want), len(got)-len(prefix), len(want))
		}
	}
}

func diffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestAppendProtoIsProtoMarshal covers every boundary case of every
// standard (each reason sentence, score A, provisional notes, the middle
// band left unknown), the example, and lengths whose varints take
// two and three bytes.
func TestAppendProtoIsProtoMarshal(t *testing.T) {
	reg := survey.Builtin()
	for std, cases := range standardCases {
		s, err := reg.ByID(std)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases {
			h := base(std)
			tc.edit(h)
			a, err := s.Assess(h)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			checkAppendProto(t, std+": "+tc.name, a, h)
		}
	}

	b, err := os.ReadFile("testdata/household-example.json")
	if err != nil {
		t.Fatal(err)
	}
	example := new(rasoatv1.Household)
	if err := protojson.Unmarshal(b, example); err != nil {
		t.Fatal(err)
	}
	long := proto.Clone(example).(*rasoatv1.Household)
	long.Members[1].FullName = strings.Repeat("Vi Thị Mai ", 30) // a text over 127 bytes
	many := base("2021-2025")
	for range 60 { // indicators over 16 KiB: three-byte lengths
		m := aged(14, 0, both(uninsured, notInSch))(many.ReviewDate)
		m.FullName = strings.Repeat("Lò Văn Thử ", 20)
		many.Members = append(many.Members, m)
	}
	noID := proto.Clone(example).(*rasoatv1.Household)
	noID.Id, noID.Members[1].Id = "", ""
	for name, h := range map[string]*rasoatv1.Household{"example": example, "long name": long, "many members": many, "no ids": noID} {
		for _, s := range reg.Standards() {
			a, err := s.Assess(h)
			if err != nil {
				continue // an answer another standard does not take
			}
			checkAppendProto(t, s.ID+": "+name, a, h)
		}
	}
}

// FuzzAppendProto: for any household the engine classifies, AppendProto is
// proto.Marshal(Proto).
func FuzzAppendProto(f *testing.F) {
	if b, err := os.ReadFile("testdata/household-example.json"); err == nil {
		f.Add(b)
	}
	for std := range reviewDates {
		b, err := protojson.Marshal(base(std))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	stds := survey.Builtin().Standards()
	f.Fuzz(func(t *testing.T, data []byte) {
		var h rasoatv1.Household
		if err := protojson.Unmarshal(data, &h); err != nil {
			return
		}
		for _, s := range stds {
			if a, err := s.Assess(&h); err == nil {
				checkAppendProto(t, s.ID, a, &h)
			}
		}
	})
}

// BenchmarkAssessAppendProto is BenchmarkAssessExplained writing the wire
// bytes directly, as the scoring service's stream does.
func BenchmarkAssessAppendProto(b *testing.B) {
	s, _ := survey.Builtin().ByID("2021-2025")
	h := realistic()
	var a survey.Assessment
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		if err := s.AssessInto(h, &a); err != nil {
			b.Fatal(err)
		}
		buf = a.AppendProto(buf[:0], h)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "households/s")
}
