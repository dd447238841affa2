package survey_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// reviewDates: one annual review whose list year falls in each standard.
var reviewDates = map[string]string{
	"2016-2020": "2019-10-15",
	"2021-2025": "2025-10-20",
	"2026-2030": "2026-10-20",
}

// born returns the birth date of someone who is exactly years old on
// review, plus days (positive: born later, so younger by those days).
func born(review string, years, days int) string {
	t, err := time.Parse(time.DateOnly, review)
	if err != nil {
		panic(err)
	}
	return t.AddDate(-years, 0, days).Format(time.DateOnly)
}

func member(name string, sex rasoatv1.Sex, birth string) *rasoatv1.Member {
	return &rasoatv1.Member{
		Id: "m-" + name, FullName: name, Sex: sex, BirthDate: birth, Ethnicity: "Kinh",
		InSchool: proto.Bool(false), HasHealthInsurance: proto.Bool(true),
		HighestEducation: rasoatv1.EducationLevel_EDUCATION_LEVEL_UPPER_SECONDARY,
		Employment:       rasoatv1.Employment_EMPLOYMENT_WAGE_WITH_CONTRACT,
	}
}

func child(name string, birth string, level rasoatv1.SchoolLevel) *rasoatv1.Member {
	m := member(name, rasoatv1.Sex_SEX_FEMALE, birth)
	m.InSchool = proto.Bool(true)
	m.SchoolLevel = level
	m.HighestEducation = rasoatv1.EducationLevel_EDUCATION_LEVEL_PRIMARY
	m.Employment = rasoatv1.Employment_EMPLOYMENT_NOT_IN_LABOUR_FORCE
	return m
}

// base is a rural household of four deprived in nothing, with a comfortable
// income: each case changes one answer and pins one rule.
func base(std string) *rasoatv1.Household {
	r := reviewDates[std]
	ry, _ := time.Parse(time.DateOnly, r)
	// Children born on 1 March: far from birthdays and school-year edges.
	b10 := fmt.Sprintf("%d-03-01", ry.Year()-10)
	b13 := fmt.Sprintf("%d-03-01", ry.Year()-13)
	return &rasoatv1.Household{
		Id: "h-" + std, VillageCode: "06517-01", Area: rasoatv1.Area_AREA_RURAL,
		HeadName: "Nguyễn Văn An", HeadEthnicity: "Kinh", ReviewDate: r,
		Members: []*rasoatv1.Member{
			member("Nguyễn Văn An", rasoatv1.Sex_SEX_MALE, born(r, 40, -100)),
			member("Trần Thị Bình", rasoatv1.Sex_SEX_FEMALE, born(r, 38, -100)),
			child("Nguyễn Thị Cúc", b10, rasoatv1.SchoolLevel_SCHOOL_LEVEL_PRIMARY),
			child("Nguyễn Văn Dũng", b13, rasoatv1.SchoolLevel_SCHOOL_LEVEL_LOWER_SECONDARY),
		},
		Housing: &rasoatv1.Housing{WallDurable: proto.Bool(true), FrameDurable: proto.Bool(true), RoofDurable: proto.Bool(true), FloorAreaM2: proto.Float64(60)},
		WaterSanitation: &rasoatv1.WaterSanitation{
			WaterSource: rasoatv1.WaterSource_WATER_SOURCE_PIPED, Latrine: rasoatv1.Latrine_LATRINE_FLUSH_SEPTIC,
		},
		Information: &rasoatv1.Information{
			UsesTelecom: proto.Bool(true), UsesDigitalServices: proto.Bool(true),
			InfoDevices: []rasoatv1.InfoDevice{rasoatv1.InfoDevice_INFO_DEVICE_TV},
		},
		Environment: &rasoatv1.Environment{WasteTreatment: rasoatv1.WasteTreatment_WASTE_TREATMENT_COLLECTED},
		Income:      &rasoatv1.Income{Basis: &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: 9_000_000}},
	}
}

func monthly(v int64) func(*rasoatv1.Household) {
	return func(h *rasoatv1.Household) {
		h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_MonthlyPerCapitaVnd{MonthlyPerCapitaVnd: v}}
	}
}

// deprive makes the base household deprived in n housing/sanitation
// indicators (latrine, water, housing quality), which every standard has.
func deprive(n int) func(*rasoatv1.Household) {
	return func(h *rasoatv1.Household) {
		if n >= 1 {
			h.WaterSanitation.Latrine = rasoatv1.Latrine_LATRINE_NONE
		}
		if n >= 2 {
			h.WaterSanitation.WaterSource = rasoatv1.WaterSource_WATER_SOURCE_SURFACE
		}
		if n >= 3 {
			h.Housing.WallDurable, h.Housing.RoofDurable = proto.Bool(false), proto.Bool(false)
		}
	}
}

