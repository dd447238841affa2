package units

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

const sample = "testdata/lang-son-quan-son.csv"

func readSample(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The operator's example and the tests' copy are one file: a change to
// one that is not made to the other fails here.
func TestExampleIsTheTestSample(t *testing.T) {
	example, err := os.ReadFile("../../examples/units/lang-son-quan-son.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(example, readSample(t)) {
		t.Errorf("examples/units/lang-son-quan-son.csv and server/units/%s differ", sample)
	}
}

func TestReadCSVSample(t *testing.T) {
	units, err := ReadCSV(bytes.NewReader(readSample(t)))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := New(units)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := tree.Unit("20"); !ok || u.FullName() != "Tỉnh Lạng Sơn" {
		t.Errorf("province 20 = %+v", u)
	}
	var names []string
	for _, v := range tree.VillagesOf("06517") {
		names = append(names, v.FullName())
	}
	if want := []string{"Thôn Làng Hăng", "Thôn Làng Thượng", "Thôn Làng Hạ"}; !reflect.DeepEqual(names, want) {
		t.Errorf("villages of 06517 = %q, want %q", names, want)
	}
	if c, ok := tree.CommuneOf("06517-03"); !ok || c.FullName() != "Xã Quan Sơn" {
		t.Errorf("CommuneOf(06517-03) = %+v", c)
	}
}

// Forms of the same file that operators' tools write, each read to the
// same units as the sample.
func TestReadCSVForms(t *testing.T) {
	want, err := ReadCSV(bytes.NewReader(readSample(t)))
	if err != nil {
		t.Fatal(err)
	}
	body := strings.SplitN(string(readSample(t)), "\n", 2)[1] // without the note
	for _, tc := range []struct{ name, file string }{
		{"with a UTF-8 byte order mark, as Excel's CSV UTF-8", "\uFEFF" + body},
		{"with CRLF line ends", strings.ReplaceAll(body, "\n", "\r\n")},
		{"separated by semicolons", strings.ReplaceAll(body, ",", ";")},
		{"separated by semicolons, after a note with commas", "# a note, with commas\n" + strings.ReplaceAll(body, ",", ";")},
		{"with the columns in another order and the header in capitals",
			"PARENT,Level,code,kind,name\n,province,20,tỉnh,Lạng Sơn\n20,commune,06517,xã,Quan Sơn\n" +
				"06517,village,06517-01,thôn,Làng Hăng\n06517,village,06517-02,thôn,Làng Thượng\n06517,village,06517-03,thôn,Làng Hạ\n"},
		{"with blank rows, spaces around fields and quotes", strings.Replace(body, "20,Lạng Sơn,", "\n,,,,\n 20 , \"Lạng Sơn\",", 1) + ",,,,\n"},
		{"with names typed decomposed", strings.Replace(body, "Làng Hăng", "La\u0300ng Ha\u0306ng", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadCSV(strings.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// A refused file names the line (counting notes and blank rows) and the
// field, so the operator can find it in the spreadsheet.
func TestReadCSVErrors(t *testing.T) {
	const head = "code,name,level,kind,parent\n20,Lạng Sơn,province,tỉnh,\n06517,Quan Sơn,commune,xã,20\n"
	for _, tc := range []struct {
		name, file, want string
	}{
		{"a missing parent names line and field", head + "# note\n\n" +
			"06517-01,A,village,thôn,06517\n06517-02,B,village,thôn,06517\n06517-03,C,village,thôn,06517\n" +
			"06517-04,D,village,thôn,06517\n06517-05,E,village,thôn,06517\n06517-06,F,village,thôn,06517\n" +
			"06623,G,commune,xã,0623\n",
			`line 12: parent "0623": no such unit`},
		{"a duplicate code names both lines", head + "06517-01,A,village,thôn,06517\n06517-01,B,village,thôn,06517\n",
			`line 5: code "06517-01": already used by line 4`},
		{"a commune code that lost its leading zero", strings.Replace(head, "06517,", "6517,", 1),
			`line 3: code "6517": a commune's code is 5 digits, 00001 to 99999 (Decision 19/2025/QĐ-TTg); a spreadsheet drops leading zeros unless the column is formatted as text`},
		{"a file saved in a Windows code page, not UTF-8", head + "06517-01,L\xe0ng,village,thôn,06517\n",
			`line 4: name: is not valid UTF-8 (save the file as UTF-8: in Excel, "CSV UTF-8")`},
		{"a row with a field missing", head + "06517-01,A,village,06517\n",
			`line 4: has a different number of fields from the header (5)`},
		{"a broken quote", head + "06517-01,\"A,village,thôn,06517\n",
			`line 4: extraneous or missing " in quoted-field`},
		{"an unknown column", "code,ten,level,kind,parent\n",
			`line 1: header "ten": is not a column of a units file; the header is code,name,level,kind,parent`},
		{"a column twice", "code,name,level,kind,parent,code\n",
			`line 1: header "code": is there twice`},
		{"a column missing", "code,name,level,parent\n",
			`line 1: header: has no column kind; the header is code,name,level,kind,parent`},
		{"an empty file", "", `is empty: a units file starts with the header code,name,level,kind,parent`},
		{"a file of notes only", "# nothing\n", `is empty: a units file starts with the header code,name,level,kind,parent`},
		{"a file in UTF-16", "\xff\xfec\x00o\x00", `is in UTF-16; save it as UTF-8 (in Excel, "CSV UTF-8")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCSV(strings.NewReader(tc.file))
			if err == nil {
				t.Fatalf("accepted, want %s", tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestReadCSVHeaderOnlyIsNoUnits(t *testing.T) {
	units, err := ReadCSV(strings.NewReader("\uFEFFcode,name,level,kind,parent\r\n"))
	if err != nil || len(units) != 0 {
		t.Errorf("ReadCSV = %v, %v; want no units", units, err)
	}
}

// villagesFile writes a file of one province, one commune and n villages.
func villagesFile(n int) string {
	var b strings.Builder
	b.WriteString("code,name,level,kind,parent\n20,Lạng Sơn,province,tỉnh,\n06517,Quan Sơn,commune,xã,20\n")
	for i := range n {
		fmt.Fprintf(&b, "06517-%d,Thôn %d,village,thôn,06517\n", i, i)
	}
	return b.String()
}

// lowerLimits lowers maxUnits and maxFileSize for the test, so that what
// happens past them is checked on small files.
func lowerLimits(t *testing.T, units, bytes int) {
	mu, mf := maxUnits, maxFileSize
	maxUnits, maxFileSize = units, bytes
	t.Cleanup(func() { maxUnits, maxFileSize = mu, mf })
}

// maxUnits units are read; one more is refused at its line, before the
// tree is built.
func TestReadCSVTooManyRows(t *testing.T) {
	lowerLimits(t, 100, MaxFileSize)
	units, err := ReadCSV(strings.NewReader(villagesFile(maxUnits - 2)))
	if err != nil || len(units) != maxUnits {
		t.Fatalf("MaxUnits units: %d units, %v", len(units), err)
	}
	_, err = ReadCSV(strings.NewReader(villagesFile(maxUnits - 1)))
	var fe *FieldError
	if !errors.As(err, &fe) || !fe.OverLimit {
		t.Fatalf("maxUnits+1 units: %v, want an over-limit *FieldError", err)
	}
	if want := "line 102: more than 100 units, the limit"; err.Error() != want {
		t.Errorf("error\n got %s\nwant %s", err, want)
	}
}

// endless reads head, then fill for ever.
type endless struct {
	head string
	fill byte
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.head)
	e.head = e.head[n:]
	for i := n; i < len(p); i++ {
		p[i] = e.fill
	}
	return len(p), nil
}

// A file over maxFileSize is refused as it is read, whatever it holds: a
// file that never ends is refused too.
func TestReadEndlessFile(t *testing.T) {
	lowerLimits(t, MaxUnits, 1<<20)
	for name, tc := range map[string]struct {
		read func(io.Reader) ([]Unit, error)
		file io.Reader
	}{
		"ReadCSV, a note that never ends":  {ReadCSV, &endless{head: "code,name,level,kind,parent\n#", fill: 'x'}},
		"ReadJSON, a name that never ends": {ReadJSON, &endless{head: `[{"code":"20","name":"`, fill: 'a'}},
	} {
		_, err := tc.read(tc.file)
		var fe *FieldError
		if !errors.As(err, &fe) || !fe.OverLimit {
			t.Errorf("%s: %v, want an over-limit *FieldError", name, err)
		} else if want := "is over 1048576 bytes, the limit for a units file"; err.Error() != want {
			t.Errorf("%s: error\n got %s\nwant %s", name, err, want)
		}
	}
}

func TestCappedReadsUpToItsLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{{"0123456789", nil}, {"0123456789A", errTooBig}} {
		got, err := io.ReadAll(&capped{r: strings.NewReader(tc.in), left: 10})
		if err != tc.want || string(got) != "0123456789" {
			t.Errorf("%q: read %q, %v; want the 10 bytes and %v", tc.in, got, err, tc.want)
		}
	}
}

func TestWriteCSVRoundTrip(t *testing.T) {
	want, err := ReadCSV(bytes.NewReader(readSample(t)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestReadJSON(t *testing.T) {
	want, err := ReadCSV(bytes.NewReader(readSample(t)))
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{
		"as json.Marshal writes it":   string(js),
		"with a byte order mark":      "\uFEFF" + string(js),
		"with a null and no parent":   strings.Replace(string(js), `"kind":"tỉnh"`, `"kind":"tỉnh","parent":null`, 1),
		"with space around the array": "\n [" + string(js[1:len(js)-1]) + "] \n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ReadJSON(strings.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestReadJSONErrors(t *testing.T) {
	const prov = `{"code": "20", "name": "Lạng Sơn", "level": "province"}`
	for _, tc := range []struct{ name, file, want string }{
		{"a missing parent names the record", `[` + prov + `, {"code": "06517", "name": "Quan Sơn", "level": "commune", "parent": "21"}]`,
			`record 2: parent "21": no such unit`},
		{"a code written as a number", `[` + prov + `, {"code": 6517, "name": "Quan Sơn", "level": "commune", "parent": "20"}]`,
			`record 2: code: must be a string`},
		{"an unknown key", `[{"code": "20", "ten": "Lạng Sơn", "level": "province"}]`,
			`record 1: unknown field "ten"; the keys of a unit are code,name,level,kind,parent`},
		{"a unit that is not an object", `[` + prov + `, "20"]`,
			`record 2: a unit is an object with the keys code,name,level,kind,parent`},
		{"not an array", prov, `a units file in JSON is an array of units: [{"code": …}, …]`},
		{"an empty file", ``, `a units file in JSON is an array of units: [{"code": …}, …]`},
		{"something after the array", `[` + prov + `] []`, `holds something after the array of units`},
		{"a file cut short", `[` + prov + `, {"code": "06`, `record 2: the file ends inside the array of units`},
		{"broken syntax", `[` + prov + `,, ]`, `record 2: invalid character ',' looking for beginning of value (at byte 59)`},
		{"a file in UTF-16", "\xfe\xff\x00[", `is in UTF-16; save it as UTF-8 (in Excel, "CSV UTF-8")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadJSON(strings.NewReader(tc.file))
			if err == nil {
				t.Fatalf("accepted, want %s", tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestReadJSONTooManyRecords(t *testing.T) {
	lowerLimits(t, 100, MaxFileSize)
	var b strings.Builder
	b.WriteString(`[{"code":"20","name":"Lạng Sơn","level":"province"},{"code":"06517","name":"Quan Sơn","level":"commune","parent":"20"}`)
	for i := range maxUnits - 1 {
		fmt.Fprintf(&b, `,{"code":"06517-%d","name":"Thôn %d","level":"village","parent":"06517"}`, i, i)
	}
	b.WriteString("]")
	_, err := ReadJSON(strings.NewReader(b.String()))
	var fe *FieldError
	if !errors.As(err, &fe) || !fe.OverLimit {
		t.Fatalf("%v, want an over-limit *FieldError", err)
	}
	if want := "record 101: more than 100 units, the limit"; err.Error() != want {
		t.Errorf("error\n got %s\nwant %s", err, want)
	}
}
