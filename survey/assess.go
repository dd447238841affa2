package survey

import (
	"fmt"
	"math"
	"strings"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Household is the form's raw answers; the proto message is the contract.
type Household = rasoatv1.Household

// Classification is the result of the review: POOR (hộ nghèo), NEAR_POOR
// (hộ cận nghèo), MIDDLE (hộ có mức sống trung bình) or NOT_POOR.
type Classification = rasoatv1.Classification

// Assessment is the engine's verdict on one household, with every
// indicator's reasons kept as data (Reason) so that it costs nothing to
// compute them and a village meeting can still read them (Reason.Text).
type Assessment struct {
	Standard       *Standard
	Classification Classification
	// Deprivations is the number of deprived indicators.
	Deprivations int
	// Indicators follow the standard's order.
	Indicators  []IndicatorResult
	IncomeBasis rasoatv1.IncomeBasis
	// IncomePerCapita is monthly VND per person (rounded down); 0 with score A.
	IncomePerCapita int64
	ScoreA          int32
	HasScoreA       bool
	ScoreB          int
	// Lines that applied (VND, or points with score A).
	PovertyLine, NearPovertyLine, MiddleLine int64
	// Members is the number of members counted (removed ones excluded).
	Members     int
	Provisional bool
	// Middle says whether the middle living standard was determined (see
	// determineMiddle); MiddleMissing, when it is UNDETERMINED, what for.
	Middle        rasoatv1.MiddleStatus
	MiddleMissing MiddleMissing
	// DeclaredIncome is set when the verdict rests on a money income the
	// household declared, not on the form's score A (điểm A of phiếu B),
	// the official income measure of Circular 07/2021/TT-BLĐTBXH.
	DeclaredIncome bool

	ctx  hctx
	viol violations
}

// IndicatorResult is one indicator's outcome for a household.
type IndicatorResult struct {
	Indicator *Indicator
	Deprived  bool
	// Reasons say why; at least one for every indicator.
	Reasons []Reason
}

// Deprived lists the ids of the deprived indicators, in order.
func (a *Assessment) Deprived() []string {
	out := make([]string, 0, a.Deprivations)
	for i := range a.Indicators {
		if a.Indicators[i].Deprived {
			out = append(out, a.Indicators[i].Indicator.ID)
		}
	}
	return out
}

// Assess checks h and classifies it under s. Invalid input returns a
// *ValidationError naming every bad field, and no classification.
func (s *Standard) Assess(h *Household) (*Assessment, error) {
	a := new(Assessment)
	if err := s.AssessInto(h, a); err != nil {
		return nil, err
	}
	return a, nil
}

// AssessInto is Assess reusing a's memory: bulk scoring calls it in a loop
// and allocates nothing per household once a has grown.
func (s *Standard) AssessInto(h *Household, a *Assessment) error {
	a.Standard = s
	a.viol = a.viol[:0]
	c := &a.ctx
	c.prepare(s, h, &a.viol)
	if c.ok {
		for _, ind := range s.indicators {
			ind.check(c, ind, &a.viol)
		}
	}
	s.checkIncome(h, len(c.members), &a.viol)
	if len(a.viol) > 0 {
		return &ValidationError{Violations: append([]Violation(nil), a.viol...)}
	}

	if cap(a.Indicators) < len(s.indicators) {
		a.Indicators = make([]IndicatorResult, len(s.indicators))
	}
	a.Indicators = a.Indicators[:len(s.indicators)]
	a.Deprivations = 0
	a.Provisional = s.Provisional
	for i, ind := range s.indicators {
		r := &a.Indicators[i]
		r.Indicator, r.Deprived, r.Reasons = ind, false, r.Reasons[:0]
		ind.eval(c, &ind.Params, r)
		if r.Deprived {
			a.Deprivations++
		}
		if ind.Provisional {
			a.Provisional = true
		}
	}
	a.Members = len(c.members)
	a.ScoreB = a.Deprivations * s.ScoreBPerDeprivation
	s.classify(h, a)
	return nil
}

// classify applies the income lines and the deprivation threshold.
func (s *Standard) classify(h *Household, a *Assessment) {
	inc := h.GetIncome()
	urban := h.GetArea() == rasoatv1.Area_AREA_URBAN
	lines := s.linesFor(urban)
	a.HasScoreA, a.ScoreA, a.IncomePerCapita = false, 0, 0
	// atOrUnder compares exactly: with annual income it compares totals, so
	// no rounding of the per-capita figure moves a household across a line.
	var atOrUnder func(line int64) bool
	switch b := inc.GetBasis().(type) {
	case *rasoatv1.Income_MonthlyPerCapitaVnd:
		a.IncomeBasis = rasoatv1.IncomeBasis_INCOME_BASIS_MONTHLY_PER_CAPITA
		a.IncomePerCapita = b.MonthlyPerCapitaVnd
		atOrUnder = func(line int64) bool { return b.MonthlyPerCapitaVnd <= line }
	case *rasoatv1.Income_Annual:
		a.IncomeBasis = rasoatv1.IncomeBasis_INCOME_BASIS_ANNUAL
		total := annualTotal(b.Annual)
		div := int64(12 * a.Members)
		a.IncomePerCapita = total / div
		atOrUnder = func(line int64) bool { return total <= line*div }
	case *rasoatv1.Income_ScoreA:
		a.IncomeBasis = rasoatv1.IncomeBasis_INCOME_BASIS_SCORE_A
		a.HasScoreA, a.ScoreA = true, b.ScoreA
		if urban {
			lines = s.ScoreA.Urban
		} else {
			lines = s.ScoreA.Rural
		}
		atOrUnder = func(line int64) bool { return int64(b.ScoreA) <= line }
	}
	if lines.Provisional {
		a.Provisional = true
	}
	a.PovertyLine, a.NearPovertyLine, a.MiddleLine = lines.Poverty, lines.NearPoverty, lines.Middle
	a.DeclaredIncome = !a.HasScoreA
	a.Middle, a.MiddleMissing = rasoatv1.MiddleStatus_MIDDLE_STATUS_UNSPECIFIED, 0
	manyDeprivations := a.Deprivations >= s.DeprivationThreshold
	switch {
	case lines.NearPoverty > 0 && atOrUnder(lines.Poverty):
		a.Classification = rasoatv1.Classification_CLASSIFICATION_POOR
	case atOrUnder(lines.deprivationLine()):
		if manyDeprivations {
			a.Classification = rasoatv1.Classification_CLASSIFICATION_POOR
		} else {
			a.Classification = rasoatv1.Classification_CLASSIFICATION_NEAR_POOR
		}
	default:
		a.Middle, a.MiddleMissing = determineMiddle(h, lines, a.Members, s.MiddleAgricultureOnly)
		if a.Middle == rasoatv1.MiddleStatus_MIDDLE_STATUS_MIDDLE {
			a.Classification = rasoatv1.Classification_CLASSIFICATION_MIDDLE
		} else {
			a.Classification = rasoatv1.Classification_CLASSIFICATION_NOT_POOR
		}
	}
}

// MiddleMissing says what kept the middle living standard undetermined: a
// bit set, as more than one fact may be missing.
type MiddleMissing uint8

const (
	// MiddleMissingBand: the standard gives no middle band for this income
	// basis (Decree 351/2025 as far as confirmed; score A under Decree
	// 07/2021, which gives score A cut-offs for the poverty line only).
	MiddleMissingBand MiddleMissing = 1 << iota
	// MiddleMissingSector: whether the household works in agriculture,
	// forestry, fishery or salt-making is not known.
	MiddleMissingSector
	// MiddleMissingAssistance: how much of the income is state allowances
	// or social assistance is not known.
	MiddleMissingAssistance
)

// determineMiddle decides the middle living standard (mức sống trung bình)
// of a household above the deprivation line. Decree 07/2021/NĐ-CP Điều 3
// khoản 3 sets the band (rural over 1,500,000 to 2,250,000, urban over
// 2,000,000 to 3,000,000 VND a person a month), and the standard is
// determined only for households working in agriculture, forestry, fishery
// or salt-making (hộ làm nông nghiệp, lâm nghiệp, ngư nghiệp và diêm
// nghiệp), "on the household's income over the 12 months before the review,
// not counting allowances or social assistance from the state budget"
// (Decision 24/2021/QĐ-TTg Điều 2 khoản 2, via thuvienphapluat.vn). So:
//
//   - a household known not to be in those sectors is NOT_MIDDLE, whatever
//     its income: it is not poor, not near-poor, not middle;
//   - the band is applied to the income less Income.state_assistance_annual_vnd
//     (the monthly per-capita figure is taken as that income over 12 months:
//     our reading); the band's lower end applies to that income too, so a
//     household that the assistance alone lifts over the line is above the
//     line (not poor) but not middle (our reading of "trên 1.500.000 đồng");
//   - a sector or an assistance that is unknown and could change the answer
//     leaves it UNDETERMINED, never MIDDLE or NOT_MIDDLE in silence. Since
//     leaving assistance out can only lower an income, an unknown assistance
//     can always bring a household into the band, or under it: it always
//     matters for a household that may be in those sectors.
//
// A standard without MiddleAgricultureOnly (Decision 59/2015) applies its
// band to the household's income as given, whatever its sector.
func determineMiddle(h *Household, lines Lines, members int, agricultureOnly bool) (rasoatv1.MiddleStatus, MiddleMissing) {
	var missing MiddleMissing
	if agricultureOnly {
		if agri := h.AgriForestryFisherySalt; agri != nil && !*agri {
			return rasoatv1.MiddleStatus_MIDDLE_STATUS_NOT_MIDDLE, 0
		}
		if h.AgriForestryFisherySalt == nil {
			missing |= MiddleMissingSector
		}
	}
	if lines.Middle == 0 {
		// Nothing to determine against; the sector would not help.
		return rasoatv1.MiddleStatus_MIDDLE_STATUS_UNDETERMINED, MiddleMissingBand
	}
	inc := h.GetIncome()
	var in bool
	switch b := inc.GetBasis().(type) {
	case *rasoatv1.Income_ScoreA:
		// A province's score-A band: no money figure to take assistance from.
		in = int64(b.ScoreA) > lines.deprivationLine() && int64(b.ScoreA) <= lines.Middle
	default:
		if agricultureOnly && (inc == nil || inc.StateAssistanceAnnualVnd == nil) {
			return rasoatv1.MiddleStatus_MIDDLE_STATUS_UNDETERMINED, missing | MiddleMissingAssistance
		}
		// Compare totals over 12 months in whole đồng: no rounding moves a
		// household across an end of the band.
		div := int64(12 * members)
		var total int64
		if a, ok := b.(*rasoatv1.Income_Annual); ok {
			total = annualTotal(a.Annual)
		} else {
			total = inc.GetMonthlyPerCapitaVnd() * div
		}
		own := total
		if agricultureOnly {
			own -= inc.GetStateAssistanceAnnualVnd()
		}
		in = own > lines.deprivationLine()*div && own <= lines.Middle*div
	}
	switch {
	case !in:
		return rasoatv1.MiddleStatus_MIDDLE_STATUS_NOT_MIDDLE, 0
	case missing != 0:
		return rasoatv1.MiddleStatus_MIDDLE_STATUS_UNDETERMINED, missing
	}
	return rasoatv1.MiddleStatus_MIDDLE_STATUS_MIDDLE, 0
}

// maxVND bounds any money figure so that sums and products cannot overflow:
// ten thousand billion đồng is far beyond any household.
const maxVND = 10_000_000_000_000

func annualTotal(a *rasoatv1.AnnualIncome) int64 {
	return a.GetWagesVnd() + a.GetFarmingVnd() + a.GetForestryVnd() + a.GetFisheryVnd() +
		a.GetBusinessVnd() + a.GetPensionsAllowancesVnd() + a.GetOtherVnd()
}

func (s *Standard) checkIncome(h *Household, members int, v *violations) {
	inc := h.GetIncome()
	if x := inc.GetStateAssistanceAnnualVnd(); inc != nil && inc.StateAssistanceAnnualVnd != nil {
		var most int64 = maxVND
		switch b := inc.GetBasis().(type) {
		case *rasoatv1.Income_Annual:
			most = annualTotal(b.Annual)
		case *rasoatv1.Income_MonthlyPerCapitaVnd:
			if members > 0 && b.MonthlyPerCapitaVnd >= 0 && b.MonthlyPerCapitaVnd <= maxVND {
				most = b.MonthlyPerCapitaVnd * int64(12*members)
			}
		}
		if x < 0 || x > most {
			v.add("income.stateAssistanceAnnualVnd", fmt.Sprintf("must be between 0 and the income it is part of (%d đồng over 12 months), got %d", most, x))
		}
	}
	switch b := inc.GetBasis().(type) {
	case nil:
		v.add("income", "required: one of monthlyPerCapitaVnd, annual or scoreA")
	case *rasoatv1.Income_MonthlyPerCapitaVnd:
		if b.MonthlyPerCapitaVnd < 0 || b.MonthlyPerCapitaVnd > maxVND {
			v.add("income.monthlyPerCapitaVnd", fmt.Sprintf("must be between 0 and %d, got %d", int64(maxVND), b.MonthlyPerCapitaVnd))
		}
	case *rasoatv1.Income_Annual:
		if b.Annual == nil {
			v.add("income.annual", "must not be null")
			return
		}
		m := b.Annual.ProtoReflect()
		m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
			if n := val.Int(); n < 0 || n > maxVND {
				v.add("income.annual."+fd.JSONName(), fmt.Sprintf("must be between 0 and %d, got %d", int64(maxVND), n))
			}
			return true
		})
	case *rasoatv1.Income_ScoreA:
		if s.ScoreA == nil {
			v.add("income.scoreA", fmt.Sprintf("standard %s has no confirmed score A cut-offs; give monthlyPerCapitaVnd or annual", s.ID))
		} else if b.ScoreA < 0 || b.ScoreA > 10000 {
			v.add("income.scoreA", fmt.Sprintf("must be between 0 and 10000, got %d", b.ScoreA))
		}
	}
}

