package merge_test

import (
	"bytes"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/rasoat/rasoat/internal/merge"
)

// A stored row must keep decoding: change this only with a new encoding version.
func TestEncodingGolden(t *testing.T) {
	var f merge.Field
	f.Apply(ch("tab-a", 1, 0x10000, "An"))
	f.Apply(ch("tab-a", 2, 0x20000, "Ân", st(0x10000, "tab-a")))
	f.Apply(ch("tab-b", 7, 0x20001, "Anh", st(0x10000, "tab-a"), st(0x18000, "tab-b")))
	f.Apply(ch("tab-c", 8, 0x20002, "", st(0x10000, "tab-a")))
	const golden = "02" + // version
		"02" + // two Seen entries
		"05" + "7461622d61" + "808004" + // tab-a 0x10000
		"05" + "7461622d62" + "808006" + // tab-b 0x18000
		"03" + // three heads
		"808008" + "01" + "02" + "03c3826e" + // 0x20000, Seen[0] (tab-a), seq 2, "Ân"
		"01" + "02" + "07" + "03416e68" + // +1, Seen[1] (tab-b), seq 7, "Anh"
		"01" + "00" + "05" + "7461622d63" + "08" + "00" // +1, tab-c spelled out, seq 8, ""
	if got := hex.EncodeToString(encode(t, f)); got != golden {
		t.Fatalf("encoding\n got %s\nwant %s", got, golden)
	}
	b, _ := hex.DecodeString(golden)
	var g merge.Field
	if err := g.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encode(t, g), b) {
		t.Fatal("round trip changed the bytes")
	}
	if want := []merge.Stamp{st(0x10000, "tab-a"), st(0x18000, "tab-b")}; !slices.Equal(g.Seen, want) {
		t.Fatalf("decoded Seen %v, want %v", g.Seen, want)
	}
	if w, _ := g.Winner(); w.Value != nil || w.Seq != 8 || w.Stamp != st(0x20002, "tab-c") {
		t.Fatalf("decoded winner %+v", w)
	}
	if _, others, ok := g.Conflict(); !ok || len(others) != 2 {
		t.Fatalf("decoded conflict %v %v", others, ok)
	}
}

func TestEncodingEmpty(t *testing.T) {
	b := encode(t, merge.Field{})
	if hex.EncodeToString(b) != "020000" {
		t.Fatalf("empty field encodes as %x", b)
	}
	f := merge.Field{Seen: []merge.Stamp{st(3, "b")}, Heads: []merge.Head{{Value: []byte("x"), Stamp: st(5, "a")}}}
	if err := f.UnmarshalBinary(b); err != nil || f.Heads != nil || f.Seen != nil {
		t.Fatalf("UnmarshalBinary(empty) = %v, %+v", err, f)
	}
}

func TestUnmarshalDoesNotAliasInput(t *testing.T) {
	var f merge.Field
	f.Apply(ch("tab-a", 1, 9, "An", st(3, "tab-b")))
	b := encode(t, f)
	var g merge.Field
	if err := g.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	clear(b)
	if w, _ := g.Winner(); string(w.Value) != "An" || w.Stamp != st(9, "tab-a") || g.Seen[0] != st(3, "tab-b") {
		t.Fatalf("decoded field changed with the input: %+v", g)
	}
}

