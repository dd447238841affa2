package export

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/xuri/excelize/v2"
)

// The figures below are a commune of 40 households in two villages, set
// by hand; every rate the tests expect is computed here from the counts.
func countsOf(households, reviewed, poor, near, middle, notPoor, unscored int32) *rasoatv1.ReportCounts {
	return &rasoatv1.ReportCounts{Households: households, Reviewed: reviewed, Poor: poor, NearPoor: near, Middle: middle, NotPoor: notPoor, Unscored: unscored,
		PovertyRate: float64(poor) / float64(households), MultidimensionalPovertyRate: float64(poor+near) / float64(households)}
}

func commune() *rasoatv1.ReportResponse {
	return &rasoatv1.ReportResponse{
		UnitCode: "06517", ListYear: 2026,
		Total:       countsOf(40, 38, 6, 9, 3, 21, 1),
		ByVillage:   []*rasoatv1.ReportBreakdown{{Key: "06517-01", Counts: countsOf(25, 24, 5, 6, 2, 11, 1)}, {Key: "06517-02", Counts: countsOf(15, 14, 1, 3, 1, 10, 0)}},
		ByEthnicity: []*rasoatv1.ReportBreakdown{{Key: "minority", Counts: countsOf(30, 29, 6, 8, 2, 13, 1)}, {Key: "kinh", Counts: countsOf(10, 9, 0, 1, 1, 8, 0)}},
		ByArea:      []*rasoatv1.ReportBreakdown{{Key: "rural", Counts: countsOf(40, 38, 6, 9, 3, 21, 1)}},
		Indicators: []*rasoatv1.IndicatorShare{
			{Indicator: "LATRINE", Deprived: 12, Share: 12.0 / 39, DeprivedPoor: 6, ShareOfPoor: 1},
			{Indicator: "HEALTH_INSURANCE", Deprived: 3, Share: 3.0 / 39, DeprivedPoor: 2, ShareOfPoor: 2.0 / 6},
		},
		AlkireFoster: &rasoatv1.AlkireFoster{H: 6.0 / 39, A: 0.3125, M0: 6.0 / 39 * 0.3125},
		Progress: []*rasoatv1.ReviewProgress{
			{VillageCode: "06517-01", Collaborator: "hoa", Status: "decided", Reviews: 24},
			{VillageCode: "06517-02", Collaborator: "lan", Status: "posted", Reviews: 14, Overdue: 2},
		},
		Transitions: []*rasoatv1.ResultTransition{{From: "POOR", To: "NEAR_POOR", Households: 2}, {From: "", To: "POOR", Households: 1},
			{From: "", To: "POOR", Households: 1, PoorEarlier: true}},
		TransitionSummary: &rasoatv1.TransitionSummary{LeftPoverty: 2, NewlyPoor: 1, FellBackIntoPoverty: 1},
		ProgressTotal:     &rasoatv1.ProgressSummary{Listed: 40, NotStarted: 2, Draft: 3, Surveyed: 35, Submitted: 30, Returned: 1, Decided: 24, Overdue: 2},
		ProgressByVillage: []*rasoatv1.ProgressSummary{{Key: "06517-01", Listed: 25, Decided: 24}},
		Targets: []*rasoatv1.TargetProgress{
			{UnitCode: "06517", Kind: rasoatv1.TargetKind_TARGET_KIND_POOR_REDUCED, Target: 8, Achieved: 3, Before: 9, Now: 6, Status: rasoatv1.TargetStatus_TARGET_STATUS_NOT_MET},
			{UnitCode: "06517", Kind: rasoatv1.TargetKind_TARGET_KIND_INDICATOR, Indicators: []string{"WATER"}, Label: "Nước hợp vệ sinh", Target: 0.99, Achieved: 1, Before: 6, Now: 6, Status: rasoatv1.TargetStatus_TARGET_STATUS_MET},
		},
		WatchList: []*rasoatv1.WatchedHousehold{{HouseholdId: "h1", HeadName: "Lò Văn Páo", VillageCode: "06517-01", Classification: "MIDDLE", IncomePerCapita: 1700000, Line: 1500000,
			Deprivations: 2, Deprived: []string{"EMPLOYMENT", "HOUSING_AREA"}, Reasons: []rasoatv1.WatchReason{rasoatv1.WatchReason_WATCH_REASON_NEAR_LINE, rasoatv1.WatchReason_WATCH_REASON_DEPRIVED}}},
		WatchTotal: 1,
	}
}

