package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/rasoat/rasoat/client"
	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const showUsage = `Usage: rasoat show [--db F] [--json] HOUSEHOLD_ID

Show prints a household as this tablet holds it now (every field's current
value, members with their ids, removed ones too) and its local assessment
under the standard in force on its review date: the classification (hộ
nghèo, hộ cận nghèo, mức sống trung bình), the deprived indicators with the
reasons in Vietnamese, the income used against the lines, and whether any
of it is provisional. It needs no network; the server's classification
after review may differ if other answers arrive by sync.

The answers are listed as FIELD and JSON_VALUE, exactly as rasoat set takes
them; a field with an open conflict is marked (see rasoat conflicts).
HOUSEHOLD_ID may be the first characters (at least 4) of one household's id.

Flags:

  --db F   the tablet file (default tablet.db in the working directory)
  --json   print one JSON object instead:
             {"household": <rasoat.v1.Household>,
              "assessment": <rasoat.v1.Assessment>}
           both in protojson; when the standard cannot score the household
           yet, "violations": [{"field": …, "description": …}] replaces
           "assessment"

Exit status: 0 when shown and scored; 1 when the household is unknown, or
shown but not scorable yet (the missing or invalid answers are listed); 2
for bad usage or a file that cannot be opened.
`

func runShow(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "show", usage: showUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	asJSON := fs.Bool("json", false, "")
	pos, code, ok := v.parse(fs, args, 1, 1, "HOUSEHOLD_ID")
	if !ok {
		return code
	}
	id := pos[0]
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	if id, err = c.ResolveID(ctx, id, rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD); err != nil {
		return v.fail(err)
	}
	a, h, err := c.Assess(ctx, id)
	if h == nil {
		return v.fail(err)
	}
	if err != nil && !invalidInput(err) {
		return v.fail(err)
	}
	if *asJSON {
		if werr := writeShowJSON(stdout, h, a, err); werr != nil {
			return v.fail(werr)
		}
	} else {
		conflicts, cerr := householdConflicts(ctx, c, id)
		if cerr != nil {
			return v.fail(cerr)
		}
		if werr := writeShowText(stdout, h, a, err, conflicts); werr != nil {
			return v.fail(werr)
		}
	}
	if err != nil {
		return exitInvalid
	}
	return exitOK
}

// householdConflicts returns how many values beside the winner each
// conflicted field of the household and its members holds, by entity id
// and field.
func householdConflicts(ctx context.Context, c *client.Client, id string) (map[[2]string]int, error) {
	out := map[[2]string]int{}
	err := c.Conflicts(ctx, func(cf client.Conflict) error {
		if cf.HouseholdID == id {
			out[[2]string{cf.EntityID, cf.Field}] = len(cf.Others)
		}
		return nil
	})
	return out, err
}

// showJSON is the --json output.
type showJSON struct {
	Household  json.RawMessage `json:"household"`
	Assessment json.RawMessage `json:"assessment,omitempty"`
	Violations []violation     `json:"violations,omitempty"`
}