// The encoder refuses what the decoder would, so whatever it writes decodes.
func TestMarshalRejectsUnreachableState(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    merge.Field
	}{
		{"seen out of order", merge.Field{Seen: []merge.Stamp{st(1, "b"), st(1, "a")}}},
		{"seen replica twice", merge.Field{Seen: []merge.Stamp{st(1, "a"), st(2, "a")}}},
		{"seen hlc zero", merge.Field{Seen: []merge.Stamp{st(0, "a")}}},
		{"seen replica empty", merge.Field{Seen: []merge.Stamp{st(1, "")}}},
		{"heads out of order", merge.Field{Heads: []merge.Head{{Stamp: st(2, "a")}, {Stamp: st(1, "a")}}}},
		{"head twice", merge.Field{Heads: []merge.Head{{Stamp: st(2, "a")}, {Stamp: st(2, "a")}}}},
		{"head hlc zero", merge.Field{Heads: []merge.Head{{Stamp: st(0, "a")}}}},
		{"head replica empty", merge.Field{Heads: []merge.Head{{Stamp: st(1, "")}}}},
		{"head covered", merge.Field{Seen: []merge.Stamp{st(2, "a")}, Heads: []merge.Head{{Stamp: st(2, "a")}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := tc.f.MarshalBinary(); err == nil {
				t.Fatalf("MarshalBinary(%+v) = %x", tc.f, b)
			}
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	for _, tc := range []struct{ name, hex string }{
		{"empty input", ""},
		{"unknown version", "030000"},
		{"version 1 (the old coverage rule)", "01000000"},
		{"truncated", "0200"},
		{"trailing bytes", "02000000"},
		{"non-minimal varint", "02800000"},
		{"seen count beyond the data", "020500"},
		{"seen replica empty", "0201" + "0001" + "00"},
		{"seen hlc zero", "0201" + "016100" + "00"},
		{"seen out of order", "0202" + "016201" + "016101" + "00"},
		{"seen replica twice", "0202" + "016101" + "016102" + "00"},
		{"head count beyond the data", "020005"},
		{"head hlc zero", "020001" + "00" + "000161" + "01" + "00"},
		{"value longer than the data", "020001" + "01" + "000161" + "01" + "09"},
		{"head covered by seen", "0201" + "016105" + "01" + "05" + "01" + "01" + "00"},
		{"head replica spelled out though in seen", "0201" + "016105" + "01" + "06" + "000161" + "01" + "00"},
		{"head replica index beyond seen", "020001" + "01" + "01" + "01" + "00"},
		{"head replica empty", "020001" + "01" + "0000" + "01" + "00"},
		{"heads out of order", "020002" + "02" + "000162" + "0100" + "00" + "000161" + "0100"},
		{"duplicate head", "020002" + "01" + "000161" + "0100" + "00" + "000161" + "0100"},
		{"hlc delta overflows", "020002" + "ffffffffffffffffff01" + "000161" + "0100" + "01" + "000162" + "0100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			keep := []merge.Stamp{st(1, "keep")}
			f := merge.Field{Seen: keep}
			if err := f.UnmarshalBinary(b); err == nil {
				t.Fatalf("UnmarshalBinary(%s) accepted: %+v", tc.hex, f)
			}
			if !slices.Equal(f.Seen, keep) || f.Heads != nil {
				t.Fatal("failed UnmarshalBinary changed the field")
			}
		})
	}
}

// Whatever decodes re-encodes to the same bytes, so a row has one form.
func FuzzUnmarshalBinary(f *testing.F) {
	var fld merge.Field
	f.Add(encode(f, fld))
	fld.Apply(ch("tab-a", 1, 0x10000, "An"))
	f.Add(encode(f, fld))
	fld.Apply(ch("tab-b", 1, 0x10001, "Anh"))
	fld.Apply(ch("tab-b", 2, 0x10002, "Anh"))
	f.Add(encode(f, fld))
	fld.Apply(ch("tab-c", 1, 0x30000, "", st(0x10001, "tab-b")))
	f.Add(encode(f, fld))
	fld.Apply(ch("tab-d", 1, 0x30001, "Ân", st(0x10000, "tab-a"), st(0x10002, "tab-b")))
	f.Add(encode(f, fld))
	f.Fuzz(func(t *testing.T, b []byte) {
		var g merge.Field
		if err := g.UnmarshalBinary(b); err != nil {
			return
		}
		if got := encode(t, g); !bytes.Equal(got, b) {
			t.Fatalf("decoded %x, re-encoded %x", b, got)
		}
		// Applying the decoded heads again changes nothing, even with what
		// Seen says was already seen as their Base.
		for _, h := range g.Heads {
			if g.Apply(merge.Change{Value: h.Value, Stamp: h.Stamp, Seq: h.Seq}) {
				t.Fatalf("re-applying head %s changed the field", h.Stamp)
			}
			for _, s := range g.Seen {
				if s.HLC < h.Stamp.HLC && g.Apply(merge.Change{Value: h.Value, Stamp: h.Stamp, Seq: h.Seq, Base: []merge.Stamp{s}}) {
					t.Fatalf("re-applying head %s with base %s changed the field", h.Stamp, s)
				}
			}
		}
	})
}
