package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/encoding/protojson"
)

const scoreUsage = `Usage: rasoat score [--standard ID] [--standard-file F] [--summary [--json]] [file|-]

Score classifies households: hộ nghèo (POOR), hộ cận nghèo (NEAR_POOR), hộ có
mức sống trung bình (MIDDLE) or NOT_POOR, with the deprivations behind it.

It reads JSON Lines from file, or from standard input when file is absent or
"-": one rasoat.v1.Household in protojson per line (lowerCamelCase keys, enum
names, 64-bit integers as strings; unknown keys are errors). Blank lines are
skipped; a line may be up to 4 MiB long. For every household it writes one
JSON line to standard output:

  {"line":1,"id":"…","standard":"2021-2025","classification":"POOR",
   "deprivationCount":4,"deprived":["HEALTH_INSURANCE",…],
   "incomePerCapita":1350000,"scoreB":40,"reasons":{"HEALTH_INSURANCE":[…]}}

("scoreA" replaces "incomePerCapita" when income came as score A; "provisional"
and "notes" appear when they apply.) An invalid line gives

  {"line":14,"id":"…","error":"…","violations":[{"field":"members[2].birthDate","description":"…"}]}

and scoring goes on with the next line.

Flags:

  --standard ID        score every line under standard ID (e.g. 2016-2020,
                       2021-2025, 2026-2030); by default each line is scored
                       under the standard in force on its reviewDate
  --standard-file F    add the standard in file F (JSON, in the schema of the
                       built-in ones); one with a built-in's id replaces it
  --summary            instead of one line per household, print the aggregate
                       measures: counts and rates per classification, the
                       share deprived per indicator, Alkire–Foster H, A, M0;
                       one block per standard applied
  --json               with --summary, print the summary as one JSON object

Exit status: 0 when every line was valid; 1 when some line was invalid (the
others are still scored); 2 for bad usage, unreadable input or a bad
--standard-file.
`

// maxLineBytes bounds one JSON line (one household).
const maxLineBytes = 4 << 20

type scoreOptions struct {
	standard     string
	standardFile string
	summary      bool
	json         bool
	input        string // "" or "-" for stdin
}

// parseScoreArgs reads the flags and at most one file argument; flags may
// come after the file.
func parseScoreArgs(args []string) (scoreOptions, error) {
	var o scoreOptions
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.standard, "standard", "", "")
	fs.StringVar(&o.standardFile, "standard-file", "", "")
	fs.BoolVar(&o.summary, "summary", false, "")
	fs.BoolVar(&o.json, "json", false, "")
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			files = append(files, rest...) // after "--" everything is a file
			break
		}
		files = append(files, rest[0])
		args = rest[1:]
	}
	if len(files) > 1 {
		return o, fmt.Errorf("at most one input file, got %d: %s", len(files), strings.Join(files, " "))
	}
	if len(files) == 1 {
		o.input = files[0]
	}
	if o.json && !o.summary {
		return o, errors.New("--json goes with --summary (the per-household output is JSON already)")
	}
	return o, nil
}

