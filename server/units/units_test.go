package units

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

var (
	langSon  = Unit{Code: "20", Name: "Lạng Sơn", Level: Province, Kind: "tỉnh"}
	quanSon  = Unit{Code: "06517", Name: "Quan Sơn", Level: Commune, Kind: "xã", Parent: "20"}
	langHang = Unit{Code: "06517-01", Name: "Làng Hăng", Level: Village, Kind: "thôn", Parent: "06517"}
	langHa   = Unit{Code: "06517-03", Name: "Làng Hạ", Level: Village, Kind: "thôn", Parent: "06517"}
)

func with(u Unit, edit func(*Unit)) Unit {
	edit(&u)
	return u
}

// The rules New enforces, one case each. Where a case is refused, the
// error must name the unit, the field and say why.
func TestNewRules(t *testing.T) {
	village := func(code, parent string) Unit { // a village (or a group of villages)
		return Unit{Code: code, Name: "X " + code, Level: Village, Kind: "thôn", Parent: parent}
	}
	deep := []Unit{langSon, quanSon, village("06517-1", "06517")}
	for i := 2; i <= MaxDepth-2; i++ { // province, commune, then villages to depth MaxDepth
		deep = append(deep, village(fmt.Sprintf("06517-%d", i), fmt.Sprintf("06517-%d", i-1)))
	}
	tooDeep := append(append([]Unit(nil), deep...), village("06517-x", deep[len(deep)-1].Code))

	tests := []struct {
		name  string
		units []Unit
		// want is the error's text ("" when the units are accepted).
		want      string
		overLimit bool
	}{
		{name: "a province, a commune and its villages are accepted",
			units: []Unit{langSon, quanSon, langHang, langHa}},
		{name: "depth-free: a village under a village group under a commune is accepted",
			units: []Unit{langSon, quanSon, village("06517-01", "06517"), village("06517-01.1", "06517-01")}},
		{name: "a tree of MaxDepth levels is accepted", units: deep},
		{name: "the kind may be left empty",
			units: []Unit{with(langSon, func(u *Unit) { u.Kind = "" })}},
		{name: "the level is read in any case, the codes trimmed",
			units: []Unit{with(langSon, func(u *Unit) { u.Level = " Province"; u.Code = " 20 " })}},

		{name: "a duplicate code is refused",
			units: []Unit{langSon, quanSon, langHang, with(langHa, func(u *Unit) { u.Code = langHang.Code })},
			want:  `units[3]: code "06517-01": already used by units[2]`},
		{name: "a missing parent is refused",
			units: []Unit{langSon, quanSon, with(langHang, func(u *Unit) { u.Parent = "0651" })},
			want:  `units[2]: parent "0651": no such unit`},
		{name: "a cycle of villages is refused, named from its first unit",
			units: []Unit{langSon, quanSon, village("06517-01", "06517-02"), village("06517-02", "06517-01")},
			want:  `units[2]: parent "06517-02": makes a cycle: 06517-01 → 06517-02 → 06517-01`},
		{name: "a village that is its own parent is refused",
			units: []Unit{langSon, quanSon, village("06517-01", "06517-01")},
			want:  `units[2]: parent "06517-01": makes a cycle: 06517-01 → 06517-01`},
		{name: "a village directly under a province is refused",
			units: []Unit{langSon, quanSon, with(langHang, func(u *Unit) { u.Parent = "20" })},
			want:  `units[2]: parent "20": a village belongs to a commune or to another village, not to a province`},
		{name: "a commune under a commune is refused",
			units: []Unit{langSon, quanSon, with(quanSon, func(u *Unit) { u.Code = "06514"; u.Parent = "06517" })},
			want:  `units[2]: parent "06517": a commune belongs to a province, not to a commune`},
		{name: "a commune under a village is refused",
			units: []Unit{langSon, quanSon, langHang, with(quanSon, func(u *Unit) { u.Code = "06514"; u.Parent = "06517-01" })},
			want:  `units[3]: parent "06517-01": a commune belongs to a province, not to a village`},
		{name: "a commune without a parent is refused",
			units: []Unit{with(quanSon, func(u *Unit) { u.Parent = "" })},
			want:  `units[0]: parent: is empty: a commune belongs to a province`},
		{name: "a province with a parent is refused",
			units: []Unit{with(langSon, func(u *Unit) { u.Parent = "01" })},
			want:  `units[0]: parent "01": a province has no parent`},
		{name: "a tree deeper than MaxDepth is refused", units: tooDeep, overLimit: true,
			want: fmt.Sprintf(`units[%d]: parent %q: nests this unit 9 levels deep, over the limit of 8`, len(tooDeep)-1, deep[len(deep)-1].Code)},

		{name: "a province code of 3 digits is refused",
			units: []Unit{with(langSon, func(u *Unit) { u.Code = "020" })},
			want:  `units[0]: code "020": a province's code is 2 digits, 01 to 99 (Decision 19/2025/QĐ-TTg)`},
		{name: "the province code 00 is refused",
			units: []Unit{with(langSon, func(u *Unit) { u.Code = "00" })},
			want:  `units[0]: code "00": a province's code is 2 digits, 01 to 99 (Decision 19/2025/QĐ-TTg)`},
		{name: "a bad commune code is refused",
			units: []Unit{langSon, with(quanSon, func(u *Unit) { u.Code = "0651x" })},
			want:  `units[1]: code "0651x": a commune's code is 5 digits, 00001 to 99999 (Decision 19/2025/QĐ-TTg)`},
		{name: "a commune code that lost its leading zero is refused with a hint",
			units: []Unit{langSon, with(quanSon, func(u *Unit) { u.Code = "6517" })},
			want:  `units[1]: code "6517": a commune's code is 5 digits, 00001 to 99999 (Decision 19/2025/QĐ-TTg); a spreadsheet drops leading zeros unless the column is formatted as text`},
		{name: "a village coded under another commune is refused",
			units: []Unit{langSon, quanSon, with(langHang, func(u *Unit) { u.Code = "06514-01" })},
			want:  `units[2]: code "06514-01": a village's code is its commune's code, a dash and a local suffix (06517-01), so that it stays unique in the province`},
		{name: "a village group's villages take the commune's code, not the group's",
			units: []Unit{langSon, quanSon, village("06517-01", "06517"), village("06518-01.1", "06517-01")},
			want:  `units[3]: code "06518-01.1": a village's code is its commune's code, a dash and a local suffix (06517-01), so that it stays unique in the province`},
		{name: "a village code of the commune code and a dash alone is refused",
			units: []Unit{langSon, quanSon, with(langHang, func(u *Unit) { u.Code = "06517-" })},
			want:  `units[2]: code "06517-": a village's code is its commune's code, a dash and a local suffix (06517-01), so that it stays unique in the province`},
		{name: "a village code over 32 bytes is refused", overLimit: true,
			units: []Unit{langSon, quanSon, with(langHang, func(u *Unit) { u.Code = "06517-" + strings.Repeat("a", 27) })},
			want:  `units[2]: code "06517-aaaaaaaaaaaaaaaaaaaaaaaaaaa": too long: 33 bytes, over the limit of 32`},
		{name: "a village code with a space is refused",
			units: []Unit{langSon, quanSon, with(langHang, func(u *Unit) { u.Code = "06517 01" })},
			want:  `units[2]: code "06517 01": holds ' ': only ASCII letters, digits and . _ : - are allowed`},
		{name: "a level other than province, commune or village is refused",
			units: []Unit{with(langSon, func(u *Unit) { u.Level = "district" })},
			want:  `units[0]: level "district": must be province, commune or village`},

		{name: "an empty name is refused",
			units: []Unit{with(langSon, func(u *Unit) { u.Name = "  " })},
			want:  `units[0]: name: is empty`},
		{name: "a too-long name is refused", overLimit: true,
			units: []Unit{with(langSon, func(u *Unit) { u.Name = strings.Repeat("ạ", 67) })},
			want:  `units[0]: name: 201 bytes, over the limit of 200`},
		{name: "a name with a control character is refused",
			units: []Unit{with(langSon, func(u *Unit) { u.Name = "Lạng\tSơn" })},
			want:  `units[0]: name: holds the control character U+0009`},
		{name: "a name that is not UTF-8 is refused",
			units: []Unit{with(langSon, func(u *Unit) { u.Name = "L\xe1ng S\xf5n" })},
			want:  `units[0]: name: is not valid UTF-8 (save the file as UTF-8: in Excel, "CSV UTF-8")`},
		{name: "a too-long kind is refused", overLimit: true,
			units: []Unit{with(langSon, func(u *Unit) { u.Kind = strings.Repeat("a", 65) })},
			want:  `units[0]: kind: 65 bytes, over the limit of 64`},
		{name: "too many units are refused", overLimit: true,
			units: make([]Unit, MaxUnits+1),
			want:  `200001 units, over the limit of 200000`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree, err := New(tc.units)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tree.Len() != len(tc.units) {
					t.Fatalf("tree holds %d units, want %d", tree.Len(), len(tc.units))
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %s", tc.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %T %v is not a *FieldError wrapping ErrInvalid", err, err)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
			if fe.OverLimit != tc.overLimit {
				t.Errorf("OverLimit = %v, want %v", fe.OverLimit, tc.overLimit)
			}
		})
	}
}

