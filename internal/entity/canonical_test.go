package entity

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// referenceCanonical is the canonical form the slow way: decode the value
// into a whole message, marshal that with protojson (defaults emitted) and
// cut the path back out. The fast form must be byte for byte the same.
func referenceCanonical(t *testing.T, msg proto.Message, path string, v []byte) []byte {
	t.Helper()
	parts := strings.Split(path, ".")
	if err := protojson.Unmarshal(wrap(parts, v), msg); err != nil {
		t.Fatalf("%s %s: %v", path, v, err)
	}
	b, err := protojson.MarshalOptions{EmitDefaultValues: true}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	out, ok, err := lookupJSON(b, parts)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return []byte("null")
	}
	return out
}

// samples returns values of fd's JSON form, canonical and not.
func samples(fd protoreflect.FieldDescriptor) []string {
	var one []string
	switch fd.Kind() {
	case protoreflect.BoolKind:
		one = []string{`true`, `false`}
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		for i := range vals.Len() {
			one = append(one, `"`+string(vals.Get(i).Name())+`"`)
		}
		one = append(one, `1`, `0`)
	case protoreflect.StringKind:
		one = []string{`""`, `"Hoàng Văn Thắng"`, `"a \"quoted\" \\ name"`, `"2012-04-09"`}
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		one = []string{`0`, `36.5`, `36.50`, `1e-7`, `0.000001`, `1e21`, `123456789012345678901234`, `-2.25`, `7.998`}
	case protoreflect.Int64Kind, protoreflect.Uint64Kind, protoreflect.Sint64Kind:
		one = []string{`"0"`, `"24000000"`, `24000000`, `"9007199254740993"`}
	case protoreflect.Int32Kind, protoreflect.Uint32Kind, protoreflect.Sint32Kind:
		one = []string{`0`, `140`, `"141"`, `2.0`}
	case protoreflect.MessageKind:
		return []string{`null`, `{}`}
	}
	if fd.IsList() {
		var l []string
		l = append(l, `[]`, `null`)
		for i := range one {
			l = append(l, "["+strings.Join(one[:i+1], ",")+"]")
		}
		return l
	}
	return append(one, `null`)
}