func xlsxOf(t *testing.T, tables ...Table) *excelize.File {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteXLSX(&buf, tables...); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatalf("the workbook does not open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func rows(t *testing.T, f *excelize.File, sheet string) [][]string {
	t.Helper()
	rs, err := f.GetRows(sheet)
	if err != nil {
		t.Fatalf("sheet %q: %v", sheet, err)
	}
	return rs
}

// raw is a cell's stored value and whether it is stored as a number.
func raw(t *testing.T, f *excelize.File, sheet, cell string) (string, bool) {
	t.Helper()
	v, err := f.GetCellValue(sheet, cell, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := f.GetCellType(sheet, cell)
	if err != nil {
		t.Fatal(err)
	}
	return v, ct == excelize.CellTypeNumber || ct == excelize.CellTypeUnset && v != ""
}

func pct(x float64) string { return strconv.FormatFloat(100*x, 'f', 2, 64) + "%" }

func TestReportWorkbookHasASheetPerTable(t *testing.T) {
	r := commune()
	// The server gives a commune's report its one commune, itself.
	r.ByCommune = []*rasoatv1.ReportBreakdown{{Key: "06517", Counts: r.GetTotal()}}
	f := xlsxOf(t, ReportSheets(r)...)
	want := []string{"Tổng hợp", "Theo thôn", "Theo dân tộc chủ hộ", "Theo khu vực", "Chỉ số thiếu hụt", "Tiến độ rà soát", "Phiếu theo trạng thái", "Biến động", "Tổng hợp biến động", "Chỉ tiêu", "Hộ có nguy cơ"}
	if got := f.GetSheetList(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sheets %q; want %q", got, want)
	}
	counts := []string{"Số hộ", "Đã rà soát", "Hộ nghèo", "Hộ cận nghèo", "Hộ có mức sống trung bình", "Không thuộc các diện trên", "Chưa đủ thông tin", "Tỷ lệ hộ nghèo (%)", "Tỷ lệ nghèo đa chiều (%)"}

	overall := rows(t, f, "Tổng hợp")
	if h := overall[0]; strings.Join(h[:2], "|") != "Đơn vị|Năm danh sách" || strings.Join(h[2:11], "|") != strings.Join(counts, "|") || h[13] != "M0 = H × A" {
		t.Errorf("overall headings %q", h)
	}
	wantOverall := []string{"06517", "2026", "40", "38", "6", "9", "3", "21", "1", pct(6.0 / 40), pct(15.0 / 40), "0.1538", "0.3125", "0.0481"}
	if got := overall[1]; strings.Join(got, "|") != strings.Join(wantOverall, "|") {
		t.Errorf("overall row %q; want %q", got, wantOverall)
	}
	// Counts and rates are numbers, a rate the fraction itself.
	for cell, want := range map[string]string{"B2": "2026", "C2": "40", "E2": "6", "J2": strconv.FormatFloat(6.0/40, 'f', -1, 64)} {
		if v, num := raw(t, f, "Tổng hợp", cell); v != want || !num {
			t.Errorf("overall %s stored %q (number %v); want the number %s", cell, v, num, want)
		}
	}
	if v, num := raw(t, f, "Tổng hợp", "A2"); v != "06517" || num {
		t.Errorf("the unit code is stored %q (number %v); want the text 06517, its leading zero kept", v, num)
	}

	village := rows(t, f, "Theo thôn")
	if len(village) != 3 || village[0][0] != "Thôn" || village[1][0] != "06517-01" || village[2][3] != "1" || village[2][8] != pct(1.0/15) {
		t.Errorf("by village %q", village)
	}
	eth := rows(t, f, "Theo dân tộc chủ hộ")
	if len(eth) != 3 || eth[1][0] != "Chủ hộ là người dân tộc thiểu số" || eth[2][0] != "Chủ hộ là người Kinh" || eth[1][9] != pct(14.0/30) {
		t.Errorf("by ethnicity %q", eth)
	}
	area := rows(t, f, "Theo khu vực")
	if len(area) != 2 || area[1][0] != "Nông thôn" || area[1][1] != "40" {
		t.Errorf("by area %q", area)
	}
	ind := rows(t, f, "Chỉ số thiếu hụt")
	if len(ind) != 3 || strings.Join(ind[0], "|") != "Mã chỉ số|Chỉ số|Số hộ thiếu hụt|Tỷ lệ trên tổng số hộ (%)|Số hộ nghèo thiếu hụt|Tỷ lệ trong hộ nghèo (%)" ||
		ind[1][0] != "LATRINE" || ind[1][1] == "" || ind[1][3] != pct(12.0/39) || ind[1][5] != "100.00%" || ind[2][5] != pct(2.0/6) {
		t.Errorf("indicators %q", ind)
	}
	funnel := rows(t, f, "Tiến độ rà soát")
	if len(funnel) != 3 || strings.Join(funnel[1], "|") != "tổng||40|2|3|35|30|1|24|0|2" || strings.Join(funnel[2][:3], "|") != "thôn|06517-01|25" {
		t.Errorf("progress %q", funnel)
	}
	prog := rows(t, f, "Phiếu theo trạng thái")
	if len(prog) != 3 || prog[1][2] != "đã công nhận" || prog[2][2] != "niêm yết công khai" || prog[2][4] != "2" {
		t.Errorf("progress %q", prog)
	}
	tr := rows(t, f, "Biến động")
	if len(tr) != 4 || strings.Join(tr[0], "|") != "Kết quả năm 2025|Kết quả năm 2026|Từng là hộ nghèo trước năm 2025|Số hộ" ||
		strings.Join(tr[2], "|") != "chưa được công nhận|hộ nghèo||1" || strings.Join(tr[3], "|") != "chưa được công nhận|hộ nghèo|có|1" {
		t.Errorf("transitions %q", tr)
	}
	sum := rows(t, f, "Tổng hợp biến động")
	if len(sum) != 7 || strings.Join(sum[1], "|") != "Hộ thoát nghèo|2" || strings.Join(sum[3], "|") != "Hộ nghèo phát sinh|1" || strings.Join(sum[6], "|") != "Hộ tái nghèo|1" {
		t.Errorf("transition summary %q", sum)
	}
	tg := rows(t, f, "Chỉ tiêu")
	if len(tg) != 3 || strings.Join(tg[1], "|") != "06517|giảm số hộ nghèo||hộ|8.0000|3.0000|9.0000|6.0000|chưa đạt" ||
		tg[2][1] != "Nước hợp vệ sinh" || tg[2][2] != "WATER" || tg[2][8] != "đạt" {
		t.Errorf("targets %q", tg)
	}
	if v, num := raw(t, f, "Chỉ tiêu", "E2"); v != "8" || !num {
		t.Errorf("a target is stored %q (number %v); want the number 8", v, num)
	}
	w := rows(t, f, "Hộ có nguy cơ")
	if len(w) != 2 || strings.Join(w[1], "|") != "h1|Lò Văn Páo|06517-01|"+workflow.ResultName("MIDDLE")+"|1700000|1500000|2|EMPLOYMENT, HOUSING_AREA|thu nhập sát chuẩn; thiếu hụt nhiều chỉ số" {
		t.Errorf("watch list %q", w)
	}
}

func TestProvinceReportWorkbookHasTheCommunes(t *testing.T) {
	r := commune()
	r.UnitCode = "20"
	r.ByCommune = []*rasoatv1.ReportBreakdown{{Key: "06517", Counts: countsOf(40, 38, 6, 9, 3, 21, 1)}, {Key: "06520", Counts: countsOf(200, 180, 30, 20, 0, 150, 0)}}
	f := xlsxOf(t, ReportSheets(r)...)
	if got := f.GetSheetList(); len(got) != 12 || got[1] != "Theo xã" {
		t.Fatalf("sheets %q; want by commune second", got)
	}
	c := rows(t, f, "Theo xã")
	if len(c) != 3 || c[0][0] != "Xã" || c[2][0] != "06520" || c[2][1] != "200" || c[2][9] != pct(50.0/200) {
		t.Errorf("by commune %q", c)
	}
}

func readCSV(t *testing.T, tbl Table) [][]string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteCSV(&buf, tbl); err != nil {
		t.Fatal(err)
	}
	s, ok := strings.CutPrefix(buf.String(), "\ufeff")
	if !ok {
		t.Fatal("the CSV does not begin with a byte-order mark: a spreadsheet would garble its headings")
	}
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v", err)
	}
	return recs
}

