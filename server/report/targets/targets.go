// Package targets reads the poverty-reduction targets a province sets for
// a year (chỉ tiêu giảm nghèo) from its file, and checks targets as the
// ReportService takes them (rasoatv1.ReportTargets), naming the field at
// fault. The command line and a web page both read a file with ReadCSV and
// send what it returns; the server checks it again with Check.
//
// A targets file is CSV (UTF-8, a byte-order mark allowed, commas or, as
// Excel writes where the comma is the decimal mark, semicolons), one target
// a row, under the header
//
//	mã đơn vị,chỉ tiêu,giá trị,ghi chú
//
// (or unit,target,value,note; the note column may be left out):
//
//	20,giảm tỷ lệ hộ nghèo,3,Tỉnh: giảm 3 điểm % một năm
//	06517,giảm tỷ lệ hộ nghèo,5,Xã nghèo: 5 điểm %
//	06517,giảm số hộ nghèo,8,
//	06517,giảm số hộ cận nghèo,9,
//	20,WATER,99,Hộ nghèo dùng nước sinh hoạt hợp vệ sinh
//	20,HOUSING_QUALITY+HOUSING_AREA,85,Nhà ở bền chắc và từ 8 m²/người
//
// The unit is a province's, commune's or village's code. The target is one
// of the reductions (giảm tỷ lệ hộ nghèo: the poverty rate's fall in
// percentage points; giảm số hộ nghèo, giảm số hộ cận nghèo: households),
// or an indicator target for the unit's poor households: the engine's
// indicator ids (survey/standards), joined with + when the households must
// be deprived in none of several, and the percentage of poor households
// to reach. Lines starting with # are notes. examples/targets/ holds a
// sample with its sources.
package targets

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"golang.org/x/text/unicode/norm"
)

// Limits of a targets file and of the targets a request carries. A
// province's file has a few targets for each of about a hundred communes;
// these leave room for every village of a large province and stop a file
// or request that would make the report's queries unbounded.
const (
	// MaxFileBytes bounds a file: 2,000 rows of 100 bytes with room.
	MaxFileBytes = 1 << 20
	// MaxTargets bounds the rows of a file and the targets of a request
	// (units and indicators together).
	MaxTargets = 2000
	// MaxIndicators bounds the indicators of one target: a standard has 12.
	MaxIndicators = 12
	// MaxSets bounds the different sets of indicators across a request's
	// targets: each is one row group of the report's query.
	MaxSets = 64
	// MaxUnitCode bounds a unit code, as the report's unit is bounded.
	MaxUnitCode = 64
	// MaxLabel bounds a target's label: a line of a resolution.
	MaxLabel = 256
	// MaxReduction bounds a count to reduce: more households than any
	// province has.
	MaxReduction = 1_000_000
)

// The reductions' names in a file, each with its plain form.
var reductions = map[string]rasoatv1.TargetKind{
	"giảm tỷ lệ hộ nghèo":    rasoatv1.TargetKind_TARGET_KIND_POVERTY_RATE_REDUCTION,
	"poverty_rate_reduction": rasoatv1.TargetKind_TARGET_KIND_POVERTY_RATE_REDUCTION,
	"giảm số hộ nghèo":       rasoatv1.TargetKind_TARGET_KIND_POOR_REDUCED,
	"reduce_poor":            rasoatv1.TargetKind_TARGET_KIND_POOR_REDUCED,
	"giảm số hộ cận nghèo":   rasoatv1.TargetKind_TARGET_KIND_NEAR_POOR_REDUCED,
	"reduce_near_poor":       rasoatv1.TargetKind_TARGET_KIND_NEAR_POOR_REDUCED,
}

// The header's columns, each with its names.
var columnNames = [][]string{{"mã đơn vị", "unit"}, {"chỉ tiêu", "target"}, {"giá trị", "value"}, {"ghi chú", "note"}}

// LineError is a file's fault, naming its line and column.
type LineError struct {
	Line   int    // 1-based; 0 for the file as a whole
	Column string // the header's name of the column, "" for the row
	Desc   string
	Err    error // ErrTooLarge, or nil
}

// Unwrap lets errors.Is find ErrTooLarge.
func (e *LineError) Unwrap() error { return e.Err }

