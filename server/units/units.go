// Package units holds the administrative units (đơn vị hành chính) a rasoat
// server knows, as data: the tree province → commune → village, read from a
// file the operator supplies (ReadCSV, ReadJSON) and checked whole (New).
//
// Since 1 July 2025 local government has two levels, province (cấp tỉnh)
// and commune (cấp xã): there is no district. The national list of units
// and their codes (Bảng danh mục và mã số các đơn vị hành chính Việt Nam,
// Decision 19/2025/QĐ-TTg, in force from 1 July 2025, replacing the list
// of Decision 124/2004/QĐ-TTg) codes the two levels independently: a
// province by 2 digits, 01 to 99, and a commune by 5 digits, 00001 to
// 99999. A commune's code does not contain its province's, so the tree,
// not the code, says which province a commune is in. A code names one
// unit for as long as it exists and is never given to another unit of the
// same level; when units merge, the merged unit keeps the code of the one
// whose People's Committee seat it takes (Decision 124/2004's rule, which
// the 2025 arrangement followed: xã Quan Sơn of Lạng Sơn, merged from the
// former xã Hữu Kiên and xã Quan Sơn, is 06517, the former Quan Sơn's code).
//
// Villages (thôn, bản, tổ dân phố, ấp, khóm, …: the self-governing
// communities under a commune) have no national code. Their code is chosen
// by the operator: the commune's code, a dash, and a local suffix
// ("06517-01"), so village codes stay unique when communes sync up to their
// province. A village may be grouped under another village; the depth is
// data, not fixed, within MaxDepth. A commune server serves one commune;
// its villages are the unit of scope.
package units

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/rasoat/rasoat/internal/entity"
)

// Level is a unit's place in the tree. The Vietnamese type of the unit
// (tỉnh, xã, phường, thôn, bản, …) is its Kind, kept as data.
type Level string

const (
	// Province is cấp tỉnh: a tỉnh or a thành phố trực thuộc trung ương.
	Province Level = "province"
	// Commune is cấp xã: a xã (rural), a phường (urban) or a đặc khu.
	Commune Level = "commune"
	// Village is a community under a commune: thôn, bản, tổ dân phố, ấp,
	// khóm, buôn, … (or a group of them, such as a xóm of a thôn).
	Village Level = "village"
)

func (l Level) valid() bool { return l == Province || l == Commune || l == Village }

// parentOK reports whether a unit of level l may belong to one of level p:
// a commune to a province; a village to a commune, or to a village that
// groups villages. A village under a province would be in no commune,
// outside every commune server's scope.
func (l Level) parentOK(p Level) bool {
	switch l {
	case Commune:
		return p == Province
	case Village:
		return p == Commune || p == Village
	}
	return false
}

// Unit is one administrative unit.
type Unit struct {
	// Code is the national code of a province (2 digits) or commune
	// (5 digits), or the operator's code of a village: the commune's code,
	// a dash and a suffix, as entity.ValidVillageCode allows ("06517-01").
	Code string `json:"code"`
	// Name is the unit's proper name without its type word: "Quan Sơn",
	// not "Xã Quan Sơn". It is stored trimmed and in Unicode NFC.
	Name string `json:"name"`
	// Level is province, commune or village.
	Level Level `json:"level"`
	// Kind is the Vietnamese type word in lower case: "tỉnh", "thành phố",
	// "xã", "phường", "đặc khu", "thôn", "bản", "tổ dân phố", … It is
	// optional and not checked against a list: names of kinds vary by
	// region and change with the law.
	Kind string `json:"kind,omitempty"`
	// Parent is the code of the unit this one belongs to: empty for a
	// province, a province for a commune, a commune or a village for a
	// village.
	Parent string `json:"parent,omitempty"`
}

// FullName is the unit as an officer writes it: the kind, capitalised,
// then the name ("Xã Quan Sơn", "Thôn Làng Hăng"), or the name alone when
// the kind is not known.
func (u Unit) FullName() string {
	if u.Kind == "" {
		return u.Name
	}
	r, n := utf8.DecodeRuneInString(u.Kind)
	return string(unicode.ToUpper(r)) + u.Kind[n:] + " " + u.Name
}

