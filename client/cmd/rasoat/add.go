package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
)

const addUsage = `Usage: rasoat add [--db F] --village CODE [--strict] [file|-]

Add enrols one household (hộ) in the tablet file and prints its id. It
reads the household as JSON from file, or from standard input when file is
absent or "-": one rasoat.v1.Household in protojson, the form rasoat score
reads (lowerCamelCase keys, enum names, 64-bit integers as strings, unknown
keys are errors), pretty-printed or on one line, members included.

An empty or absent "id" (of the household or of a member) is made here as a
UUIDv7; a given one must be a UUID in canonical form not used yet. Every
answer is recorded as a change that the next rasoat sync sends. Add needs
no network.

Flags:

  --db F          the tablet file (default tablet.db in the working
                  directory; created if missing)
  --village CODE  the national code of the village (thôn, bản, tổ dân phố)
                  to enrol the household in; may be left out when the JSON's
                  villageCode names it, and must agree with it otherwise
  --strict        refuse a household the poverty standard cannot score yet
                  (answers missing); without it such a household is
                  enrolled as a draft and what is missing is listed on
                  standard error. An answer given that the standard
                  refuses (a floor area of -3 m², a birth date after the
                  review date) is refused either way

Exit status: 0 when enrolled; 1 when the input is invalid (the error names
the field, e.g. "members[1].sex", and nothing is written); 2 for bad usage
or a file that cannot be read or opened.
`

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
	b, err := readInput(stdin, input)
	if err != nil {
		return v.fail(err)
	}
	h := &rasoatv1.Household{}
	if err := decodeJSON(b, h); err != nil {
		return v.fail(fmt.Errorf("decode household: %w", err))
	}
	if *village == "" {
		*village = h.GetVillageCode()
	}
	if *village == "" {
		return v.usageError(errors.New("--village is required: the household names no villageCode"))
	}
	if *strict {
		if err := assessable(h); err != nil {
			return v.fail(fmt.Errorf("not enrolled: %w", err))
		}
	}

	_, statErr := os.Stat(*db)
	created := errors.Is(statErr, os.ErrNotExist)
	c, err := openDB(ctx, *db, true)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	id, err := c.CreateHousehold(ctx, *village, h)
	if err != nil {
		if created {
			// Refused input leaves no trace, not even an empty file.
			c.Close()
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(*db + suffix)
			}
		}
		return v.fail(err)
	}
	fmt.Fprintln(stdout, id)
	if _, _, err := c.Assess(ctx, id); err != nil {
		var ve *survey.ValidationError
		if errors.As(err, &ve) {
			fmt.Fprintf(stderr, "rasoat add: enrolled %s as a draft: the standard cannot score it yet:\n", id)
			writeViolations(stderr, ve)
		} else {
			fmt.Fprintf(stderr, "rasoat add: enrolled %s as a draft: %v\n", id, err)
		}
	}
	return exitOK
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
