package export

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// utf8BOM opens every CSV file: without it a spreadsheet opens UTF-8 as
// the machine's legacy code page and the Vietnamese headings come out
// garbled.
const utf8BOM = "\ufeff"

// WriteCSV writes t as CSV: UTF-8 with a byte-order mark, one header row
// of t's headings, counts as integers, percentages with two decimals.
func WriteCSV(w io.Writer, t Table) error {
	if _, err := io.WriteString(w, utf8BOM); err != nil {
		return fmt.Errorf("write %s as CSV: %w", t.Sheet, err)
	}
	cw := csv.NewWriter(w)
	rec := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		rec[i] = c.Heading
	}
	if err := cw.Write(rec); err != nil {
		return fmt.Errorf("write %s as CSV: %w", t.Sheet, err)
	}
	n := 1
	for row, err := range t.Rows {
		if err != nil {
			return fmt.Errorf("write %s as CSV: row %d: %w", t.Sheet, n, err)
		}
		n++
		if len(row) != len(t.Columns) {
			return fmt.Errorf("write %s as CSV: row %d has %d values for %d columns", t.Sheet, n, len(row), len(t.Columns))
		}
		for i, v := range row {
			if err := check(t.Columns[i], v); err != nil {
				return fmt.Errorf("write %s as CSV: row %d: %w", t.Sheet, n, err)
			}
			rec[i] = csvValue(t.Columns[i].Kind, v)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write %s as CSV: %w", t.Sheet, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write %s as CSV: %w", t.Sheet, err)
	}
	return nil
}

func csvValue(k Kind, v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return defused(v)
	case int:
		return strconv.Itoa(v)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		if k == Percent {
			return strconv.FormatFloat(100*v, 'f', 2, 64)
		}
		return strconv.FormatFloat(v, 'f', 4, 64)
	}
	return fmt.Sprint(v)
}

// defused keeps a text cell a text when a spreadsheet opens the CSV: a
// value a collaborator typed that begins with =, +, -, @, a tab or a
// carriage return would otherwise run as a formula on the officer's
// machine (CSV injection; OWASP's advice is a leading apostrophe). A
// workbook writes text cells as text and needs none.
func defused(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
