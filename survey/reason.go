package survey

import (
	"bytes"
	"iter"
	"math"
	"slices"
	"strconv"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/proto"
)

// Reason is one fact behind an indicator's outcome, kept as data so that
// assessing costs no formatting; Text renders it for a village meeting.
type Reason struct {
	// Member is the index in Household.Members, or -1 for the household.
	Member int
	Code   ReasonCode
	// Age, Enum, Enum2 and Value carry the figures the code's sentence
	// needs (see Text).
	Age   int
	Enum  int32
	Enum2 int32
	Value float64
}

// ReasonCode says which sentence explains an outcome.
type ReasonCode uint8

const (
	reasonEmployment ReasonCode = iota + 1
	reasonEmploymentNone
	reasonDependants
	reasonStunted
	reasonUnderweight
	reasonNutritionNone
	reasonNoInsurance
	reasonInsuranceAll
	reasonIllUntreated
	reasonIllNone
	reasonAdultEducation
	reasonAdultEducationNone
	reasonNotInSchool
	reasonBehindLevel
	reasonSchoolingAll
	reasonHousingQuality
	reasonArea
	reasonWater
	reasonLatrine
	reasonTelecom
	reasonDevice
	reasonLoudspeaker
	reasonNoDevice
	reasonDigital
	reasonWaste
)

// Text renders the reason in Vietnamese, e.g. "Vi Thị Mai, 12 tuổi, không
// có bảo hiểm y tế".
func (r Reason) Text(h *Household) string {
	var buf [256]byte // all but texts with very long names fit: one allocation, the string's
	return string(r.appendText(buf[:0], h))
}