func runScore(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseScoreArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, scoreUsage)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "rasoat score: %v\n\n%s", err, scoreUsage)
		return exitUsage
	}

	reg, fixed, err := scoreStandards(o)
	if err != nil {
		fmt.Fprintf(stderr, "rasoat score: %v\n", err)
		return exitUsage
	}

	in, name := stdin, "standard input"
	if o.input != "" && o.input != "-" {
		f, err := os.Open(o.input)
		if err != nil {
			fmt.Fprintf(stderr, "rasoat score: %v\n", err)
			return exitUsage
		}
		defer f.Close()
		in, name = f, o.input
	}

	out := bufio.NewWriter(stdout)
	s := &scorer{reg: reg, fixed: fixed}
	var sum *summaries
	if o.summary {
		sum = newSummaries(fixed)
	}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)

	lr := newLineReader(in, maxLineBytes)
	invalid := 0
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			out.Flush()
			fmt.Fprintf(stderr, "rasoat score: %s: stopped at line %d: %v\n", name, n, err)
			return exitUsage
		}
		line, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.Flush()
			if !errors.As(err, new(*fs.PathError)) { // a file error names the file already
				err = fmt.Errorf("read %s: %w", name, err)
			}
			fmt.Fprintf(stderr, "rasoat score: %v\n", err)
			return exitUsage
		}
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a BOM some editors write
		}
		if !tooLong && len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var std *survey.Standard
		var bad *invalidLine
		if tooLong {
			msg := fmt.Sprintf("line is longer than %d bytes (4 MiB): one household must fit on one line", maxLineBytes)
			bad = &invalidLine{Line: n, Error: msg, Violations: []violation{{Field: "", Description: msg}}}
		} else {
			std, bad = s.score(n, line)
		}
		if bad != nil {
			invalid++
		}
		if sum != nil {
			sum.lines++
			if bad != nil {
				sum.addInvalid(std)
				fmt.Fprintf(stderr, "rasoat score: %s:%d: %s\n", name, n, bad.Error)
			} else {
				sum.add(std, &s.a)
			}
			continue
		}
		var v any = bad
		if bad == nil {
			v = s.result(n)
		}
		if err := enc.Encode(v); err != nil {
			fmt.Fprintf(stderr, "rasoat score: write: %v\n", err)
			return exitUsage
		}
	}
	if sum != nil {
		var err error
		if o.json {
			err = enc.Encode(sum.json())
		} else {
			err = sum.writeText(out)
		}
		if err != nil {
			fmt.Fprintf(stderr, "rasoat score: write: %v\n", err)
			return exitUsage
		}
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "rasoat score: write: %v\n", err)
		return exitUsage
	}
	if invalid > 0 {
		return exitInvalid
	}
	return exitOK
}

// scoreStandards builds the registry from the built-in standards and
// --standard-file, and resolves --standard (nil: chosen per line).
func scoreStandards(o scoreOptions) (*survey.Registry, *survey.Standard, error) {
	reg := survey.Builtin()
	if o.standardFile != "" {
		f, err := os.Open(o.standardFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--standard-file: %w", err)
		}
		std, err := survey.LoadStandard(f)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("--standard-file %s: %w", o.standardFile, err)
		}
		merged, err := reg.With(std)
		switch {
		case err == nil:
			reg = merged
		case o.standard == std.ID:
			// A local standard covering the same years as a built-in one
			// (a province's higher standard): named explicitly, it alone is used.
			if reg, err = survey.NewRegistry(std); err != nil {
				return nil, nil, fmt.Errorf("--standard-file %s: %w", o.standardFile, err)
			}
		default:
			return nil, nil, fmt.Errorf("--standard-file %s: %w; add --standard %s to score every household under it", o.standardFile, err, std.ID)
		}
	}
	if o.standard == "" {
		return reg, nil, nil
	}
	std, err := reg.ByID(o.standard)
	if err != nil {
		return nil, nil, fmt.Errorf("--standard: %w", err)
	}
	return reg, std, nil
}

// scorer decodes and assesses one line at a time, reusing its memory.
type scorer struct {
	reg   *survey.Registry
	fixed *survey.Standard
	h     rasoatv1.Household
	a     survey.Assessment
}

// score decodes and assesses one line into s.h and s.a. It returns the
// standard applied (nil when none could be chosen) and, for an invalid line,
// what is wrong with it.
func (s *scorer) score(n int, line []byte) (*survey.Standard, *invalidLine) {
	if err := (protojson.UnmarshalOptions{}).Unmarshal(line, &s.h); err != nil {
		return nil, decodeFailure(n, line, err)
	}
	std := s.fixed
	if std == nil {
		var err error
		if std, err = s.reg.Choose("", s.h.GetReviewDate()); err != nil {
			return nil, s.invalid(n, err)
		}
	}
	if err := std.AssessInto(&s.h, &s.a); err != nil {
		return std, s.invalid(n, err)
	}
	return std, nil
}

func (s *scorer) invalid(n int, err error) *invalidLine {
	bad := &invalidLine{Line: n, ID: s.h.GetId(), Error: err.Error()}
	var ve *survey.ValidationError
	switch {
	case errors.As(err, &ve):
		for _, v := range ve.Violations {
			bad.Violations = append(bad.Violations, violation{Field: v.Field, Description: v.Description})
		}
	case errors.Is(err, survey.ErrNoStandard):
		bad.Violations = []violation{{Field: "reviewDate", Description: err.Error()}}
	default:
		bad.Violations = []violation{{Field: "", Description: err.Error()}}
	}
	return bad
}

