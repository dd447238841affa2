package main

// Where a JSON document departs from the contract's JSON form. When
// protojson refuses a household or a member, the command line walks the
// document itself against the message's descriptor, the way protojson reads
// it, to name the field in the household's JSON form ("members[1].sex") and
// say in its own words what is wrong. protojson's error text is not an API
// (protobuf-go does not keep its wording stable), so nothing here reads it.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonProblem is the first thing in a document that the JSON form of its
// message does not accept.
type jsonProblem struct {
	// path is in the JSON form: "members[1].sex", "income.scoreA",
	// "information.infoDevices[0]"; "" for the document itself.
	path string
	// off is the byte offset of the token at fault: the key for a field
	// that is unknown, given twice or a second case of a oneof; the value
	// for a value that is refused.
	off  int
	desc string
}

func (p *jsonProblem) Error() string {
	if p.path == "" {
		return p.desc
	}
	return p.path + ": " + p.desc
}

// errUnmodelled stops a walk that reaches what the walker does not model:
// well-known types (google.protobuf.*), maps and extensions, none of which
// the household form has. The caller then has no problem to show.
var errUnmodelled = errors.New("not modelled by the JSON walker")

// locate walks b, one syntactically valid JSON document, as protojson reads
// it into a message of type md, and returns the first thing protojson
// refuses, in document order; nil when it finds nothing or reaches a part
// it does not model.
func locate(b []byte, md protoreflect.MessageDescriptor) *jsonProblem {
	w := &jsonWalker{b: b, dec: json.NewDecoder(bytes.NewReader(b))}
	w.dec.UseNumber()
	tok, err := w.next()
	if err == nil {
		err = w.message(md, "", tok)
	}
	var p *jsonProblem
	if errors.As(err, &p) {
		return p
	}
	return nil
}

type jsonWalker struct {
	b   []byte
	dec *json.Decoder
}

// jsonToken is one token with where it starts in the document.
type jsonToken struct {
	v     json.Token // json.Delim, string, json.Number, bool or nil (null)
	start int
	// badText says what is wrong with a string token's text, which
	// encoding/json mends silently and protojson refuses.
	badText string
}

// next reads the next token (a key, a value or a delimiter).
func (w *jsonWalker) next() (jsonToken, error) {
	from := int(w.dec.InputOffset())
	v, err := w.dec.Token()
	if err != nil {
		return jsonToken{}, err
	}
	end := int(w.dec.InputOffset())
	start := from
	for start < end && strings.IndexByte(" \t\r\n,:", w.b[start]) >= 0 {
		start++
	}
	t := jsonToken{v: v, start: start}
	if _, ok := v.(string); ok {
		t.badText = badText(w.b[start:end])
	}
	return t, nil
}

// problem makes the problem of token t at path.
func problem(path string, t jsonToken, format string, args ...any) error {
	return &jsonProblem{path: path, off: t.start, desc: fmt.Sprintf(format, args...)}
}

// message walks one object of type md at path, of which open is the first
// token.
func (w *jsonWalker) message(md protoreflect.MessageDescriptor, path string, open jsonToken) error {
	if wellKnown(md.FullName()) {
		return errUnmodelled
	}
	if open.v != json.Delim('{') {
		return problem(path, open, "expected an object {…}, got %s", found(open))
	}
	fields := md.Fields()
	seen := map[protoreflect.FieldNumber]string{}    // field → its key as given
	oneofs := map[int]protoreflect.FieldDescriptor{} // oneof index → the case given
	for {
		key, err := w.next()
		if err != nil {
			return err
		}
		if key.v == json.Delim('}') {
			return nil
		}
		name, _ := key.v.(string)
		if key.badText != "" {
			return problem(path, key, "a field name %s", key.badText)
		}
		var fd protoreflect.FieldDescriptor
		if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
			if md.ExtensionRanges().Len() > 0 {
				return errUnmodelled
			}
		} else {
			// protojson takes the JSON name or the proto field name.
			if fd = fields.ByJSONName(name); fd == nil {
				fd = fields.ByTextName(name)
			}
		}
		if fd == nil {
			return problem(join(path, name), key, "%s", unknownField(name, md, path))
		}
		fpath := join(path, fd.JSONName())
		if first, ok := seen[fd.Number()]; ok {
			if first == name {
				return problem(fpath, key, "is given twice; give each field once")
			}
			return problem(fpath, key, "is given twice, as %s and %s; give each field once", quoteShort(first), quoteShort(name))
		}
		seen[fd.Number()] = name
		if (fd.Message() != nil && wellKnown(fd.Message().FullName())) || (fd.Enum() != nil && wellKnown(fd.Enum().FullName())) {
			return errUnmodelled // google.protobuf.Value and NullValue take null
		}
		val, err := w.next()
		if err != nil {
			return err
		}
		if val.badText != "" {
			return problem(fpath, val, "the text %s", val.badText)
		}
		if val.v == nil {
			continue // null leaves the field unset, even in a oneof
		}
		switch {
		case fd.IsMap():
			return errUnmodelled
		case fd.IsList():
			err = w.list(fd, fpath, val)
		default:
			if od := fd.ContainingOneof(); od != nil {
				if other, ok := oneofs[od.Index()]; ok {
					return problem(fpath, key, "give only one of %s: %s is given already", strings.Join(jsonNames(od.Fields()), ", "), other.JSONName())
				}
				oneofs[od.Index()] = fd
			}
			err = w.singular(fd, fpath, val)
		}
		if err != nil {
			return err
		}
	}
}

