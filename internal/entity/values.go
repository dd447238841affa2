package entity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Canonical returns v, a JSON value for path of an entity of kind k, in its
// one canonical form (canonical.go): checked as the contract's JSON form
// accepts it there (the same check Validate applies on the server, unknown
// enum numbers refused) and written again, so an enum given by number
// becomes its name, a name loses its padding spaces, and one value has one
// byte form. The error is a *FieldError naming path.
func Canonical(k rasoatv1.EntityKind, path string, v []byte) ([]byte, error) {
	sc := schemas()[k]
	if sc == nil {
		return nil, invalid(path, "unknown entity kind %d", k)
	}
	canon, ok := sc.canon[path]
	if !ok {
		return nil, invalid(path, "is not a field of a %s (fields: %s)", KindName(k), strings.Join(sc.paths, ", "))
	}
	if !json.Valid(v) {
		return nil, invalid(path, "%q is not valid JSON", v)
	}
	out, err := canon(v)
	if errors.Is(err, ErrUnknownValue) {
		return nil, &FieldError{Field: path, Desc: err.Error(), Reason: ErrUnknownValue}
	}
	if err != nil {
		return nil, invalid(path, "not a valid value: %v", err)
	}
	return out, nil
}

// Leaves returns the value, as compact protojson, of every path of paths
// that msg sets (protojson emits only set fields, so a path it leaves out
// is not set): what enrolling an entity writes, field by field.
func Leaves(msg proto.Message, paths []string) (map[string][]byte, error) {
	b, err := protojson.Marshal(msg)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, p := range paths {
		v, ok, err := lookupJSON(b, strings.Split(p, "."))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if ok {
			out[p] = v
		}
	}
	return out, nil
}

// lookupJSON finds path in a JSON object and returns its value compacted:
// protojson varies its whitespace on purpose, and a change's value must
// have one form.
func lookupJSON(doc []byte, path []string) ([]byte, bool, error) {
	raw := json.RawMessage(doc)
	for _, p := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, false, err
		}
		var ok bool
		if raw, ok = obj[p]; !ok {
			return nil, false, nil
		}
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, false, err
	}
	return b.Bytes(), true, nil
}
