package survey

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

// listYear is the year whose household list a review on d decides. The
// annual review (rà soát định kỳ) runs from 1 September to 14 December and
// its result applies to the following year (Decision 24/2021/QĐ-TTg, Art. 4,
// as we read it); a review before September is an ad-hoc review
// (rà soát thường xuyên) for the current year. This is why a review dated
// 2025-10-20 is decided under Decree 07/2021 (list year 2026) and one dated
// 2026-10-20 under Decree 351/2025 (list year 2027).
func (d date) listYear() int {
	if d.m >= schoolYearStartMonth {
		return d.y + 1
	}
	return d.y
}

// ListYear reports the list year of a review date "YYYY-MM-DD".
func ListYear(reviewDate string) (int, bool) {
	d, ok := parseDate(reviewDate)
	if !ok {
		return 0, false
	}
	return d.listYear(), true
}
