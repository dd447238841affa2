package survey

import "fmt"

// date is a calendar date without time zone, as the form writes it.
type date struct{ y, m, d int }

// parseDate reads "YYYY-MM-DD" strictly, without allocating.
func parseDate(s string) (date, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return date{}, false
	}
	n := func(a, b int) (int, bool) {
		v := 0
		for i := a; i < b; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := n(0, 4)
	m, ok2 := n(5, 7)
	d, ok3 := n(8, 10)
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return date{}, false
	}
	return date{y, m, d}, true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func (a date) before(b date) bool {
	if a.y != b.y {
		return a.y < b.y
	}
	if a.m != b.m {
		return a.m < b.m
	}
	return a.d < b.d
}

// ageMonths is the number of whole months from birth to on (tuổi tròn
// tháng). A birthday on 29 February is reached on 1 March in common years.
func ageMonths(birth, on date) int {
	m := (on.y-birth.y)*12 + on.m - birth.m
	if on.d < birth.d {
		m--
	}
	return m
}

// schoolYearStartMonth: the school year (năm học) opens in September
// (Law on Education 2019; the Ministry's yearly calendar opens it on 5 September).
const schoolYearStartMonth = 9

// schoolAge is the age "counted by year" (tính theo năm) that the Law on
// Education 2019, Art. 28, uses for entering a level: the calendar year in
// which the current school year began, minus the birth year.
func schoolAge(birth, on date) int {
	y := on.y
	if on.m < schoolYearStartMonth {
		y--
	}
	return y - birth.y
}

// annualReviewMonth opens the annual review (rà soát định kỳ), which runs
// from 1 September to 14 December and decides the following year's list
// (Decision 24/2021/QĐ-TTg, Art. 4, as we read it).
const annualReviewMonth = 9

// listYear is the year whose household list a review on d decides: the
// next year for an annual review, from 1 September; the current year for a
// review before September, an ad-hoc review (rà soát thường xuyên). This is
// why a review dated 2025-10-20 is decided under Decree 07/2021 (list year
// 2026) and one dated 2026-10-20 under Decree 351/2025 (list year 2027).
func (d date) listYear() int {
	if d.m >= annualReviewMonth {
		return d.y + 1
	}
	return d.y
}

// ReviewDates is the span of review dates ("YYYY-MM-DD", inclusive) that
// s decides: the inverse of the list-year rule.
func (s *Standard) ReviewDates() (from, to string) {
	return fmt.Sprintf("%04d-%02d-01", s.ListYears.From-1, annualReviewMonth),
		fmt.Sprintf("%04d-%02d-%02d", s.ListYears.To, annualReviewMonth-1, daysIn(s.ListYears.To, annualReviewMonth-1))
}
