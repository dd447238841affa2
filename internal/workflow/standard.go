package workflow

import (
	"fmt"
	"strings"
	"time"

	"github.com/rasoat/rasoat/survey"
	"github.com/rasoat/rasoat/survey/procedure"
)

// Standard returns the standard a household reviewed on reviewDate is
// scored under, in a regular review or the periodic one: the round's
// kind, not the calendar alone, chooses (procedure.Rules.Standard: a
// regular review in October 2026 changes the 2026 list, under Decree
// 07/2021's standard, which Decree 351/2025 keeps through 2026). A
// periodic review is chosen by its date as survey.Registry.Choose does,
// so that a review dated outside the window still scores.
func Standard(reg *survey.Registry, regular bool, reviewDate string) (*survey.Standard, error) {
	if !regular || reviewDate == "" {
		return reg.Choose("", reviewDate)
	}
	on, err := time.Parse(time.DateOnly, reviewDate)
	if err != nil {
		return reg.Choose("", reviewDate) // names the bad date
	}
	return procedure.Default().Standard(reg, procedure.Regular, on)
}

// Result is an assessment as a decision records it.
func Result(a *survey.Assessment) (standard, result string, deprived []string) {
	return a.Standard.ID, strings.TrimPrefix(a.Classification.String(), "CLASSIFICATION_"), a.Deprived()
}

// ListYear is the year whose list a review decides (procedure.Rules.
// ListYear), or, for a periodic review dated outside its window, the year
// after its date.
func ListYear(regular bool, reviewDate string) (int, error) {
	on, err := time.Parse(time.DateOnly, reviewDate)
	if err != nil {
		return 0, fmt.Errorf("review date %q: %w", reviewDate, err)
	}
	k := procedure.Periodic
	if regular {
		k = procedure.Regular
	}
	y, err := procedure.Default().ListYear(k, on)
	if err != nil {
		return on.Year() + 1, nil
	}
	return y, nil
}

// Order places a review among its household's: by the list year it
// decides, then its date, then its id (UUIDv7: the one made later). The
// latest started review is the household's current one: it chooses the
// standard the household is scored under and, decided, locks it. The list
// year comes first so that a regular review of the current year's list,
// dated after the periodic review that decided next year's, does not
// unlock next year's decision.
type Order struct {
	ListYear int
	Date     string
	ID       string
}

// OrderOf is the order of a review of the round (regular or periodic)
// dated date; a date that is not one sorts first.
func OrderOf(regular bool, date, id string) Order {
	y, err := ListYear(regular, date)
	if err != nil {
		return Order{ID: id}
	}
	return Order{ListYear: y, Date: date, ID: id}
}

// After reports whether o is later than p.
func (o Order) After(p Order) bool {
	if o.ListYear != p.ListYear {
		return o.ListYear > p.ListYear
	}
	if o.Date != p.Date {
		return o.Date > p.Date
	}
	return o.ID > p.ID
}