func TestReportCSVIsOneGroupARow(t *testing.T) {
	recs := readCSV(t, ReportCounts(commune()))
	if len(recs) != 1+1+2+2+1 {
		t.Fatalf("%d records; want a header, the total, 2 villages, 2 ethnicities, 1 area:\n%q", len(recs), recs)
	}
	if strings.Join(recs[0], "|") != "Đơn vị|Năm danh sách|Nhóm|Khóa|Số hộ|Đã rà soát|Hộ nghèo|Hộ cận nghèo|Hộ có mức sống trung bình|Không thuộc các diện trên|Chưa đủ thông tin|Tỷ lệ hộ nghèo (%)|Tỷ lệ nghèo đa chiều (%)" {
		t.Errorf("header %q", recs[0])
	}
	want := [][]string{
		{"06517", "2026", "tổng", "", "40", "38", "6", "9", "3", "21", "1", "15.00", "37.50"},
		{"06517", "2026", "thôn", "06517-02", "15", "14", "1", "3", "1", "10", "0", fmt.Sprintf("%.2f", 100.0/15), fmt.Sprintf("%.2f", 400.0/15)},
		{"06517", "2026", "dân tộc chủ hộ", "minority", "30", "29", "6", "8", "2", "13", "1", "20.00", fmt.Sprintf("%.2f", 1400.0/30)},
	}
	for i, w := range want {
		got := recs[[]int{1, 3, 4}[i]]
		if strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("record %q; want %q", got, w)
		}
	}
}