func (e *LineError) Error() string {
	switch {
	case e.Line == 0:
		return "targets file: " + e.Desc
	case e.Column == "":
		return fmt.Sprintf("targets file line %d: %s", e.Line, e.Desc)
	}
	return fmt.Sprintf("targets file line %d, %s: %s", e.Line, e.Column, e.Desc)
}

// ErrTooLarge is wrapped by the error for a file over MaxFileBytes or
// MaxTargets rows.
var ErrTooLarge = errors.New("too large")

// Known returns the indicator ids of every standard of reg: the ids a
// target may name.
func Known(reg *survey.Registry) []string {
	var ids []string
	for _, s := range reg.Standards() {
		for _, in := range s.Indicators() {
			ids = append(ids, in.ID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// ReadCSV reads a targets file (see the package comment) into the
// targets a ReportRequest carries; known are the indicator ids a target
// may name (Known). The reductions of a unit make one UnitTarget, in the
// order its units first appear; each indicator row one IndicatorTarget, in
// file order. The same target twice for a unit is an error, as is any
// value out of its range; every error is a *LineError.
func ReadCSV(r io.Reader, known []string) (*rasoatv1.ReportTargets, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read targets file: %w", err)
	}
	if len(b) > MaxFileBytes {
		return nil, &LineError{Desc: fmt.Sprintf("over %d bytes, the limit", MaxFileBytes), Err: ErrTooLarge}
	}
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	if !utf8.Valid(b) {
		return nil, &LineError{Desc: "not UTF-8: save it as CSV UTF-8"}
	}
	cr := csv.NewReader(bytes.NewReader(norm.NFC.Bytes(b)))
	cr.Comment, cr.TrimLeadingSpace, cr.FieldsPerRecord = '#', true, -1
	if semicolons(b) {
		cr.Comma = ';'
	}
	head, err := cr.Read()
	if err == io.EOF {
		return nil, &LineError{Desc: "is empty: a targets file starts with the header mã đơn vị,chỉ tiêu,giá trị,ghi chú"}
	}
	if err != nil {
		return nil, csvError(err)
	}
	col, err := header(head)
	if err != nil {
		return nil, err
	}
	t := &rasoatv1.ReportTargets{}
	units := map[string]*rasoatv1.UnitTarget{}
	seen := map[string]int{} // unit and target -> line
	rows := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := cr.FieldPos(0)
		if blank(rec) {
			continue
		}
		if rows++; rows > MaxTargets {
			return nil, &LineError{Line: line, Desc: fmt.Sprintf("more than %d targets, the limit", MaxTargets), Err: ErrTooLarge}
		}
		field := func(i int) string {
			if col[i] < 0 || col[i] >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[col[i]])
		}
		unit, target, value, note := field(0), field(1), field(2), field(3)
		bad := func(c int, format string, args ...any) error {
			return &LineError{Line: line, Column: head[col[c]], Desc: fmt.Sprintf(format, args...)}
		}
		switch {
		case unit == "":
			return nil, bad(0, "empty: the province's, commune's or village's code")
		case len(unit) > MaxUnitCode:
			return nil, bad(0, "%d bytes, over the limit of %d", len(unit), MaxUnitCode)
		case target == "":
			return nil, bad(1, "empty: giảm tỷ lệ hộ nghèo, giảm số hộ nghèo, giảm số hộ cận nghèo, or indicator ids such as WATER")
		case len(note) > MaxLabel:
			return nil, bad(3, "%d bytes, over the limit of %d", len(note), MaxLabel)
		}
		x, err := number(value)
		if err != nil {
			return nil, bad(2, "%q: %v", value, err)
		}
		key := unit + "\x00"
		if kind, ok := reductions[strings.ToLower(target)]; ok {
			key += kind.String()
		} else {
			ids, err := indicatorSet(target, known)
			if err != nil {
				return nil, bad(1, "%v", err)
			}
			key += strings.Join(slices.Sorted(slices.Values(ids)), "+")
		}
		if first, ok := seen[key]; ok {
			return nil, bad(1, "%s for unit %s again (line %d has it)", target, unit, first)
		}
		seen[key] = line
		kind, reduction := reductions[strings.ToLower(target)]
		if !reduction {
			if x < 0 || x > 100 {
				return nil, bad(2, "%s %%: a share of poor households is 0 to 100 %%", value)
			}
			ids, _ := indicatorSet(target, known)
			t.Indicators = append(t.Indicators, &rasoatv1.IndicatorTarget{UnitCode: unit, Indicators: ids, Share: x / 100, Label: note})
			continue
		}
		u := units[unit]
		if u == nil {
			u = &rasoatv1.UnitTarget{UnitCode: unit}
			units[unit] = u
			t.Units = append(t.Units, u)
		}
		switch kind {
		case rasoatv1.TargetKind_TARGET_KIND_POVERTY_RATE_REDUCTION:
			if x < 0 || x > 100 {
				return nil, bad(2, "%s: a reduction in percentage points is 0 to 100", value)
			}
			u.PovertyRateReductionPoints = &x
		default:
			n, ok := count(x)
			if !ok {
				return nil, bad(2, "%s: a number of households is a whole number, 0 to %d", value, MaxReduction)
			}
			if kind == rasoatv1.TargetKind_TARGET_KIND_POOR_REDUCED {
				u.ReducePoor = &n
			} else {
				u.ReduceNearPoor = &n
			}
		}
	}
	return t, nil
}

// semicolons says whether the header (the first line that is not a note
// nor blank) is separated by semicolons and has no comma.
func semicolons(b []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, MaxFileBytes+1)
	for sc.Scan() {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		return bytes.Contains(l, []byte(";")) && !bytes.Contains(l, []byte(","))
	}
	return false
}