// list walks the value of repeated field fd at path, of which open is the
// first token.
func (w *jsonWalker) list(fd protoreflect.FieldDescriptor, path string, open jsonToken) error {
	if open.v != json.Delim('[') {
		return problem(path, open, "expected a list […], got %s", found(open))
	}
	for i := 0; ; i++ {
		el, err := w.next()
		if err != nil {
			return err
		}
		if el.v == json.Delim(']') {
			return nil
		}
		epath := fmt.Sprintf("%s[%d]", path, i)
		if el.badText != "" {
			return problem(epath, el, "the text %s", el.badText)
		}
		if err := w.singular(fd, epath, el); err != nil {
			return err
		}
	}
}

// singular walks one value of fd (a field's, or an element of a list's) at
// path, of which t is the first token.
func (w *jsonWalker) singular(fd protoreflect.FieldDescriptor, path string, t jsonToken) error {
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		return w.message(fd.Message(), path, t)
	}
	if desc := scalarProblem(fd, t); desc != "" {
		return problem(path, t, "%s", desc)
	}
	return nil
}

// scalarProblem says what is wrong with t as a value of the scalar or enum
// field fd, or "" when protojson takes it.
func scalarProblem(fd protoreflect.FieldDescriptor, t jsonToken) string {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if _, ok := t.v.(bool); ok {
			return ""
		}
		return "expected true or false, got " + found(t)
	case protoreflect.StringKind:
		if _, ok := t.v.(string); ok {
			return ""
		}
		return "expected text in quotes, got " + found(t)
	case protoreflect.BytesKind:
		if s, ok := t.v.(string); ok {
			if validBase64(s) {
				return ""
			}
			return found(t) + " is not base64"
		}
		return "expected base64 text in quotes, got " + found(t)
	case protoreflect.EnumKind:
		return enumProblem(fd, t)
	case protoreflect.FloatKind:
		return floatProblem(t, 32)
	case protoreflect.DoubleKind:
		return floatProblem(t, 64)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return intProblem(fd.JSONName(), t, 32, false)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return intProblem(fd.JSONName(), t, 64, false)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return intProblem(fd.JSONName(), t, 32, true)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return intProblem(fd.JSONName(), t, 64, true)
	}
	return "" // no other kinds
}

// enumProblem: an enum value is one of its names, or a number that fits 32
// bits (protojson keeps numbers it does not know).
func enumProblem(fd protoreflect.FieldDescriptor, t jsonToken) string {
	values := fd.Enum().Values()
	names := make([]string, values.Len())
	for i := range names {
		names[i] = string(values.Get(i).Name())
	}
	switch v := t.v.(type) {
	case string:
		if values.ByName(protoreflect.Name(v)) != nil {
			return ""
		}
		s := fmt.Sprintf("unknown name %s", quoteShort(v))
		if g := suggestName(v, names); g != "" {
			s += fmt.Sprintf(" (did you mean %s?)", g)
		}
		return fmt.Sprintf("%s; the names %s takes are %s", s, fd.JSONName(), strings.Join(names, ", "))
	case json.Number:
		if wholeNumber(string(v), 32, false) == "" {
			return ""
		}
	}
	return fmt.Sprintf("expected one of the names %s takes (%s), got %s", fd.JSONName(), strings.Join(names, ", "), found(t))
}

