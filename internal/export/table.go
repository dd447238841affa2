// Package export writes what officers take away from rasoat: a report's
// tables, a decision's lists (form 02) and the posted lists, as CSV and as
// Excel workbooks, with Vietnamese column headings.
//
// The tables are built here from the report's answer (ReportResponse) and
// the lists' shared types (internal/workflow), not in the command line, so
// that a page rasoatd serves can offer the same files. The tablet library
// (package client) does not import this package: the workbook library is
// for the command line and the server, not for the app on a tablet.
package export

import (
	"fmt"
	"iter"
)

// Kind is how a column's values are written.
type Kind int

const (
	// Text is a string.
	Text Kind = iota
	// Int is a count: int, int32 or int64; a number in a workbook.
	Int
	// Percent is a fraction (float64, 0.0123 is 1.23 %): a number formatted
	// as a percentage in a workbook, the percentage with two decimals in
	// CSV (the heading says "(%)").
	Percent
	// Decimal is a float64 with four decimals (H, A, M0).
	Decimal
)

// Column is one column of a table.
type Column struct {
	Heading string // in Vietnamese, with diacritics
	Kind    Kind
}

// Table is one sheet of a workbook, or one CSV file.
type Table struct {
	// Sheet names the sheet: at most 31 characters, none of : \ / ? * [ ].
	Sheet   string
	Columns []Column
	// Rows yields the rows, one value a column (nil for an empty cell), and
	// an error that stops the writing. A row's slice may be reused once the
	// yield returns, so a source read from a database streams with flat
	// memory.
	Rows iter.Seq2[[]any, error]
}

// Of is a table whose rows are held in memory.
func Of(sheet string, cols []Column, rows [][]any) Table {
	return Table{Sheet: sheet, Columns: cols, Rows: func(yield func([]any, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}}
}

// check says why a row's value v cannot be written in column c.
func check(c Column, v any) error {
	if v == nil {
		return nil
	}
	ok := false
	switch c.Kind {
	case Text:
		_, ok = v.(string)
	case Int:
		switch v.(type) {
		case int, int32, int64:
			ok = true
		}
	case Percent, Decimal:
		_, ok = v.(float64)
	}
	if !ok {
		return fmt.Errorf("column %q: %T is not a value of its kind", c.Heading, v)
	}
	return nil
}