// header maps columnNames to the columns of rec (-1: the note, absent).
func header(rec []string) ([]int, error) {
	col := []int{-1, -1, -1, -1}
	for i, h := range rec {
		h = strings.ToLower(strings.TrimSpace(h))
		found := false
		for c, names := range columnNames {
			if slices.Contains(names, h) {
				if col[c] >= 0 {
					return nil, &LineError{Line: 1, Column: rec[i], Desc: "twice in the header"}
				}
				col[c], found = i, true
			}
		}
		if !found {
			return nil, &LineError{Line: 1, Column: rec[i], Desc: "not a column of a targets file: mã đơn vị,chỉ tiêu,giá trị,ghi chú"}
		}
	}
	for c := range 3 {
		if col[c] < 0 {
			return nil, &LineError{Line: 1, Desc: fmt.Sprintf("the header has no %s column: mã đơn vị,chỉ tiêu,giá trị,ghi chú", columnNames[c][0])}
		}
	}
	return col, nil
}

// number reads a value as a spreadsheet writes it: a decimal point or
// comma, a trailing % allowed.
func number(s string) (float64, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if s == "" {
		return 0, errors.New("empty: a number")
	}
	x, err := strconv.ParseFloat(strings.Replace(s, ",", ".", 1), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, errors.New("not a number")
	}
	return x, nil
}

func count(x float64) (int32, bool) {
	if x < 0 || x > MaxReduction || x != math.Trunc(x) {
		return 0, false
	}
	return int32(x), true
}

// indicatorSet reads "WATER" or "HOUSING_QUALITY+HOUSING_AREA".
func indicatorSet(s string, known []string) ([]string, error) {
	var ids []string
	for _, id := range strings.Split(s, "+") {
		id = strings.ToUpper(strings.TrimSpace(id))
		switch {
		case id == "":
			return nil, fmt.Errorf("%q: an empty indicator id", s)
		case !slices.Contains(known, id):
			return nil, fmt.Errorf("%s: not a reduction (giảm tỷ lệ hộ nghèo, giảm số hộ nghèo, giảm số hộ cận nghèo) nor an indicator of any standard (%s)", id, strings.Join(known, ", "))
		case slices.Contains(ids, id):
			return nil, fmt.Errorf("%s twice", id)
		}
		ids = append(ids, id)
	}
	if len(ids) > MaxIndicators {
		return nil, fmt.Errorf("%d indicators, over the limit of %d", len(ids), MaxIndicators)
	}
	return ids, nil
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &LineError{Line: pe.Line, Desc: pe.Err.Error()}
	}
	return fmt.Errorf("read targets file: %w", err)
}