func all(fs ...func(*rasoatv1.Household)) func(*rasoatv1.Household) {
	return func(h *rasoatv1.Household) {
		for _, f := range fs {
			f(h)
		}
	}
}

// add appends a member built by f from the review date.
func add(f func(r string) *rasoatv1.Member) func(*rasoatv1.Household) {
	return func(h *rasoatv1.Household) { h.Members = append(h.Members, f(h.ReviewDate)) }
}

func aged(years, days int, edit func(*rasoatv1.Member)) func(string) *rasoatv1.Member {
	return func(r string) *rasoatv1.Member {
		m := member("Lò Văn Thử", rasoatv1.Sex_SEX_MALE, born(r, years, days))
		if edit != nil {
			edit(m)
		}
		return m
	}
}

var (
	unemployed = func(m *rasoatv1.Member) { m.Employment = rasoatv1.Employment_EMPLOYMENT_UNEMPLOYED }
	uninsured  = func(m *rasoatv1.Member) { m.HasHealthInsurance = proto.Bool(false) }
	female     = func(m *rasoatv1.Member) { m.Sex = rasoatv1.Sex_SEX_FEMALE }
	notInSch   = func(m *rasoatv1.Member) {
		m.InSchool = proto.Bool(false)
		m.Employment = rasoatv1.Employment_EMPLOYMENT_NOT_IN_LABOUR_FORCE
		m.HighestEducation = rasoatv1.EducationLevel_EDUCATION_LEVEL_NONE
	}
	edu = func(l rasoatv1.EducationLevel) func(*rasoatv1.Member) {
		return func(m *rasoatv1.Member) { m.HighestEducation = l }
	}
	inSchool = func(l rasoatv1.SchoolLevel) func(*rasoatv1.Member) {
		return func(m *rasoatv1.Member) {
			m.InSchool, m.SchoolLevel = proto.Bool(true), l
			m.Employment = rasoatv1.Employment_EMPLOYMENT_NOT_IN_LABOUR_FORCE
		}
	}
	both = func(a, b func(*rasoatv1.Member)) func(*rasoatv1.Member) {
		return func(m *rasoatv1.Member) { a(m); b(m) }
	}
	minority = func(m *rasoatv1.Member) { m.Ethnicity = "H'Mông" }
	// allowance answers receivesMonthlySocialAllowance (trợ cấp xã hội hằng
	// tháng), which the 2026–2030 dependants' count asks of the elderly and
	// the disabled; earlier standards do not read it.
	allowance = func(v bool) func(*rasoatv1.Member) {
		return func(m *rasoatv1.Member) { m.ReceivesMonthlySocialAllowance = proto.Bool(v) }
	}
)

type boundaryCase struct {
	name string
	edit func(*rasoatv1.Household)
	// indicator and deprived pin one indicator; class pins the classification.
	indicator string
	deprived  bool
	class     rasoatv1.Classification
	// middle pins the middle-living-standard determination when set.
	middle rasoatv1.MiddleStatus
}

const (
	isMiddle     = rasoatv1.MiddleStatus_MIDDLE_STATUS_MIDDLE
	notMiddle    = rasoatv1.MiddleStatus_MIDDLE_STATUS_NOT_MIDDLE
	undetermined = rasoatv1.MiddleStatus_MIDDLE_STATUS_UNDETERMINED
)

// farming says the household works in agriculture, forestry, fishery or
// salt-making and received assist đồng of state allowances and social
// assistance over 12 months: the facts the middle living standard needs.
func farming(assist int64) func(*rasoatv1.Household) {
	return func(h *rasoatv1.Household) {
		h.AgriForestryFisherySalt = proto.Bool(true)
		h.Income.StateAssistanceAnnualVnd = proto.Int64(assist)
	}
}

// notFarming says the household works in none of those sectors.
func notFarming(h *rasoatv1.Household) { h.AgriForestryFisherySalt = proto.Bool(false) }

const (
	poor     = rasoatv1.Classification_CLASSIFICATION_POOR
	nearPoor = rasoatv1.Classification_CLASSIFICATION_NEAR_POOR
	middle   = rasoatv1.Classification_CLASSIFICATION_MIDDLE
	notPoor  = rasoatv1.Classification_CLASSIFICATION_NOT_POOR
)

