package export

import (
	"strconv"
	"strings"

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
	SheetStatuses    = "Phiếu theo trạng thái"
	SheetTransitions = "Biến động"
	SheetSummary     = "Tổng hợp biến động"
	SheetTargets     = "Chỉ tiêu"
	SheetWatch       = "Hộ có nguy cơ"
)

// TargetNames are the reductions' names as a targets file writes them.
var TargetNames = map[rasoatv1.TargetKind]string{
	rasoatv1.TargetKind_TARGET_KIND_POVERTY_RATE_REDUCTION: "giảm tỷ lệ hộ nghèo",
	rasoatv1.TargetKind_TARGET_KIND_POOR_REDUCED:           "giảm số hộ nghèo",
	rasoatv1.TargetKind_TARGET_KIND_NEAR_POOR_REDUCED:      "giảm số hộ cận nghèo",
}

// TargetName is a target as the province's file names it: a reduction's
// name, or the indicators' label (their ids joined by "+" without one).
func TargetName(t *rasoatv1.TargetProgress) string {
	if t.GetKind() != rasoatv1.TargetKind_TARGET_KIND_INDICATOR {
		return TargetNames[t.GetKind()]
	}
	if t.GetLabel() != "" {
		return t.GetLabel()
	}
	return strings.Join(t.GetIndicators(), "+")
}

// TargetVerdict is whether a target is met, in Vietnamese: đạt, chưa đạt,
// or không áp dụng with the reason.
func TargetVerdict(t *rasoatv1.TargetProgress) string {
	switch t.GetStatus() {
	case rasoatv1.TargetStatus_TARGET_STATUS_MET:
		return "đạt"
	case rasoatv1.TargetStatus_TARGET_STATUS_NOT_MET:
		return "chưa đạt"
	case rasoatv1.TargetStatus_TARGET_STATUS_NOT_APPLICABLE:
		return "không áp dụng: " + t.GetReason()
	}
	return ""
}