// Check returns what is wrong with t as a request's targets, each
// violation naming its field (targets.indicators[3].share); known are the
// indicator ids a target may name. Nil when t is nil or right.
func Check(t *rasoatv1.ReportTargets, known []string) []rpcerr.Violation {
	if t == nil {
		return nil
	}
	invalid := rasoatv1.ErrorReason_INVALID_FIELD
	tooLarge := rasoatv1.ErrorReason_TOO_LARGE
	if n := len(t.GetUnits()) + len(t.GetIndicators()); n > MaxTargets {
		return []rpcerr.Violation{{Field: "targets", Desc: fmt.Sprintf("%d targets, over the limit of %d", n, MaxTargets), Reason: tooLarge}}
	}
	var vs []rpcerr.Violation
	add := func(field string, reason rasoatv1.ErrorReason, format string, args ...any) {
		vs = append(vs, rpcerr.Violation{Field: field, Desc: fmt.Sprintf(format, args...), Reason: reason})
	}
	unitCode := func(field, code string) {
		switch {
		case code == "":
			add(field, invalid, "required")
		case len(code) > MaxUnitCode:
			add(field, tooLarge, "%d bytes, over the limit of %d", len(code), MaxUnitCode)
		}
	}
	units := map[string]int{}
	for i, u := range t.GetUnits() {
		f := fmt.Sprintf("targets.units[%d]", i)
		unitCode(f+".unit_code", u.GetUnitCode())
		if j, ok := units[u.GetUnitCode()]; ok {
			add(f+".unit_code", invalid, "%s again (targets.units[%d])", u.GetUnitCode(), j)
		}
		units[u.GetUnitCode()] = i
		if u.PovertyRateReductionPoints == nil && u.ReducePoor == nil && u.ReduceNearPoor == nil {
			add(f, invalid, "no target: give poverty_rate_reduction_points, reduce_poor or reduce_near_poor")
		}
		if p := u.GetPovertyRateReductionPoints(); math.IsNaN(p) || p < 0 || p > 100 {
			add(f+".poverty_rate_reduction_points", invalid, "%v, want 0 to 100 percentage points", p)
		}
		for name, n := range map[string]int32{"reduce_poor": u.GetReducePoor(), "reduce_near_poor": u.GetReduceNearPoor()} {
			if n < 0 || n > MaxReduction {
				add(f+"."+name, invalid, "%d, want 0 to %d households", n, MaxReduction)
			}
		}
	}
	sets := map[string]bool{}
	seen := map[string]int{}
	for i, in := range t.GetIndicators() {
		f := fmt.Sprintf("targets.indicators[%d]", i)
		unitCode(f+".unit_code", in.GetUnitCode())
		ids := in.GetIndicators()
		switch {
		case len(ids) == 0:
			add(f+".indicators", invalid, "required: the engine's indicator ids (WATER, LATRINE, …)")
		case len(ids) > MaxIndicators:
			add(f+".indicators", tooLarge, "%d indicators, over the limit of %d", len(ids), MaxIndicators)
		default:
			for j, id := range ids {
				switch {
				case !slices.Contains(known, id):
					add(fmt.Sprintf("%s.indicators[%d]", f, j), invalid, "%q is not an indicator of any standard (%s)", id, strings.Join(known, ", "))
				case slices.Index(ids, id) < j:
					add(fmt.Sprintf("%s.indicators[%d]", f, j), invalid, "%s twice", id)
				}
			}
		}
		if s := in.GetShare(); math.IsNaN(s) || s < 0 || s > 1 {
			add(f+".share", invalid, "%v, want a fraction 0 to 1 (0.99 is 99 %%)", s)
		}
		if len(in.GetLabel()) > MaxLabel {
			add(f+".label", tooLarge, "%d bytes, over the limit of %d", len(in.GetLabel()), MaxLabel)
		}
		set := SetKey(ids)
		sets[set] = true
		if j, ok := seen[in.GetUnitCode()+"\x00"+set]; ok {
			add(f+".indicators", invalid, "%s for unit %s again (targets.indicators[%d])", set, in.GetUnitCode(), j)
		}
		seen[in.GetUnitCode()+"\x00"+set] = i
	}
	if len(sets) > MaxSets {
		add("targets.indicators", tooLarge, "%d different sets of indicators, over the limit of %d", len(sets), MaxSets)
	}
	return vs
}

// SetKey names a set of indicators whatever their order:
// "HOUSING_AREA+HOUSING_QUALITY".
func SetKey(ids []string) string {
	return strings.Join(slices.Sorted(slices.Values(ids)), "+")
}
