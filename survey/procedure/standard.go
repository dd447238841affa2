package procedure

import (
	"fmt"
	"time"

	"github.com/rasoat/rasoat/survey"
)

// TransitionSource is the clause keeping Decree 07/2021's standard for the
// lists of 2026. Public reporting of Decree 351/2025/NĐ-CP (Huế Ngày Nay,
// "Chuẩn nghèo đa chiều quốc gia giai đoạn 2026-2030") gives it as:
// "tiếp tục thực hiện chuẩn nghèo đa chiều giai đoạn 2022-2025 theo Điều 3
// Nghị định số 07/2021/NĐ-CP … từ ngày 1/1/2026 đến hết ngày 31/12/2026",
// with the 2027–2030 lines of 2,200,000 (rural) and 2,800,000 (urban) VND.
// The article of Decree 351/2025 that says it was not read here.
var TransitionSource = Source{Text: Decree351,
	Via:  "huengaynay.vn, \"Chuẩn nghèo đa chiều quốc gia giai đoạn 2026-2030\"",
	Note: "keeps Điều 3 of Nghị định 07/2021/NĐ-CP in force from 1 January to 31 December 2026; article number not confirmed"}

// Standard returns the standard a review of kind k held on date on is
// scored under: the one deciding ListYear(k, on). With the built-in
// standards, a periodic review in October 2026 decides the 2027 list under
// "2026-2030" (Decree 351/2025) while a regular review that same month
// changes the 2026 list under "2021-2025" (Decree 07/2021, kept for 2026 by
// Decree 351/2025: see TransitionSource).
func (r Rules) Standard(reg *survey.Registry, k Kind, on time.Time) (*survey.Standard, error) {
	y, err := r.ListYear(k, on)
	if err != nil {
		return nil, err
	}
	s, err := reg.ForListYear(y)
	if err != nil {
		return nil, fmt.Errorf("%s review on %s: %w", k, on.Format(time.DateOnly), err)
	}
	return s, nil
}
