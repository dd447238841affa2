package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
)

// maxPeopleFile bounds a people CSV file: directory.MaxPeoplePerRequest
// rows of a few hundred bytes each.
const maxPeopleFile = 8 << 20

// peopleHeader is the header of a people CSV file; "disabled" may follow.
var peopleHeader = []string{"id", "name", "roles", "units"}

func runAdminPersonPut(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	name := fs.String("name", "", "")
	roles := fs.String("roles", "", "")
	unitList := fs.String("units", "", "")
	disabled := fs.Bool("disabled", false, "")
	pos, code, ok := v.parse(fs, args, 1, 1, "ID")
	if !ok {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var rs []rasoatv1.Role
	if set["roles"] {
		var err error
		if rs, err = parseRoles(*roles, ","); err != nil {
			return v.usageError(fmt.Errorf("--roles: %w", err))
		}
	}
	cl, actx, code := adminCall(ctx, v, nf, *db)
	if cl == nil {
		return code
	}
	defer cl.close()
	api := rasoatv1.NewAdminServiceClient(cl.conn)
	// A flag left out keeps the person's current value.
	list, err := allPeople(actx, api)
	if err != nil {
		return cl.fail(err, nil)
	}
	p := &rasoatv1.Person{Id: pos[0]}
	existing := false
	if i := slices.IndexFunc(list.GetPeople(), func(x *rasoatv1.Person) bool { return x.GetId() == pos[0] }); i >= 0 {
		p, existing = list.GetPeople()[i], true
	}
	if set["name"] {
		p.Name = *name
	}
	if set["roles"] {
		p.Roles = rs
	}
	if set["units"] {
		p.UnitCodes = splitList(*unitList, ",")
	}
	if set["disabled"] {
		p.Disabled = *disabled
	}
	if !existing && !set["name"] {
		return v.usageError(fmt.Errorf("no person %s yet: a new person needs --name and --roles", pos[0]))
	}
	res, err := api.PutPeople(actx, &rasoatv1.PutPeopleRequest{People: []*rasoatv1.Person{p}})
	if err != nil {
		return cl.fail(err, func(f string) string {
			_, rest, ok := indexed(f, "people")
			if !ok {
				return f
			}
			field, _, _ := strings.Cut(strings.TrimPrefix(rest, "."), "[")
			switch field {
			case "id":
				return "ID"
			case "unit_codes":
				return "--units"
			}
			return "--" + field
		})
	}
	what := "updated"
	if res.GetCreated() > 0 {
		what = "created"
	}
	j := personJSONOf(p)
	fmt.Fprintf(v.stdout, "person %s %s: %s · roles %s · units %s", p.GetId(), what, j.Name, listOrNone(j.Roles), listOrNone(j.Units))
	if p.GetDisabled() {
		fmt.Fprint(v.stdout, " · disabled")
	}
	fmt.Fprintln(v.stdout)
	return exitOK
}

// parseRoles reads role names separated by sep.
func parseRoles(s, sep string) ([]rasoatv1.Role, error) {
	var out []rasoatv1.Role
	for _, n := range splitList(s, sep) {
		r, err := parseRole(n)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// splitList splits s by sep, trimmed, without empty items.
func splitList(s, sep string) []string {
	var out []string
	for _, x := range strings.Split(s, sep) {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func runAdminPeopleImport(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	nf := v.netFlags(fs, 5*time.Minute)
	pos, code, ok := v.parse(fs, args, 1, 1, "FILE.csv")
	if !ok {
		return code
	}
	b, err := readBounded(pos[0], maxPeopleFile)
	if err != nil {
		return v.fail(err)
	}
	people, lines, err := readPeopleCSV(b)
	if err != nil {
		fmt.Fprintf(v.stderr, "rasoat %s: %s: %v\n", v.name, pos[0], err)
		return exitInvalid
	}
	if len(people) == 0 {
		fmt.Fprintf(v.stderr, "rasoat %s: %s: no people in it\n", v.name, pos[0])
		return exitInvalid
	}
	cl, actx, code := adminCall(ctx, v, nf, *db)
	if cl == nil {
		return code
	}
	defer cl.close()
	res, err := rasoatv1.NewAdminServiceClient(cl.conn).PutPeople(actx, &rasoatv1.PutPeopleRequest{People: people})
	if err != nil {
		return cl.fail(err, func(f string) string {
			i, rest, ok := indexed(f, "people")
			if !ok || i >= len(lines) {
				return f
			}
			field, _, _ := strings.Cut(strings.TrimPrefix(rest, "."), "[")
			if field == "unit_codes" {
				field = "units"
			}
			return fmt.Sprintf("%s: line %d: %s", pos[0], lines[i], field)
		})
	}
	fmt.Fprintf(v.stdout, "people: %d created, %d updated\n", res.GetCreated(), res.GetUpdated())
	return exitOK
}

// readPeopleCSV reads a people file: UTF-8 (a byte order mark is
// skipped), the header id,name,roles,units[,disabled] in any order, one
// person a row, roles and units separated by ";" in their cell. Rows
// whose fields are all empty, and lines starting with #, are skipped. It
// returns the people and the line of each; an error names the line.
func readPeopleCSV(b []byte) ([]*rasoatv1.Person, []int, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(b, []byte{0xFF, 0xFE}) || bytes.HasPrefix(b, []byte{0xFE, 0xFF}) {
		return nil, nil, errors.New(`is in UTF-16; save it as UTF-8 (in Excel, "CSV UTF-8")`)
	}
	cr := csv.NewReader(bytes.NewReader(b))
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil, fmt.Errorf("is empty: a people file starts with the header %s", strings.Join(peopleHeader, ","))
	}
	if err != nil {
		return nil, nil, csvLineError(err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := col[h]; dup {
			return nil, nil, fmt.Errorf("line 1: header: column %q is there twice", h)
		}
		if !slices.Contains(peopleHeader, h) && h != "disabled" {
			hint := ""
			if strings.Contains(h, ";") {
				hint = " (separate the columns by commas; roles and units inside a cell by ;)"
			}
			return nil, nil, fmt.Errorf("line 1: header: %q is not a column of a people file; the header is %s%s", h, strings.Join(peopleHeader, ","), hint)
		}
		col[h] = i
	}
	for _, h := range peopleHeader {
		if _, ok := col[h]; !ok {
			return nil, nil, fmt.Errorf("line 1: header: no column %s; the header is %s", h, strings.Join(peopleHeader, ","))
		}
	}
	var people []*rasoatv1.Person
	var lines []int
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return people, lines, nil
		}
		if err != nil {
			return nil, nil, csvLineError(err)
		}
		if blankRecord(rec) {
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(people) == directory.MaxPeoplePerRequest {
			return nil, nil, fmt.Errorf("line %d: more than %d people, the server's limit a request: split the file", line, directory.MaxPeoplePerRequest)
		}
		p := &rasoatv1.Person{Id: strings.TrimSpace(rec[col["id"]]), Name: strings.TrimSpace(rec[col["name"]]), UnitCodes: splitList(rec[col["units"]], ";")}
		if p.Roles, err = parseRoles(rec[col["roles"]], ";"); err != nil {
			return nil, nil, fmt.Errorf("line %d: roles: %w", line, err)
		}
		if i, ok := col["disabled"]; ok {
			if s := strings.TrimSpace(rec[i]); s != "" {
				d, err := parseYes(s)
				if err != nil {
					return nil, nil, fmt.Errorf("line %d: disabled: %w", line, err)
				}
				p.Disabled = d
			}
		}
		if prev, dup := seen[p.Id]; dup && p.Id != "" {
			return nil, nil, fmt.Errorf("line %d: id: %q is also on line %d", line, p.Id, prev)
		}
		seen[p.Id] = line
		people = append(people, p)
		lines = append(lines, line)
	}
}

// parseYes reads a yes/no cell.
func parseYes(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes", "y", "có", "x":
		return true, nil
	case "no", "n", "không":
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%q: want yes or no", s)
	}
	return b, nil
}

// csvLineError is a CSV reading error in words naming its line.
func csvLineError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return fmt.Errorf("line %d: has a different number of fields from the header", pe.Line)
		}
		return fmt.Errorf("line %d: %v", pe.Line, pe.Err)
	}
	return err
}

func runAdminPeopleList(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	asJSON := fs.Bool("json", false, "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	cl, actx, code := adminCall(ctx, v, nf, *db)
	if cl == nil {
		return code
	}
	defer cl.close()
	res, err := allPeople(actx, rasoatv1.NewAdminServiceClient(cl.conn))
	if err != nil {
		return cl.fail(err, nil)
	}
	if *asJSON {
		for _, p := range res.GetPeople() {
			if err := writeJSON(v.stdout, personJSONOf(p)); err != nil {
				return v.fail(err)
			}
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(v.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLES\tUNITS\t")
	for _, p := range res.GetPeople() {
		j := personJSONOf(p)
		status := ""
		if j.Disabled {
			status = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.ID, j.Name, strings.Join(j.Roles, ";"), dash(strings.Join(j.Units, ";")), status)
	}
	tw.Flush()
	return exitOK
}