// commonCases hold for Decree 07/2021 and Decree 351/2025 alike.
func commonCases() []boundaryCase {
	return []boundaryCase{
		{name: "base household is deprived in nothing", edit: func(*rasoatv1.Household) {}, class: notPoor},
		// Employment.
		{name: "unemployed member aged 15 is deprived", edit: add(aged(15, 0, unemployed)), indicator: "EMPLOYMENT", deprived: true},
		{name: "unemployed member aged 14 is not of working age", edit: add(aged(15, 1, unemployed)), indicator: "EMPLOYMENT"},
		{name: "wage work without a contract is deprived", edit: add(aged(30, 0, func(m *rasoatv1.Member) {
			m.Employment = rasoatv1.Employment_EMPLOYMENT_WAGE_NO_CONTRACT
		})), indicator: "EMPLOYMENT", deprived: true},
		{name: "self-employed on the family farm is not deprived", edit: add(aged(30, 0, func(m *rasoatv1.Member) {
			m.Employment = rasoatv1.Employment_EMPLOYMENT_SELF_EMPLOYED
		})), indicator: "EMPLOYMENT"},
		{name: "unemployed woman aged 55 is of working age", edit: add(aged(55, 0, both(female, unemployed))), indicator: "EMPLOYMENT", deprived: true},
		{name: "unemployed man aged 62 is past working age", edit: add(aged(62, 0, both(unemployed, allowance(true)))), indicator: "EMPLOYMENT"},
		// Dependants: the base has two children of four (50%).
		{name: "dependants at exactly 50% are not deprived", edit: func(*rasoatv1.Household) {}, indicator: "DEPENDANTS"},
		{name: "a child aged 15 is a dependant: 3 of 5 is over 50%", edit: add(aged(15, 0, inSchool(rasoatv1.SchoolLevel_SCHOOL_LEVEL_UPPER_SECONDARY))), indicator: "DEPENDANTS", deprived: true},
		{name: "a member aged 16 is not a dependant: 2 of 5", edit: add(aged(16, 0, inSchool(rasoatv1.SchoolLevel_SCHOOL_LEVEL_UPPER_SECONDARY))), indicator: "DEPENDANTS"},
		{name: "an elder aged 60 is a dependant", edit: add(aged(60, 0, allowance(true))), indicator: "DEPENDANTS", deprived: true},
		{name: "a member aged 59 is not a dependant", edit: add(aged(59, 1, nil)), indicator: "DEPENDANTS"},
		{name: "a member with a severe disability is a dependant", edit: add(aged(30, 0, both(allowance(true), func(m *rasoatv1.Member) { m.DisabilitySevere = true }))), indicator: "DEPENDANTS", deprived: true},
		// Nutrition.
		{name: "stunted child aged 15 is deprived", edit: add(aged(15, 0, func(m *rasoatv1.Member) {
			m.ChildStunted = true
			inSchool(rasoatv1.SchoolLevel_SCHOOL_LEVEL_UPPER_SECONDARY)(m)
		})), indicator: "NUTRITION", deprived: true},
		{name: "underweight flag on a member aged 16 does not count", edit: add(aged(16, 0, func(m *rasoatv1.Member) { m.ChildUnderweight = true })), indicator: "NUTRITION"},
		// Health insurance.
		{name: "uninsured child aged 6 is deprived", edit: add(aged(6, 0, both(uninsured, inSchool(rasoatv1.SchoolLevel_SCHOOL_LEVEL_PRIMARY)))), indicator: "HEALTH_INSURANCE", deprived: true},
		{name: "uninsured child aged 5 is not deprived", edit: add(aged(6, 1, both(uninsured, inSchool(rasoatv1.SchoolLevel_SCHOOL_LEVEL_PRIMARY)))), indicator: "HEALTH_INSURANCE"},
		// Adult education.
		{name: "member aged 16 with only primary, not in school, is deprived", edit: add(aged(16, 0, both(notInSch, edu(rasoatv1.EducationLevel_EDUCATION_LEVEL_PRIMARY)))), indicator: "ADULT_EDUCATION", deprived: true},
		{name: "member aged 16 with only primary but in school is not deprived", edit: add(aged(16, 0, both(edu(rasoatv1.EducationLevel_EDUCATION_LEVEL_PRIMARY), inSchool(rasoatv1.SchoolLevel_SCHOOL_LEVEL_LOWER_SECONDARY)))), indicator: "ADULT_EDUCATION"},
		{name: "member aged 17 with lower secondary is not deprived", edit: add(aged(17, 0, both(notInSch, edu(rasoatv1.EducationLevel_EDUCATION_LEVEL_LOWER_SECONDARY)))), indicator: "ADULT_EDUCATION"},
		{name: "member aged 18 with only lower secondary is deprived", edit: add(aged(18, 0, edu(rasoatv1.EducationLevel_EDUCATION_LEVEL_LOWER_SECONDARY))), indicator: "ADULT_EDUCATION", deprived: true},
		{name: "member aged 30 with only lower secondary is deprived", edit: add(aged(30, 0, edu(rasoatv1.EducationLevel_EDUCATION_LEVEL_LOWER_SECONDARY))), indicator: "ADULT_EDUCATION", deprived: true},
		{name: "member aged 31 is outside the adult education band", edit: add(aged(31, 0, edu(rasoatv1.EducationLevel_EDUCATION_LEVEL_NONE))), indicator: "ADULT_EDUCATION"},
		{name: "member aged 25 with a vocational certificate is not deprived", edit: add(aged(25, 0, edu(rasoatv1.EducationLevel_EDUCATION_LEVEL_VOCATIONAL))), indicator: "ADULT_EDUCATION"},
		// Child schooling.
		{name: "child aged 15 not in school is deprived", edit: add(aged(15, 0, notInSch)), indicator: "CHILD_SCHOOLING", deprived: true},
		{name: "member aged 16 not in school is not a child", edit: add(aged(16, 0, notInSch)), indicator: "CHILD_SCHOOLING"},
		{name: "child aged 3 not in school is deprived", edit: add(aged(3, 0, notInSch)), indicator: "CHILD_SCHOOLING", deprived: true},
		{name: "child aged 2 is too young to count", edit: add(aged(3, 1, notInSch)), indicator: "CHILD_SCHOOLING"},
		{name: "ethnic minority child of school age 11 in primary is within the late-entry allowance", edit: add(func(r string) *rasoatv1.Member {
			m := child("Giàng Thị Mỷ", fmt.Sprintf("%s-03-01", yearMinus(r, 11)), rasoatv1.SchoolLevel_SCHOOL_LEVEL_PRIMARY)
			minority(m)
			return m
		}), indicator: "CHILD_SCHOOLING"},
		{name: "Kinh child of school age 11 in primary is below the level for the age", edit: add(func(r string) *rasoatv1.Member {
			return child("Lê Thị Hoa", fmt.Sprintf("%s-03-01", yearMinus(r, 11)), rasoatv1.SchoolLevel_SCHOOL_LEVEL_PRIMARY)
		}), indicator: "CHILD_SCHOOLING", deprived: true},
		// Housing.
		{name: "one non-durable structure is not deprived", edit: func(h *rasoatv1.Household) { h.Housing.RoofDurable = proto.Bool(false) }, indicator: "HOUSING_QUALITY"},
		{name: "two non-durable structures are deprived", edit: func(h *rasoatv1.Household) {
			h.Housing.RoofDurable, h.Housing.WallDurable = proto.Bool(false), proto.Bool(false)
		}, indicator: "HOUSING_QUALITY", deprived: true},
		{name: "exactly 8 m² per person is not deprived", edit: func(h *rasoatv1.Household) { h.Housing.FloorAreaM2 = proto.Float64(32) }, indicator: "HOUSING_AREA"},
		{name: "just under 8 m² per person is deprived", edit: func(h *rasoatv1.Household) { h.Housing.FloorAreaM2 = proto.Float64(31.9) }, indicator: "HOUSING_AREA", deprived: true},
		{name: "7.998 m² per person is deprived and shows as 7,99, not 8", edit: func(h *rasoatv1.Household) { h.Housing.FloorAreaM2 = proto.Float64(31.992) }, indicator: "HOUSING_AREA", deprived: true},
		{name: "8.004 m² per person is not deprived and shows as 8", edit: func(h *rasoatv1.Household) { h.Housing.FloorAreaM2 = proto.Float64(32.016) }, indicator: "HOUSING_AREA"},
		{name: "a removed member does not count for the area", edit: func(h *rasoatv1.Household) {
			h.Housing.FloorAreaM2 = proto.Float64(24)
			h.Members[3].Removed = rasoatv1.Removal_REMOVAL_MOVED_OUT
		}, indicator: "HOUSING_AREA"},
		// Water and sanitation.
		{name: "rainwater is a hygienic source", edit: func(h *rasoatv1.Household) {
			h.WaterSanitation.WaterSource = rasoatv1.WaterSource_WATER_SOURCE_RAINWATER
		}, indicator: "WATER"},
		{name: "an unprotected spring is deprived", edit: func(h *rasoatv1.Household) {
			h.WaterSanitation.WaterSource = rasoatv1.WaterSource_WATER_SOURCE_UNPROTECTED_SPRING
		}, indicator: "WATER", deprived: true},
		{name: "a ventilated pit latrine is hygienic", edit: func(h *rasoatv1.Household) { h.WaterSanitation.Latrine = rasoatv1.Latrine_LATRINE_VENTILATED_PIT }, indicator: "LATRINE"},
		{name: "a simple pit latrine is deprived", edit: func(h *rasoatv1.Household) { h.WaterSanitation.Latrine = rasoatv1.Latrine_LATRINE_SIMPLE_PIT }, indicator: "LATRINE", deprived: true},
		// Information.
		{name: "no member using telecom is deprived", edit: func(h *rasoatv1.Household) { h.Information.UsesTelecom = proto.Bool(false) }, indicator: "TELECOM", deprived: true},
		// Income and classification.
		{name: "exactly the poverty line with 2 deprivations is near-poor", edit: all(deprive(2), lineIncome(0, false)), class: nearPoor},
		{name: "exactly the poverty line with 3 deprivations is poor", edit: all(deprive(3), lineIncome(0, false)), class: poor},
		{name: "one đồng over the poverty line with 3 deprivations is not poor or near-poor", edit: all(deprive(3), lineIncome(1, false))},
		{name: "urban household at the rural line is judged by the urban line", edit: all(deprive(3), lineIncome(0, false), func(h *rasoatv1.Household) {
			h.Area = rasoatv1.Area_AREA_URBAN
		}), class: poor},
		{name: "annual income by source exactly at the line is at the line", edit: all(deprive(3), lineIncome(0, true)), class: poor},
		{name: "annual income one đồng over the line is over it", edit: all(deprive(2), lineIncome(1, true))},
	}
}

