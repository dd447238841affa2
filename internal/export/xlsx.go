package export

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
)

// fmtPercent is the number format 0.00%, built into every workbook
// (ECMA-376, 18.8.30).
const fmtPercent = 10

// WriteXLSX writes the tables as an Excel workbook, one sheet each in
// order: headings in bold on a frozen first row, counts as numbers,
// percentages as numbers formatted as such (a rate of 0.13 % stays
// 0.0013, not the text "0.13"). Each sheet goes through excelize's
// StreamWriter, which keeps at most 16 MiB of a sheet in memory and the
// rest in a temporary file, so a list of any length streams with bounded
// memory.
func WriteXLSX(w io.Writer, tables ...Table) (err error) {
	if len(tables) == 0 {
		return errors.New("write workbook: no table")
	}
	f := excelize.NewFile()
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write workbook: %w", cerr)
		}
	}()
	st, err := newStyles(f)
	if err != nil {
		return fmt.Errorf("write workbook: %w", err)
	}
	for i, t := range tables {
		if i == 0 {
			err = f.SetSheetName(f.GetSheetName(0), t.Sheet)
		} else {
			_, err = f.NewSheet(t.Sheet)
		}
		if err != nil {
			return fmt.Errorf("write workbook: sheet %q: %w", t.Sheet, err)
		}
		if err := writeSheet(f, st, t); err != nil {
			return fmt.Errorf("write workbook: sheet %q: %w", t.Sheet, err)
		}
	}
	if _, err := f.WriteTo(w); err != nil {
		return fmt.Errorf("write workbook: %w", err)
	}
	return nil
}

type styles struct{ heading, pct, dec int }

func newStyles(f *excelize.File) (styles, error) {
	var s styles
	var err error
	if s.heading, err = f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true},
		Alignment: &excelize.Alignment{WrapText: true, Vertical: "top"}}); err != nil {
		return s, err
	}
	if s.pct, err = f.NewStyle(&excelize.Style{NumFmt: fmtPercent}); err != nil {
		return s, err
	}
	dec := "0.0000"
	if s.dec, err = f.NewStyle(&excelize.Style{CustomNumFmt: &dec}); err != nil {
		return s, err
	}
	return s, nil
}

func writeSheet(f *excelize.File, st styles, t Table) error {
	sw, err := f.NewStreamWriter(t.Sheet)
	if err != nil {
		return err
	}
	// Widths and panes go before the first row: the stream writes them
	// ahead of the sheet's data.
	for i, c := range t.Columns {
		width := float64(utf8.RuneCountInString(c.Heading))*1.1 + 2
		switch {
		case c.Kind == Text && width < 16:
			width = 16
		case width < 10:
			width = 10
		case width > 40:
			width = 40
		}
		if err := sw.SetColWidth(i+1, i+1, width); err != nil {
			return err
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	cells := make([]any, len(t.Columns))
	for i, c := range t.Columns {
		cells[i] = excelize.Cell{StyleID: st.heading, Value: c.Heading}
	}
	if err := sw.SetRow("A1", cells); err != nil {
		return err
	}
	// One Cell a column, reused row after row: SetRow encodes the row at
	// once, so nothing of it is kept.
	styled := make([]excelize.Cell, len(t.Columns))
	n := 1
	for row, err := range t.Rows {
		if err != nil {
			return fmt.Errorf("row %d: %w", n, err)
		}
		n++
		if len(row) != len(t.Columns) {
			return fmt.Errorf("row %d has %d values for %d columns", n, len(row), len(t.Columns))
		}
		for i, v := range row {
			c := t.Columns[i]
			if err := check(c, v); err != nil {
				return fmt.Errorf("row %d: %w", n, err)
			}
			switch {
			case v == nil:
				cells[i] = nil
			case c.Kind == Percent:
				styled[i] = excelize.Cell{StyleID: st.pct, Value: v}
				cells[i] = &styled[i]
			case c.Kind == Decimal:
				styled[i] = excelize.Cell{StyleID: st.dec, Value: v}
				cells[i] = &styled[i]
			default:
				cells[i] = v
			}
		}
		cell, err := excelize.CoordinatesToCellName(1, n)
		if err != nil {
			return err
		}
		if err := sw.SetRow(cell, cells); err != nil {
			return fmt.Errorf("row %d: %w", n, err)
		}
	}
	return sw.Flush()
}
