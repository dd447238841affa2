package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/rasoat/rasoat/client"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// CSV exports for officers: UTF-8 with a byte-order mark, so that a
// spreadsheet opens the Vietnamese headings as written, and one header row
// in Vietnamese.

const utf8BOM = "\ufeff"

func csvWriter(w io.Writer) (*csv.Writer, error) {
	if _, err := io.WriteString(w, utf8BOM); err != nil {
		return nil, err
	}
	return csv.NewWriter(w), nil
}

// writeDecisionCSV writes a decision's lists, one household a row.
func writeDecisionCSV(w io.Writer, d client.DecisionList) error {
	cw, err := csvWriter(w)
	if err != nil {
		return err
	}
	rec := []string{"Số quyết định", "Ngày", "Danh sách", "Mã hộ", "Thôn", "Năm danh sách", "Kết quả", "Kết quả năm trước", "Mã rà soát", "Dấu niêm phong"}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for _, list := range []string{"POOR", "NEAR_POOR", "LEFT_POVERTY", "LEFT_NEAR_POVERTY", "MIDDLE", "NOT_POOR"} {
		for _, h := range d.Lists[list] {
			if err := cw.Write([]string{d.Number, d.Date, list, h.HouseholdID, h.VillageCode, strconv.Itoa(h.Year), h.Result, h.Before, h.ReviewID, h.Seal}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeReportCSV writes a report's counts, one group a row: the total,
// each commune, village, ethnicity and area.
func writeReportCSV(w io.Writer, r *rasoatv1.ReportResponse) error {
	cw, err := csvWriter(w)
	if err != nil {
		return err
	}
	if err := cw.Write([]string{"Đơn vị", "Năm danh sách", "Nhóm", "Khóa", "Số hộ", "Đã rà soát", "Hộ nghèo", "Hộ cận nghèo", "Hộ có mức sống trung bình", "Không thuộc các diện trên", "Chưa đủ thông tin", "Tỷ lệ hộ nghèo (%)", "Tỷ lệ nghèo đa chiều (%)"}); err != nil {
		return err
	}
	row := func(group, key string, c *rasoatv1.ReportCounts) error {
		return cw.Write([]string{r.GetUnitCode(), strconv.Itoa(int(r.GetListYear())), group, key,
			fmt.Sprint(c.GetHouseholds()), fmt.Sprint(c.GetReviewed()), fmt.Sprint(c.GetPoor()), fmt.Sprint(c.GetNearPoor()),
			fmt.Sprint(c.GetMiddle()), fmt.Sprint(c.GetNotPoor()), fmt.Sprint(c.GetUnscored()),
			strconv.FormatFloat(100*c.GetPovertyRate(), 'f', 2, 64), strconv.FormatFloat(100*c.GetMultidimensionalPovertyRate(), 'f', 2, 64)})
	}
	if err := row("tổng", "", r.GetTotal()); err != nil {
		return err
	}
	for _, g := range []struct {
		name string
		rows []*rasoatv1.ReportBreakdown
	}{{"xã", r.GetByCommune()}, {"thôn", r.GetByVillage()}, {"dân tộc chủ hộ", r.GetByEthnicity()}, {"khu vực", r.GetByArea()}} {
		for _, b := range g.rows {
			if err := row(g.name, b.GetKey(), b.GetCounts()); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