// scoredLine is the output for a valid household.
type scoredLine struct {
	Line             int      `json:"line"`
	ID               string   `json:"id"`
	Standard         string   `json:"standard"`
	Classification   string   `json:"classification"`
	DeprivationCount int      `json:"deprivationCount"`
	Deprived         []string `json:"deprived"`
	// IncomePerCapita is monthly VND per person; absent with score A,
	// where the engine has no money figure.
	IncomePerCapita *int64     `json:"incomePerCapita,omitempty"`
	ScoreA          *int32     `json:"scoreA,omitempty"`
	ScoreB          int        `json:"scoreB"`
	Provisional     bool       `json:"provisional,omitempty"`
	Reasons         reasonList `json:"reasons,omitempty"`
	Notes           []string   `json:"notes,omitempty"`
}

// invalidLine is the output for a line that could not be scored.
type invalidLine struct {
	Line       int         `json:"line"`
	ID         string      `json:"id,omitempty"`
	Error      string      `json:"error"`
	Violations []violation `json:"violations"`
}

type violation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// result renders s.a for line n.
func (s *scorer) result(n int) *scoredLine {
	a, h := &s.a, &s.h
	r := &scoredLine{
		Line:             n,
		ID:               h.GetId(),
		Standard:         a.Standard.ID,
		Classification:   classificationName(a.Classification),
		DeprivationCount: a.Deprivations,
		Deprived:         a.Deprived(),
		ScoreB:           a.ScoreB,
		Provisional:      a.Provisional,
		Notes:            a.Notes(),
	}
	if a.HasScoreA {
		r.ScoreA = &a.ScoreA
	} else {
		r.IncomePerCapita = &a.IncomePerCapita
	}
	for i := range a.Indicators {
		ir := &a.Indicators[i]
		if !ir.Deprived {
			continue
		}
		texts := make([]string, len(ir.Reasons))
		for j, why := range ir.Reasons {
			texts[j] = why.Text(h)
		}
		r.Reasons = append(r.Reasons, reasonEntry{indicator: ir.Indicator.ID, texts: texts})
	}
	return r
}

// classificationName drops the enum prefix: "POOR", "NEAR_POOR", ...
func classificationName(c survey.Classification) string {
	return strings.TrimPrefix(c.String(), "CLASSIFICATION_")
}

// reasonList is a JSON object from indicator id to reasons, kept in the
// standard's order (a map would sort the keys).
type reasonList []reasonEntry

type reasonEntry struct {
	indicator string
	texts     []string
}

func (l reasonList) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, e := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(e.indicator); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		if err := enc.Encode(e.texts); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// householdType is what a line holds.
var householdType = (*rasoatv1.Household)(nil).ProtoReflect().Descriptor()

// decodeFailure reports line n, which protojson refused with err: a syntax
// error at its column, or the field locate finds at fault and why. err's
// text, which protobuf-go does not keep stable, is shown as it is only when
// locate finds nothing.
func decodeFailure(n int, line []byte, err error) *invalidLine {
	field, msg := "", err.Error()
	var raw json.RawMessage
	var se *json.SyntaxError
	if jerr := json.Unmarshal(line, &raw); errors.As(jerr, &se) {
		_, col := lineCol(line, int(se.Offset)-1)
		msg = fmt.Sprintf("syntax error at column %d: %v", col, jerr)
	} else if jerr == nil {
		if p := locate(line, householdType); p != nil {
			_, col := lineCol(line, p.off)
			field, msg = p.path, fmt.Sprintf("column %d: %s", col, p.desc)
		}
	}
	errText := "decode household: " + msg
	if field != "" {
		errText = "decode household: " + field + ": " + msg
	}
	return &invalidLine{Line: n, ID: lenientID(line), Error: errText,
		Violations: []violation{{Field: field, Description: msg}}}
}

// lenientID reads the household id from a line protojson refused, when the
// line is JSON at all.
func lenientID(line []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(line, &v) != nil {
		return ""
	}
	return v.ID
}