func writeShowJSON(w io.Writer, h *rasoatv1.Household, a *survey.Assessment, aerr error) error {
	var out showJSON
	var err error
	if out.Household, err = protojson.Marshal(h); err != nil {
		return err
	}
	if a != nil {
		if out.Assessment, err = protojson.Marshal(a.Proto(h)); err != nil {
			return err
		}
	} else {
		out.Violations = violationsOf(aerr)
		if out.Violations == nil {
			out.Violations = []violation{}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// violationsOf lists what stopped the assessment.
func violationsOf(err error) []violation {
	var ve *survey.ValidationError
	var ie *inputError
	switch {
	case errors.As(err, &ve):
		out := make([]violation, len(ve.Violations))
		for i, x := range ve.Violations {
			out[i] = violation{Field: x.Field, Description: x.Description}
		}
		return out
	case errors.As(err, &ie):
		return []violation{{Field: ie.field, Description: ie.desc}}
	case errors.Is(err, survey.ErrNoStandard):
		return []violation{{Field: "reviewDate", Description: err.Error()}}
	case err != nil:
		return []violation{{Field: "", Description: err.Error()}}
	}
	return nil
}

func writeShowText(w io.Writer, h *rasoatv1.Household, a *survey.Assessment, aerr error, conflicts map[[2]string]int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Household (hộ) %s, village %s\n", h.GetId(), h.GetVillageCode())
	hh := proto.Clone(h).(*rasoatv1.Household)
	hh.Members = nil
	if err := writeAnswers(tw, hh, rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, h.GetId(), conflicts); err != nil {
		return err
	}
	present := 0
	for _, m := range h.GetMembers() {
		if m.GetRemoved() == rasoatv1.Removal_REMOVAL_UNSPECIFIED {
			present++
		}
	}
	fmt.Fprintf(tw, "\nMembers (thành viên): %d, %d present\n", len(h.GetMembers()), present)
	for _, m := range h.GetMembers() {
		state := ""
		if r := m.GetRemoved(); r != rasoatv1.Removal_REMOVAL_UNSPECIFIED {
			state = " (removed: " + strings.TrimPrefix(r.String(), "REMOVAL_") + ")"
		}
		fmt.Fprintf(tw, "\nMember %s%s\n", m.GetId(), state)
		if err := writeAnswers(tw, m, rasoatv1.EntityKind_ENTITY_KIND_MEMBER, m.GetId(), conflicts); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if a == nil {
		fmt.Fprintln(w, "Assessment: not possible yet; the standard needs these answers:")
		for _, x := range violationsOf(aerr) {
			fmt.Fprintf(w, "  %s: %s\n", x.Field, x.Description)
		}
		return nil
	}
	return writeAssessment(w, h, a)
}

// writeAnswers lists the answers of msg, one entity of kind: every field it
// sets, in the contract's order, as FIELD and JSON_VALUE.
func writeAnswers(w io.Writer, msg proto.Message, kind rasoatv1.EntityKind, id string, conflicts map[[2]string]int) error {
	b, err := protojson.Marshal(msg)
	if err != nil {
		return err
	}
	leaves := entity.Paths(kind)
	var rows [][2]string
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := flatten(dec, "", leaves, &rows); err != nil {
		return err
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "  (no answers yet)")
	}
	for _, r := range rows {
		mark := ""
		if n, ok := conflicts[[2]string{id, r[0]}]; ok {
			mark = fmt.Sprintf("\tCONFLICT with %d other value(s): see rasoat conflicts", n)
		}
		fmt.Fprintf(w, "  %s\t%s%s\n", r[0], r[1], mark)
	}
	return nil
}

// flatten reads one JSON object from dec and appends (path, value) for
// every leaf of it in leaves, keeping the document's order; other fields
// (identity, the roster) are skipped.
func flatten(dec *json.Decoder, prefix string, leaves []string, rows *[][2]string) error {
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		path := prefix + tok.(string)
		if slices.Contains(leaves, path) {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return err
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, raw); err != nil {
				return err
			}
			*rows = append(*rows, [2]string{path, compact.String()})
			continue
		}
		if slices.ContainsFunc(leaves, func(l string) bool { return strings.HasPrefix(l, path+".") }) {
			if err := flatten(dec, path+".", leaves, rows); err != nil {
				return err
			}
			continue
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	_, err := dec.Token() // }
	return err
}

// classVI is the classification as a commune officer names it.
func classVI(c survey.Classification) string {
	for _, x := range classes {
		if x.c == c {
			return x.vi
		}
	}
	return ""
}

func writeAssessment(w io.Writer, h *rasoatv1.Household, a *survey.Assessment) error {
	std := a.Standard
	p := a.Proto(h)
	fmt.Fprintf(w, "Assessment (local), standard %s: %s\n", std.ID, std.Name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if std.Source != "" {
		fmt.Fprintf(tw, "  legal basis\t%s\n", std.Source)
	}
	fmt.Fprintf(tw, "  classification\t%s (%s)\n", classificationName(a.Classification), classVI(a.Classification))
	fmt.Fprintf(tw, "  income used\t%s\n", incomeUsed(a))
	fmt.Fprintf(tw, "  members counted\t%d\n", a.Members)
	fmt.Fprintf(tw, "  deprived\t%d of %d indicators (score B %d; poor needs %d or more)\n", a.Deprivations, len(a.Indicators), a.ScoreB, std.DeprivationThreshold)
	if err := tw.Flush(); err != nil {
		return err
	}
	var fine []string
	for _, ir := range p.GetIndicators() {
		if !ir.GetDeprived() {
			fine = append(fine, ir.GetIndicator())
			continue
		}
		texts := make([]string, len(ir.GetReasons()))
		for j, r := range ir.GetReasons() {
			texts[j] = r.GetText()
		}
		fmt.Fprintf(w, "    %s (%s): %s\n", ir.GetIndicator(), ir.GetName(), strings.Join(texts, "; "))
	}
	if len(fine) > 0 {
		fmt.Fprintf(w, "  not deprived: %s\n", strings.Join(fine, ", "))
	}
	fmt.Fprintf(w, "  provisional: %s\n", yesNo(a.Provisional))
	for _, n := range a.Notes() {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	return nil
}

// incomeUsed says which income the classification used and against which
// lines.
func incomeUsed(a *survey.Assessment) string {
	var b strings.Builder
	const unit = " đồng/người/tháng"
	switch a.IncomeBasis {
	case rasoatv1.IncomeBasis_INCOME_BASIS_SCORE_A:
		fmt.Fprintf(&b, "score A (điểm A) %d points", a.ScoreA)
	case rasoatv1.IncomeBasis_INCOME_BASIS_ANNUAL:
		fmt.Fprintf(&b, "%s%s (annual income by source ÷ 12 ÷ %d members)", vnd(a.IncomePerCapita), unit, a.Members)
	default:
		fmt.Fprintf(&b, "%s%s (entered per capita)", vnd(a.IncomePerCapita), unit)
	}
	fmt.Fprintf(&b, "; poverty line %s", vnd(a.PovertyLine))
	if a.NearPovertyLine > 0 {
		fmt.Fprintf(&b, ", near-poverty line %s", vnd(a.NearPovertyLine))
	}
	if a.MiddleLine > 0 {
		fmt.Fprintf(&b, ", middle %s", vnd(a.MiddleLine))
	}
	return b.String()
}

// vnd writes an amount with dots between thousands, as in Vietnam:
// 1.350.000.
func vnd(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