// appendText appends Text to b: the scoring service writes every reason
// straight into its answer, with no string per reason.
func (r Reason) appendText(b []byte, h *Household) []byte {
	switch r.Code {
	case reasonEmployment:
		return appendLabel(r.appendWho(b, h), employmentVI, r.Enum)
	case reasonEmploymentNone:
		return append(b, "không có người trong độ tuổi lao động thất nghiệp hoặc làm công ăn lương không có hợp đồng lao động"...)
	case reasonDependants:
		b = strconv.AppendInt(b, int64(r.Age), 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(r.Enum), 10)
		b = append(b, " nhân khẩu là người phụ thuộc ("...)
		if r.Enum2 > 0 && r.Enum > 0 {
			// Deprived above the limit ("lớn hơn 50%"), as the rule compares.
			deprived := int64(r.Age)*10000 > int64(r.Enum2)*int64(r.Enum)
			b = appendSided(b, 100*float64(r.Age)/float64(r.Enum), r.Enum2, deprived, false)
			return append(b, "%)"...)
		}
		return append(appendPercent(b, r.Age, int(r.Enum)), ')')
	case reasonStunted:
		return append(r.appendWho(b, h), "suy dinh dưỡng chiều cao theo tuổi (thấp còi)"...)
	case reasonUnderweight:
		return append(r.appendWho(b, h), "suy dinh dưỡng cân nặng theo tuổi (nhẹ cân)"...)
	case reasonNutritionNone:
		b = strconv.AppendInt(append(b, "không có trẻ dưới "...), int64(r.Age), 10)
		return append(b, " tuổi bị suy dinh dưỡng"...)
	case reasonNoInsurance:
		return append(r.appendWho(b, h), "không có bảo hiểm y tế"...)
	case reasonInsuranceAll:
		b = strconv.AppendInt(append(b, "mọi thành viên từ "...), int64(r.Age), 10)
		return append(b, " tuổi trở lên có bảo hiểm y tế"...)
	case reasonIllUntreated:
		return append(r.appendWho(b, h), "ốm đau nhưng không đi khám chữa bệnh"...)
	case reasonIllNone:
		return append(b, "không có người ốm đau mà không đi khám chữa bệnh"...)
	case reasonAdultEducation:
		b = appendLabel(append(r.appendWho(b, h), "trình độ "...), educationVI, r.Enum)
		return append(b, ", không đi học"...)
	case reasonAdultEducationNone:
		return append(b, "không có người lớn thiếu bằng cấp so với độ tuổi"...)
	case reasonNotInSchool:
		return append(r.appendWho(b, h), "không đi học"...)
	case reasonBehindLevel:
		b = appendLabel(append(r.appendWho(b, h), "đang học "...), schoolVI, r.Enum)
		b = appendLabel(append(b, ", chưa đúng cấp học theo độ tuổi ("...), schoolVI, r.Enum2)
		return append(b, ')')
	case reasonSchoolingAll:
		b = strconv.AppendInt(append(b, "mọi trẻ từ "...), int64(r.Age), 10)
		b = strconv.AppendInt(append(b, " đến "...), int64(r.Enum), 10)
		return append(b, " tuổi đi học đúng cấp"...)
	case reasonHousingQuality:
		if r.Enum&7 == 0 {
			return append(b, "cả 3 kết cấu chính (tường, cột, mái) bền chắc"...)
		}
		b = strconv.AppendInt(b, int64(r.Age), 10)
		return append(append(b, "/3 kết cấu chính không bền chắc: "...), structuresVI[r.Enum&7]...)
	case reasonArea:
		per := 0.0
		if r.Age > 0 {
			per = r.Value / float64(r.Age)
		}
		b = append(b, "diện tích bình quân "...)
		if r.Enum2 > 0 {
			b = appendSided(b, per, r.Enum2, r.Enum == 1, true)
		} else {
			b = appendNum(b, per)
		}
		b = appendNum(append(b, " m²/người ("...), r.Value)
		b = strconv.AppendInt(append(b, " m², "...), int64(r.Age), 10)
		return append(b, " người)"...)
	case reasonWater:
		return appendLabel(append(b, "nguồn nước: "...), waterVI, r.Enum)
	case reasonLatrine:
		return appendLabel(append(b, "nhà tiêu: "...), latrineVI, r.Enum)
	case reasonTelecom:
		if r.Enum == 1 {
			return append(b, "không có thành viên nào sử dụng thuê bao điện thoại hoặc internet"...)
		}
		return append(b, "có thành viên sử dụng thuê bao điện thoại hoặc internet"...)
	case reasonDevice:
		return appendLabel(append(b, "có "...), deviceVI, r.Enum)
	case reasonLoudspeaker:
		return append(b, "nghe được loa truyền thanh xã/thôn"...)
	case reasonNoDevice:
		if r.Enum == 1 {
			return append(b, "không có phương tiện tiếp cận thông tin và không nghe được loa truyền thanh xã/thôn"...)
		}
		return append(b, "không có phương tiện tiếp cận thông tin"...)
	case reasonDigital:
		if r.Enum == 1 {
			return append(b, "không có thành viên nào sử dụng dịch vụ công trực tuyến hoặc ngân hàng số"...)
		}
		return append(b, "có thành viên sử dụng dịch vụ công trực tuyến hoặc ngân hàng số"...)
	case reasonWaste:
		return appendLabel(append(b, "rác thải: "...), wasteVI, r.Enum)
	}
	return append(b, '?')
}

// appendWho appends "name, age tuổi, " for a reason about one member, and
// nothing for one about the household.
func (r Reason) appendWho(b []byte, h *Household) []byte {
	if r.Member < 0 || r.Member >= len(h.GetMembers()) {
		return b
	}
	b = append(b, h.GetMembers()[r.Member].GetFullName()...)
	b = strconv.AppendInt(append(b, ", "...), int64(r.Age), 10)
	return append(b, " tuổi, "...)
}

func appendPercent(b []byte, a, n int) []byte {
	if n == 0 {
		return append(b, "0%"...)
	}
	return append(appendNum(b, 100*float64(a)/float64(n)), '%')
}

// appendNum writes a figure the Vietnamese way: at most two decimals, no
// trailing zeros, a decimal comma.
func appendNum(b []byte, f float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, f, 'f', 2, 64)
	b = b[:start+len(bytes.TrimRight(bytes.TrimRight(b[start:], "0"), "."))]
	if i := bytes.IndexByte(b[start:], '.'); i >= 0 {
		b[start+i] = ','
	}
	return b
}