// Violation is one bad field: its JSON path and what is wrong.
type Violation struct {
	Field       string
	Description string
}

// ValidationError lists every bad field of an input. Nothing is classified
// from an input that has one.
type ValidationError struct {
	Violations []Violation
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid household: ")
	for i, v := range e.Violations {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.Field)
		b.WriteString(": ")
		b.WriteString(v.Description)
	}
	return b.String()
}

type violations []Violation

// add records a violation, up to MaxViolations.
func (v *violations) add(field, desc string) {
	if len(*v) < MaxViolations {
		*v = append(*v, Violation{field, desc})
	}
}

// memberCtx is what the rules need of one counted member, computed once.
type memberCtx struct {
	m         *rasoatv1.Member
	idx       int // index in Household.Members, for paths and reasons
	ageMonths int
	age       int // whole years at the review date
	schoolAge int // years "counted by year", see schoolAge
	birthYear int
	minority  bool
}

// hctx is a household prepared for the rules.
type hctx struct {
	h             *Household
	review        date
	members       []memberCtx
	retireMonths  [3]int // by Sex number
	ok            bool   // the roster could be read; rules may run checks
	floorArea     float64
	hasFloorArea  bool
	minorityByDef bool
}

func (c *hctx) prepare(s *Standard, h *Household, v *violations) {
	c.h = h
	c.members = c.members[:0]
	c.ok = false
	if h == nil {
		v.add("household", "required")
		return
	}
	if !checkSizes(h, v) {
		return
	}
	switch h.GetArea() {
	case rasoatv1.Area_AREA_RURAL, rasoatv1.Area_AREA_URBAN:
	case rasoatv1.Area_AREA_UNSPECIFIED:
		v.add("area", "required: AREA_RURAL or AREA_URBAN")
	default:
		v.add("area", fmt.Sprintf("unknown value %d", h.GetArea()))
	}
	for i, f := range h.GetPolicyFlags() {
		if !policyFlags.has(f) || f == 0 {
			v.add(fmt.Sprintf("policyFlags[%d]", i), badListValue(f))
		}
	}
	rd, okDate := parseDate(h.GetReviewDate())
	if !okDate {
		if h.GetReviewDate() == "" {
			v.add("reviewDate", "required, as YYYY-MM-DD")
		} else {
			v.add("reviewDate", fmt.Sprintf("%q is not a date as YYYY-MM-DD", h.GetReviewDate()))
		}
	}
	c.review = rd
	c.retireMonths[rasoatv1.Sex_SEX_MALE] = s.RetirementAge.Male.Months(rd.y)
	c.retireMonths[rasoatv1.Sex_SEX_FEMALE] = s.RetirementAge.Female.Months(rd.y)
	c.minorityByDef = isMinority(h.GetHeadEthnicity())

	present := 0 // members who have not left, valid or not
	for i, m := range h.GetMembers() {
		if m == nil {
			v.add(fmt.Sprintf("members[%d]", i), "must not be null")
			continue
		}
		checkMemberEnums(i, m, v)
		if m.GetRemoved() != rasoatv1.Removal_REMOVAL_UNSPECIFIED {
			continue
		}
		present++
		if strings.TrimSpace(m.GetFullName()) == "" {
			v.add(fmt.Sprintf("members[%d].fullName", i), "required")
		}
		switch m.GetSex() {
		case rasoatv1.Sex_SEX_MALE, rasoatv1.Sex_SEX_FEMALE:
		case rasoatv1.Sex_SEX_UNSPECIFIED:
			v.add(fmt.Sprintf("members[%d].sex", i), "required: SEX_MALE or SEX_FEMALE")
			continue
		default:
			continue // unknown number, reported by checkMemberEnums; the rules index by sex
		}
		bd, ok := parseDate(m.GetBirthDate())
		switch {
		case !ok && m.GetBirthDate() == "":
			v.add(fmt.Sprintf("members[%d].birthDate", i), "required, as YYYY-MM-DD")
			continue
		case !ok:
			v.add(fmt.Sprintf("members[%d].birthDate", i), fmt.Sprintf("%q is not a date as YYYY-MM-DD", m.GetBirthDate()))
			continue
		case !okDate:
			continue
		case rd.before(bd):
			v.add(fmt.Sprintf("members[%d].birthDate", i), fmt.Sprintf("%s is after the review date %s", m.GetBirthDate(), h.GetReviewDate()))
			continue
		}
		am := ageMonths(bd, rd)
		if am >= 130*12 {
			v.add(fmt.Sprintf("members[%d].birthDate", i), fmt.Sprintf("%s makes the member %d years old", m.GetBirthDate(), am/12))
			continue
		}
		eth := m.GetEthnicity()
		minority := c.minorityByDef
		if eth != "" {
			minority = isMinority(eth)
		}
		c.members = append(c.members, memberCtx{m: m, idx: i, ageMonths: am, age: am / 12, schoolAge: schoolAge(bd, rd), birthYear: bd.y, minority: minority})
	}
	if present == 0 {
		v.add("members", "at least one member who has not left the household is required")
	}

	hs := h.GetHousing()
	c.hasFloorArea = hs != nil && hs.FloorAreaM2 != nil
	c.floorArea = hs.GetFloorAreaM2()
	if c.hasFloorArea && (c.floorArea < 0 || c.floorArea > 1e6 || math.IsNaN(c.floorArea)) {
		v.add("housing.floorAreaM2", fmt.Sprintf("must be between 0 and 1000000 m², got %v", c.floorArea))
	}
	ws := h.GetWaterSanitation()
	if x := ws.GetWaterSource(); !waterSources.has(x) {
		v.add("waterSanitation.waterSource", fmt.Sprintf("unknown value %d", x))
	}
	if x := ws.GetLatrine(); !latrines.has(x) {
		v.add("waterSanitation.latrine", fmt.Sprintf("unknown value %d", x))
	}
	for i, d := range h.GetInformation().GetInfoDevices() {
		if !infoDevices.has(d) || d == 0 {
			v.add(fmt.Sprintf("information.infoDevices[%d]", i), badListValue(d))
		}
	}
	if x := h.GetEnvironment().GetWasteTreatment(); !wasteTreatments.has(x) {
		v.add("environment.wasteTreatment", fmt.Sprintf("unknown value %d", x))
	}
	c.ok = okDate && present > 0 && len(c.members) == present
}

