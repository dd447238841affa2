package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/adminsvc"
	"github.com/rasoat/rasoat/server/units"
)

// runAdminUnitsImport reads a units file whole (server/units checks it is
// a tree) and sends it in one PutUnits: all of it is stored, or nothing.
func runAdminUnitsImport(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	nf := v.netFlags(fs, 5*time.Minute)
	serve := fs.String("serve", "", "")
	pos, code, ok := v.parse(fs, args, 1, 1, "FILE (.csv or .json)")
	if !ok {
		return code
	}
	name := pos[0]
	ext := strings.ToLower(filepath.Ext(name))
	if ext != ".csv" && ext != ".json" {
		return v.usageError(fmt.Errorf("%s: a units file ends in .csv or .json", name))
	}
	b, err := readBounded(name, units.MaxFileSize)
	if err != nil {
		return v.fail(err)
	}
	var list []units.Unit
	var where func(i int) string // units[i] of the request, in the file's words
	if ext == ".csv" {
		list, err = units.ReadCSV(bytes.NewReader(b))
		lines := csvRecordLines(b)
		where = func(i int) string {
			if i < len(lines) {
				return fmt.Sprintf("line %d", lines[i])
			}
			return fmt.Sprintf("unit %d", i+1)
		}
	} else {
		list, err = units.ReadJSON(bytes.NewReader(b))
		where = func(i int) string { return fmt.Sprintf("record %d", i+1) }
	}
	var fe *units.FieldError
	if errors.As(err, &fe) {
		fmt.Fprintf(v.stderr, "rasoat %s: %s: %v\n", v.name, name, err)
		return exitInvalid
	} else if err != nil {
		return v.fail(fmt.Errorf("%s: %w", name, err))
	}
	if len(list) > adminsvc.MaxUnitsPerRequest {
		fmt.Fprintf(v.stderr, "rasoat %s: %s: %d units, over the server's limit of %d a request: split the file (a province a file)\n", v.name, name, len(list), adminsvc.MaxUnitsPerRequest)
		return exitInvalid
	}
	req := &rasoatv1.PutUnitsRequest{Units: make([]*rasoatv1.Unit, len(list)), ServedUnitCode: strings.TrimSpace(*serve)}
	for i, u := range list {
		req.Units[i] = units.Proto(u)
	}
	cl, actx, code := adminCall(ctx, v, nf, *db)
	if cl == nil {
		return code
	}
	defer cl.close()
	res, err := rasoatv1.NewAdminServiceClient(cl.conn).PutUnits(actx, req)
	if err != nil {
		return cl.fail(err, func(f string) string {
			if f == "served_unit_code" {
				return "--serve"
			}
			if i, rest, ok := indexed(f, "units"); ok {
				rest = strings.Replace(rest, "parent_code", "parent", 1)
				return name + ": " + where(i) + strings.Replace(rest, ".", ": ", 1)
			}
			return f
		})
	}
	fmt.Fprintf(v.stdout, "units: %d created, %d updated", res.GetCreated(), res.GetUpdated())
	if s := res.GetServedUnitCode(); s != "" {
		fmt.Fprintf(v.stdout, "; this server serves %s", s)
	}
	fmt.Fprintln(v.stdout)
	return exitOK
}

// indexed splits "units[3].parent_code" into 3 and ".parent_code".
func indexed(field, list string) (int, string, bool) {
	rest, ok := strings.CutPrefix(field, list+"[")
	if !ok {
		return 0, "", false
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return 0, "", false
	}
	i, err := strconv.Atoi(rest[:end])
	return i, rest[end+1:], err == nil
}

// readBounded reads the file name whole, refusing one over limit bytes.
func readBounded(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, &inputError{desc: fmt.Sprintf("%s: over %d bytes, the limit", name, limit)}
	}
	return b, nil
}

// csvRecordLines returns the line of each data record of a units CSV file
// in the order units.ReadCSV returns its units: after the header, without
// notes (#) and blank rows. Nil when the file does not parse (ReadCSV has
// said why).
func csvRecordLines(b []byte) []int {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	cr := csv.NewReader(bytes.NewReader(b))
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	if header, _, _ := bytes.Cut(bytes.TrimLeft(skipNotes(b), "\r\n"), []byte("\n")); !bytes.Contains(header, []byte(",")) && bytes.Contains(header, []byte(";")) {
		cr.Comma = ';'
	}
	var lines []int
	first := true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return lines
		}
		if err != nil {
			return nil
		}
		if first {
			first = false
			continue
		}
		if blankRecord(rec) {
			continue
		}
		line, _ := cr.FieldPos(0)
		lines = append(lines, line)
	}
}

// skipNotes drops the leading lines of b that are blank or notes (#).
func skipNotes(b []byte) []byte {
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return b
		}
		b = rest
	}
	return b
}

func blankRecord(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// unitJSON is a unit as units list --json prints it: a record of a units
// file in JSON, and whether this server serves it.
type unitJSON struct {
	units.Unit
	Served bool `json:"served,omitempty"`
}

func runAdminUnitsList(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	asJSON := fs.Bool("json", false, "")
	asCSV := fs.Bool("csv", false, "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	if *asJSON && *asCSV {
		return v.usageError(errors.New("give --json or --csv, not both"))
	}
	cl, actx, code := adminCall(ctx, v, nf, *db)
	if cl == nil {
		return code
	}
	defer cl.close()
	res, err := allUnits(actx, rasoatv1.NewAdminServiceClient(cl.conn))
	if err != nil {
		return cl.fail(err, nil)
	}
	list := make([]units.Unit, len(res.GetUnits()))
	for i, u := range res.GetUnits() {
		list[i] = units.Of(u)
	}
	// Provinces, then communes, then villages, each by code: the order of
	// a units file.
	rank := map[units.Level]int{units.Province: 0, units.Commune: 1, units.Village: 2}
	slices.SortStableFunc(list, func(a, b units.Unit) int {
		return cmp.Or(cmp.Compare(rank[a.Level], rank[b.Level]), cmp.Compare(a.Code, b.Code))
	})
	served := res.GetServedUnitCode()
	switch {
	case *asCSV:
		if err := units.WriteCSV(v.stdout, list); err != nil {
			return v.fail(err)
		}
		return exitOK
	case *asJSON:
		for _, u := range list {
			if err := writeJSON(v.stdout, unitJSON{u, u.Code == served}); err != nil {
				return v.fail(err)
			}
		}
		return exitOK
	}
	if len(list) == 0 {
		fmt.Fprintln(v.stdout, "no units: import a units file with rasoat admin units import FILE")
		return exitOK
	}
	tw := tabwriter.NewWriter(v.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CODE\tLEVEL\tNAME\tPARENT\t")
	for _, u := range list {
		mark := ""
		if u.Code == served {
			mark = "(served)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Code, u.Level, u.FullName(), dash(u.Parent), mark)
	}
	tw.Flush()
	if served == "" {
		fmt.Fprintln(v.stdout, "this server serves no unit yet: rasoat admin units import FILE --serve CODE")
	}
	return exitOK
}
