package export

import "github.com/rasoat/rasoat/internal/workflow"

// DecisionRows is a decision's lists as one table, one household a row,
// the list in a column: what `rasoat review decision --csv` writes.
func DecisionRows(d workflow.DecisionList) Table {
	cols := []Column{{"Số quyết định", Text}, {"Ngày quyết định", Text}, {"Danh sách", Text}, {"Mã hộ", Text}, {"Thôn", Text},
		{"Năm danh sách", Int}, {"Kết quả", Text}, {"Kết quả năm trước", Text}, {"Mã rà soát", Text}, {"Dấu niêm phong", Text}}
	var rows [][]any
	for _, list := range workflow.ListOrder {
		for _, h := range d.Lists[list] {
			rows = append(rows, []any{d.Number, d.Date, workflow.ListName(list), h.HouseholdID, h.VillageCode, h.Year,
				workflow.ResultName(h.Result), workflow.ResultName(h.Before), h.ReviewID, h.Seal})
		}
	}
	return Of("Quyết định", cols, rows)
}

// SheetDigest names the decision workbook's last sheet.
const SheetDigest = "Mã kiểm tra"

// DecisionSheets is a decision as a workbook: one sheet a list of form 02
// (poor, near-poor, left poverty, left near-poverty; middle and not poor
// when the decision holds such households), numbered as the form numbers
// its lines, then the digest over every household decided and the
// households whose answers changed since.
func DecisionSheets(d workflow.DecisionList) []Table {
	cols := []Column{{"STT", Int}, {"Mã hộ", Text}, {"Thôn", Text}, {"Năm danh sách", Int}, {"Kết quả", Text},
		{"Kết quả năm trước", Text}, {"Mã rà soát", Text}, {"Dấu niêm phong", Text}}
	var tables []Table
	for _, list := range workflow.ListOrder {
		hs := d.Lists[list]
		if len(hs) == 0 && list != workflow.ListPoor && list != workflow.ListNearPoor && list != workflow.ListLeftPoverty && list != workflow.ListLeftNearPoverty {
			continue // the form's four lists always; the others when held
		}
		rows := make([][]any, len(hs))
		for i, h := range hs {
			rows[i] = []any{i + 1, h.HouseholdID, h.VillageCode, h.Year, workflow.ResultName(h.Result), workflow.ResultName(h.Before), h.ReviewID, h.Seal}
		}
		tables = append(tables, Of(workflow.ListName(list), cols, rows))
	}
	digest := [][]any{
		{"Số quyết định", d.Number},
		{"Ngày quyết định", d.Date},
		{"Mã kiểm tra (SHA-256 của các hộ được công nhận)", d.Digest},
	}
	for _, hh := range d.Changed {
		digest = append(digest, []any{"Hộ đã thay đổi sau quyết định", hh})
	}
	return append(tables, Of(SheetDigest, []Column{{"Mục", Text}, {"Giá trị", Text}}, digest))
}

// SheetPosted names the posted list's sheet.
const SheetPosted = "Danh sách niêm yết"

// Posted is the posted list (danh sách niêm yết công khai) as one table,
// one household a row, by list in the form's order and numbered: the same
// for CSV and the workbook, which an officer prints and pins up.
func Posted(p workflow.PostedList) Table {
	cols := []Column{{"STT", Int}, {"Danh sách", Text}, {"Họ tên chủ hộ", Text}, {"Địa chỉ", Text}, {"Thôn", Text},
		{"Năm danh sách", Int}, {"Kết quả dự kiến", Text}, {"Kết quả năm trước", Text}, {"Số chỉ số thiếu hụt", Int},
		{"Thu nhập bình quân (đồng/người/tháng)", Int}, {"Trạng thái", Text}, {"Ngày niêm yết", Text},
		{"Hạn cuối nhận khiếu nại", Text}, {"Ghi chú", Text}, {"Mã hộ", Text}, {"Mã rà soát", Text}}
	return Table{Sheet: SheetPosted, Columns: cols, Rows: func(yield func([]any, error) bool) {
		row := make([]any, len(cols))
		n := 0
		for _, list := range workflow.ListOrder {
			for i := range p.Lists[list] {
				h := &p.Lists[list][i]
				n++
				var deprived, income any
				if h.Result != "" {
					deprived = h.Deprivations
					if h.IncomePerCapita > 0 {
						income = h.IncomePerCapita
					}
				}
				row[0], row[1], row[2], row[3], row[4] = n, workflow.ListName(list), h.HeadName, h.Address, h.VillageCode
				row[5], row[6], row[7], row[8], row[9] = h.Year, workflow.ResultName(h.Result), workflow.ResultName(h.Before), deprived, income
				row[10], row[11], row[12], row[13], row[14], row[15] = h.Status.Vietnamese(), h.PostedOn, h.ComplaintsUntil, h.Problem, h.HouseholdID, h.ReviewID
				if !yield(row, nil) {
					return
				}
			}
		}
	}}
}