// Bounds on what a units file may hold, checked before a tree is built: a
// server holds its tree in memory for every scope check, and the file
// comes from outside.
const (
	// MaxUnits bounds the units of one tree. The whole country is 34
	// provinces, 3,321 communes and about 100,000 villages (thôn, tổ dân
	// phố); twice that lets a province or national server load everything
	// with room for village groups, at some tens of MB, while a file of
	// millions of rows (a wrong export, or an attack) is refused as it is
	// read.
	MaxUnits = 200_000
	// MaxNameLen bounds a name, in bytes of UTF-8. The longest real names
	// run to a few dozen letters; 200 bytes holds 40 letters even written
	// decomposed, with up to 5 bytes a letter.
	MaxNameLen = 200
	// MaxKindLen bounds a kind; the longest, "thành phố trực thuộc trung
	// ương", is 43 bytes.
	MaxKindLen = 64
	// MaxDepth bounds the levels of a tree, province to deepest village.
	// The law has three (province, commune, village); a village grouped in
	// another makes four. Eight leaves room for local groupings while
	// every walk up the tree, done on every scope check, stays short.
	MaxDepth = 8
	// MaxFileSize bounds a units file in bytes. A national file of
	// MaxUnits rows is some 10 MB (a row is 40 to 60 bytes); 64 MiB
	// leaves room for long names without letting a file fill memory.
	MaxFileSize = 64 << 20
)

// The bounds in force: the constants, lowered by tests that check what
// happens past them without reading 200,000 rows under the race detector.
var (
	maxUnits    = MaxUnits
	maxFileSize = MaxFileSize
)

// ErrInvalid is wrapped by every FieldError.
var ErrInvalid = errors.New("invalid administrative units")

// FieldError is a units file or list refused for one field of one unit.
type FieldError struct {
	// Where names the unit: "line 12" in a CSV file, "record 3" (from 1)
	// in a JSON array, "units[2]" in a list given to New; empty when the
	// input as a whole is refused (too big).
	Where string
	// Field is code, name, level, kind or parent; empty when the error is
	// about the record as a whole.
	Field string
	// Value is the offending value when it helps to show it (a code).
	Value string
	// Desc says what is wrong.
	Desc string
	// OverLimit is set when the input is refused for a size, count or
	// length over one of this package's bounds.
	OverLimit bool
}

// Error reads as `line 12: parent "0623": no such unit`.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Where != "" {
		b.WriteString(e.Where)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		if e.Value != "" {
			b.WriteString(" ")
			b.WriteString(strconv.Quote(e.Value))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Desc)
	return b.String()
}

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Tree is a checked set of units, indexed for the questions a server asks:
// which unit has this code, which are its children and ancestors, which
// villages does a commune have, which commune is a village in. A Tree is
// not changed after New and is safe for concurrent use.
type Tree struct {
	units    []Unit         // in the order given
	index    map[string]int // code → position in units
	parent   []int          // position of the parent, -1 for a province
	children [][]int        // positions of the children, in the order given
	commune  []int          // position of a village's commune, -1 otherwise
}

// New checks units and builds their tree. Codes and names are trimmed and
// names put in Unicode NFC first (Vietnamese keyboards write the same
// letter composed or as a base with combining marks); the tree holds the
// cleaned units. It refuses, with a *FieldError naming units[i] and the
// field: more than MaxUnits units; a code of the wrong form for its level;
// an empty, too long or malformed name or kind; a level other than
// province, commune or village; a code used twice; a parent that is not
// in the list or is not of a higher level (a village may also be under a
// village); a cycle; a tree deeper than MaxDepth; and a village whose code
// does not start with its commune's code and a dash.
func New(units []Unit) (*Tree, error) {
	return build(units, func(i int) string { return fmt.Sprintf("units[%d]", i) })
}

// build is New with where naming unit i in errors (a line, a record).
func build(in []Unit, where func(i int) string) (*Tree, error) {
	if len(in) > maxUnits {
		return nil, &FieldError{Desc: fmt.Sprintf("%d units, over the limit of %d", len(in), maxUnits), OverLimit: true}
	}
	t := &Tree{
		units:    make([]Unit, len(in)),
		index:    make(map[string]int, len(in)),
		parent:   make([]int, len(in)),
		children: make([][]int, len(in)),
		commune:  make([]int, len(in)),
	}
	for i, u := range in {
		u, err := clean(u)
		if err != nil {
			err.Where = where(i)
			return nil, err
		}
		if j, dup := t.index[u.Code]; dup {
			return nil, &FieldError{Where: where(i), Field: "code", Value: u.Code, Desc: "already used by " + where(j)}
		}
		t.units[i] = u
		t.index[u.Code] = i
	}
	for i, u := range t.units {
		t.parent[i] = -1
		if u.Level == Province {
			continue
		}
		p, ok := t.index[u.Parent]
		if !ok {
			return nil, &FieldError{Where: where(i), Field: "parent", Value: u.Parent, Desc: "no such unit"}
		}
		if pl := t.units[p].Level; !u.Level.parentOK(pl) {
			return nil, &FieldError{Where: where(i), Field: "parent", Value: u.Parent, Desc: fmt.Sprintf("%s, not to a %s", belongsTo[u.Level], pl)}
		}
		t.parent[i] = p
		t.children[p] = append(t.children[p], i)
	}
	if err := t.walk(where); err != nil {
		return nil, err
	}
	return t, nil
}