// intProblem: for field name, a whole number fitting bits, given as a JSON
// number or as text holding one (as protojson writes 64-bit integers:
// "1350000").
func intProblem(name string, t jsonToken, bits int, unsigned bool) string {
	var text string
	switch v := t.v.(type) {
	case json.Number:
		text = string(v)
	case string:
		if strings.TrimSpace(v) != v {
			return found(t) + " has spaces around the number; write the digits only"
		}
		if !isJSONNumber(v) {
			s := found(t) + " is not a whole number: write the digits only, without dots, commas or spaces"
			if d := digitsOf(v); d != "" {
				s += fmt.Sprintf(" (%q)", d)
			}
			return s
		}
		text = v
	default:
		return "expected a whole number, got " + found(t)
	}
	switch wholeNumber(text, bits, unsigned) {
	case "":
		return ""
	case notWhole:
		return "expected a whole number, got " + found(t)
	default:
		lo, hi := intRange(bits, unsigned)
		return fmt.Sprintf("%s is out of range: %s takes whole numbers from %s to %s", found(t), name, lo, hi)
	}
}

// floatProblem: a number fitting bits, given as a JSON number or as text
// holding one, or "NaN", "Infinity", "-Infinity".
func floatProblem(t jsonToken, bits int) string {
	var text string
	switch v := t.v.(type) {
	case json.Number:
		text = string(v)
	case string:
		switch v {
		case "NaN", "Infinity", "-Infinity":
			return ""
		}
		if strings.TrimSpace(v) != v {
			return found(t) + " has spaces around the number; write the number only"
		}
		if !isJSONNumber(v) {
			s := "expected a number, got " + found(t)
			if n := strings.Replace(v, ",", ".", 1); n != v && isJSONNumber(n) {
				s += fmt.Sprintf(" (write a decimal point, not a comma: %s)", n)
			}
			return s
		}
		text = v
	default:
		return "expected a number, got " + found(t)
	}
	if _, err := strconv.ParseFloat(text, bits); err != nil {
		return found(t) + " is out of range for a number"
	}
	return ""
}

// Why wholeNumber refuses a number.
const (
	notWhole   = "not whole"
	outOfRange = "out of range"
)

// wholeNumber reads the JSON number s as protojson reads integers ("1e2"
// and "100.0" are 100) and says why it is not a whole number that fits
// bits, or "" when it is one.
func wholeNumber(s string, bits int, unsigned bool) (why string) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	intp, frac, _ := strings.Cut(mant, ".")
	intp = strings.TrimLeft(intp, "0")
	frac = strings.TrimRight(frac, "0")
	if intp == "" && frac == "" {
		return ""
	}
	e := 0
	if hasExp {
		n, err := strconv.ParseInt(exp, 10, 32)
		switch {
		case err != nil && strings.HasPrefix(exp, "-"):
			return notWhole // a non-zero number times 10^-huge
		case err != nil:
			return outOfRange
		}
		e = int(n)
	}
	var digits string
	if e >= 0 {
		if len(frac) > e {
			return notWhole
		}
		if len(intp)+e > 20 { // more digits than any 64-bit number
			return outOfRange
		}
		digits = intp + frac + strings.Repeat("0", e-len(frac))
	} else {
		if frac != "" {
			return notWhole
		}
		cut := len(intp) + e
		if cut < 0 || strings.Trim(intp[cut:], "0") != "" {
			return notWhole
		}
		digits = intp[:cut]
	}
	if unsigned {
		if neg {
			return outOfRange
		}
		if _, err := strconv.ParseUint(digits, 10, bits); err != nil {
			return outOfRange
		}
		return ""
	}
	if neg {
		digits = "-" + digits
	}
	if _, err := strconv.ParseInt(digits, 10, bits); err != nil {
		return outOfRange
	}
	return ""
}

// intRange is the smallest and largest whole number of a type.
func intRange(bits int, unsigned bool) (lo, hi string) {
	switch {
	case unsigned && bits == 32:
		return "0", strconv.FormatUint(math.MaxUint32, 10)
	case unsigned:
		return "0", strconv.FormatUint(math.MaxUint64, 10)
	case bits == 32:
		return strconv.Itoa(math.MinInt32), strconv.Itoa(math.MaxInt32)
	default:
		return strconv.FormatInt(math.MinInt64, 10), strconv.FormatInt(math.MaxInt64, 10)
	}
}

// isJSONNumber reports whether s is exactly one JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	digits := func() int {
		n := 0
		for n < len(s) && '0' <= s[n] && s[n] <= '9' {
			n++
		}
		s = s[n:]
		return n
	}
	s = strings.TrimPrefix(s, "-")
	switch {
	case strings.HasPrefix(s, "0"):
		s = s[1:]
	case digits() == 0:
		return false
	}
	if strings.HasPrefix(s, ".") {
		s = s[1:]
		if digits() == 0 {
			return false
		}
	}
	if strings.HasPrefix(s, "e") || strings.HasPrefix(s, "E") {
		s = s[1:]
		if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
			s = s[1:]
		}
		if digits() == 0 {
			return false
		}
	}
	return s == ""
}

