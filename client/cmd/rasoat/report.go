package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/rasoat/rasoat/internal/export"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const reportUsage = `Usage: rasoat report --unit CODE --year YYYY [--db F] [--server HOST:PORT] [--ca FILE | --tls] [--json | --csv]

Report (báo cáo kết quả rà soát) asks the server for a unit's figures: a
commune's or a village's (within your units), for the list year whose
review it follows (a periodic review in October 2026 decides 2027). Every
household of the unit is counted with its classification as the engine
scores it now, under the standard its latest review's round chooses:

  - households, reviewed for the year, poor, near-poor, middle (farming,
    forestry, fishery and salt-making households only), not poor, and not
    yet scorable; the poverty rate (tỷ lệ hộ nghèo: poor / households) and
    the multidimensional poverty rate (tỷ lệ nghèo đa chiều: poor and
    near-poor / households); by village, by the head's ethnicity
    (minority, kinh, unknown) and by area (rural, urban);
  - each indicator's share of all households and of the poor;
  - the Alkire–Foster measures H, A and M0;
  - the households decided for the year against their decided result the
    year before: left poverty, left near-poverty, newly poor, newly
    near-poor, near-poor fallen into poverty;
  - the year's reviews by village, collaborator and status, and how many
    regular reviews are past their 15 days.

The figures are computed in the server's database, not on this device.

Flags:

  --unit CODE         the commune or village code (mã đơn vị)
  --year YYYY         the list year
  --db F              the enrolled file (default tablet.db)
` + netFlagsUsage + `  --timeout D         give up after D (default 1m)
  --json              print the ReportResponse as protobuf JSON
  --csv               print the counts as CSV (UTF-8 with a byte-order
                      mark, Vietnamese headings), one group a row
  --xlsx FILE         write the report as an Excel workbook, one sheet a
                      table (overall, by commune, village, ethnicity and
                      area, indicators, progress, transitions); - for
                      standard output

Exit status: 0 when printed; 1 when the unit is not yours or unknown, or a
value is invalid; 2 for bad usage, a device not enrolled, or a server that
cannot be reached.
`

func runReport(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "report", usage: reportUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	unit := fs.String("unit", "", "")
	year := fs.Int("year", 0, "")
	out := v.exportFlags(fs, true)
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	if *unit == "" || *year == 0 {
		return v.usageError(fmt.Errorf("--unit and --year are required"))
	}
	if err := out.check(); err != nil {
		return v.usageError(err)
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
	res, err := rasoatv1.NewReportServiceClient(cl.conn).Report(actx, &rasoatv1.ReportRequest{UnitCode: *unit, ListYear: int32(*year)})
	if err != nil {
		return cl.fail(err, func(f string) string {
			return map[string]string{"unit_code": "--unit", "list_year": "--year"}[f]
		})
	}
	switch {
	case out.csv:
		return v.writeCSV(export.ReportCounts(res))
	case out.xlsx != "":
		return v.writeWorkbook(out.xlsx, export.ReportSheets(res)...)
	}
	if out.json {
		b, err := protojson.Marshal(res)
		if err != nil {
			return v.fail(err)
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return exitOK
	}
	writeReport(stdout, res)
	return exitOK
}

// rate writes a rate with two decimals: a province's rate of 0.13 % must
// not print as 0.1 %.
func rate(x float64) string { return strconv.FormatFloat(100*x, 'f', 2, 64) + "%" }

// writeReport prints the report as tables with Vietnamese headings.
func writeReport(w io.Writer, r *rasoatv1.ReportResponse) {
	fmt.Fprintf(w, "Báo cáo kết quả rà soát — đơn vị %s, danh sách năm %d\n\n", r.GetUnitCode(), r.GetListYear())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NHÓM\tSỐ HỘ\tĐÃ RÀ SOÁT\tHỘ NGHÈO\tCẬN NGHÈO\tTRUNG BÌNH\tKHÔNG NGHÈO\tCHƯA ĐỦ TT\tTỶ LỆ NGHÈO\tNGHÈO ĐA CHIỀU\t")
	row := func(key string, c *rasoatv1.ReportCounts) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", key, c.GetHouseholds(), c.GetReviewed(), c.GetPoor(), c.GetNearPoor(),
			c.GetMiddle(), c.GetNotPoor(), c.GetUnscored(), rate(c.GetPovertyRate()), rate(c.GetMultidimensionalPovertyRate()))
	}
	row("Tổng (total)", r.GetTotal())
	for _, b := range r.GetByVillage() {
		row("thôn "+b.GetKey(), b.GetCounts())
	}
	names := map[string]string{"minority": "chủ hộ DTTS (minority)", "kinh": "chủ hộ Kinh", "unknown": "dân tộc chưa rõ", "rural": "nông thôn (rural)", "urban": "thành thị (urban)"}
	for _, b := range append(r.GetByEthnicity(), r.GetByArea()...) {
		row(names[b.GetKey()], b.GetCounts())
	}
	tw.Flush()
	if af := r.GetAlkireFoster(); af != nil {
		fmt.Fprintf(w, "\nAlkire–Foster: H %.4f  A %.4f  M0 %.4f\n", af.GetH(), af.GetA(), af.GetM0())
	}
	fmt.Fprintln(w, "\nChỉ số thiếu hụt (indicators):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CHỈ SỐ\tSỐ HỘ THIẾU\tTỶ LỆ\tHỘ NGHÈO THIẾU\tTỶ LỆ TRONG HỘ NGHÈO\t")
	for _, in := range r.GetIndicators() {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t\n", in.GetIndicator(), in.GetDeprived(), rate(in.GetShare()), in.GetDeprivedPoor(), rate(in.GetShareOfPoor()))
	}
	tw.Flush()
	if ts := r.GetTransitionSummary(); len(r.GetTransitions()) > 0 {
		fmt.Fprintf(w, "\nSo với danh sách năm %d (against the year before): thoát nghèo %d, thoát cận nghèo %d, nghèo phát sinh %d, cận nghèo phát sinh %d, cận nghèo rơi xuống nghèo %d\n",
			r.GetListYear()-1, ts.GetLeftPoverty(), ts.GetLeftNearPoverty(), ts.GetNewlyPoor(), ts.GetNewlyNearPoor(), ts.GetNearPoorToPoor())
	}
	if len(r.GetProgress()) > 0 {
		fmt.Fprintln(w, "\nTiến độ rà soát (progress):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "THÔN\tRÀ SOÁT VIÊN\tTRẠNG THÁI\tSỐ PHIẾU\tQUÁ HẠN\t")
		for _, p := range r.GetProgress() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t\n", p.GetVillageCode(), p.GetCollaborator(), p.GetStatus(), p.GetReviews(), p.GetOverdue())
		}
		tw.Flush()
	}
}
