package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rasoat/rasoat/internal/quality"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

var qualityUsage = `Usage:

  rasoat quality list --unit CODE [--year YYYY] [--open] [--json]
                      [--db F] [--server HOST:PORT] [--ca FILE | --tls]
  rasoat quality ack  HOUSEHOLD_ID CODE --comment TEXT [--db F]
                                                  (commune officer, chair)

Quality checks before a decision (kiểm tra chất lượng trước khi công
nhận). The server flags a household whose answers contradict each other
or the last decided round's, or that shares a member with another
household, or is scored from a stale review date, or has an open
conflict:

` + qualityCodes() + `
Each flag stands beside the household until the commune officer (or the
chair) acknowledges it with a comment saying why it does not change the
result; the chair's decision is refused (QUALITY_UNACKNOWLEDGED, set
aside by rasoat sync) while one stands. An open conflict is not
acknowledged: write the value that stands (rasoat conflicts, rasoat set).

"list" asks the server for a unit's flagged households (a commune or a
village within your units), each flag with its acknowledgement, and the
counts by village; --year keeps households whose latest review decides
that list year, --open only the flags not yet acknowledged.

"ack" writes the acknowledgement on the household's latest review in
this file, offline; the next rasoat sync sends it. An empty --comment
("") withdraws it. A collaborator's acknowledgement is refused by the
server: nobody clears a flag on their own survey.

Exit status: 0 when listed or written; 1 when the unit is not yours, the
code unknown, the comment refused, or the review decided; 2 for bad usage,
a device not enrolled, or a server that cannot be reached.
`

func qualityCodes() string {
	var b strings.Builder
	for _, r := range quality.Rules {
		fmt.Fprintf(&b, "  %-24s %s\n  %-24s (%s)\n", r.Code, r.English, "", r.Vietnamese)
	}
	return b.String()
}

func runQuality(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "quality", usage: qualityUsage, stdout: stdout, stderr: stderr}
	return runSub(ctx, v, args, []string{"db", "unit", "year", "comment", "server", "ca", "timeout"},
		sub{"list", runQualityList}, sub{"ack", runQualityAck})
}

func runQualityList(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	unit := fs.String("unit", "", "")
	year := fs.Int("year", 0, "")
	open := fs.Bool("open", false, "")
	asJSON := fs.Bool("json", false, "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	if *unit == "" {
		return v.usageError(errors.New("--unit is required"))
	}
	if err := nf.check(); err != nil {
		return v.usageError(err)
	}
	cl, code := v.dialFile(ctx, nf, *db, false)
	if cl == nil {
		return code
	}
	defer cl.close()
	actx, err := cl.authed()
	if err != nil {
		return v.fail(err)
	}
	res, err := rasoatv1.NewQualityServiceClient(cl.conn).Flags(actx, &rasoatv1.FlagsRequest{UnitCode: *unit, ListYear: int32(*year), UnacknowledgedOnly: *open})
	if err != nil {
		return cl.fail(err, func(f string) string {
			return map[string]string{"unit_code": "--unit", "list_year": "--year"}[f]
		})
	}
	if *asJSON {
		b, err := protojson.Marshal(res)
		if err != nil {
			return v.fail(err)
		}
		fmt.Fprintf(v.stdout, "%s\n", b)
		return exitOK
	}
	writeFlags(v.stdout, res)
	return exitOK
}

// writeFlags prints the counts by village, then each flag of each
// household, with Vietnamese headings.
func writeFlags(w io.Writer, r *rasoatv1.FlagsResponse) {
	fmt.Fprintf(w, "Kiểm tra chất lượng — đơn vị %s\n\n", r.GetUnitCode())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "THÔN\tSỐ HỘ CÓ CỜ\tCHƯA XÁC NHẬN\tXUNG ĐỘT\t")
	for _, c := range r.GetByVillage() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", c.GetVillageCode(), c.GetHouseholdsFlagged(), c.GetUnacknowledged(), c.GetOpenConflicts())
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HỘ\tCHỦ HỘ\tTHÔN\tCỜ\tXÁC NHẬN\tCHI TIẾT\t")
	for _, h := range r.GetHouseholds() {
		for _, f := range h.GetFlags() {
			ack := "chưa"
			switch {
			case f.GetAcknowledged():
				ack = "đã: " + f.GetComment()
			case !f.GetAckable():
				ack = "giải quyết xung đột"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", h.GetHouseholdId(), oneLine(h.GetHeadName()), h.GetVillageCode(), f.GetCode(), oneLine(ack), oneLine(f.GetDetail()))
		}
	}
	tw.Flush()
	if r.GetTruncated() {
		fmt.Fprintf(w, "… more households than one answer lists: narrow --unit to a village, or add --open\n")
	}
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func runQualityAck(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	comment := fs.String("comment", "\x00unset", "")
	pos, code, ok := v.parse(fs, args, 2, 2, "HOUSEHOLD_ID CODE")
	if !ok {
		return code
	}
	if *comment == "\x00unset" {
		return v.usageError(errors.New(`--comment is required: say why the flag does not change the result ("" withdraws an acknowledgement)`))
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	hh, err := c.ResolveID(ctx, pos[0], rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD)
	if err != nil {
		return v.fail(err)
	}
	rv, err := c.Acknowledge(ctx, hh, quality.Code(strings.ToUpper(pos[1])), *comment)
	if err != nil {
		return v.fail(err)
	}
	fmt.Fprintln(v.stdout, rv)
	return exitOK
}