var belongsTo = map[Level]string{
	Commune: "a commune belongs to a province",
	Village: "a village belongs to a commune or to another village",
}

// walk finds each unit's depth and each village's commune, refusing a
// cycle, a tree deeper than MaxDepth, and a village code that does not
// start with its commune's code. Every unit is walked up once: a unit
// whose depth is known stops the walk of those below it.
func (t *Tree) walk(where func(i int) string) error {
	const onPath = -1
	depth := make([]int, len(t.units)) // 0: not yet walked
	var path []int
	for i := range t.units {
		path = path[:0]
		j := i
		for j >= 0 && depth[j] == 0 {
			depth[j] = onPath
			path = append(path, j)
			j = t.parent[j]
		}
		if j >= 0 && depth[j] == onPath {
			// j is on this path: the units from j up to j again are a cycle.
			return t.cycleError(path, j, where)
		}
		d, commune := 0, -1
		if j >= 0 {
			d = depth[j]
			commune = t.commune[j]
			if t.units[j].Level == Commune {
				commune = j
			}
		}
		for k := len(path) - 1; k >= 0; k-- {
			n := path[k]
			d++
			if d > MaxDepth {
				return &FieldError{Where: where(n), Field: "parent", Value: t.units[n].Parent,
					Desc: fmt.Sprintf("nests this unit %d levels deep, over the limit of %d", d, MaxDepth), OverLimit: true}
			}
			depth[n] = d
			t.commune[n] = -1
			switch t.units[n].Level {
			case Commune:
				commune = n
			case Village:
				if commune < 0 { // New's level checks leave no such village
					return &FieldError{Where: where(n), Field: "parent", Value: t.units[n].Parent, Desc: "is not under a commune"}
				}
				t.commune[n] = commune
				if err := villageCode(t.units[n].Code, t.units[commune].Code); err != "" {
					return &FieldError{Where: where(n), Field: "code", Value: t.units[n].Code, Desc: err}
				}
			}
		}
	}
	return nil
}

// cycleError names the unit of the cycle that comes first in the input,
// and the cycle from it.
func (t *Tree) cycleError(path []int, start int, where func(i int) string) error {
	var cycle []int
	for k, n := range path {
		if n == start {
			cycle = path[k:]
			break
		}
	}
	first := 0
	for k, n := range cycle {
		if n < cycle[first] {
			first = k
		}
	}
	codes := make([]string, 0, len(cycle)+1)
	for k := range cycle {
		codes = append(codes, t.units[cycle[(first+k)%len(cycle)]].Code)
	}
	codes = append(codes, codes[0])
	n := cycle[first]
	return &FieldError{Where: where(n), Field: "parent", Value: t.units[n].Parent,
		Desc: "makes a cycle: " + strings.Join(codes, " → ")}
}

// villageCode says why code cannot be the code of a village of the commune
// coded commune, or "".
func villageCode(code, commune string) string {
	if !strings.HasPrefix(code, commune+"-") || len(code) == len(commune)+1 {
		return fmt.Sprintf("a village's code is its commune's code, a dash and a local suffix (%s-01), so that it stays unique in the province", commune)
	}
	return ""
}

// clean trims and normalises u and checks each field on its own. The
// error's Where is left for the caller.
func clean(u Unit) (Unit, *FieldError) {
	u.Code = strings.TrimSpace(u.Code)
	u.Parent = strings.TrimSpace(u.Parent)
	u.Level = Level(strings.ToLower(strings.TrimSpace(string(u.Level))))
	if !u.Level.valid() {
		return u, &FieldError{Field: "level", Value: string(u.Level), Desc: "must be province, commune or village"}
	}
	if msg, over := codeProblem(u.Code, u.Level); msg != "" {
		return u, &FieldError{Field: "code", Value: u.Code, Desc: msg, OverLimit: over}
	}
	var err *FieldError
	if u.Name, err = cleanText("name", u.Name, MaxNameLen, true); err != nil {
		return u, err
	}
	if u.Kind, err = cleanText("kind", u.Kind, MaxKindLen, false); err != nil {
		return u, err
	}
	switch {
	case u.Level == Province && u.Parent != "":
		return u, &FieldError{Field: "parent", Value: u.Parent, Desc: "a province has no parent"}
	case u.Level != Province && u.Parent == "":
		return u, &FieldError{Field: "parent", Desc: fmt.Sprintf("is empty: %s", belongsTo[u.Level])}
	}
	return u, nil
}