func yearMinus(r string, n int) string {
	t, _ := time.Parse(time.DateOnly, r)
	return fmt.Sprint(t.Year() - n)
}

// lineIncome sets income at the household's poverty line (deprivation line
// for Decision 59) plus delta, monthly per capita or as the annual total.
func lineIncome(delta int64, annual bool) func(*rasoatv1.Household) {
	return func(h *rasoatv1.Household) {
		std, err := survey.Builtin().Choose("", h.ReviewDate)
		if err != nil {
			panic(err)
		}
		l := std.Lines.Rural
		if h.Area == rasoatv1.Area_AREA_URBAN {
			l = std.Lines.Urban
		}
		line := l.Poverty
		if l.NearPoverty > 0 {
			line = l.NearPoverty
		}
		if annual {
			n := int64(0)
			for _, m := range h.Members {
				if m.Removed == 0 {
					n++
				}
			}
			total := line*12*n + delta
			h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_Annual{Annual: &rasoatv1.AnnualIncome{
				WagesVnd: total / 2, FarmingVnd: total - total/2,
			}}}
			return
		}
		monthly(line + delta)(h)
	}
}

func scoreA(a int32) func(*rasoatv1.Household) {
	return func(h *rasoatv1.Household) { h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_ScoreA{ScoreA: a}} }
}