// decision: four households decided in 125/QĐ-UBND: one poor, one near-poor
// who was poor (on two lists), one who left near-poverty, one poor again.
func decision() workflow.DecisionList {
	hh := func(n int, result, before string) workflow.DecidedHousehold {
		return workflow.DecidedHousehold{ReviewID: fmt.Sprintf("r%d", n), HouseholdID: fmt.Sprintf("h%d", n), VillageCode: "06517-01", Year: 2026,
			Result: result, Before: before, Seal: strings.Repeat(strconv.Itoa(n), 64)}
	}
	d := workflow.DecisionList{Number: "125/QĐ-UBND", Date: "2025-12-10", Lists: map[string][]workflow.DecidedHousehold{}, Digest: strings.Repeat("d", 64), Changed: []string{"h3"}}
	for _, h := range []workflow.DecidedHousehold{hh(1, "POOR", ""), hh(2, "NEAR_POOR", "POOR"), hh(3, "NOT_POOR", "NEAR_POOR"), hh(4, "POOR", "POOR")} {
		for _, l := range workflow.ListsOf(h.Before, h.Result) {
			d.Lists[l] = append(d.Lists[l], h)
		}
	}
	return d
}

func TestDecisionWorkbookHasASheetPerList(t *testing.T) {
	f := xlsxOf(t, DecisionSheets(decision())...)
	want := []string{"Danh sách hộ nghèo", "Danh sách hộ cận nghèo", "Danh sách hộ thoát nghèo", "Danh sách hộ thoát cận nghèo", "Mã kiểm tra"}
	if got := f.GetSheetList(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sheets %q; want %q", got, want)
	}
	poor := rows(t, f, "Danh sách hộ nghèo")
	if strings.Join(poor[0], "|") != "STT|Mã hộ|Thôn|Năm danh sách|Kết quả|Kết quả năm trước|Mã rà soát|Dấu niêm phong" {
		t.Errorf("headings %q", poor[0])
	}
	if len(poor) != 3 || strings.Join(poor[1][:6], "|") != "1|h1|06517-01|2026|hộ nghèo|" || strings.Join(poor[2][:6], "|") != "2|h4|06517-01|2026|hộ nghèo|hộ nghèo" {
		t.Errorf("poor list %q", poor)
	}
	if v, num := raw(t, f, "Danh sách hộ nghèo", "D3"); v != "2026" || !num {
		t.Errorf("the list year is stored %q (number %v)", v, num)
	}
	left := rows(t, f, "Danh sách hộ thoát nghèo")
	if len(left) != 2 || left[1][1] != "h2" || left[1][4] != "hộ cận nghèo" {
		t.Errorf("left poverty %q; want the poor household now near-poor", left)
	}
	if near := rows(t, f, "Danh sách hộ cận nghèo"); len(near) != 2 || near[1][1] != "h2" {
		t.Errorf("near-poor %q; want the same household", near)
	}
	if ln := rows(t, f, "Danh sách hộ thoát cận nghèo"); len(ln) != 2 || ln[1][1] != "h3" || ln[1][4] != "không thuộc các diện trên" {
		t.Errorf("left near-poverty %q", ln)
	}
	dg := rows(t, f, "Mã kiểm tra")
	if len(dg) != 5 || dg[1][1] != "125/QĐ-UBND" || dg[3][1] != strings.Repeat("d", 64) || strings.Join(dg[4], "|") != "Hộ đã thay đổi sau quyết định|h3" {
		t.Errorf("digest sheet %q", dg)
	}
}