func TestNewStoresNamesInNFC(t *testing.T) {
	decomposed := "La\u0300ng Ha\u0306ng" // Làng Hăng, typed as base letters and combining marks
	tree, err := New([]Unit{langSon, quanSon, with(langHang, func(u *Unit) { u.Name = " " + decomposed + " " })})
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := tree.Unit("06517-01"); u.Name != "Làng Hăng" {
		t.Errorf("name %q (% x), want the NFC %q", u.Name, u.Name, "Làng Hăng")
	}
}

func TestTreeQueries(t *testing.T) {
	group := Unit{Code: "06517-02", Name: "Làng Thượng", Level: Village, Kind: "thôn", Parent: "06517"}
	xom := Unit{Code: "06517-02.1", Name: "Xóm Một", Level: Village, Kind: "xóm", Parent: "06517-02"}
	other := Unit{Code: "06514", Name: "Hữu Kiên", Level: Commune, Kind: "xã", Parent: "20"}
	tree, err := New([]Unit{langSon, quanSon, langHang, group, other, xom, langHa})
	if err != nil {
		t.Fatal(err)
	}
	codes := func(us []Unit) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.Code)
		}
		return out
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	check("Children(20)", codes(tree.Children("20")), []string{"06517", "06514"})
	check("Children(06517)", codes(tree.Children("06517")), []string{"06517-01", "06517-02", "06517-03"})
	check("Children of a village without a group", codes(tree.Children("06517-01")), nil)
	check("Children of an unknown code", codes(tree.Children("99")), nil)
	check("Ancestors of a village in a group", codes(tree.Ancestors("06517-02.1")), []string{"06517-02", "06517", "20"})
	check("Ancestors of a province", codes(tree.Ancestors("20")), nil)
	check("VillagesOf(06517), groups before their villages", codes(tree.VillagesOf("06517")), []string{"06517-01", "06517-02", "06517-02.1", "06517-03"})
	check("VillagesOf a commune without villages", codes(tree.VillagesOf("06514")), nil)
	check("VillagesOf a province", codes(tree.VillagesOf("20")), nil)
	check("VillagesOf a village", codes(tree.VillagesOf("06517-02")), nil)

	if c, ok := tree.CommuneOf("06517-02.1"); !ok || c.Code != "06517" {
		t.Errorf("CommuneOf(06517-02.1) = %v, %v; want 06517", c.Code, ok)
	}
	for _, code := range []string{"06517", "20", "nope"} {
		if c, ok := tree.CommuneOf(code); ok {
			t.Errorf("CommuneOf(%s) = %v, want none: not a village", code, c.Code)
		}
	}
	if u, ok := tree.Unit("06514"); !ok || u != other {
		t.Errorf("Unit(06514) = %+v, %v", u, ok)
	}

	all := tree.Units()
	all[0].Name = "changed"
	tree.Children("20")[0].Name = "changed"
	if u, _ := tree.Unit("20"); u.Name != "Lạng Sơn" {
		t.Error("changing a returned slice changed the tree")
	}
	if u, _ := tree.Unit("06517"); u.Name != "Quan Sơn" {
		t.Error("changing a returned slice changed the tree")
	}
}

func TestFullName(t *testing.T) {
	for _, tc := range []struct {
		u    Unit
		want string
	}{
		{quanSon, "Xã Quan Sơn"},
		{langHang, "Thôn Làng Hăng"},
		{Unit{Name: "Vân Đồn", Kind: "đặc khu"}, "Đặc khu Vân Đồn"},
		{Unit{Name: "Quan Sơn"}, "Quan Sơn"},
	} {
		if got := tc.u.FullName(); got != tc.want {
			t.Errorf("FullName() = %q, want %q", got, tc.want)
		}
	}
}
