package survey

import (
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// Summary aggregates assessments under one standard: counts and rates by
// classification, the share deprived per indicator, and the Alkire–Foster
// measures.
//
// Alkire–Foster uses equal weights for the standard's indicators (1/d each)
// and the standard's deprivation threshold as the poverty cut-off k, on
// deprivations alone (income is not used): H is the share of households
// deprived in k or more indicators, A their average deprivation share and
// M0 = H × A. The unit is the household, as in the review.
type Summary struct {
	Standard   *Standard
	Households int
	Members    int
	// Invalid counts inputs that were rejected and are in no other figure.
	Invalid int
	ByClass map[Classification]int
	// Deprived[i] and DeprivedPoor[i] count households (all, and poor)
	// deprived in the standard's i-th indicator.
	Deprived, DeprivedPoor []int

	mdPoor    int     // households with deprivations >= k
	mdShare   float64 // sum of deprivation shares of those
	provision bool
}

// NewSummary starts an empty summary for s.
func NewSummary(s *Standard) *Summary {
	return &Summary{
		Standard:     s,
		ByClass:      map[Classification]int{},
		Deprived:     make([]int, len(s.indicators)),
		DeprivedPoor: make([]int, len(s.indicators)),
	}
}

// Add counts one assessment made under the summary's standard.
func (s *Summary) Add(a *Assessment) {
	s.Households++
	s.Members += a.Members
	s.ByClass[a.Classification]++
	poor := a.Classification == rasoatv1.Classification_CLASSIFICATION_POOR
	for i := range a.Indicators {
		if a.Indicators[i].Deprived {
			s.Deprived[i]++
			if poor {
				s.DeprivedPoor[i]++
			}
		}
	}
	if a.Deprivations >= s.Standard.DeprivationThreshold {
		s.mdPoor++
		s.mdShare += float64(a.Deprivations) / float64(len(s.Standard.indicators))
	}
	s.provision = s.provision || a.Provisional
}

// Rate is the share of counted households with classification c.
func (s *Summary) Rate(c Classification) float64 { return ratio(s.ByClass[c], s.Households) }

// H is the Alkire–Foster multidimensional headcount ratio.
func (s *Summary) H() float64 { return ratio(s.mdPoor, s.Households) }

// A is the Alkire–Foster intensity: the average deprivation share among the
// multidimensionally poor.
func (s *Summary) A() float64 {
	if s.mdPoor == 0 {
		return 0
	}
	return s.mdShare / float64(s.mdPoor)
}

// M0 is the adjusted headcount ratio H × A.
func (s *Summary) M0() float64 { return s.H() * s.A() }

// Provisional reports whether any assessment counted used a provisional part.
func (s *Summary) Provisional() bool { return s.provision }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
