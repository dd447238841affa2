package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rasoat/rasoat/internal/export"
)

// The files officers take away (internal/export builds the tables): CSV
// on standard output with --csv, an Excel workbook with --xlsx FILE.

// exportFlags are --csv and --xlsx, and --json where the verb has it.
type exportFlags struct {
	csv, json bool
	xlsx      string
}

func (v *verb) exportFlags(fs *flag.FlagSet, withJSON bool) *exportFlags {
	e := &exportFlags{}
	fs.BoolVar(&e.csv, "csv", false, "")
	fs.StringVar(&e.xlsx, "xlsx", "", "")
	if withJSON {
		fs.BoolVar(&e.json, "json", false, "")
	}
	return e
}

// check refuses two outputs at once.
func (e *exportFlags) check() error {
	n := 0
	for _, on := range []bool{e.csv, e.json, e.xlsx != ""} {
		if on {
			n++
		}
	}
	if n > 1 {
		return errors.New("--csv, --json and --xlsx each choose the output: give one")
	}
	return nil
}

// writeCSV writes t to standard output as CSV.
func (v *verb) writeCSV(t export.Table) int {
	if err := export.WriteCSV(v.stdout, t); err != nil {
		return v.fail(err)
	}
	return exitOK
}

// writeWorkbook writes tables as a workbook to path ("-": standard
// output) and says where it went.
func (v *verb) writeWorkbook(path string, tables ...export.Table) int {
	if path == "-" {
		if err := export.WriteXLSX(v.stdout, tables...); err != nil {
			return v.fail(err)
		}
		return exitOK
	}
	if err := writeFileAtomic(path, func(w io.Writer) error { return export.WriteXLSX(w, tables...) }); err != nil {
		return v.fail(err)
	}
	sheets := "1 sheet"
	if len(tables) != 1 {
		sheets = fmt.Sprintf("%d sheets", len(tables))
	}
	fmt.Fprintf(v.stdout, "wrote %s (%s)\n", path, sheets)
	return exitOK
}

// writeFileAtomic writes path through a temporary file beside it, renamed
// over it once whole: an export that fails half way leaves the officer's
// earlier file as it was, never a truncated one a spreadsheet cannot open.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp makes the file 0600; an export is for sharing.
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
