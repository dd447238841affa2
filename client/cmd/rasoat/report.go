package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rasoat/rasoat/internal/export"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/report/targets"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/encoding/protojson"
)

const reportUsage = `Usage: rasoat report --unit CODE --year YYYY [--targets FILE] [--watch N] [--db F] [--server HOST:PORT] [--ca FILE | --tls] [--json | --csv]

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
    near-poor, near-poor fallen into poverty, and fallen back into poverty
    (tái nghèo: poor in an earlier year);
  - the year's reviews by village and by collaborator: households listed,
    not started, in draft, surveyed, submitted, returned, decided, refused,
    and regular reviews past their 15 days;
  - with --targets, each target of the province's file for the unit or a
    unit under it: the target, what was achieved against the results
    decided the year before (or the share of poor households deprived in
    none of the indicators), met or not;
  - the watch list (hộ có nguy cơ rơi vào nghèo): households middle or not
    poor with income at most 20 % above the line, or deprived in 2
    indicators or more but fewer than the standard's threshold, most at
    risk first.

The figures are computed in the server's database, not on this device.

Flags:

  --unit CODE         the commune or village code (mã đơn vị)
  --year YYYY         the list year
  --targets FILE      the province's targets (CSV: mã đơn vị,chỉ tiêu,giá
                      trị,ghi chú; see examples/targets/), checked here,
                      each error naming its line
  --watch N           list at most N households of the watch list
                      (default 100, at most 1000; all are counted)
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
	targetsFile := fs.String("targets", "", "")
	watch := fs.Int("watch", 0, "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	if *unit == "" || *year == 0 {
		return v.usageError(fmt.Errorf("--unit and --year are required"))
	}
	if err := out.check(); err != nil {
		return v.usageError(err)
	}
	if *watch < 0 || *watch > 1000 {
		return v.usageError(fmt.Errorf("--watch %d: want 0 (the server's default) to 1000", *watch))
	}
	var tg *rasoatv1.ReportTargets
	if *targetsFile != "" {
		f, err := os.Open(*targetsFile)
		if err != nil {
			return v.usageError(fmt.Errorf("--targets: %w", err))
		}
		tg, err = targets.ReadCSV(f, targets.Known(survey.Builtin()))
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "rasoat report: %s: %v\n", *targetsFile, err)
			return exitInvalid
		}
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
	res, err := rasoatv1.NewReportServiceClient(cl.conn).Report(actx, &rasoatv1.ReportRequest{UnitCode: *unit, ListYear: int32(*year), Targets: tg, WatchLimit: int32(*watch)})
	if err != nil {
		return cl.fail(err, func(f string) string {
			if flag, ok := map[string]string{"unit_code": "--unit", "list_year": "--year", "watch_limit": "--watch"}[f]; ok {
				return flag
			}
			return "--targets " + f
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
	if p := r.GetPreviousYear(); p.GetDecided() > 0 {
		fmt.Fprintf(w, "\nDanh sách năm %d đã quyết định (the year before, decided): %d hộ, hộ nghèo %d, cận nghèo %d\n", p.GetListYear(), p.GetDecided(), p.GetPoor(), p.GetNearPoor())
	}
	if ts := r.GetTransitionSummary(); len(r.GetTransitions()) > 0 {
		fmt.Fprintf(w, "\nSo với danh sách năm %d (against the year before): thoát nghèo %d, thoát cận nghèo %d, nghèo phát sinh %d, cận nghèo phát sinh %d, cận nghèo rơi xuống nghèo %d, tái nghèo %d\n",
			r.GetListYear()-1, ts.GetLeftPoverty(), ts.GetLeftNearPoverty(), ts.GetNewlyPoor(), ts.GetNewlyNearPoor(), ts.GetNearPoorToPoor(), ts.GetFellBackIntoPoverty())
	}
	writeProgress(w, r)
	writeTargets(w, r)
	writeWatchList(w, r)
}

// writeProgress prints the review funnel: the unit, each village, each
// collaborator.
func writeProgress(w io.Writer, r *rasoatv1.ReportResponse) {
	if r.GetProgressTotal().GetListed() == 0 {
		return
	}
	fmt.Fprintln(w, "\nTiến độ rà soát (progress):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tSỐ HỘ\tCHƯA RÀ SOÁT\tĐANG NHẬP\tĐÃ KHẢO SÁT\tĐÃ NỘP\tTRẢ LẠI\tĐÃ QUYẾT ĐỊNH\tTỪ CHỐI\tQUÁ HẠN\t")
	row := func(key string, p *rasoatv1.ProgressSummary) {
		listed, notStarted := strconv.Itoa(int(p.GetListed())), strconv.Itoa(int(p.GetNotStarted()))
		if strings.HasPrefix(key, "rà soát viên") {
			listed, notStarted = "", "" // a collaborator's reviews, not a village's households
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", key, listed, notStarted, p.GetDraft(), p.GetSurveyed(), p.GetSubmitted(),
			p.GetReturned(), p.GetDecided(), p.GetRefused(), p.GetOverdue())
	}
	row("Tổng (total)", r.GetProgressTotal())
	for _, p := range r.GetProgressByVillage() {
		row("thôn "+p.GetKey(), p)
	}
	for _, p := range r.GetProgressByCollaborator() {
		row("rà soát viên "+p.GetKey(), p)
	}
	tw.Flush()
}

// writeTargets prints each target, what was achieved and whether it is met.
func writeTargets(w io.Writer, r *rasoatv1.ReportResponse) {
	if len(r.GetTargets()) == 0 && r.GetTargetsOutside() == 0 {
		return
	}
	fmt.Fprintf(w, "\nChỉ tiêu (targets), so với kết quả đã quyết định năm %d:\n", r.GetListYear()-1)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ĐƠN VỊ\tCHỈ TIÊU\tMỤC TIÊU\tĐẠT ĐƯỢC\tTRƯỚC → NAY\tKẾT QUẢ")
	for _, t := range r.GetTargets() {
		name, target, achieved, figures := export.TargetName(t), "", "", ""
		switch t.GetKind() {
		case rasoatv1.TargetKind_TARGET_KIND_POVERTY_RATE_REDUCTION:
			target, achieved = fmt.Sprintf("%.2f điểm", t.GetTarget()), fmt.Sprintf("%.2f điểm", t.GetAchieved())
			figures = rate(t.GetBefore()) + " → " + rate(t.GetNow())
		case rasoatv1.TargetKind_TARGET_KIND_INDICATOR:
			target, achieved = rate(t.GetTarget()), rate(t.GetAchieved())
			figures = fmt.Sprintf("%d/%d hộ nghèo không thiếu hụt", int(t.GetNow()), int(t.GetBefore()))
		default:
			target, achieved = fmt.Sprintf("%d hộ", int(t.GetTarget())), fmt.Sprintf("%d hộ", int(t.GetAchieved()))
			figures = fmt.Sprintf("%d → %d hộ", int(t.GetBefore()), int(t.GetNow()))
		}
		verdict := export.TargetVerdict(t)
		if t.GetStatus() == rasoatv1.TargetStatus_TARGET_STATUS_NOT_APPLICABLE {
			achieved, figures = "", ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.GetUnitCode(), name, target, achieved, figures, verdict)
	}
	tw.Flush()
	if n := r.GetTargetsOutside(); n > 0 {
		fmt.Fprintf(w, "%d chỉ tiêu của đơn vị khác (for units outside %s) không tính ở đây\n", n, r.GetUnitCode())
	}
}

// writeWatchList prints the households at risk of falling into poverty.
func writeWatchList(w io.Writer, r *rasoatv1.ReportResponse) {
	fmt.Fprintf(w, "\nHộ có nguy cơ rơi vào nghèo (watch list): %d hộ", r.GetWatchTotal())
	if n := len(r.GetWatchList()); n < int(r.GetWatchTotal()) {
		fmt.Fprintf(w, ", %d đầu tiên (the first %d; --watch N for more)", n, n)
	}
	fmt.Fprintln(w)
	if len(r.GetWatchList()) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HỘ\tCHỦ HỘ\tTHÔN\tPHÂN LOẠI\tTHU NHẬP/NGƯỜI/THÁNG\tCHUẨN\tTHIẾU HỤT\tLÝ DO")
	for _, h := range r.GetWatchList() {
		why := export.WatchReasons(h)
		income := vnd(h.GetIncomePerCapita())
		if h.GetIncomePerCapita() == 0 {
			income = "(điểm A)" // scored on the form's score A
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.GetHouseholdId(), oneLine(h.GetHeadName()), h.GetVillageCode(), h.GetClassification(), income,
			vnd(h.GetLine()), strings.Join(h.GetDeprived(), ", "), strings.Join(why, "; "))
	}
	tw.Flush()
}