func TestCanonicalIsWhatProtojsonWritesForEveryPath(t *testing.T) {
	for _, k := range []struct {
		kind rasoatv1.EntityKind
		msg  func() proto.Message
	}{
		{rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, func() proto.Message { return &rasoatv1.Household{} }},
		{rasoatv1.EntityKind_ENTITY_KIND_MEMBER, func() proto.Message { return &rasoatv1.Member{} }},
	} {
		md := k.msg().ProtoReflect().Descriptor()
		for _, p := range Paths(k.kind) {
			fd := leafOf(md, p)
			vals := samples(fd)
			if fd.Kind() == protoreflect.MessageKind && !fd.IsList() {
				vals = append(vals, `{"annual":{"wagesVnd":"36000000"}}`, `{"scoreA":120}`, `{"monthlyPerCapitaVnd":"1500000"}`)
			}
			for _, v := range vals {
				want := referenceCanonical(t, k.msg(), p, []byte(v))
				got, err := Canonical(k.kind, p, []byte(v))
				if err != nil {
					t.Errorf("%s = %s: %v", p, v, err)
					continue
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s = %s: canonical %s, protojson writes %s", p, v, got, want)
				}
				if again, err := Canonical(k.kind, p, got); err != nil || !bytes.Equal(again, got) {
					t.Errorf("%s: canonical form %s is not a fixed point: %s, %v", p, got, again, err)
				}
				// The fast path says "canonical" only for what is.
				if isCanonical(fd, []byte(v)) && !bytes.Equal(want, []byte(v)) {
					t.Errorf("%s = %s: the fast path takes it as canonical, protojson writes %s", p, v, want)
				}
				// And it knows the usual forms, or a push decodes every value.
				if fd.Kind() != protoreflect.MessageKind && !strings.Contains(string(got), `\`) && !isCanonical(fd, got) {
					t.Errorf("%s: the fast path does not recognise the canonical %s", p, got)
				}
			}
		}
	}
}

func leafOf(md protoreflect.MessageDescriptor, path string) protoreflect.FieldDescriptor {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		fd := md.Fields().ByJSONName(p)
		if i == len(parts)-1 {
			return fd
		}
		md = fd.Message()
	}
	return nil
}

func TestCanonicalText(t *testing.T) {
	tests := []struct {
		name      string
		kind      rasoatv1.EntityKind
		path, in  string
		want, err string // err: a word the error must hold
	}{
		{"padding spaces are trimmed", rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, "headName", `"  Hà Thị Lan "`, `"Hà Thị Lan"`, ""},
		{"decomposed Vietnamese is composed (NFC)", rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, "headName", "\"Nguye\u0302\u0303n\"", `"Nguyễn"`, ""},
		{"a NUL character is refused", rasoatv1.EntityKind_ENTITY_KIND_MEMBER, "fullName", `"A\u0000"`, "", "control"},
		{"a line break in a name is refused", rasoatv1.EntityKind_ENTITY_KIND_MEMBER, "fullName", `"A\nB"`, "", "control"},
		{"a line break in a comment is kept", rasoatv1.EntityKind_ENTITY_KIND_REVIEW, "comment", `"a\nb "`, `"a\nb"`, ""},
		{"a tab in a comment is refused", rasoatv1.EntityKind_ENTITY_KIND_REVIEW, "comment", `"a\tb"`, "", "control"},
		{"invalid UTF-8 in a comment is refused", rasoatv1.EntityKind_ENTITY_KIND_REVIEW, "comment", "\"\xff\"", "", "UTF-8"},
		{"a comment's HTML characters are not escaped", rasoatv1.EntityKind_ENTITY_KIND_REVIEW, "comment", `"<b>&"`, `"<b>&"`, ""},
		{"an escaped non-ASCII letter is written as itself", rasoatv1.EntityKind_ENTITY_KIND_REVIEW, "comment", `"\u1ec7"`, `"ệ"`, ""},
		{"an infinite area is refused", rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, "housing.floorAreaM2", `"Infinity"`, "", "finite"},
		{"NaN is refused", rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, "housing.floorAreaM2", `"NaN"`, "", "finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical(tt.kind, tt.path, []byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Canonical(%s) = %s, %v; want an error about %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Canonical(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
			}
			if !json.Valid(got) {
				t.Fatalf("%s is not JSON", got)
			}
		})
	}
}

func TestAnUnknownEnumValueIsNamedWithTheValidNames(t *testing.T) {
	const latrines = "valid: LATRINE_UNSPECIFIED, LATRINE_FLUSH_SEPTIC, LATRINE_POUR_FLUSH, LATRINE_DOUBLE_VAULT, LATRINE_VENTILATED_PIT, LATRINE_SIMPLE_PIT, LATRINE_HANGING, LATRINE_NONE, LATRINE_OTHER"
	tests := []struct {
		name  string
		kind  rasoatv1.EntityKind
		path  string
		value string
		want  string // the whole error
	}{
		{"a misspelt name lists every name the field takes", rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, "waterSanitation.latrine", `"LATRINE_GOLD"`,
			`waterSanitation.latrine: unknown value "LATRINE_GOLD"; ` + latrines},
		{"a name with spaces around the JSON is still read as a name", rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, "waterSanitation.latrine", ` "GOLD" `,
			`waterSanitation.latrine: unknown value "GOLD"; ` + latrines},
		{"a number the contract does not define lists the names too", rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, "area", `9`,
			"area: unknown value 9; valid: AREA_UNSPECIFIED, AREA_RURAL, AREA_URBAN"},
		{"a bad name in a list names the list's field", rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, "policyFlags", `["POLICY_X"]`,
			`policyFlags: unknown value "POLICY_X"; valid: `},
		{"a member's enum", rasoatv1.EntityKind_ENTITY_KIND_MEMBER, "sex", `"SEX_F"`,
			`sex: unknown value "SEX_F"; valid: SEX_UNSPECIFIED, SEX_MALE, SEX_FEMALE`},
		{"a long string is shown cut", rasoatv1.EntityKind_ENTITY_KIND_MEMBER, "sex", `"` + strings.Repeat("X", 5000) + `"`,
			`sex: unknown value "` + strings.Repeat("X", 64) + `…"; valid: SEX_UNSPECIFIED`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Canonical(tt.kind, tt.path, []byte(tt.value))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.path {
				t.Fatalf("error %v; want a FieldError naming %s", err, tt.path)
			}
			if !errors.Is(err, ErrUnknownValue) || !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrUnknownValue and ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error\n%v\nwant it to begin\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "proto:") {
				t.Errorf("error %v shows protojson's words", err)
			}
		})
	}
}