func TestDecisionCSVIsOneHouseholdARow(t *testing.T) {
	recs := readCSV(t, DecisionRows(decision()))
	// 4 households, one of them on two lists.
	if len(recs) != 6 || recs[0][0] != "Số quyết định" {
		t.Fatalf("records %q", recs)
	}
	lists := []string{}
	for _, r := range recs[1:] {
		lists = append(lists, r[2]+":"+r[3])
	}
	if got := strings.Join(lists, " "); got != "Danh sách hộ nghèo:h1 Danh sách hộ nghèo:h4 Danh sách hộ cận nghèo:h2 Danh sách hộ thoát nghèo:h2 Danh sách hộ thoát cận nghèo:h3" {
		t.Errorf("lists in order %s", got)
	}
}

func posted() workflow.PostedList {
	return workflow.PostedList{Unit: "06517", Lists: map[string][]workflow.PostedHousehold{
		workflow.ListPoor: {{ReviewID: "r1", HouseholdID: "h1", VillageCode: "06517-01", HeadName: "Lò Văn Páo", Address: "Bản Nà Pàn", Year: 2026,
			Round: "periodic", Status: workflow.Posted, Result: "POOR", Deprivations: 4, IncomePerCapita: 1_000_000, Since: "2025-11-03", PostedOn: "2025-11-03", ComplaintsUntil: "2025-11-17"}},
		workflow.ListNearPoor: {{ReviewID: "r2", HouseholdID: "h2", VillageCode: "06517-02", HeadName: "Vi Thị Mai", Year: 2026,
			Status: workflow.Rechecking, Result: "NEAR_POOR", Deprivations: 1, IncomePerCapita: 1_400_000, Since: "2025-11-05"}},
		workflow.ListUnscored: {{ReviewID: "r3", HouseholdID: "h3", VillageCode: "06517-02", HeadName: "Hà Văn Tùng", Year: 2026,
			Status: workflow.Posted, Problem: "members[0].birthDate: missing"}},
	}}
}

