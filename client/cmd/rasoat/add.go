package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rasoat/rasoat/client"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
)

const addUsage = `Usage: rasoat add [--db F] --village CODE [--strict] [file|-]

Add enrols households (hộ) in the tablet file and prints their ids, one a
line, in the order given. It reads JSON from file, or from standard input
when file is absent or "-", in one of three forms:

  - one rasoat.v1.Household in protojson, the form rasoat score reads
    (lowerCamelCase keys, enum names, 64-bit integers as strings, unknown
    keys are errors), pretty-printed or on one line, members included;
  - JSON Lines: one household per line, as rasoat score reads them;
  - a JSON array of households.

Many households are enrolled in one transaction: all of them, or, when one
is refused, none, and the error names its line ("line 12: members[1].sex").
At most 2000 households, 16 MiB and 4 MiB a line go in one add: split a
larger file.

An empty or absent "id" (of the household or of a member) is made here as a
UUIDv7; a given one must be a UUID in canonical form not used yet. Every
answer is recorded as a change that the next rasoat sync sends. Add needs
no network.

Flags:

  --db F          the tablet file (default tablet.db in the working
                  directory; created if missing)
  --village CODE  the national code of the village (thôn, bản, tổ dân phố)
                  to enrol the households in; may be left out when each
                  household's villageCode names it, and must agree with it
                  otherwise
  --strict        refuse a household the poverty standard cannot score yet
                  (answers missing); without it such a household is
                  enrolled as a draft and what is missing is listed on
                  standard error. An answer given that the standard
                  refuses (a floor area of -3 m², a birth date after the
                  review date) is refused either way

Exit status: 0 when enrolled; 1 when the input is invalid (the error names
the field, e.g. "members[1].sex", and the line when there are many, and
nothing is written); 2 for bad usage or a file that cannot be read or
opened.
`

// maxAddBytes bounds add's input: client.MaxHouseholdsPerCall households
// of up to 8 KiB of JSON each, pretty-printed (a real one is about 1.5 KB).
const maxAddBytes = 16 << 20

// addDoc is one household of add's input and the line it begins on.
type addDoc struct {
	line int
	raw  []byte
}

func runAdd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "add", usage: addUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	village := fs.String("village", "", "")
	strict := fs.Bool("strict", false, "")
	pos, code, ok := v.parse(fs, args, 0, 1, "")
	if !ok {
		return code
	}
	input := ""
	if len(pos) == 1 {
		input = pos[0]
	}
	b, err := readInputMax(stdin, input, maxAddBytes)
	if err != nil {
		return v.fail(err)
	}
	docs, many, err := splitHouseholds(b)
	if err != nil {
		return v.fail(err)
	}
	// where names a household in errors: by its line when there are many.
	where := func(i int, err error) error {
		if !many {
			return err
		}
		return fmt.Errorf("line %d: %w", docs[i].line, err)
	}
	hs := make([]*rasoatv1.Household, len(docs))
	for i, d := range docs {
		hs[i] = &rasoatv1.Household{}
		if err := decodeJSON(d.raw, hs[i]); err != nil {
			return v.fail(where(i, fmt.Errorf("decode household: %w", err)))
		}
		if *village == "" && hs[i].GetVillageCode() == "" {
			if many {
				return v.usageError(fmt.Errorf("--village is required: the household on line %d names no villageCode", d.line))
			}
			return v.usageError(errors.New("--village is required: the household names no villageCode"))
		}
		if *strict {
			if err := assessable(hs[i]); err != nil {
				return v.fail(where(i, fmt.Errorf("not enrolled: %w", err)))
			}
		}
	}

	_, statErr := os.Stat(*db)
	created := errors.Is(statErr, os.ErrNotExist)
	c, err := openDB(ctx, *db, true)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	ids, err := c.CreateHouseholds(ctx, *village, hs)
	if err != nil {
		if created {
			// Refused input leaves no trace, not even an empty file.
			c.Close()
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(*db + suffix)
			}
		}
		var he *client.HouseholdError
		if errors.As(err, &he) {
			err = where(he.Index, he.Err)
		}
		return v.fail(err)
	}
	for _, id := range ids {
		fmt.Fprintln(stdout, id)
	}
	for i, id := range ids {
		at := ""
		if many {
			at = fmt.Sprintf("line %d: ", docs[i].line)
		}
		if _, _, err := c.Assess(ctx, id); err != nil {
			var ve *survey.ValidationError
			if errors.As(err, &ve) {
				fmt.Fprintf(stderr, "rasoat add: %senrolled %s as a draft: the standard cannot score it yet:\n", at, id)
				writeViolations(stderr, ve)
			} else {
				fmt.Fprintf(stderr, "rasoat add: %senrolled %s as a draft: %v\n", at, id, err)
			}
		}
	}
	return exitOK
}