func checkMemberEnums(i int, m *rasoatv1.Member, v *violations) {
	check := func(name string, known bool, n int32) {
		if !known {
			v.add(fmt.Sprintf("members[%d].%s", i, name), fmt.Sprintf("unknown value %d", n))
		}
	}
	check("sex", sexes.has(m.GetSex()), int32(m.GetSex()))
	check("relation", relations.has(m.GetRelation()), int32(m.GetRelation()))
	check("highestEducation", educationLevels.has(m.GetHighestEducation()), int32(m.GetHighestEducation()))
	check("schoolLevel", schoolLevels.has(m.GetSchoolLevel()), int32(m.GetSchoolLevel()))
	check("employment", employments.has(m.GetEmployment()), int32(m.GetEmployment()))
	check("removed", removals.has(m.GetRemoved()), int32(m.GetRemoved()))
}

// badListValue explains a list entry that is unknown, or the _UNSPECIFIED
// placeholder, which says nothing in a list.
func badListValue(e protoreflect.Enum) string {
	if e.Number() == 0 {
		return fmt.Sprintf("%s is not a value a list may hold", e.Descriptor().Values().ByNumber(0).Name())
	}
	return fmt.Sprintf("unknown value %d", e.Number())
}

// enumSet says which numbers of one enum type the contract defines, so an
// unknown number sent as JSON integer or by a newer client is refused rather
// than read as "not deprived". It is read once from the enum's descriptor:
// looking every value up there (a map) was most of the cost of checking a
// household's answers.
type enumSet[E ~int32] struct {
	low uint64 // bit n: number n, for numbers 0 to 63
	d   protoreflect.EnumDescriptor
}