var standardCases = map[string][]boundaryCase{
	"2016-2020": {
		{name: "base household is deprived in nothing", edit: func(*rasoatv1.Household) {}, class: notPoor},
		{name: "income at the poverty line is poor whatever the deprivations", edit: monthly(700_000), class: poor},
		{name: "income over the poverty line, at the near-poverty line, with 2 deprivations is near-poor", edit: all(monthly(1_000_000), deprive(2)), class: nearPoor},
		{name: "income over the poverty line with 3 deprivations is poor", edit: all(monthly(700_001), deprive(3)), class: poor},
		{name: "income over the near-poverty line with 3 deprivations is middle", edit: all(monthly(1_000_001), deprive(3)), class: middle},
		{name: "income at the middle line is middle", edit: monthly(1_500_000), class: middle},
		{name: "income over the middle line is not poor", edit: monthly(1_500_001), class: notPoor},
		{name: "urban income at 900,000 is poor", edit: all(monthly(900_000), func(h *rasoatv1.Household) { h.Area = rasoatv1.Area_AREA_URBAN }), class: poor},
		{name: "urban income at 1,300,000 with 2 deprivations is near-poor", edit: all(monthly(1_300_000), deprive(2), func(h *rasoatv1.Household) { h.Area = rasoatv1.Area_AREA_URBAN }), class: nearPoor},
		{name: "member aged 15 born after 1986 without lower secondary, not in school, is deprived", edit: add(aged(15, 0, notInSch)), indicator: "ADULT_EDUCATION", deprived: true},
		{name: "member born in 1985 without lower secondary is outside the band", edit: add(func(r string) *rasoatv1.Member {
			m := member("Hà Văn Tâm", rasoatv1.Sex_SEX_MALE, "1985-12-31")
			m.HighestEducation = rasoatv1.EducationLevel_EDUCATION_LEVEL_NONE
			return m
		}), indicator: "ADULT_EDUCATION"},
		{name: "member born in 1986 without lower secondary is deprived", edit: add(func(r string) *rasoatv1.Member {
			m := member("Hà Văn Tâm", rasoatv1.Sex_SEX_MALE, "1986-01-01")
			m.HighestEducation = rasoatv1.EducationLevel_EDUCATION_LEVEL_PRIMARY
			return m
		}), indicator: "ADULT_EDUCATION", deprived: true},
		{name: "child aged 5 not in school is deprived", edit: add(aged(5, 0, notInSch)), indicator: "CHILD_SCHOOLING", deprived: true},
		{name: "child aged 4 is too young to count", edit: add(aged(5, 1, notInSch)), indicator: "CHILD_SCHOOLING"},
		{name: "child aged 14 not in school is deprived", edit: add(aged(14, 0, notInSch)), indicator: "CHILD_SCHOOLING", deprived: true},
		{name: "member aged 15 not in school is not a child here", edit: add(aged(15, 0, notInSch)), indicator: "CHILD_SCHOOLING"},
		{name: "a seriously ill member not treated is deprived", edit: add(aged(50, 0, func(m *rasoatv1.Member) { m.IllUntreated = true })), indicator: "HEALTH_ACCESS", deprived: true},
		{name: "uninsured child aged 6 is deprived", edit: add(aged(6, 0, both(uninsured, inSchool(rasoatv1.SchoolLevel_SCHOOL_LEVEL_PRIMARY)))), indicator: "HEALTH_INSURANCE", deprived: true},
		{name: "uninsured child aged 5 is not deprived", edit: add(aged(6, 1, both(uninsured, inSchool(rasoatv1.SchoolLevel_SCHOOL_LEVEL_PRESCHOOL)))), indicator: "HEALTH_INSURANCE"},
		{name: "exactly 8 m² per person is not deprived", edit: func(h *rasoatv1.Household) { h.Housing.FloorAreaM2 = proto.Float64(32) }, indicator: "HOUSING_AREA"},
		{name: "just under 8 m² per person is deprived", edit: func(h *rasoatv1.Household) { h.Housing.FloorAreaM2 = proto.Float64(31.99) }, indicator: "HOUSING_AREA", deprived: true},
		{name: "a smartphone alone is not an information asset here", edit: func(h *rasoatv1.Household) {
			h.Information.InfoDevices = []rasoatv1.InfoDevice{rasoatv1.InfoDevice_INFO_DEVICE_SMARTPHONE}
		}, indicator: "INFO_DEVICES", deprived: true},
		{name: "hearing the commune loudspeaker is access to information", edit: func(h *rasoatv1.Household) {
			h.Information.InfoDevices = nil
			h.Information.HearsLoudspeaker = true
		}, indicator: "INFO_DEVICES"},
		{name: "two non-durable structures are deprived", edit: func(h *rasoatv1.Household) {
			h.Housing.FrameDurable, h.Housing.WallDurable = proto.Bool(false), proto.Bool(false)
		}, indicator: "HOUSING_QUALITY", deprived: true},
	},
	"2021-2025": append(commonCases(),
		// Middle living standard: Decree 07/2021 Điều 3 khoản 3 and Decision
		// 24/2021 Điều 2 khoản 2 (see determineMiddle).
		boundaryCase{name: "farming household over the line, at the middle line, is middle", edit: all(deprive(3), monthly(2_250_000), farming(0)), class: middle, middle: isMiddle},
		boundaryCase{name: "farming household one đồng over the middle line is not middle", edit: all(monthly(2_250_001), farming(0)), class: notPoor, middle: notMiddle},
		boundaryCase{name: "farming household one đồng over the poverty line is middle", edit: all(monthly(1_500_001), farming(0)), class: middle, middle: isMiddle},
		boundaryCase{name: "urban farming household at 3,000,000 is middle", edit: all(monthly(3_000_000), farming(0), func(h *rasoatv1.Household) { h.Area = rasoatv1.Area_AREA_URBAN }), class: middle, middle: isMiddle},
		boundaryCase{name: "a household in none of those sectors is not middle in the band", edit: all(monthly(2_000_000), notFarming), class: notPoor, middle: notMiddle},
		boundaryCase{name: "an unknown sector in the band is undetermined, not middle", edit: all(monthly(2_000_000), func(h *rasoatv1.Household) {
			h.Income.StateAssistanceAnnualVnd = proto.Int64(0)
		}), class: notPoor, middle: undetermined},
		boundaryCase{name: "an unknown sector over the band is not middle", edit: all(monthly(2_250_001), func(h *rasoatv1.Household) {
			h.Income.StateAssistanceAnnualVnd = proto.Int64(0)
		}), class: notPoor, middle: notMiddle},
		boundaryCase{name: "an unknown state assistance leaves a farming household undetermined", edit: all(monthly(2_000_000), func(h *rasoatv1.Household) {
			h.AgriForestryFisherySalt = proto.Bool(true)
		}), class: notPoor, middle: undetermined},
		boundaryCase{name: "neither fact known is undetermined, and the note names both", edit: monthly(2_000_000), class: notPoor, middle: undetermined},
		// 4 members × 12 months × 2,300,000 = 110,400,000; less 2,400,000 of
		// assistance is 108,000,000 = 2,250,000 a person a month.
		boundaryCase{name: "state assistance left out brings a farming household into the band", edit: all(monthly(2_300_000), farming(2_400_000)), class: middle, middle: isMiddle},
		boundaryCase{name: "one đồng less assistance leaves it over the band", edit: all(monthly(2_300_000), farming(2_399_999)), class: notPoor, middle: notMiddle},
		// 4 × 12 × 1,550,000 = 74,400,000; less 2,400,000 is 1,500,000 a month.
		boundaryCase{name: "a farming household over the line only by its assistance is not poor and not middle", edit: all(monthly(1_550_000), farming(2_400_000)), class: notPoor, middle: notMiddle},
		boundaryCase{name: "annual income less assistance at the middle line is middle", edit: all(func(h *rasoatv1.Household) {
			h.Income = &rasoatv1.Income{Basis: &rasoatv1.Income_Annual{Annual: &rasoatv1.AnnualIncome{FarmingVnd: 100_000_000, PensionsAllowancesVnd: 10_000_000}}}
		}, farming(2_000_000)), class: middle, middle: isMiddle},
		boundaryCase{name: "score A over the line leaves the middle undetermined: no score A band", edit: all(scoreA(141), farming(0)), class: notPoor, middle: undetermined},
		boundaryCase{name: "a household known not farming is not middle even on score A", edit: all(scoreA(141), notFarming), class: notPoor, middle: notMiddle},
		boundaryCase{name: "income over the middle line is not poor", edit: monthly(2_250_001), class: notPoor},
		boundaryCase{name: "an elder without a monthly social allowance is still a dependant here", edit: add(aged(60, 0, allowance(false))), indicator: "DEPENDANTS", deprived: true},
		boundaryCase{name: "an elder whose allowance is not answered is a dependant here: the answer is not asked", edit: add(aged(60, 0, nil)), indicator: "DEPENDANTS", deprived: true},
		boundaryCase{name: "score A at 140 with 3 deprivations is poor", edit: all(deprive(3), scoreA(140)), class: poor},
		boundaryCase{name: "score A at 140 with 2 deprivations is near-poor", edit: all(deprive(2), scoreA(140)), class: nearPoor},
		boundaryCase{name: "score A at 141 is above the line", edit: all(deprive(3), scoreA(141)), class: notPoor},
		boundaryCase{name: "urban score A at 175 with 3 deprivations is poor", edit: all(deprive(3), scoreA(175), func(h *rasoatv1.Household) { h.Area = rasoatv1.Area_AREA_URBAN }), class: poor},
		boundaryCase{name: "a smartphone is a means of accessing information", edit: func(h *rasoatv1.Household) {
			h.Information.InfoDevices = []rasoatv1.InfoDevice{rasoatv1.InfoDevice_INFO_DEVICE_SMARTPHONE}
		}, indicator: "INFO_DEVICES"},
		boundaryCase{name: "no device and no loudspeaker is deprived", edit: func(h *rasoatv1.Household) { h.Information.InfoDevices = nil }, indicator: "INFO_DEVICES", deprived: true},
		boundaryCase{name: "hearing the commune loudspeaker is access to information", edit: func(h *rasoatv1.Household) {
			h.Information.InfoDevices = nil
			h.Information.HearsLoudspeaker = true
		}, indicator: "INFO_DEVICES"},
	),
	"2026-2030": append(commonCases(),
		boundaryCase{name: "income at 2,200,000 with 3 deprivations is poor", edit: all(deprive(3), monthly(2_200_000)), class: poor},
		boundaryCase{name: "income over 2,200,000 is not poor: no middle band is confirmed", edit: all(deprive(3), monthly(2_200_001), farming(0)), class: notPoor, middle: undetermined},
		boundaryCase{name: "a household known not farming is not middle without a band", edit: all(monthly(2_200_001), notFarming), class: notPoor, middle: notMiddle},
		boundaryCase{name: "urban income at 2,800,000 with 2 deprivations is near-poor", edit: all(deprive(2), monthly(2_800_000), func(h *rasoatv1.Household) { h.Area = rasoatv1.Area_AREA_URBAN }), class: nearPoor},
		boundaryCase{name: "no member using digital services is deprived", edit: func(h *rasoatv1.Household) { h.Information.UsesDigitalServices = proto.Bool(false) }, indicator: "DIGITAL_SERVICES", deprived: true},
		boundaryCase{name: "waste neither collected nor treated is deprived", edit: func(h *rasoatv1.Household) {
			h.Environment.WasteTreatment = rasoatv1.WasteTreatment_WASTE_TREATMENT_NONE
		}, indicator: "WASTE", deprived: true},
		boundaryCase{name: "waste treated on site is not deprived", edit: func(h *rasoatv1.Household) {
			h.Environment.WasteTreatment = rasoatv1.WasteTreatment_WASTE_TREATMENT_TREATED_ON_SITE
		}, indicator: "WASTE"},
		// Dependants as the published draft of Decree 351/2025 counts them
		// (provisional): the elderly and the disabled only with a monthly
		// social allowance.
		boundaryCase{name: "an elder aged 60 without a monthly social allowance is not a dependant", edit: add(aged(60, 0, allowance(false))), indicator: "DEPENDANTS"},
		boundaryCase{name: "a severely disabled member without a monthly social allowance is not a dependant", edit: add(aged(30, 0, both(allowance(false), func(m *rasoatv1.Member) { m.DisabilitySevere = true }))), indicator: "DEPENDANTS"},
		boundaryCase{name: "a child aged 15 is a dependant without any allowance", edit: add(aged(15, 0, inSchool(rasoatv1.SchoolLevel_SCHOOL_LEVEL_UPPER_SECONDARY))), indicator: "DEPENDANTS", deprived: true},
		boundaryCase{name: "owning no device is no longer an indicator", edit: func(h *rasoatv1.Household) { h.Information.InfoDevices = nil }, class: notPoor},
	),
}

