package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// locateTests are documents protojson refuses, each with the field locate
// must name and what its description must say.
var locateTests = []struct {
	name   string
	msg    proto.Message // nil: a household
	doc    string
	path   string
	at     string // the problem's offset is where this first occurs in doc
	has    []string
	hasNot []string
}{
	{
		name: "member's field is named with its index",
		doc:  `{"members":[{"fullName":"A"},{"fullName":"B","sex":"SEX_F"}]}`,
		path: "members[1].sex", at: `"SEX_F"`,
		has: []string{`unknown name "SEX_F"`},
	},
	{
		name: "unknown enum name lists the valid names",
		doc:  `{"area":"AREA_MOUNTAIN"}`,
		path: "area", at: `"AREA_MOUNTAIN"`,
		has: []string{`unknown name "AREA_MOUNTAIN"; the names area takes are AREA_UNSPECIFIED, AREA_RURAL, AREA_URBAN`},
	},
	{
		name: "an enum name without its type's prefix is suggested with it",
		doc:  `{"members":[{"sex":"female"}]}`,
		path: "members[0].sex",
		has:  []string{"(did you mean SEX_FEMALE?)", "SEX_UNSPECIFIED, SEX_MALE, SEX_FEMALE"},
	},
	{
		name: "the start of one enum name is suggested as that name",
		doc:  `{"members":[{"sex":"SEX_F"}]}`,
		path: "members[0].sex",
		has:  []string{"(did you mean SEX_FEMALE?)"},
	},
	{
		name: "a name like none of the valid ones gets no guess",
		doc:  `{"members":[{"sex":"NỮ"}]}`,
		path: "members[0].sex",
		has:  []string{`unknown name "NỮ"; the names sex takes are`}, hasNot: []string{"did you mean"},
	},
	{
		name: "element of a repeated enum is named with its index",
		doc:  `{"information":{"infoDevices":["INFO_DEVICE_TV","INFO_DEVICE_FAX"]}}`,
		path: "information.infoDevices[1]", at: `"INFO_DEVICE_FAX"`,
		has: []string{"the names infoDevices takes are INFO_DEVICE_UNSPECIFIED, INFO_DEVICE_TV,"},
	},
	{
		name: "an enum given something other than a name lists the names",
		doc:  `{"area":true}`,
		path: "area",
		has:  []string{"expected one of the names area takes (AREA_UNSPECIFIED, AREA_RURAL, AREA_URBAN), got true"},
	},
	{
		name: "an enum number must fit 32 bits",
		doc:  `{"area":4294967296}`,
		path: "area",
		has:  []string{"expected one of the names area takes", "got the number 4294967296"},
	},
	{
		name: "unknown field lists the fields of its object",
		doc:  `{"id":"x","foo":1}`,
		path: "foo", at: `"foo"`,
		has: []string{`unknown field "foo"; the fields of a household are id, villageCode, area, headName,`},
	},
	{
		name: "unknown field in a member is named under the member",
		doc:  `{"members":[{},{"fullName":"Vi Thị Mai","nickname":"Mai"}]}`,
		path: "members[1].nickname", at: `"nickname"`,
		has: []string{`unknown field "nickname"; the fields of members[1] are id, fullName, sex,`},
	},
	{
		name: "unknown field suggests the field it resembles",
		doc:  `{"housing":{"floorArea":14}}`,
		path: "housing.floorArea",
		has:  []string{"(did you mean floorAreaM2?)", "the fields of housing are wallDurable, frameDurable, roofDurable, floorAreaM2"},
	},
	{
		name: "unknown field written in another case suggests the field",
		doc:  `{"headname":"A"}`,
		path: "headname",
		has:  []string{`unknown field "headname" (did you mean headName?)`},
	},
	{
		name: "unknown field of a member document lists a member's fields",
		msg:  &rasoatv1.Member{},
		doc:  `{"fullName":"A","age":3}`,
		path: "age",
		has:  []string{`unknown field "age"; the fields of a member are id, fullName,`},
	},
	{
		name: "an extension's name is an unknown field",
		doc:  `{"[rasoat.v1.nickname]":"x"}`,
		path: "[rasoat.v1.nickname]",
		has:  []string{`unknown field "[rasoat.v1.nickname]"`},
	},
	{
		name: "wrong JSON type: a yes/no answer wants true or false",
		doc:  `{"members":[{"inSchool":"yes"}]}`,
		path: "members[0].inSchool", at: `"yes"`,
		has: []string{`expected true or false, got the text "yes"`},
	},
	{
		name: "wrong JSON type: an area wants a number",
		doc:  `{"housing":{"floorAreaM2":"big"}}`,
		path: "housing.floorAreaM2",
		has:  []string{`expected a number, got the text "big"`}, hasNot: []string{"comma"},
	},
	{
		name: "a decimal comma is pointed out",
		doc:  `{"housing":{"floorAreaM2":"14,5"}}`,
		path: "housing.floorAreaM2",
		has:  []string{`expected a number, got the text "14,5" (write a decimal point, not a comma: 14.5)`},
	},
	{
		name: "wrong JSON type: a name wants text in quotes",
		doc:  `{"headName":5}`,
		path: "headName",
		has:  []string{"expected text in quotes, got the number 5"},
	},
	{
		name: "wrong JSON type: housing wants an object",
		doc:  `{"housing":5}`,
		path: "housing", at: "5",
		has: []string{"expected an object {…}, got the number 5"},
	},
	{
		name: "wrong JSON type: members want a list",
		doc:  `{"members":{"fullName":"A"}}`,
		path: "members",
		has:  []string{"expected a list […], got an object {…}"},
	},
	{
		name: "null in a list of members is refused",
		doc:  `{"members":[{},null]}`,
		path: "members[1]", at: "null",
		has: []string{"expected an object {…}, got null"},
	},
	{
		name: "null in a list of names is refused",
		doc:  `{"policyFlags":[null]}`,
		path: "policyFlags[0]",
		has:  []string{"expected one of the names policyFlags takes", "got null"},
	},
	{
		name: "the document itself must be an object",
		doc:  `[{"id":"x"}]`,
		path: "", at: "[",
		has: []string{"expected an object {…}, got a list […]"},
	},
	{
		name: "a 64-bit integer string with thousands separators shows its digits",
		doc:  `{"income":{"monthlyPerCapitaVnd":"1.350.000"}}`,
		path: "income.monthlyPerCapitaVnd",
		has:  []string{`the text "1.350.000" is not a whole number: write the digits only, without dots, commas or spaces ("1350000")`},
	},
	{
		name: "income by source is named under annual",
		doc:  `{"income":{"annual":{"farmingVnd":"0","wagesVnd":"12,000,000"}}}`,
		path: "income.annual.wagesVnd",
		has:  []string{`("12000000")`},
	},
	{
		name: "a 64-bit integer string of no digits suggests none",
		doc:  `{"income":{"monthlyPerCapitaVnd":"a lot"}}`,
		path: "income.monthlyPerCapitaVnd",
		has:  []string{`the text "a lot" is not a whole number`}, hasNot: []string{`("`},
	},
	{
		name: "a 64-bit integer string with spaces around it",
		doc:  `{"income":{"monthlyPerCapitaVnd":" 1350000"}}`,
		path: "income.monthlyPerCapitaVnd",
		has:  []string{`the text " 1350000" has spaces around the number`},
	},
	{
		name: "a fraction where a whole number belongs",
		doc:  `{"income":{"scoreA":1.5}}`,
		path: "income.scoreA",
		has:  []string{"expected a whole number, got the number 1.5"},
	},
	{
		name: "a number out of range for a 32-bit field gives the range",
		doc:  `{"income":{"scoreA":3000000000}}`,
		path: "income.scoreA",
		has:  []string{"the number 3000000000 is out of range: scoreA takes whole numbers from -2147483648 to 2147483647"},
	},
	{
		name: "a number out of range for a 64-bit field gives the range",
		doc:  `{"income":{"monthlyPerCapitaVnd":"9223372036854775808"}}`,
		path: "income.monthlyPerCapitaVnd",
		has:  []string{"out of range: monthlyPerCapitaVnd takes whole numbers from -9223372036854775808 to 9223372036854775807"},
	},
	{
		name: "a number too large for an area",
		doc:  `{"housing":{"floorAreaM2":1e999}}`,
		path: "housing.floorAreaM2",
		has:  []string{"the number 1e999 is out of range for a number"},
	},
	{
		name: "a duplicate field is named at its second key",
		doc:  `{"headName":"A","headName":"B"}`,
		path: "headName", at: `"headName":"B"`,
		has: []string{"is given twice; give each field once"},
	},
	{
		name: "a field given by its JSON name and its proto name is given twice",
		doc:  `{"headName":"A","head_name":"B"}`,
		path: "headName", at: `"head_name"`,
		has: []string{`is given twice, as "headName" and "head_name"`},
	},
	{
		name: "two cases of a oneof name the second and the choices",
		doc:  `{"income":{"monthlyPerCapitaVnd":"1350000","scoreA":120}}`,
		path: "income.scoreA", at: `"scoreA"`,
		has: []string{"give only one of monthlyPerCapitaVnd, annual, scoreA: monthlyPerCapitaVnd is given already"},
	},
	{
		name: "text that is not UTF-8 names its field",
		doc:  "{\"headName\":\"Ho\xe0ng\"}",
		path: "headName",
		has:  []string{"the text is not valid UTF-8: save the file as UTF-8"},
	},
	{
		name: "a field name that is not UTF-8 names its object",
		doc:  "{\"members\":[{\"full\xffName\":\"A\"}]}",
		path: "members[0]",
		has:  []string{"a field name is not valid UTF-8"},
	},
	{
		name: "half a surrogate pair is refused",
		doc:  `{"headName":"\ud800x"}`,
		path: "headName",
		has:  []string{`the text has \ud800, half of a UTF-16 surrogate pair`},
	},
	{
		name: "the first problem in the document is the one named",
		doc:  `{"area":"X","foo":1,"housing":5}`,
		path: "area",
	},
	{
		name: "a field set to null is no first case of a oneof, and what follows is still read",
		doc:  `{"income":{"monthlyPerCapitaVnd":null,"scoreA":"many"}}`,
		path: "income.scoreA",
		has:  []string{`the text "many" is not a whole number`},
	},
}