// digitsOf returns s without the dots, commas and spaces people write
// between thousands ("1.350.000" → "1350000"), when that leaves only
// digits; otherwise "".
func digitsOf(s string) string {
	d := strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == ',' || unicode.IsSpace(r):
			return -1
		case '0' <= r && r <= '9':
			return r
		}
		return utf8.RuneError
	}, s)
	if d == "" || strings.ContainsRune(d, utf8.RuneError) {
		return ""
	}
	return d
}

// validBase64 reads s as protojson reads bytes.
func validBase64(s string) bool {
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	_, err := enc.DecodeString(s)
	return err == nil
}

// badText says what is wrong with the raw JSON string raw (quotes
// included) that protojson refuses and encoding/json mends: bytes that are
// not UTF-8, a \u escape of half a UTF-16 surrogate pair.
func badText(raw []byte) string {
	if !utf8.Valid(raw) {
		return "is not valid UTF-8: save the file as UTF-8"
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++
		if i >= len(raw) || raw[i] != 'u' {
			continue
		}
		r := hex4(raw[i+1:])
		i += 4
		if !utf16.IsSurrogate(r) {
			continue
		}
		if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' && utf16.DecodeRune(r, hex4(raw[i+3:])) != unicode.ReplacementChar {
			i += 6
			continue
		}
		return fmt.Sprintf("has %s, half of a UTF-16 surrogate pair", raw[i-5:i+1])
	}
	return ""
}

// hex4 reads four hex digits (valid JSON has them after \u).
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	if err != nil {
		return -1
	}
	return rune(n)
}

// found names the value of t for a message: `the text "big"`, `the number
// 5`, `an object {…}`.
func found(t jsonToken) string {
	switch v := t.v.(type) {
	case json.Delim:
		if v == '{' {
			return "an object {…}"
		}
		return "a list […]"
	case string:
		return "the text " + quoteShort(v)
	case json.Number:
		return "the number " + string(v)
	case bool:
		return strconv.FormatBool(v)
	}
	return "null"
}

// quoteShort quotes s, cut to 40 characters.
func quoteShort(s string) string {
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:40]) + "…"
	}
	return strconv.Quote(s)
}

// unknownField describes name, which is not a field of md, the object at
// path.
func unknownField(name string, md protoreflect.MessageDescriptor, path string) string {
	names := jsonNames(md.Fields())
	s := fmt.Sprintf("unknown field %s", quoteShort(name))
	if g := suggestName(name, names); g != "" {
		s += fmt.Sprintf(" (did you mean %s?)", g)
	}
	where := path
	if where == "" {
		where = withArticle(words(string(md.Name())))
	}
	return fmt.Sprintf("%s; the fields of %s are %s", s, where, strings.Join(names, ", "))
}

// jsonNames are the JSON names of fields, in the contract's order.
func jsonNames(fields protoreflect.FieldDescriptors) []string {
	names := make([]string, fields.Len())
	for i := range names {
		names[i] = fields.Get(i).JSONName()
	}
	return names
}

// words turns a message name into lower-case words: "AnnualIncome" →
// "annual income".
func words(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte(' ')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func withArticle(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

// suggestName returns the one of names that s most likely meant, or "":
// the same name in other case or without underscores ("headname",
// "head_name"), an enum name without its type's prefix ("FEMALE" for
// SEX_FEMALE), the only name s begins ("SEX_F"), or the only name closest
// to s within two edits ("floorArea").
func suggestName(s string, names []string) string {
	norm := func(x string) string { return strings.ToLower(strings.ReplaceAll(x, "_", "")) }
	ns := norm(s)
	if ns == "" {
		return ""
	}
	only := func(match func(name string) bool) string {
		found := ""
		for _, n := range names {
			if match(n) {
				if found != "" {
					return ""
				}
				found = n
			}
		}
		return found
	}
	if g := only(func(n string) bool { return norm(n) == ns }); g != "" {
		return g
	}
	if g := only(func(n string) bool { return strings.HasSuffix(strings.ToLower(n), "_"+strings.ToLower(s)) }); g != "" {
		return g
	}
	if len(ns) >= 3 {
		if g := only(func(n string) bool { return strings.HasPrefix(norm(n), ns) }); g != "" {
			return g
		}
	}
	best, bestD := "", 3
	for _, n := range names {
		switch d := editDistance(ns, norm(n)); {
		case d < bestD:
			best, bestD = n, d
		case d == bestD:
			best = "" // two as close: no guess
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// wellKnown reports whether name is one of protobuf's own types, which
// protojson writes in forms of their own.
func wellKnown(name protoreflect.FullName) bool {
	return strings.HasPrefix(string(name), "google.protobuf.")
}

// join adds a field name to a path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
