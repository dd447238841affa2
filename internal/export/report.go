package export

import (
	"strconv"

	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
)

// countColumns are a group's counts and rates (ReportCounts).
var countColumns = []Column{
	{"Số hộ", Int}, {"Đã rà soát", Int}, {"Hộ nghèo", Int}, {"Hộ cận nghèo", Int},
	{"Hộ có mức sống trung bình", Int}, {"Không thuộc các diện trên", Int}, {"Chưa đủ thông tin", Int},
	{"Tỷ lệ hộ nghèo (%)", Percent}, {"Tỷ lệ nghèo đa chiều (%)", Percent},
}

func counts(c *rasoatv1.ReportCounts) []any {
	return []any{c.GetHouseholds(), c.GetReviewed(), c.GetPoor(), c.GetNearPoor(), c.GetMiddle(), c.GetNotPoor(), c.GetUnscored(),
		c.GetPovertyRate(), c.GetMultidimensionalPovertyRate()}
}

// groupNames are the report's breakdown keys as an officer reads them.
var groupNames = map[string]string{
	"minority": "Chủ hộ là người dân tộc thiểu số", "kinh": "Chủ hộ là người Kinh", "unknown": "Chưa rõ dân tộc của chủ hộ",
	"rural": "Nông thôn", "urban": "Thành thị",
}

func groupName(key string) string {
	if n, ok := groupNames[key]; ok {
		return n
	}
	return key
}

// ReportCounts is the report's counts as one table, one group a row (the
// total, each commune, village, ethnicity and area): what `rasoat report
// --csv` writes. Its group column holds "tổng", "xã", "thôn", "dân tộc
// chủ hộ" or "khu vực", its key the group's code as the report gives it.
func ReportCounts(r *rasoatv1.ReportResponse) Table {
	cols := append([]Column{{"Đơn vị", Text}, {"Năm danh sách", Text}, {"Nhóm", Text}, {"Khóa", Text}}, countColumns...)
	unit, year := r.GetUnitCode(), strconv.Itoa(int(r.GetListYear()))
	rows := [][]any{append([]any{unit, year, "tổng", ""}, counts(r.GetTotal())...)}
	for _, g := range []struct {
		name string
		rows []*rasoatv1.ReportBreakdown
	}{{"xã", r.GetByCommune()}, {"thôn", r.GetByVillage()}, {"dân tộc chủ hộ", r.GetByEthnicity()}, {"khu vực", r.GetByArea()}} {
		for _, b := range g.rows {
			rows = append(rows, append([]any{unit, year, g.name, b.GetKey()}, counts(b.GetCounts())...))
		}
	}
	return Of("Báo cáo", cols, rows)
}

// Sheet names of a report's workbook.
const (
	SheetOverall     = "Tổng hợp"
	SheetByCommune   = "Theo xã"
	SheetByVillage   = "Theo thôn"
	SheetByEthnicity = "Theo dân tộc chủ hộ"
	SheetByArea      = "Theo khu vực"
	SheetIndicators  = "Chỉ số thiếu hụt"
	SheetProgress    = "Tiến độ rà soát"
	SheetTransitions = "Biến động"
	SheetSummary     = "Tổng hợp biến động"
)