// codeProblem says why code cannot be the code of a unit of level l, or
// "", and whether it is for being too long. A village's prefix is checked
// once its commune is known.
func codeProblem(code string, l Level) (string, bool) {
	switch l {
	case Province:
		if !digits(code, 2) || code == "00" {
			return "a province's code is 2 digits, 01 to 99 (Decision 19/2025/QĐ-TTg)" + excelHint(code, 2), false
		}
	case Commune:
		if !digits(code, 5) || code == "00000" {
			return "a commune's code is 5 digits, 00001 to 99999 (Decision 19/2025/QĐ-TTg)" + excelHint(code, 5), false
		}
	case Village:
		if err := entity.ValidVillageCode(code); err != nil {
			return err.Error(), errors.Is(err, entity.ErrTooLong)
		}
	}
	return "", false
}

// excelHint explains the usual cause of a national code too short: a
// spreadsheet that took it for a number and dropped its leading zeros.
func excelHint(code string, n int) string {
	if len(code) < n && digits(code, len(code)) && code != "" {
		return "; a spreadsheet drops leading zeros unless the column is formatted as text"
	}
	return ""
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// cleanText returns s trimmed and in Unicode NFC, or why it cannot be
// field: invalid UTF-8, a control character, over limit bytes, or empty
// when required.
func cleanText(field, s string, limit int, required bool) (string, *FieldError) {
	if !utf8.ValidString(s) {
		return s, &FieldError{Field: field, Desc: "is not valid UTF-8 (save the file as UTF-8: in Excel, \"CSV UTF-8\")"}
	}
	if len(s) > 4*limit { // refused before normalising a huge string
		return s, &FieldError{Field: field, Desc: fmt.Sprintf("%d bytes, over the limit of %d", len(s), limit), OverLimit: true}
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return s, &FieldError{Field: field, Desc: fmt.Sprintf("holds the control character %U", r)}
		}
	}
	s = norm.NFC.String(strings.TrimSpace(s))
	switch {
	case len(s) > limit:
		return s, &FieldError{Field: field, Desc: fmt.Sprintf("%d bytes, over the limit of %d", len(s), limit), OverLimit: true}
	case required && s == "":
		return s, &FieldError{Field: field, Desc: "is empty"}
	}
	return s, nil
}

// Len returns the number of units.
func (t *Tree) Len() int { return len(t.units) }

// Units returns every unit, in the order given to New.
func (t *Tree) Units() []Unit { return append([]Unit(nil), t.units...) }

// Unit returns the unit coded code.
func (t *Tree) Unit(code string) (Unit, bool) {
	i, ok := t.index[code]
	if !ok {
		return Unit{}, false
	}
	return t.units[i], true
}

// Children returns the units whose parent is code, in the order given to
// New; none for a village with no group under it or an unknown code.
func (t *Tree) Children(code string) []Unit {
	i, ok := t.index[code]
	if !ok {
		return nil
	}
	return t.at(t.children[i])
}

// Ancestors returns the units above code, nearest first: a village's
// parent (a village group or its commune), …, its commune, its province.
// It is empty for a province or an unknown code.
func (t *Tree) Ancestors(code string) []Unit {
	i, ok := t.index[code]
	if !ok {
		return nil
	}
	var out []Unit
	for p := t.parent[i]; p >= 0; p = t.parent[p] {
		out = append(out, t.units[p])
	}
	return out
}

// VillagesOf returns every village under the commune coded commune, at
// any depth (a village group and the villages in it), parents before
// their children and otherwise in the order given to New. It is empty if
// commune is not a commune of the tree.
func (t *Tree) VillagesOf(commune string) []Unit {
	i, ok := t.index[commune]
	if !ok || t.units[i].Level != Commune {
		return nil
	}
	var out []Unit
	var visit func(is []int)
	visit = func(is []int) { // at most MaxDepth deep
		for _, n := range is {
			out = append(out, t.units[n])
			visit(t.children[n])
		}
	}
	visit(t.children[i])
	return out
}

// CommuneOf returns the commune the village coded village is in, however
// deep. It reports false if village is not a village of the tree.
func (t *Tree) CommuneOf(village string) (Unit, bool) {
	i, ok := t.index[village]
	if !ok || t.units[i].Level != Village {
		return Unit{}, false
	}
	return t.units[t.commune[i]], true
}

func (t *Tree) at(is []int) []Unit {
	if len(is) == 0 {
		return nil
	}
	out := make([]Unit, len(is))
	for k, i := range is {
		out[k] = t.units[i]
	}
	return out
}