// TestBoundaries pins every indicator's edge for each standard, and writes
// what the engine says about each case to testdata/boundaries-<std>.golden
// so that a reviewer reads the verdicts and reasons in one place.
func TestBoundaries(t *testing.T) {
	reg := survey.Builtin()
	for std, cases := range standardCases {
		t.Run(std, func(t *testing.T) {
			s, err := reg.ByID(std)
			if err != nil {
				t.Fatal(err)
			}
			var golden bytes.Buffer
			for _, tc := range cases {
				h := base(std)
				tc.edit(h)
				a, err := s.Assess(h)
				if err != nil {
					t.Errorf("%s: %v", tc.name, err)
					continue
				}
				fmt.Fprintf(&golden, "%s\n  %s, %d deprived %v\n", tc.name, short(a.Classification), a.Deprivations, a.Deprived())
				if tc.indicator != "" {
					r := find(t, a, tc.indicator)
					if r == nil {
						continue
					}
					if r.Deprived != tc.deprived {
						t.Errorf("%s: %s deprived = %v, want %v (%s)", tc.name, tc.indicator, r.Deprived, tc.deprived, texts(r, h))
					}
					fmt.Fprintf(&golden, "  %s: %s\n", tc.indicator, texts(r, h))
				}
				if tc.class == notPoor || tc.class == middle || tc.middle != 0 {
					fmt.Fprintf(&golden, "  middle: %s\n", strings.TrimPrefix(a.Middle.String(), "MIDDLE_STATUS_"))
					for _, n := range a.Notes() {
						if !strings.HasPrefix(n, "provisional") && !slices.Contains(s.Notes, n) {
							fmt.Fprintf(&golden, "  note: %s\n", n)
						}
					}
				}
				if tc.middle != 0 && a.Middle != tc.middle {
					t.Errorf("%s: middle = %v, want %v (notes %q)", tc.name, a.Middle, tc.middle, a.Notes())
				}
				if tc.class != 0 && a.Classification != tc.class {
					t.Errorf("%s: classification = %v, want %v (deprived %v)", tc.name, a.Classification, tc.class, a.Deprived())
				}
				if tc.class == 0 && tc.indicator == "" && (a.Classification == poor || a.Classification == nearPoor) {
					t.Errorf("%s: classification = %v, want above the line", tc.name, a.Classification)
				}
				if std == "2026-2030" && !a.Provisional {
					t.Errorf("%s: result under a provisional standard not marked provisional", tc.name)
				}
			}
			checkGolden(t, filepath.Join("testdata", "boundaries-"+std+".golden"), golden.Bytes())
		})
	}
}

func short(c rasoatv1.Classification) string {
	return strings.TrimPrefix(c.String(), "CLASSIFICATION_")
}

func find(t *testing.T, a *survey.Assessment, id string) *survey.IndicatorResult {
	t.Helper()
	for i := range a.Indicators {
		if a.Indicators[i].Indicator.ID == id {
			return &a.Indicators[i]
		}
	}
	t.Errorf("standard %s has no indicator %s", a.Standard.ID, id)
	return nil
}

func texts(r *survey.IndicatorResult, h *rasoatv1.Household) string {
	var parts []string
	for _, why := range r.Reasons {
		parts = append(parts, why.Text(h))
	}
	return strings.Join(parts, "; ")
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./survey -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the engine's output; if the change is intended, rerun with -update and review the diff.\ngot:\n%s", path, got)
	}
}
