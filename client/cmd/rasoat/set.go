package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rasoat/rasoat/client"
	"github.com/rasoat/rasoat/internal/entity"
)

const setUsage = `Usage: rasoat set [--db F] ENTITY_ID FIELD JSON_VALUE

Set writes one answer: FIELD of the household, member or review ENTITY_ID
becomes JSON_VALUE. FIELD is the field's path in the entity's JSON form, as
rasoat show lists it: "headName", "housing.floorAreaM2", "income", a
member's "birthDate" or "hasHealthInsurance", a review's "comment".
JSON_VALUE is its protojson value: text in JSON quotes, enum names, 64-bit
integers as strings, null to clear a field that may be unset. ENTITY_ID
may be typed whole or as its first characters (at least 4) when no other
id of this file begins with them; an ambiguous beginning lists the ids it
matches. For example:

  rasoat set 0193… housing.floorAreaM2 14.5
  rasoat set 0193… headName '"Hoàng Văn Sáng"'
  rasoat set 0193… income '{"monthlyPerCapitaVnd":"1800000"}'
  rasoat set 0193… waterSanitation.latrine '"LATRINE_FLUSH_SEPTIC"'

A value the scoring engine would refuse is refused here, before anything
is written, with the engine's rule: a floor area of -3 m² ("must be between
0 and 1000000 m²"), a birth date after the review date, an unknown enum
name (the error lists the names the field takes). Clearing a field (null)
is always taken; what is still missing is for rasoat show to list.

Writing a field that has an open conflict (rasoat conflicts) resolves it:
the value written replaces every value this file holds for the field, and
the next rasoat sync takes the resolution to the server. Set needs no
network. A review's status changes only through rasoat review.

Flags:

  --db F   the tablet file (default tablet.db in the working directory)

Exit status: 0 when written (or already the value); 1 when the id is unknown
or the field or value is invalid (the error names the field, and nothing is
written); 2 for bad usage or a file that cannot be opened.
`

func runSet(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "set", usage: setUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	pos, code, ok := v.parse(fs, args, 3, 3, "ENTITY_ID FIELD JSON_VALUE")
	if !ok {
		return code
	}
	id, field, value := pos[0], pos[1], []byte(pos[2])

	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	if id, err = c.ResolveID(ctx, id); err != nil {
		return v.fail(err)
	}
	conflict, err := fieldConflict(ctx, c, id, field)
	if err != nil {
		return v.fail(err)
	}
	if err := c.SetField(ctx, id, field, value); err != nil {
		var fe *entity.FieldError
		if errors.As(err, &fe) && !json.Valid(value) {
			err = fmt.Errorf("%w (text needs JSON quotes: '\"%s\"')", err, strings.Trim(pos[2], `"'`))
		}
		return v.fail(err)
	}
	fmt.Fprintf(stdout, "%s: %s = %s\n", id, field, value)
	if conflict != nil {
		fmt.Fprintf(stdout, "resolved the conflict on %s: this value replaces the %d values written concurrently\n", field, 1+len(conflict.Others))
	}
	return exitOK
}

// fieldConflict returns the open conflict on field of entity id, or nil.
func fieldConflict(ctx context.Context, c *client.Client, id, field string) (*client.Conflict, error) {
	var found *client.Conflict
	err := c.Conflicts(ctx, func(cf client.Conflict) error {
		if cf.EntityID == id && cf.Field == field {
			found = &cf
		}
		return nil
	})
	return found, err
}