func TestLocateNamesTheFieldAndSaysWhy(t *testing.T) {
	for _, tt := range locateTests {
		t.Run(tt.name, func(t *testing.T) {
			msg := tt.msg
			if msg == nil {
				msg = &rasoatv1.Household{}
			}
			doc := []byte(tt.doc)
			if err := protojson.Unmarshal(doc, msg); err == nil {
				t.Fatalf("protojson takes %s", doc)
			}
			p := locate(doc, msg.ProtoReflect().Descriptor())
			if p == nil {
				t.Fatalf("locate finds nothing in %s", doc)
			}
			if p.path != tt.path {
				t.Errorf("path = %q, want %q (%s)", p.path, tt.path, p.desc)
			}
			if tt.at != "" {
				if want := strings.Index(tt.doc, tt.at); p.off != want {
					t.Errorf("offset = %d (at %q), want %d (at %q)", p.off, tt.doc[p.off:], want, tt.at)
				}
			}
			for _, s := range tt.has {
				if !strings.Contains(p.desc, s) {
					t.Errorf("description %q does not say %q", p.desc, s)
				}
			}
			for _, s := range tt.hasNot {
				if strings.Contains(p.desc, s) {
					t.Errorf("description %q says %q", p.desc, s)
				}
			}
		})
	}
}