// ReportSheets is a report as a workbook's sheets: the overall figures
// (with Alkire–Foster's H, A and M0), by commune (a province's report
// only, not a commune's, whose one commune is itself), by village, by the head's ethnicity, by area, the indicators,
// the review's progress, and the transitions against the year before, in
// full and as the five figures a commune reports.
func ReportSheets(r *rasoatv1.ReportResponse) []Table {
	af := r.GetAlkireFoster()
	overall := Of(SheetOverall,
		append(append([]Column{{"Đơn vị", Text}, {"Năm danh sách", Int}}, countColumns...),
			Column{"H (tỷ lệ hộ thiếu hụt đa chiều)", Decimal}, Column{"A (mức độ thiếu hụt bình quân)", Decimal}, Column{"M0 = H × A", Decimal}),
		[][]any{append(append([]any{r.GetUnitCode(), r.GetListYear()}, counts(r.GetTotal())...), af.GetH(), af.GetA(), af.GetM0())})
	breakdown := func(sheet, key string, bs []*rasoatv1.ReportBreakdown, name func(string) string) Table {
		rows := make([][]any, len(bs))
		for i, b := range bs {
			rows[i] = append([]any{name(b.GetKey())}, counts(b.GetCounts())...)
		}
		return Of(sheet, append([]Column{{key, Text}}, countColumns...), rows)
	}
	same := func(k string) string { return k }
	var tables []Table
	tables = append(tables, overall)
	// A commune's own report has itself as its one commune: a sheet
	// repeating the overall row would only be noise.
	if bc := r.GetByCommune(); len(bc) > 1 || len(bc) == 1 && bc[0].GetKey() != r.GetUnitCode() {
		tables = append(tables, breakdown(SheetByCommune, "Xã", r.GetByCommune(), same))
	}
	tables = append(tables,
		breakdown(SheetByVillage, "Thôn", r.GetByVillage(), same),
		breakdown(SheetByEthnicity, "Dân tộc của chủ hộ", r.GetByEthnicity(), groupName),
		breakdown(SheetByArea, "Khu vực", r.GetByArea(), groupName))

	names := indicatorNames(int(r.GetListYear()))
	var ind [][]any
	for _, in := range r.GetIndicators() {
		ind = append(ind, []any{in.GetIndicator(), names[in.GetIndicator()], in.GetDeprived(), in.GetShare(), in.GetDeprivedPoor(), in.GetShareOfPoor()})
	}
	tables = append(tables, Of(SheetIndicators, []Column{{"Mã chỉ số", Text}, {"Chỉ số", Text}, {"Số hộ thiếu hụt", Int}, {"Tỷ lệ trên tổng số hộ (%)", Percent},
		{"Số hộ nghèo thiếu hụt", Int}, {"Tỷ lệ trong hộ nghèo (%)", Percent}}, ind))

	var prog [][]any
	for _, p := range r.GetProgress() {
		prog = append(prog, []any{p.GetVillageCode(), p.GetCollaborator(), workflow.State(p.GetStatus()).Vietnamese(), p.GetReviews(), p.GetOverdue()})
	}
	tables = append(tables, Of(SheetProgress, []Column{{"Thôn", Text}, {"Rà soát viên", Text}, {"Trạng thái", Text}, {"Số phiếu", Int}, {"Quá hạn", Int}}, prog))

	var tr [][]any
	for _, x := range r.GetTransitions() {
		from := workflow.ResultName(x.GetFrom())
		if from == "" {
			from = "chưa được công nhận"
		}
		tr = append(tr, []any{from, workflow.ResultName(x.GetTo()), x.GetHouseholds()})
	}
	before, now := strconv.Itoa(int(r.GetListYear())-1), strconv.Itoa(int(r.GetListYear()))
	tables = append(tables, Of(SheetTransitions, []Column{{"Kết quả năm " + before, Text}, {"Kết quả năm " + now, Text}, {"Số hộ", Int}}, tr))
	ts := r.GetTransitionSummary()
	tables = append(tables, Of(SheetSummary, []Column{{"Biến động so với năm " + before, Text}, {"Số hộ", Int}}, [][]any{
		{"Hộ thoát nghèo", ts.GetLeftPoverty()},
		{"Hộ thoát cận nghèo", ts.GetLeftNearPoverty()},
		{"Hộ nghèo phát sinh", ts.GetNewlyPoor()},
		{"Hộ cận nghèo phát sinh", ts.GetNewlyNearPoor()},
		{"Hộ cận nghèo rơi xuống hộ nghèo", ts.GetNearPoorToPoor()},
	}))
	return tables
}

// indicatorNames are the Vietnamese names of the indicators of the
// built-in standard for a list year; a province's own standard's ids are
// shown without a name.
func indicatorNames(year int) map[string]string {
	names := map[string]string{}
	std, err := survey.Builtin().ForListYear(year)
	if err != nil {
		return names
	}
	for _, ind := range std.Indicators() {
		names[ind.ID] = ind.Name
	}
	return names
}