// appendSided writes v as appendNum does, to two decimals, but never on
// the wrong side of the threshold limit (in hundredths): a rounded figure
// must not say the opposite of the verdict it explains. 7.998 m² a person
// is deprived under 8 m² and shows as "7,99", not "8"; 50.004 % of
// dependants (deprived above 50 %) would show as "50,01", not "50". With
// below, deprived means v < limit; otherwise v > limit.
func appendSided(b []byte, v float64, limit int32, deprived, below bool) []byte {
	k := math.Round(v * 100)
	if math.IsNaN(k) || math.IsInf(k, 0) {
		return appendNum(b, v)
	}
	l := float64(limit)
	switch {
	case below && deprived && k >= l:
		k = l - 1
	case below && !deprived && k < l:
		k = l
	case !below && deprived && k <= l:
		k = l + 1
	case !below && !deprived && k > l:
		k = l
	}
	return appendNum(b, k/100)
}

func appendLabel(b []byte, m map[int32]string, v int32) []byte {
	if s, ok := m[v]; ok {
		return append(b, s...)
	}
	return strconv.AppendInt(b, int64(v), 10)
}

// structuresVI names the non-durable structures by bit mask (wall 1,
// frame 2, roof 4).
var structuresVI = [8]string{"", "tường", "cột", "tường, cột", "mái", "tường, mái", "cột, mái", "tường, cột, mái"}