func enumSetOf[E interface {
	~int32
	protoreflect.Enum
}](zero E) enumSet[E] {
	s := enumSet[E]{d: zero.Descriptor()}
	vals := s.d.Values()
	for i := range vals.Len() {
		if n := vals.Get(i).Number(); n >= 0 && n < 64 {
			s.low |= 1 << n
		}
	}
	return s
}

// has reports whether e is a number the contract defines.
func (s enumSet[E]) has(e E) bool {
	if e >= 0 && e < 64 {
		return s.low>>e&1 == 1
	}
	return s.d.Values().ByNumber(protoreflect.EnumNumber(e)) != nil
}

// The enums a household's answers hold.
var (
	policyFlags     = enumSetOf(rasoatv1.PolicyFlag(0))
	waterSources    = enumSetOf(rasoatv1.WaterSource(0))
	latrines        = enumSetOf(rasoatv1.Latrine(0))
	infoDevices     = enumSetOf(rasoatv1.InfoDevice(0))
	wasteTreatments = enumSetOf(rasoatv1.WasteTreatment(0))
	sexes           = enumSetOf(rasoatv1.Sex(0))
	relations       = enumSetOf(rasoatv1.Relation(0))
	educationLevels = enumSetOf(rasoatv1.EducationLevel(0))
	schoolLevels    = enumSetOf(rasoatv1.SchoolLevel(0))
	employments     = enumSetOf(rasoatv1.Employment(0))
	removals        = enumSetOf(rasoatv1.Removal(0))
)

// isMinority reports whether an ethnicity (dân tộc) is an ethnic minority:
// anything other than Kinh. An empty ethnicity is not a minority.
func isMinority(eth string) bool {
	eth = strings.TrimSpace(eth)
	if eth == "" {
		return false
	}
	return !strings.EqualFold(eth, "Kinh") && !strings.EqualFold(eth, "Việt")
}
