package entity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The canonical form of a value is what protojson writes for the decoded
// field, with default values emitted (so false, 0 and "" are written, and a
// cleared field with presence is null), compacted; and, for text, the
// string as an officer would compare it: trimmed, in Unicode NFC, without
// control characters. It is written here from the decoded field rather than
// by marshalling a whole message (ten times slower), and a test holds the
// two to the same bytes for every path.

// canonicalLeaf writes the canonical form of the leaf reached from m by
// chain (the field descriptors from the root to the leaf).
func canonicalLeaf(m protoreflect.Message, chain []protoreflect.FieldDescriptor) ([]byte, error) {
	for _, fd := range chain[:len(chain)-1] {
		m = m.Get(fd).Message() // an unset message reads as an empty one
	}
	fd := chain[len(chain)-1]
	switch {
	case fd.IsMap() || (fd.Kind() == protoreflect.MessageKind && !fd.IsList()):
		if !m.Has(fd) {
			return []byte("null"), nil
		}
		b, err := protojson.MarshalOptions{EmitDefaultValues: true}.Marshal(m.Get(fd).Message().Interface())
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		if err := json.Compact(&out, b); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	case fd.IsList():
		l := m.Get(fd).List()
		b := []byte{'['}
		for i := range l.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendScalar(b, fd, l.Get(i), false); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case fd.HasPresence() && !m.Has(fd):
		return []byte("null"), nil
	}
	return appendScalar(nil, fd, m.Get(fd), false)
}

// appendScalar appends one scalar as protojson writes it.
func appendScalar(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value, multiline bool) ([]byte, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool()), nil
	case protoreflect.EnumKind:
		ev := fd.Enum().Values().ByNumber(v.Enum())
		if ev == nil {
			return nil, fmt.Errorf("%d is not a known value of %s", v.Enum(), fd.Enum().FullName())
		}
		return appendJSONString(b, string(ev.Name())), nil
	case protoreflect.StringKind:
		s, err := canonicalString(v.String(), multiline)
		if err != nil {
			return nil, err
		}
		return appendJSONString(b, s), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		b = append(b, '"')
		return append(strconv.AppendInt(b, v.Int(), 10), '"'), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		b = append(b, '"')
		return append(strconv.AppendUint(b, v.Uint(), 10), '"'), nil
	case protoreflect.FloatKind:
		return appendFloat(b, v.Float(), 32)
	case protoreflect.DoubleKind:
		return appendFloat(b, v.Float(), 64)
	}
	return nil, fmt.Errorf("field kind %v has no canonical form here", fd.Kind())
}

// appendFloat writes a finite number as protojson does (encoding/json's
// rule: exponent form below 1e-6 and from 1e21). NaN and infinities, which
// protojson would take as strings, are refused: no answer is one.
func appendFloat(b []byte, n float64, bits int) ([]byte, error) {
	if math.IsNaN(n) || math.IsInf(n, 0) {
		return nil, errors.New("must be a finite number")
	}
	format := byte('f')
	if abs := math.Abs(n); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, n, format, -1, bits)
	if format == 'e' { // e-07 → e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// canonicalString returns s trimmed and in Unicode NFC, or an error if it
// holds a control character (a line break is allowed in multi-line text,
// a review's comment). Vietnamese keyboards write the same letter composed
// (ệ) or as a base with combining marks (e + ̣ + ̂): without NFC one name
// would be two values, a false conflict, and two people in a search.
func canonicalString(s string, multiline bool) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && r == '\n') {
			return "", fmt.Errorf("holds the control character %U", r)
		}
	}
	s = strings.TrimSpace(s)
	if !norm.NFC.IsNormalString(s) {
		s = norm.NFC.String(s)
	}
	return s, nil
}

// appendString writes s, valid UTF-8 without control characters other than
// a line break, as a JSON string the way protojson does: only " and \ are
// escaped, and the line break as \n.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// isCanonical reports whether v is certainly a valid value of the leaf fd
// in its canonical form, reading v directly. It answers false whenever it
// is not sure (an escape in a string, a message), and the caller then
// decodes v with protojson: it is the fast path of a push, where nearly
// every value is already canonical, and a test holds it to the slow path.
func isCanonical(fd protoreflect.FieldDescriptor, v []byte) bool {
	if string(v) == "null" {
		return fd.HasPresence() && !fd.IsList() && fd.Kind() != protoreflect.MessageKind
	}
	if fd.IsMap() || fd.Kind() == protoreflect.MessageKind {
		return false
	}
	if !fd.IsList() {
		return isCanonicalScalar(fd, v)
	}
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return false
	}
	if len(v) == 2 {
		return true
	}
	if fd.Kind() != protoreflect.EnumKind && fd.Kind() != protoreflect.BoolKind && fd.Kind() != protoreflect.Int32Kind {
		return false // no other kind of list in the contract: leave it to protojson
	}
	return listItems(v, func(item []byte) bool { return isCanonicalScalar(fd, item) })
}

// listItems calls each with the items of a JSON list of scalars, v, split
// at its commas (no item of a kind isCanonical lets through holds one),
// stopping at the first false; it reports whether every item was given
// and passed: an empty item (a trailing comma, ",,") fails.
func listItems(v []byte, each func(item []byte) bool) bool {
	inner := v[1 : len(v)-1]
	for len(inner) > 0 {
		end := bytes.IndexByte(inner, ',')
		if end < 0 {
			end = len(inner)
		}
		if !each(inner[:end]) {
			return false
		}
		if end == len(inner) {
			break
		}
		inner = inner[end+1:]
		if len(inner) == 0 {
			return false // a trailing comma
		}
	}
	return true
}

func isCanonicalScalar(fd protoreflect.FieldDescriptor, v []byte) bool {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return string(v) == "true" || string(v) == "false"
	case protoreflect.EnumKind:
		name, ok := plainString(v)
		return ok && fd.Enum().Values().ByName(protoreflect.Name(name)) != nil
	case protoreflect.StringKind:
		s, ok := plainString(v)
		if !ok || !utf8.ValidString(s) {
			return false
		}
		for _, r := range s {
			if unicode.IsControl(r) {
				return false
			}
		}
		return strings.TrimSpace(s) == s && norm.NFC.IsNormalString(s)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(string(v), 10, 32)
		return err == nil && string(strconv.AppendInt(nil, n, 10)) == string(v)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(string(v), 10, 32)
		return err == nil && string(strconv.AppendUint(nil, n, 10)) == string(v)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		digits, ok := plainString(v)
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(digits, 10, 64)
		return err == nil && string(strconv.AppendInt(nil, n, 10)) == digits
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		digits, ok := plainString(v)
		if !ok {
			return false
		}
		n, err := strconv.ParseUint(digits, 10, 64)
		return err == nil && string(strconv.AppendUint(nil, n, 10)) == digits
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		bits := 64
		if fd.Kind() == protoreflect.FloatKind {
			bits = 32
		}
		n, err := strconv.ParseFloat(string(v), bits)
		if err != nil {
			return false
		}
		out, err := appendFloat(nil, n, bits)
		return err == nil && string(out) == string(v)
	}
	return false
}

// plainString returns the contents of a JSON string that has no escape
// and no control byte (ok is false otherwise: the slow path decides).
func plainString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	s := v[1 : len(v)-1]
	for _, c := range s {
		if c == '"' || c == '\\' || c < 0x20 || c == 0x7f {
			return "", false
		}
	}
	return string(s), true
}