// lineReader reads lines of at most max bytes; a longer line is consumed
// and reported as too long, so that the lines after it are still read.
type lineReader struct {
	r   *bufio.Reader
	buf []byte
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its line ending, or io.EOF.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.buf = lr.buf[:0]
	for {
		frag, err := lr.r.ReadSlice('\n')
		if !tooLong {
			lr.buf = append(lr.buf, frag...)
			if len(lr.buf) > lr.max+2 { // room for "\r\n"
				tooLong, lr.buf = true, lr.buf[:0]
			}
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(lr.buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			break
		}
		return nil, false, err
	}
	line = bytes.TrimSuffix(lr.buf, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > lr.max {
		return nil, true, nil
	}
	return line, tooLong, nil
}

// summaries aggregate assessments per standard applied.
type summaries struct {
	byID  map[string]*survey.Summary
	order []*survey.Summary
	// lines counts non-blank lines; invalid counts the invalid ones, of
	// which unassigned could not be given a standard.
	lines, invalid, unassigned int
}

// newSummaries starts the aggregates; with a fixed standard its block is
// printed even when nothing is scored.
func newSummaries(fixed *survey.Standard) *summaries {
	s := &summaries{byID: map[string]*survey.Summary{}}
	if fixed != nil {
		s.get(fixed)
	}
	return s
}

func (s *summaries) get(std *survey.Standard) *survey.Summary {
	if sum, ok := s.byID[std.ID]; ok {
		return sum
	}
	sum := survey.NewSummary(std)
	s.byID[std.ID] = sum
	s.order = append(s.order, sum)
	slices.SortStableFunc(s.order, func(a, b *survey.Summary) int {
		return a.Standard.ListYears.From - b.Standard.ListYears.From // oldest first
	})
	return sum
}

func (s *summaries) add(std *survey.Standard, a *survey.Assessment) { s.get(std).Add(a) }

func (s *summaries) addInvalid(std *survey.Standard) {
	s.invalid++
	if std == nil {
		s.unassigned++
		return
	}
	s.get(std).Invalid++
}

var classes = []struct {
	c  survey.Classification
	vi string
}{
	{rasoatv1.Classification_CLASSIFICATION_POOR, "hộ nghèo"},
	{rasoatv1.Classification_CLASSIFICATION_NEAR_POOR, "hộ cận nghèo"},
	{rasoatv1.Classification_CLASSIFICATION_MIDDLE, "hộ có mức sống trung bình"},
	{rasoatv1.Classification_CLASSIFICATION_NOT_POOR, "không thuộc các diện trên"},
}

func (s *summaries) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Lines read: %d (%d scored, %d invalid", s.lines, s.lines-s.invalid, s.invalid)
	if s.unassigned > 0 {
		fmt.Fprintf(tw, ", of which %d with no standard", s.unassigned)
	}
	fmt.Fprintln(tw, ")")
	for _, sum := range s.order {
		std := sum.Standard
		poor := sum.ByClass[rasoatv1.Classification_CLASSIFICATION_POOR]
		fmt.Fprintf(tw, "\nStandard %s: %s\n", std.ID, std.Name)
		if std.Source != "" {
			fmt.Fprintf(tw, "%s\n", std.Source)
		}
		fmt.Fprintf(tw, "\nHouseholds\t%d\n", sum.Households)
		fmt.Fprintf(tw, "Members\t%d\n", sum.Members)
		fmt.Fprintf(tw, "Invalid\t%d\n", sum.Invalid)
		fmt.Fprintf(tw, "Provisional\t%s\n", yesNo(sum.Provisional() || std.Provisional))
		fmt.Fprintf(tw, "\nClassification\t\tHouseholds\tRate\n")
		for _, c := range classes {
			fmt.Fprintf(tw, "%s\t%s\t%10d\t%s\n", classificationName(c.c), c.vi, sum.ByClass[c.c], pct(sum.Rate(c.c)))
		}
		fmt.Fprintf(tw, "\nIndicator\tName\tDeprived\tRate\tPoor deprived\tRate among poor\n")
		for i, ind := range std.Indicators() {
			poorRate := "–"
			if poor > 0 {
				poorRate = pct(float64(sum.DeprivedPoor[i]) / float64(poor))
			}
			fmt.Fprintf(tw, "%s\t%s\t%8d\t%s\t%13d\t%15s\n", ind.ID, ind.Name, sum.Deprived[i], pct(ratio(sum.Deprived[i], sum.Households)), sum.DeprivedPoor[i], poorRate)
		}
		fmt.Fprintf(tw, "\nAlkire–Foster (equal weights, k = %d of %d indicators, deprivations only)\n", std.DeprivationThreshold, len(std.Indicators()))
		fmt.Fprintf(tw, "H\t%.4f\tshare of households deprived in %d or more indicators\n", sum.H(), std.DeprivationThreshold)
		fmt.Fprintf(tw, "A\t%.4f\taverage share of indicators those households are deprived in\n", sum.A())
		fmt.Fprintf(tw, "M0\t%.4f\tH × A\n", sum.M0())
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// pct writes a share as a percentage with one decimal, right-aligned.
func pct(f float64) string { return fmt.Sprintf("%6.1f%%", 100*f) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// summaryJSON is the --summary --json output.
type summaryJSON struct {
	Lines      int `json:"lines"`
	Households int `json:"households"`
	Invalid    int `json:"invalid"`
	// Unassigned counts invalid lines no standard could be chosen for.
	Unassigned int               `json:"unassigned"`
	Standards  []standardSummary `json:"standards"`
}

type standardSummary struct {
	Standard        string             `json:"standard"`
	Name            string             `json:"name"`
	Source          string             `json:"source,omitempty"`
	Provisional     bool               `json:"provisional"`
	Households      int                `json:"households"`
	Members         int                `json:"members"`
	Invalid         int                `json:"invalid"`
	Classifications classCounts        `json:"classifications"`
	Indicators      []indicatorSummary `json:"indicators"`
	AlkireFoster    alkireFoster       `json:"alkireFoster"`
}

type classCounts struct {
	Poor     countRate `json:"POOR"`
	NearPoor countRate `json:"NEAR_POOR"`
	Middle   countRate `json:"MIDDLE"`
	NotPoor  countRate `json:"NOT_POOR"`
}

type countRate struct {
	Count int     `json:"count"`
	Rate  float64 `json:"rate"`
}

type indicatorSummary struct {
	ID        string `json:"id"`
	Dimension string `json:"dimension"`
	Name      string `json:"name"`
	// Deprived counts households deprived; DeprivedPoor, POOR ones.
	Deprived         int     `json:"deprived"`
	DeprivedRate     float64 `json:"deprivedRate"`
	DeprivedPoor     int     `json:"deprivedPoor"`
	DeprivedPoorRate float64 `json:"deprivedPoorRate"`
}

type alkireFoster struct {
	K          int     `json:"k"`
	Indicators int     `json:"indicators"`
	H          float64 `json:"H"`
	A          float64 `json:"A"`
	M0         float64 `json:"M0"`
}

func (s *summaries) json() *summaryJSON {
	out := &summaryJSON{Lines: s.lines, Households: s.lines - s.invalid, Invalid: s.invalid, Unassigned: s.unassigned, Standards: []standardSummary{}}
	for _, sum := range s.order {
		std := sum.Standard
		cr := func(c survey.Classification) countRate { return countRate{sum.ByClass[c], sum.Rate(c)} }
		poor := sum.ByClass[rasoatv1.Classification_CLASSIFICATION_POOR]
		ss := standardSummary{
			Standard:    std.ID,
			Name:        std.Name,
			Source:      std.Source,
			Provisional: sum.Provisional() || std.Provisional,
			Households:  sum.Households,
			Members:     sum.Members,
			Invalid:     sum.Invalid,
			Classifications: classCounts{
				Poor:     cr(rasoatv1.Classification_CLASSIFICATION_POOR),
				NearPoor: cr(rasoatv1.Classification_CLASSIFICATION_NEAR_POOR),
				Middle:   cr(rasoatv1.Classification_CLASSIFICATION_MIDDLE),
				NotPoor:  cr(rasoatv1.Classification_CLASSIFICATION_NOT_POOR),
			},
			AlkireFoster: alkireFoster{K: std.DeprivationThreshold, Indicators: len(std.Indicators()), H: sum.H(), A: sum.A(), M0: sum.M0()},
		}
		for i, ind := range std.Indicators() {
			ss.Indicators = append(ss.Indicators, indicatorSummary{
				ID: ind.ID, Dimension: ind.Dimension(), Name: ind.Name,
				Deprived: sum.Deprived[i], DeprivedRate: ratio(sum.Deprived[i], sum.Households),
				DeprivedPoor: sum.DeprivedPoor[i], DeprivedPoorRate: ratio(sum.DeprivedPoor[i], poor),
			})
		}
		out.Standards = append(out.Standards, ss)
	}
	return out
}