var (
	employmentVI = map[int32]string{
		int32(rasoatv1.Employment_EMPLOYMENT_WAGE_WITH_CONTRACT):  "làm công ăn lương có hợp đồng lao động",
		int32(rasoatv1.Employment_EMPLOYMENT_WAGE_NO_CONTRACT):    "làm công ăn lương không có hợp đồng lao động",
		int32(rasoatv1.Employment_EMPLOYMENT_SELF_EMPLOYED):       "tự làm",
		int32(rasoatv1.Employment_EMPLOYMENT_UNEMPLOYED):          "thất nghiệp",
		int32(rasoatv1.Employment_EMPLOYMENT_NOT_IN_LABOUR_FORCE): "không tham gia lực lượng lao động",
	}
	educationVI = map[int32]string{
		int32(rasoatv1.EducationLevel_EDUCATION_LEVEL_NONE):            "chưa tốt nghiệp tiểu học",
		int32(rasoatv1.EducationLevel_EDUCATION_LEVEL_PRIMARY):         "tốt nghiệp tiểu học",
		int32(rasoatv1.EducationLevel_EDUCATION_LEVEL_LOWER_SECONDARY): "tốt nghiệp trung học cơ sở",
		int32(rasoatv1.EducationLevel_EDUCATION_LEVEL_UPPER_SECONDARY): "tốt nghiệp trung học phổ thông",
		int32(rasoatv1.EducationLevel_EDUCATION_LEVEL_VOCATIONAL):      "chứng chỉ giáo dục nghề nghiệp",
		int32(rasoatv1.EducationLevel_EDUCATION_LEVEL_UNIVERSITY):      "đại học trở lên",
	}
	schoolVI = map[int32]string{
		int32(rasoatv1.SchoolLevel_SCHOOL_LEVEL_UNSPECIFIED):     "chưa rõ cấp học",
		int32(rasoatv1.SchoolLevel_SCHOOL_LEVEL_PRESCHOOL):       "mầm non",
		int32(rasoatv1.SchoolLevel_SCHOOL_LEVEL_PRIMARY):         "tiểu học",
		int32(rasoatv1.SchoolLevel_SCHOOL_LEVEL_LOWER_SECONDARY): "trung học cơ sở",
		int32(rasoatv1.SchoolLevel_SCHOOL_LEVEL_UPPER_SECONDARY): "trung học phổ thông",
		int32(rasoatv1.SchoolLevel_SCHOOL_LEVEL_VOCATIONAL):      "giáo dục nghề nghiệp",
		int32(rasoatv1.SchoolLevel_SCHOOL_LEVEL_HIGHER):          "cao đẳng, đại học",
	}
	waterVI = map[int32]string{
		int32(rasoatv1.WaterSource_WATER_SOURCE_PIPED):              "nước máy",
		int32(rasoatv1.WaterSource_WATER_SOURCE_TUBE_WELL):          "giếng khoan",
		int32(rasoatv1.WaterSource_WATER_SOURCE_PROTECTED_WELL):     "giếng đào được bảo vệ",
		int32(rasoatv1.WaterSource_WATER_SOURCE_PROTECTED_SPRING):   "nước khe/mó được bảo vệ",
		int32(rasoatv1.WaterSource_WATER_SOURCE_RAINWATER):          "nước mưa",
		int32(rasoatv1.WaterSource_WATER_SOURCE_PURCHASED):          "nước mua",
		int32(rasoatv1.WaterSource_WATER_SOURCE_UNPROTECTED_WELL):   "giếng đào không được bảo vệ",
		int32(rasoatv1.WaterSource_WATER_SOURCE_UNPROTECTED_SPRING): "nước khe/mó không được bảo vệ",
		int32(rasoatv1.WaterSource_WATER_SOURCE_SURFACE):            "nước sông, suối, ao, hồ",
		int32(rasoatv1.WaterSource_WATER_SOURCE_OTHER):              "nguồn khác",
	}
	latrineVI = map[int32]string{
		int32(rasoatv1.Latrine_LATRINE_FLUSH_SEPTIC):   "tự hoại",
		int32(rasoatv1.Latrine_LATRINE_POUR_FLUSH):     "thấm dội nước",
		int32(rasoatv1.Latrine_LATRINE_DOUBLE_VAULT):   "hai ngăn",
		int32(rasoatv1.Latrine_LATRINE_VENTILATED_PIT): "chìm có ống thông hơi",
		int32(rasoatv1.Latrine_LATRINE_SIMPLE_PIT):     "hố đào đơn giản",
		int32(rasoatv1.Latrine_LATRINE_HANGING):        "cầu tõm, cầu cá",
		int32(rasoatv1.Latrine_LATRINE_NONE):           "không có nhà tiêu",
		int32(rasoatv1.Latrine_LATRINE_OTHER):          "loại khác",
	}
	deviceVI = map[int32]string{
		int32(rasoatv1.InfoDevice_INFO_DEVICE_TV):         "ti vi",
		int32(rasoatv1.InfoDevice_INFO_DEVICE_RADIO):      "radio",
		int32(rasoatv1.InfoDevice_INFO_DEVICE_COMPUTER):   "máy tính",
		int32(rasoatv1.InfoDevice_INFO_DEVICE_SMARTPHONE): "điện thoại thông minh",
		int32(rasoatv1.InfoDevice_INFO_DEVICE_TABLET):     "máy tính bảng",
	}
	wasteVI = map[int32]string{
		int32(rasoatv1.WasteTreatment_WASTE_TREATMENT_COLLECTED):       "được thu gom",
		int32(rasoatv1.WasteTreatment_WASTE_TREATMENT_TREATED_ON_SITE): "tự xử lý hợp vệ sinh",
		int32(rasoatv1.WasteTreatment_WASTE_TREATMENT_NONE):            "không thu gom, không xử lý",
	}
)

// Proto renders the assessment for the wire, with every indicator and its
// reasons in words. AppendProto writes the same without the message; a
// field added here must be added there (TestAppendProtoIsProtoMarshal).
func (a *Assessment) Proto(h *Household) *rasoatv1.Assessment {
	out := a.ProtoBasic(h)
	a.addIndicators(out, h)
	return out
}

// ProtoBasic renders the verdict without the per-indicator results, for
// bulk scoring (rasoatv1.AssessmentView_ASSESSMENT_VIEW_BASIC).
func (a *Assessment) ProtoBasic(h *Household) *rasoatv1.Assessment {
	out := &rasoatv1.Assessment{
		HouseholdId:        h.GetId(),
		Standard:           a.Standard.ID,
		Provisional:        a.Provisional,
		Classification:     a.Classification,
		DeprivationCount:   int32(a.Deprivations),
		Deprived:           a.Deprived(),
		IncomeBasis:        a.IncomeBasis,
		IncomePerCapitaVnd: a.IncomePerCapita,
		ScoreB:             int32(a.ScoreB),
		PovertyLineVnd:     a.PovertyLine,
		NearPovertyLineVnd: a.NearPovertyLine,
		MiddleLineVnd:      a.MiddleLine,
		MemberCount:        int32(a.Members),
		Notes:              a.Notes(),
		Middle:             a.Middle,
		DeclaredIncome:     a.DeclaredIncome,
	}
	if a.HasScoreA {
		out.ScoreA = proto.Int32(a.ScoreA)
	}
	return out
}

