package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

const refusedUsage = `Usage: rasoat refused [--db F] [--json]
       rasoat refused [--db F] --retry SEQ
       rasoat refused [--db F] --discard SEQ

Refused lists the changes of this tablet that a server refused for good
(bị từ chối): a village no longer assigned to you, a field the server does
not know yet (its rasoatd is older than this app), a value its rules
refuse. Sync set them aside so that everything else still syncs; nothing
was dropped. For each it prints its number, the household or member and
field, the value written, the server's reason and its words.

After reading why: --retry SEQ sends the change again at the next sync
(when the cause is mended: the village assigned again, the server
updated); --discard SEQ drops it, and the next sync shows the server's
value again. It needs no network.

Flags:

  --db F         the tablet file (default tablet.db in the working directory)
  --json         print JSON Lines, one object per refused change
  --retry SEQ    put change SEQ back to be sent at the next sync
  --discard SEQ  drop change SEQ for good

Exit status: 0 when done; 1 when SEQ is not a refused change; 2 for bad
usage or a file that cannot be opened.
`

type refusedJSON struct {
	Seq         uint64          `json:"seq"`
	EntityID    string          `json:"entityId"`
	Kind        string          `json:"kind"`
	Field       string          `json:"field"`
	Value       json.RawMessage `json:"value"`
	Reason      string          `json:"reason"`
	Description string          `json:"description"`
	At          string          `json:"at"`
}

func runRefused(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "refused", usage: refusedUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	asJSON := fs.Bool("json", false, "")
	retry := fs.String("retry", "", "")
	discard := fs.String("discard", "", "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	if *retry != "" && *discard != "" {
		fmt.Fprintln(stderr, "rasoat refused: give --retry or --discard, not both")
		return exitUsage
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	if *retry != "" || *discard != "" {
		arg, op, do := *retry, "retry", c.Retry
		if *discard != "" {
			arg, op, do = *discard, "discard", c.Discard
		}
		seq, err := strconv.ParseUint(arg, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "rasoat refused: --%s takes a change number (rasoat refused lists them), not %q\n", op, arg)
			return exitUsage
		}
		if err := do(ctx, seq); err != nil {
			fmt.Fprintf(stderr, "rasoat refused: %v\n", err)
			return exitInvalid
		}
		if op == "retry" {
			fmt.Fprintf(stdout, "change %d will be sent again at the next sync\n", seq)
		} else {
			fmt.Fprintf(stdout, "change %d discarded; the next sync shows the server's value again\n", seq)
		}
		return exitOK
	}
	list, err := c.Refused(ctx)
	if err != nil {
		return v.fail(err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		for _, r := range list {
			if err := enc.Encode(refusedJSON{r.Seq, r.EntityID, r.Kind, r.Field, r.Value, r.Reason, r.Description, r.At.UTC().Format(time.RFC3339)}); err != nil {
				return v.fail(err)
			}
		}
		return exitOK
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no refused change")
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tENTITY\tFIELD\tVALUE\tREASON\tWHY")
	for _, r := range list {
		fmt.Fprintf(tw, "%d\t%s %s\t%s\t%s\t%s\t%s\n", r.Seq, r.Kind, r.EntityID, r.Field, r.Value, r.Reason, r.Description)
	}
	tw.Flush()
	fmt.Fprintln(stdout, "rasoat refused --retry SEQ sends one again at the next sync; --discard SEQ drops it")
	return exitOK
}
