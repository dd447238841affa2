package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fieldError is the error for bad input, naming the field in the
// household's JSON form ("headName", "members[2].birthDate").
func fieldError(field, format string, args ...any) error {
	return &entity.FieldError{Field: field, Desc: fmt.Sprintf(format, args...)}
}

// renamed returns err as a FieldError naming field: entity's FieldErrors
// name the wire Change's fields ("value"), which mean nothing to the caller.
func renamed(field string, err error) error {
	var fe *entity.FieldError
	if errors.As(err, &fe) {
		desc := fe.Desc
		if fe.Field != "value" && !strings.HasSuffix(field, fe.Field) {
			desc = fe.Field + ": " + desc
		}
		return &entity.FieldError{Field: field, Desc: desc}
	}
	return fmt.Errorf("%s: %w", field, err)
}

// leaves returns the value, as compact protojson, of every path of paths
// that msg sets. protojson emits only set fields, so a path it leaves out
// is not written.
func leaves(msg proto.Message, paths []string) (map[string][]byte, error) {
	b, err := protojson.Marshal(msg)
	if err != nil {
		return nil, err
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, p := range paths {
		v, ok, err := lookup(root, strings.Split(p, "."))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if ok {
			out[p] = v
		}
	}
	return out, nil
}

// lookup finds path in a decoded JSON object and returns its value
// compacted: protojson varies its whitespace on purpose, and a change's
// value must have one form.
func lookup(obj map[string]json.RawMessage, path []string) ([]byte, bool, error) {
	raw, ok := obj[path[0]]
	if !ok {
		return nil, false, nil
	}
	if len(path) > 1 {
		var sub map[string]json.RawMessage
		if err := json.Unmarshal(raw, &sub); err != nil {
			return nil, false, err
		}
		return lookup(sub, path[1:])
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, false, err
	}
	return b.Bytes(), true, nil
}

// canonical returns v, the JSON value a caller gave for path of an entity
// of kind k, in its one canonical form: decoded as the contract's JSON form
// accepts it there and encoded again (so an enum given by number becomes
// its name, and null for a field with presence stays null). A review field
// is a JSON string or null, compacted.
func canonical(k rasoatv1.EntityKind, path string, v []byte) ([]byte, error) {
	if !slices.Contains(entity.Paths(k), path) {
		return nil, fieldError(path, "is not a field of a %s (fields: %s)", entity.KindName(k), strings.Join(entity.Paths(k), ", "))
	}
	if !json.Valid(v) {
		return nil, fieldError(path, "%q is not valid JSON", v)
	}
	var msg proto.Message
	switch k {
	case rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD:
		msg = &rasoatv1.Household{}
	case rasoatv1.EntityKind_ENTITY_KIND_MEMBER:
		msg = &rasoatv1.Member{}
	default:
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			return nil, fieldError(path, "%v", err)
		}
		return b.Bytes(), nil
	}
	parts := strings.Split(path, ".")
	if err := protojson.Unmarshal(wrap(parts, v), msg); err != nil {
		return nil, fieldError(path, "not a valid value: %v", err)
	}
	b, err := protojson.MarshalOptions{EmitDefaultValues: true}.Marshal(msg)
	if err != nil {
		return nil, fieldError(path, "%v", err)
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("canonical %s: %w", path, err)
	}
	out, ok, err := lookup(root, parts)
	if err != nil {
		return nil, fmt.Errorf("canonical %s: %w", path, err)
	}
	if !ok {
		return []byte("null"), nil // a field with presence, cleared
	}
	if fd := fieldByPath(msg.ProtoReflect().Descriptor(), parts); fd != nil && fd.Kind() == protoreflect.EnumKind && hasNumber(out) {
		// protojson keeps an enum number it does not know as a number.
		return nil, fieldError(path, "%s is not a known value of %s", v, fd.Enum().FullName())
	}
	return out, nil
}

// hasNumber reports whether the JSON value v is or lists a number.
func hasNumber(v []byte) bool {
	var x any
	if json.Unmarshal(v, &x) != nil {
		return false
	}
	switch x := x.(type) {
	case float64:
		return true
	case []any:
		for _, e := range x {
			if _, ok := e.(float64); ok {
				return true
			}
		}
	}
	return false
}

// fieldByPath returns the field a path of JSON names leads to, or nil.
func fieldByPath(md protoreflect.MessageDescriptor, parts []string) protoreflect.FieldDescriptor {
	var fd protoreflect.FieldDescriptor
	for _, p := range parts {
		if md == nil {
			return nil
		}
		if fd = md.Fields().ByJSONName(p); fd == nil {
			return nil
		}
		md = fd.Message()
	}
	return fd
}

// wrap nests v under path: ["a","b"] → {"a":{"b":v}}. v is one valid JSON
// value (checked before), and path a known field path, so nothing else can
// be smuggled in.
func wrap(path []string, v []byte) []byte {
	var b bytes.Buffer
	for _, p := range path {
		b.WriteString(`{"`)
		b.WriteString(p)
		b.WriteString(`":`)
	}
	b.Write(v)
	for range path {
		b.WriteByte('}')
	}
	return b.Bytes()
}