func TestLocateFindsNothingInWhatProtojsonTakes(t *testing.T) {
	tests := []struct {
		name string
		msg  proto.Message // nil: a household
		doc  string
	}{
		{"an empty household", nil, `{}`},
		{"proto field names are field names", nil, `{"head_name":"A","village_code":"x","water_sanitation":{"water_source":"WATER_SOURCE_PIPED"}}`},
		{"null leaves a field unset, even a case of a oneof", nil, `{"income":{"monthlyPerCapitaVnd":null,"scoreA":3},"members":null,"housing":null}`},
		{"64-bit integers as numbers or as text", nil, `{"income":{"annual":{"wagesVnd":12000000,"farmingVnd":"1e6","fisheryVnd":"-0","otherVnd":-5}}}`},
		{"whole numbers in other spellings", nil, `{"income":{"scoreA":1.0e2}}`},
		{"a whole number in text with a negative exponent", nil, `{"income":{"scoreA":"100e-2"}}`},
		{"enum numbers that fit 32 bits", nil, `{"area":1,"members":[{"sex":7}],"policyFlags":[2,-1]}`},
		{"numbers as text", nil, `{"housing":{"floorAreaM2":"14.5"},"members":[]}`},
		{"NaN is a number", nil, `{"housing":{"floorAreaM2":"NaN"}}`},
		{"escapes that pair", nil, `{"headName":"\ud83d\ude00 \u00e9 \n"}`},
		{"a member document", &rasoatv1.Member{}, `{"fullName":"A","sex":"SEX_MALE","inSchool":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := tt.msg
			if msg == nil {
				msg = &rasoatv1.Household{}
			}
			if err := protojson.Unmarshal([]byte(tt.doc), msg); err != nil {
				t.Fatalf("protojson refuses %s: %v", tt.doc, err)
			}
			if p := locate([]byte(tt.doc), msg.ProtoReflect().Descriptor()); p != nil {
				t.Errorf("locate finds %v in %s", p, tt.doc)
			}
		})
	}
}

// TestLocateAgreesWithProtojson changes every token of the example
// household, and adds fields to each of its objects, in the ways people
// get the form wrong, and checks that locate finds a problem exactly where
// protojson refuses the document.
func TestLocateAgreesWithProtojson(t *testing.T) {
	example, err := os.ReadFile(householdExample)
	if err != nil {
		t.Fatal(err)
	}
	values := []string{
		`"x"`, `""`, `"SEX_FEMALE"`, `"AREA_RURAL"`, `"headName"`, `"scoreA"`, `"annual"`, `"head_name"`,
		`1`, `0`, `-1`, `1.5`, `1e2`, `1E+2`, `100e-2`, `-0`, `0.0`, `2147483648`, `3000000000`,
		`9223372036854775808`, `99999999999999999999`, `1e999`, `1e-999`, `5e-1`, `1e2147483648`,
		`"1"`, `"1.5"`, `"1e2"`, `" 12"`, `"1.350.000"`, `"9223372036854775807"`, `"-9223372036854775809"`,
		`"NaN"`, `"Infinity"`, `"-Infinity"`, `"1e999"`, `"0x10"`, `"01"`,
		`true`, `false`, `null`, `{}`, `[]`, `[null]`, `["INFO_DEVICE_TV"]`, `[1.5]`, `[{}]`, `{"x":1}`,
		`"\ud800"`, `"\udc00\ud800"`, `"\ud83d\ude00"`, "\"a\xffb\"", `"AA=="`,
	}
	fields := []string{
		`"foo":1,`, `"id":"a",`, `"head_name":"x",`, `"scoreA":1,`, `"annual":{},`, `"monthlyPerCapitaVnd":null,`,
		`"members":null,`, `"sex":"SEX_MALE",`, `"floorAreaM2":"1",`, `"[x.y]":1,`, "\"\xff\":1,",
	}
	w := &jsonWalker{b: example, dec: json.NewDecoder(bytes.NewReader(example))}
	w.dec.UseNumber()
	var docs [][]byte
	for {
		tok, err := w.next()
		if err != nil {
			break
		}
		end := int(w.dec.InputOffset())
		if tok.v == json.Delim('{') {
			for _, f := range fields {
				docs = append(docs, splice(example, end, end, f))
			}
		}
		if _, delim := tok.v.(json.Delim); !delim {
			for _, v := range values {
				docs = append(docs, splice(example, tok.start, end, v))
			}
		}
	}
	if len(docs) < 1000 {
		t.Fatalf("only %d documents", len(docs))
	}
	refused := 0
	for _, doc := range docs {
		if json.Valid(doc) && agree(t, doc) {
			refused++
		}
	}
	t.Logf("%d documents, %d refused", len(docs), refused)
}

// splice replaces b[from:to] with s.
func splice(b []byte, from, to int, s string) []byte {
	return append(append(append([]byte{}, b[:from]...), s...), b[to:]...)
}

// agree checks that locate finds a problem in doc, a valid JSON document,
// exactly when protojson refuses it as a household, and reports whether it
// did.
func agree(t *testing.T, doc []byte) bool {
	t.Helper()
	err := protojson.Unmarshal(doc, &rasoatv1.Household{})
	p := locate(doc, householdType)
	switch {
	case err != nil && p == nil:
		t.Errorf("protojson refuses what locate finds nothing in: %v\n%s", err, doc)
	case err == nil && p != nil:
		t.Errorf("locate finds %q where protojson refuses nothing\n%s", p, doc)
	case p != nil && (p.off < 0 || p.off >= len(doc) || p.desc == ""):
		t.Errorf("problem %+v out of the document or without a description\n%s", p, doc)
	}
	return err != nil
}

func FuzzLocateAgreesWithProtojson(f *testing.F) {
	example, err := os.ReadFile(householdExample)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, tt := range locateTests {
		f.Add([]byte(tt.doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if json.Valid(doc) {
			agree(t, doc)
		}
	})
}

func TestDecodeJSONShowsProtojsonsOwnWordsOnlyWhereLocateFindsNothing(t *testing.T) {
	// A timestamp is written in protojson's own form, which locate does not
	// model: what protojson says is shown as it is, naming no field.
	doc := []byte(`"the day before yesterday"`)
	want := protojson.Unmarshal(doc, &timestamppb.Timestamp{})
	if want == nil {
		t.Fatal("protojson takes the text for a timestamp")
	}
	err := decodeJSON(doc, &timestamppb.Timestamp{})
	var ie *inputError
	if !errors.As(err, &ie) || ie.field != "" || ie.desc != want.Error() {
		t.Errorf("decodeJSON = %#v, want an inputError with no field and protojson's %q", err, want)
	}

	// score does the same with an error locate finds nothing behind.
	line := []byte(`{"id":"0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d01"}`)
	bad := decodeFailure(3, line, errors.New("proto: something protojson may say one day"))
	if bad.Line != 3 || bad.ID != "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d01" || len(bad.Violations) != 1 ||
		bad.Violations[0].Field != "" || bad.Violations[0].Description != "proto: something protojson may say one day" {
		t.Errorf("decodeFailure = %+v", bad)
	}
}

func TestDecodeJSONNamesTheFieldInAPrettyPrintedDocument(t *testing.T) {
	doc := []byte("{\n  \"members\": [\n    {\"fullName\": \"A\"},\n    {\"sex\": \"SEX_F\"}\n  ]\n}\n")
	err := decodeJSON(doc, &rasoatv1.Household{})
	var ie *inputError
	if !errors.As(err, &ie) || ie.field != "members[1].sex" || !strings.Contains(ie.desc, "SEX_UNSPECIFIED, SEX_MALE, SEX_FEMALE") {
		t.Errorf("decodeJSON = %v", err)
	}
}

func TestColumnsCountCharactersNotBytes(t *testing.T) {
	// "à" is two bytes in UTF-8 and one character in an editor.
	doc := "{\"headName\": \"Hoàng\",\n \"x\" 1}"
	line, col := lineCol([]byte(doc), strings.Index(doc, "1}"))
	if line != 2 || col != 6 {
		t.Errorf("lineCol = line %d, column %d; want line 2, column 6", line, col)
	}

	bad := decodeFailure(1, []byte(`{"headName":"Hoàng" x}`), errors.New("refused"))
	if want := "syntax error at column 21: "; !strings.HasPrefix(bad.Violations[0].Description, want) {
		t.Errorf("syntax error described as %q, want it to start %q", bad.Violations[0].Description, want)
	}
	bad = decodeFailure(1, []byte(`{"headName":"Hoàng","area":"X"}`), errors.New("refused"))
	if want := "column 28: unknown name"; bad.Violations[0].Field != "area" || !strings.HasPrefix(bad.Violations[0].Description, want) {
		t.Errorf("problem described as %+v, want area and a description starting %q", bad.Violations[0], want)
	}
}
