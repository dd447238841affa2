package units

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Header is the header row of a units CSV file: one column per field of
// Unit. The columns may come in any order; each must be there once, and
// no other. An example, the start of examples/units/lang-son-quan-son.csv:
//
//	code,name,level,kind,parent
//	20,Lạng Sơn,province,tỉnh,
//	06517,Quan Sơn,commune,xã,20
//	06517-01,Làng Hăng,village,thôn,06517
var Header = []string{"code", "name", "level", "kind", "parent"}

var header = strings.Join(Header, ",")

// errTooBig is returned by capped past MaxFileSize bytes.
var errTooBig = errors.New("too big")

// ReadCSV reads a units file in CSV: UTF-8, with or without a byte order
// mark (Excel's "CSV UTF-8" writes one); the Header row first; then one
// unit a row. Fields are separated by commas, or by semicolons if the
// header has semicolons and no comma (as Excel writes CSV where the comma
// is the decimal mark). Rows whose fields are all empty are skipped, and
// so are lines starting with #, which a file may use for notes. The units
// must form a whole tree, checked as New does; an error is a *FieldError
// naming the line and the field: `line 12: parent "0623": no such unit`.
// It returns the units cleaned as New cleans them, in file order.
func ReadCSV(r io.Reader) ([]Unit, error) {
	br, err := open(r)
	if err != nil {
		return nil, err
	}
	cr := csv.NewReader(br)
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	if first, _ := br.Peek(br.Size()); sniffSemicolon(first) {
		cr.Comma = ';'
	}
	rec, err := cr.Read()
	if err != nil {
		if err == io.EOF {
			return nil, &FieldError{Desc: "is empty: a units file starts with the header " + header}
		}
		return nil, csvError(err, cr)
	}
	line, _ := cr.FieldPos(0)
	col, err := columns(rec, line)
	if err != nil {
		return nil, err
	}
	var units []Unit
	var lines []int
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(err, cr)
		}
		if blank(rec) {
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(units) == maxUnits {
			return nil, &FieldError{Where: fmt.Sprintf("line %d", line), Desc: fmt.Sprintf("more than %d units, the limit", maxUnits), OverLimit: true}
		}
		units = append(units, Unit{
			Code:   rec[col[0]],
			Name:   rec[col[1]],
			Level:  Level(rec[col[2]]),
			Kind:   rec[col[3]],
			Parent: rec[col[4]],
		})
		lines = append(lines, line)
	}
	t, err := build(units, func(i int) string { return fmt.Sprintf("line %d", lines[i]) })
	if err != nil {
		return nil, err
	}
	return t.units, nil
}

// columns maps each field of Header to its column in the header row rec.
func columns(rec []string, line int) ([]int, error) {
	where := fmt.Sprintf("line %d", line)
	col := []int{-1, -1, -1, -1, -1}
	for i, name := range rec {
		name = strings.ToLower(strings.TrimSpace(name))
		f := indexOf(Header, name)
		switch {
		case f < 0:
			return nil, &FieldError{Where: where, Field: "header", Value: name, Desc: "is not a column of a units file; the header is " + header}
		case col[f] >= 0:
			return nil, &FieldError{Where: where, Field: "header", Value: name, Desc: "is there twice"}
		}
		col[f] = i
	}
	for f, c := range col {
		if c < 0 {
			return nil, &FieldError{Where: where, Field: "header", Desc: fmt.Sprintf("has no column %s; the header is %s", Header[f], header)}
		}
	}
	return col, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// sniffSemicolon reports whether the header, the first line of b that is
// not a note (#), is separated by semicolons rather than commas.
func sniffSemicolon(b []byte) bool {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		return bytes.IndexByte(line, ',') < 0 && bytes.IndexByte(line, ';') >= 0
	}
	return false
}