// splitHouseholds cuts add's input into households: a JSON array's
// elements, JSON Lines (when the first line is a whole JSON value by
// itself), or else the whole input as one document, which may span lines.
// many is false for the last. The number of households and the length of
// a line are bounded.
func splitHouseholds(b []byte) (docs []addDoc, many bool, err error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, false, &inputError{desc: "no JSON given"}
	}
	tooMany := &inputError{field: "households", desc: fmt.Sprintf("more than %d in one add, the limit: split the input", client.MaxHouseholdsPerCall)}
	if trimmed[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.Token() // the '['
		for dec.More() {
			off := int(dec.InputOffset())
			for off < len(b) && (b[off] == ',' || b[off] == ' ' || b[off] == '\t' || b[off] == '\r' || b[off] == '\n') {
				off++
			}
			line, _ := lineCol(b, off)
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, true, arrayError(b, line, err)
			}
			if len(docs) == client.MaxHouseholdsPerCall {
				return nil, true, tooMany
			}
			docs = append(docs, addDoc{line: line, raw: raw})
		}
		if _, err := dec.Token(); err != nil { // the ']'
			return nil, true, arrayError(b, 0, err)
		}
		if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
			line, col := lineCol(b, int(dec.InputOffset())+bytes.Index(b[dec.InputOffset():], rest[:1]))
			return nil, true, &inputError{desc: fmt.Sprintf("line %d, column %d: more after the array of households", line, col)}
		}
		return docs, true, nil
	}
	first, _, _ := bytes.Cut(trimmed, []byte("\n"))
	if !json.Valid(first) || len(first) == len(trimmed) {
		return []addDoc{{line: 1, raw: b}}, false, nil
	}
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(line) > maxLineBytes {
			return nil, true, &inputError{field: fmt.Sprintf("line %d", i+1), desc: fmt.Sprintf("longer than %d bytes (%d MiB), the limit of one household", maxLineBytes, maxLineBytes>>20)}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !json.Valid(line) {
			return nil, true, &inputError{field: fmt.Sprintf("line %d", i+1), desc: "not one JSON document: in JSON Lines every household is on one line"}
		}
		if len(docs) == client.MaxHouseholdsPerCall {
			return nil, true, tooMany
		}
		docs = append(docs, addDoc{line: i + 1, raw: line})
	}
	return docs, true, nil
}

// arrayError is the error for a JSON array add cannot read, at the line
// and column of a syntax error (or line, where the element began).
func arrayError(b []byte, line int, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		l, col := lineCol(b, int(se.Offset)-1)
		return &inputError{desc: fmt.Sprintf("not a JSON array of households: line %d, column %d: %v", l, col, err)}
	}
	if line > 0 {
		return &inputError{desc: fmt.Sprintf("not a JSON array of households: line %d: %v", line, err)}
	}
	return &inputError{desc: fmt.Sprintf("not a JSON array of households: %v", err)}
}

// assessable checks h as the local assessment will: the standard in force
// on its review date must be able to score it.
func assessable(h *rasoatv1.Household) error {
	std, err := survey.Builtin().Choose("", h.GetReviewDate())
	if err != nil {
		return err
	}
	_, err = std.Assess(h)
	return err
}