func (a *Assessment) addIndicators(out *rasoatv1.Assessment, h *Household) {
	// One block for the results, one for the reasons and one string for
	// all their texts, sliced per reason: an assessment has a few dozen.
	nReasons := 0
	for i := range a.Indicators {
		nReasons += len(a.Indicators[i].Reasons)
	}
	results := make([]rasoatv1.IndicatorResult, len(a.Indicators))
	reasons := make([]rasoatv1.Reason, nReasons)
	reasonPtrs := make([]*rasoatv1.Reason, nReasons)
	out.Indicators = make([]*rasoatv1.IndicatorResult, len(a.Indicators))
	var stack [1024]byte // a household of four's texts fit, off the heap
	texts, ends := stack[:0], make([]int, nReasons)
	k := 0
	for i := range a.Indicators {
		r := &a.Indicators[i]
		ir := &results[i]
		ir.Indicator, ir.Dimension, ir.Name = r.Indicator.ID, r.Indicator.dimension, r.Indicator.Name
		ir.Deprived, ir.Provisional = r.Deprived, r.Indicator.Provisional
		ir.Reasons = reasonPtrs[k : k+len(r.Reasons) : k+len(r.Reasons)]
		for j, why := range r.Reasons {
			pr := &reasons[k]
			texts = why.appendText(texts, h)
			ends[k] = len(texts)
			if why.Member >= 0 && why.Member < len(h.GetMembers()) {
				pr.MemberId = h.GetMembers()[why.Member].GetId()
			}
			ir.Reasons[j] = pr
			k++
		}
		out.Indicators[i] = ir
	}
	all, start := string(texts), 0
	for k, end := range ends {
		reasons[k].Text = all[start:end]
		start = end
	}
}

// middleNote says why the middle living standard is undetermined.
func middleNote(m MiddleMissing) string {
	switch {
	case m&MiddleMissingBand != 0:
		return "above the poverty line, but no middle-living-standard cut-off is known for this income basis under this standard: MIDDLE cannot be told apart from NOT_POOR"
	case m == MiddleMissingSector:
		return noteMiddleSector
	case m == MiddleMissingAssistance:
		return noteMiddleAssistance
	case m == MiddleMissingSector|MiddleMissingAssistance:
		return noteMiddleBoth
	}
	return ""
}

const (
	noteMiddleHead       = "above the poverty line; the middle living standard (hộ làm nông, lâm, ngư, diêm nghiệp có mức sống trung bình) is undetermined: "
	noteMiddleSectorPart = "not known whether the household works in agriculture, forestry, fishery or salt-making (agriForestryFisherySalt)"
	noteMiddleAssistPart = "not known how much of its income over 12 months is state allowances or social assistance, which that standard leaves out (income.stateAssistanceAnnualVnd)"
	noteMiddleSector     = noteMiddleHead + noteMiddleSectorPart
	noteMiddleAssistance = noteMiddleHead + noteMiddleAssistPart
	noteMiddleBoth       = noteMiddleHead + noteMiddleSectorPart + "; " + noteMiddleAssistPart
)

// Notes are the remarks a reviewer should read with this assessment.
func (a *Assessment) Notes() []string { return slices.Collect(a.notes()) }

// notes yields Notes without collecting them, for AppendProto.
func (a *Assessment) notes() iter.Seq[string] {
	return func(yield func(string) bool) {
		if a.Middle == rasoatv1.MiddleStatus_MIDDLE_STATUS_UNDETERMINED {
			if n := middleNote(a.MiddleMissing); n != "" && !yield(n) {
				return
			}
		}
		if a.Provisional && !yield("provisional: this standard has figures not yet confirmed against the final legal text") {
			return
		}
		for _, n := range a.Standard.Notes {
			if !yield(n) {
				return
			}
		}
	}
}
