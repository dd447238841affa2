package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/rasoat/rasoat/client"
)

const conflictsUsage = `Usage: rasoat conflicts [--db F] [--json]

Conflicts lists every open conflict the tablet file holds: a field that two
or more people changed to different values without seeing each other's
change (found when their changes met by sync). For each it prints the
household, the entity (the household, a member or a review) and the field,
the value that stands for now (the latest) with the replica (tablet or
server) that wrote it and when, and every other value with its replica and
time. Nothing was dropped: to resolve a conflict, write the right value with

  rasoat set ENTITY_ID FIELD JSON_VALUE

and sync; the resolution then reaches every tablet. It needs no network.

Flags:

  --db F   the tablet file (default tablet.db in the working directory)
  --json   print JSON Lines instead, one object per conflict:
             {"householdId":…,"entityId":…,"kind":"household","field":"headName",
              "winner":{"value":<JSON>,"replica":…,"at":"<RFC 3339>","hlc":"<uint64>"},
              "others":[…]}
           and nothing when there is none

Exit status: 0 when listed, conflicts or not; 2 for bad usage or a file that
cannot be opened.
`

func runConflicts(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "conflicts", usage: conflictsUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	asJSON := fs.Bool("json", false, "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	n := 0
	err = c.Conflicts(ctx, func(cf client.Conflict) error {
		n++
		if *asJSON {
			return enc.Encode(conflictJSONOf(cf))
		}
		return writeConflict(stdout, cf)
	})
	if err != nil {
		return v.fail(err)
	}
	if !*asJSON {
		switch n {
		case 0:
			fmt.Fprintln(stdout, "no open conflicts")
		case 1:
			fmt.Fprintln(stdout, "1 open conflict: resolve it with rasoat set ENTITY_ID FIELD JSON_VALUE")
		default:
			fmt.Fprintf(stdout, "%d open conflicts: resolve each with rasoat set ENTITY_ID FIELD JSON_VALUE\n", n)
		}
	}
	return exitOK
}

// conflictTime is how a conflict's times are written: UTC, to the
// millisecond, so that tablets in any time zone print the same.
const conflictTime = "2006-01-02T15:04:05.000Z07:00"

func writeConflict(w io.Writer, cf client.Conflict) error {
	fmt.Fprintf(w, "household %s · %s %s · %s\n", cf.HouseholdID, cf.Kind, cf.EntityID, cf.Field)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label string, cv client.ConflictValue) {
		fmt.Fprintf(tw, "  %s\t%s\treplica %s\t%s\n", label, cv.Value, cv.Replica, cv.At.UTC().Format(conflictTime))
	}
	row("winner", cf.Winner)
	for _, o := range cf.Others {
		row("other", o)
	}
	return tw.Flush()
}

type conflictJSON struct {
	HouseholdID string              `json:"householdId"`
	EntityID    string              `json:"entityId"`
	Kind        string              `json:"kind"`
	Field       string              `json:"field"`
	Winner      conflictValueJSON   `json:"winner"`
	Others      []conflictValueJSON `json:"others"`
}

type conflictValueJSON struct {
	Value   json.RawMessage `json:"value"`
	Replica string          `json:"replica"`
	At      string          `json:"at"`
	HLC     uint64          `json:"hlc,string"`
}

func conflictJSONOf(cf client.Conflict) conflictJSON {
	value := func(cv client.ConflictValue) conflictValueJSON {
		return conflictValueJSON{Value: cv.Value, Replica: cv.Replica, At: cv.At.UTC().Format(time.RFC3339Nano), HLC: cv.HLC}
	}
	out := conflictJSON{HouseholdID: cf.HouseholdID, EntityID: cf.EntityID, Kind: cf.Kind, Field: cf.Field,
		Winner: value(cf.Winner), Others: make([]conflictValueJSON, 0, len(cf.Others))}
	for _, o := range cf.Others {
		out.Others = append(out.Others, value(o))
	}
	return out
}
