package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

const listUsage = `Usage: rasoat list [--db F] [--village CODE]

List prints one line per household of the tablet file, in enrolment order:
its id, the head's name (họ tên chủ hộ), its village and its classification
as scored locally (POOR, NEAR_POOR, MIDDLE, NOT_POOR), or "not scored: …"
with the answers the standard still needs. It needs no network.

Flags:

  --db F          the tablet file (default tablet.db in the working directory)
  --village CODE  only the households of this village

Exit status: 0 when listed (households not scored yet included); 2 for bad
usage or a file that cannot be opened.
`

func runList(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "list", usage: listUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	village := fs.String("village", "", "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	n := 0
	err = c.Households(ctx, *village, func(id string) error {
		a, h, err := c.Assess(ctx, id)
		if h == nil {
			return err
		}
		class := ""
		if a != nil {
			class = classificationName(a.Classification)
		} else {
			var fields []string
			for _, x := range violationsOf(err) {
				if x.Field == "" {
					x.Field = x.Description
				}
				fields = append(fields, x.Field)
			}
			class = "not scored: " + strings.Join(fields, ", ")
		}
		name := h.GetHeadName()
		if name == "" {
			name = "-"
		}
		n++
		_, werr := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, name, h.GetVillageCode(), class)
		return werr
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return v.fail(err)
	}
	if n == 0 {
		if *village != "" {
			fmt.Fprintf(stderr, "rasoat list: no households in village %s\n", *village)
		} else {
			fmt.Fprintln(stderr, "rasoat list: no households")
		}
	}
	return exitOK
}