func TestPostedListAsCSVAndWorkbook(t *testing.T) {
	wantHead := "STT|Danh sách|Họ tên chủ hộ|Địa chỉ|Thôn|Năm danh sách|Kết quả dự kiến|Kết quả năm trước|Số chỉ số thiếu hụt|Thu nhập bình quân (đồng/người/tháng)|Trạng thái|Ngày niêm yết|Hạn cuối nhận khiếu nại|Ghi chú|Mã hộ|Mã rà soát"
	want := [][]string{
		{"1", "Danh sách hộ nghèo", "Lò Văn Páo", "Bản Nà Pàn", "06517-01", "2026", "hộ nghèo", "", "4", "1000000", "niêm yết công khai", "2025-11-03", "2025-11-17", "", "h1", "r1"},
		{"2", "Danh sách hộ cận nghèo", "Vi Thị Mai", "", "06517-02", "2026", "hộ cận nghèo", "", "1", "1400000", "phúc tra", "", "", "", "h2", "r2"},
		{"3", "Hộ chưa đủ thông tin để xếp loại", "Hà Văn Tùng", "", "06517-02", "2026", "", "", "", "", "niêm yết công khai", "", "", "members[0].birthDate: missing", "h3", "r3"},
	}
	recs := readCSV(t, Posted(posted()))
	if len(recs) != 4 || strings.Join(recs[0], "|") != wantHead {
		t.Fatalf("CSV %q", recs)
	}
	for i, w := range want {
		if strings.Join(recs[i+1], "|") != strings.Join(w, "|") {
			t.Errorf("CSV record %q; want %q", recs[i+1], w)
		}
	}
	f := xlsxOf(t, Posted(posted()))
	if got := f.GetSheetList(); len(got) != 1 || got[0] != "Danh sách niêm yết" {
		t.Fatalf("sheets %q", got)
	}
	rs := rows(t, f, "Danh sách niêm yết")
	if len(rs) != 4 || strings.Join(rs[0], "|") != wantHead {
		t.Fatalf("workbook rows %q", rs)
	}
	for i, w := range want {
		// GetRows drops a row's trailing empty cells; the ids end every row.
		if strings.Join(rs[i+1], "|") != strings.Join(w, "|") {
			t.Errorf("workbook row %q; want %q", rs[i+1], w)
		}
	}
	if v, num := raw(t, f, "Danh sách niêm yết", "J2"); v != "1000000" || !num {
		t.Errorf("the income is stored %q (number %v); want the number", v, num)
	}
}

func TestAValueOfTheWrongKindIsRefused(t *testing.T) {
	tbl := Of("x", []Column{{"Số hộ", Int}}, [][]any{{"12"}})
	if err := WriteCSV(&bytes.Buffer{}, tbl); err == nil || !strings.Contains(err.Error(), `column "Số hộ"`) {
		t.Errorf("CSV: %v; want the column named", err)
	}
	if err := WriteXLSX(&bytes.Buffer{}, tbl); err == nil || !strings.Contains(err.Error(), `column "Số hộ"`) {
		t.Errorf("workbook: %v; want the column named", err)
	}
	short := Of("x", []Column{{"A", Text}, {"B", Text}}, [][]any{{"a"}})
	if err := WriteXLSX(&bytes.Buffer{}, short); err == nil || !strings.Contains(err.Error(), "1 values for 2 columns") {
		t.Errorf("a short row: %v", err)
	}
}

// A text a collaborator typed that a spreadsheet would run as a formula
// stays text in the CSV; the workbook stores it as text as it is.
func TestCSVTextNeverRunsAsAFormula(t *testing.T) {
	tbl := Of("x", []Column{{"Tên chủ hộ", Text}, {"Số hộ", Int}}, [][]any{
		{`=HYPERLINK("http://x","bấm")`, 1}, {"+84 912", 2}, {"-1", 3}, {"@SUM(A1)", 4}, {"Lò Văn Páo", 5},
	})
	got := readCSV(t, tbl)
	for i, want := range []string{`'=HYPERLINK("http://x","bấm")`, "'+84 912", "'-1", "'@SUM(A1)", "Lò Văn Páo"} {
		if got[i+1][0] != want {
			t.Errorf("row %d: %q; want %q", i+1, got[i+1][0], want)
		}
	}
	f := xlsxOf(t, tbl)
	if v, _ := f.GetCellValue("x", "A2"); v != `=HYPERLINK("http://x","bấm")` {
		t.Errorf("the workbook's text cell %q; want the text as typed", v)
	}
}