// csvError turns a reading error of cr into a *FieldError with its line.
func csvError(err error, cr *csv.Reader) error {
	if errors.Is(err, errTooBig) {
		return tooBig()
	}
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return err // the reader's own error
	}
	where := fmt.Sprintf("line %d", pe.Line)
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		return &FieldError{Where: where, Desc: fmt.Sprintf("has a different number of fields from the header (%d)", cr.FieldsPerRecord)}
	}
	return &FieldError{Where: where, Desc: pe.Err.Error()}
}

// ReadJSON reads a units file in JSON: UTF-8, with or without a byte order
// mark; an array of objects with the keys of Header (kind and parent may
// be left out or null), one unit each:
//
//	[{"code": "20", "name": "Lạng Sơn", "level": "province", "kind": "tỉnh"},
//	 {"code": "06517", "name": "Quan Sơn", "level": "commune", "kind": "xã", "parent": "20"}]
//
// The units must form a whole tree, checked as New does; an error is a
// *FieldError naming the record, counted from 1, and the field. It returns
// the units cleaned as New cleans them, in file order.
func ReadJSON(r io.Reader) ([]Unit, error) {
	br, err := open(r)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(br)
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, jsonError("", err)
		}
		return nil, &FieldError{Desc: "a units file in JSON is an array of units: [{\"code\": …}, …]"}
	}
	var units []Unit
	for dec.More() {
		where := fmt.Sprintf("record %d", len(units)+1)
		if len(units) == maxUnits {
			return nil, &FieldError{Where: where, Desc: fmt.Sprintf("more than %d units, the limit", maxUnits), OverLimit: true}
		}
		var u Unit
		if err := dec.Decode(&u); err != nil {
			return nil, jsonError(where, err)
		}
		units = append(units, u)
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, jsonError("", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, jsonError("", err)
		}
		return nil, &FieldError{Desc: "holds something after the array of units"}
	}
	t, err := build(units, func(i int) string { return fmt.Sprintf("record %d", i+1) })
	if err != nil {
		return nil, err
	}
	return t.units, nil
}

// jsonError turns a decoding error into a *FieldError for where.
func jsonError(where string, err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.Is(err, errTooBig):
		return tooBig()
	case errors.As(err, &te):
		if te.Field == "" {
			return &FieldError{Where: where, Desc: "a unit is an object with the keys " + header}
		}
		return &FieldError{Where: where, Field: te.Field, Desc: "must be a string"}
	case errors.As(err, &se):
		return &FieldError{Where: where, Desc: fmt.Sprintf("%v (at byte %d)", se, se.Offset)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &FieldError{Where: where, Desc: "the file ends inside the array of units"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &FieldError{Where: where, Desc: strings.TrimPrefix(err.Error(), "json: ") + "; the keys of a unit are " + header}
	}
	return err
}

// WriteCSV writes units as a units file that ReadCSV reads back: the
// Header row, then one row a unit, in UTF-8 without a byte order mark.
func WriteCSV(w io.Writer, units []Unit) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Header); err != nil {
		return err
	}
	for _, u := range units {
		if err := cw.Write([]string{u.Code, u.Name, string(u.Level), u.Kind, u.Parent}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// open bounds r to MaxFileSize bytes, refuses UTF-16 (Excel's "Unicode
// Text") and skips a UTF-8 byte order mark.
func open(r io.Reader) (*bufio.Reader, error) {
	br := bufio.NewReader(&capped{r: r, left: int64(maxFileSize)})
	b, err := br.Peek(3)
	if errors.Is(err, errTooBig) {
		return nil, tooBig()
	}
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		br.Discard(3)
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return nil, &FieldError{Desc: "is in UTF-16; save it as UTF-8 (in Excel, \"CSV UTF-8\")"}
	}
	return br, nil
}

func tooBig() error {
	return &FieldError{Desc: fmt.Sprintf("is over %d bytes, the limit for a units file", maxFileSize), OverLimit: true}
}

// capped reads from r and fails with errTooBig once more than left bytes
// would be read.
type capped struct {
	r    io.Reader
	left int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, errTooBig
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