// WatchReasons are why a household is on the watch list, in Vietnamese.
func WatchReasons(h *rasoatv1.WatchedHousehold) []string {
	var why []string
	for _, r := range h.GetReasons() {
		switch r {
		case rasoatv1.WatchReason_WATCH_REASON_NEAR_LINE:
			why = append(why, "thu nhập sát chuẩn")
		case rasoatv1.WatchReason_WATCH_REASON_DEPRIVED:
			why = append(why, "thiếu hụt nhiều chỉ số")
		}
	}
	return why
}

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

	var funnel [][]any
	step := func(group string, p *rasoatv1.ProgressSummary) {
		funnel = append(funnel, []any{group, p.GetKey(), p.GetListed(), p.GetNotStarted(), p.GetDraft(), p.GetSurveyed(), p.GetSubmitted(),
			p.GetReturned(), p.GetDecided(), p.GetRefused(), p.GetOverdue()})
	}
	if p := r.GetProgressTotal(); p != nil {
		step("tổng", p)
	}
	for _, p := range r.GetProgressByVillage() {
		step("thôn", p)
	}
	for _, p := range r.GetProgressByCollaborator() {
		step("rà soát viên", p)
	}
	tables = append(tables, Of(SheetProgress, []Column{{"Nhóm", Text}, {"Mã", Text}, {"Số hộ", Int}, {"Chưa rà soát", Int}, {"Đang nhập", Int},
		{"Đã khảo sát", Int}, {"Đã nộp", Int}, {"Trả lại", Int}, {"Đã quyết định", Int}, {"Từ chối", Int}, {"Quá hạn", Int}}, funnel))
	var prog [][]any
	for _, p := range r.GetProgress() {
		prog = append(prog, []any{p.GetVillageCode(), p.GetCollaborator(), workflow.State(p.GetStatus()).Vietnamese(), p.GetReviews(), p.GetOverdue()})
	}
	tables = append(tables, Of(SheetStatuses, []Column{{"Thôn", Text}, {"Rà soát viên", Text}, {"Trạng thái", Text}, {"Số phiếu", Int}, {"Quá hạn", Int}}, prog))

	var tr [][]any
	for _, x := range r.GetTransitions() {
		from := workflow.ResultName(x.GetFrom())
		if from == "" {
			from = "chưa được công nhận"
		}
		earlier := ""
		if x.GetPoorEarlier() {
			earlier = "có" // tái nghèo when poor now and not the year before
		}
		tr = append(tr, []any{from, workflow.ResultName(x.GetTo()), earlier, x.GetHouseholds()})
	}
	before, now := strconv.Itoa(int(r.GetListYear())-1), strconv.Itoa(int(r.GetListYear()))
	tables = append(tables, Of(SheetTransitions, []Column{{"Kết quả năm " + before, Text}, {"Kết quả năm " + now, Text},
		{"Từng là hộ nghèo trước năm " + before, Text}, {"Số hộ", Int}}, tr))
	ts := r.GetTransitionSummary()
	tables = append(tables, Of(SheetSummary, []Column{{"Biến động so với năm " + before, Text}, {"Số hộ", Int}}, [][]any{
		{"Hộ thoát nghèo", ts.GetLeftPoverty()},
		{"Hộ thoát cận nghèo", ts.GetLeftNearPoverty()},
		{"Hộ nghèo phát sinh", ts.GetNewlyPoor()},
		{"Hộ cận nghèo phát sinh", ts.GetNewlyNearPoor()},
		{"Hộ cận nghèo rơi xuống hộ nghèo", ts.GetNearPoorToPoor()},
		{"Hộ tái nghèo", ts.GetFellBackIntoPoverty()},
	}))
	if len(r.GetTargets()) > 0 {
		var rows [][]any
		for _, t := range r.GetTargets() {
			measure := map[rasoatv1.TargetKind]string{rasoatv1.TargetKind_TARGET_KIND_POVERTY_RATE_REDUCTION: "điểm %",
				rasoatv1.TargetKind_TARGET_KIND_POOR_REDUCED: "hộ", rasoatv1.TargetKind_TARGET_KIND_NEAR_POOR_REDUCED: "hộ",
				rasoatv1.TargetKind_TARGET_KIND_INDICATOR: "tỷ lệ hộ nghèo không thiếu hụt"}[t.GetKind()]
			rows = append(rows, []any{t.GetUnitCode(), TargetName(t), strings.Join(t.GetIndicators(), "+"), measure,
				t.GetTarget(), t.GetAchieved(), t.GetBefore(), t.GetNow(), TargetVerdict(t)})
		}
		tables = append(tables, Of(SheetTargets, []Column{{"Đơn vị", Text}, {"Chỉ tiêu", Text}, {"Mã chỉ số", Text}, {"Đơn vị đo", Text},
			{"Mục tiêu", Decimal}, {"Đạt được", Decimal}, {"Năm trước", Decimal}, {"Hiện nay", Decimal}, {"Kết quả", Text}}, rows))
	}
	var watch [][]any
	for _, h := range r.GetWatchList() {
		watch = append(watch, []any{h.GetHouseholdId(), h.GetHeadName(), h.GetVillageCode(), workflow.ResultName(h.GetClassification()), h.GetIncomePerCapita(),
			h.GetLine(), h.GetDeprivations(), strings.Join(h.GetDeprived(), ", "), strings.Join(WatchReasons(h), "; ")})
	}
	tables = append(tables, Of(SheetWatch, []Column{{"Hộ", Text}, {"Chủ hộ", Text}, {"Thôn", Text}, {"Phân loại", Text}, {"Thu nhập bình quân/người/tháng (đồng)", Int},
		{"Chuẩn so sánh (đồng)", Int}, {"Số chỉ số thiếu hụt", Int}, {"Chỉ số thiếu hụt", Text}, {"Lý do", Text}}, watch))
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
