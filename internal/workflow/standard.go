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
