package survey

import (
	"strconv"
	"strings"

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
	who := ""
	if r.Member >= 0 && r.Member < len(h.GetMembers()) {
		who = h.GetMembers()[r.Member].GetFullName() + ", " + strconv.Itoa(r.Age) + " tuổi, "
	}
	switch r.Code {
	case reasonEmployment:
		return who + label(employmentVI, r.Enum)
	case reasonEmploymentNone:
		return "không có người trong độ tuổi lao động thất nghiệp hoặc làm công ăn lương không có hợp đồng lao động"
	case reasonDependants:
		return strconv.Itoa(r.Age) + "/" + strconv.Itoa(int(r.Enum)) + " nhân khẩu là người phụ thuộc (" + percent(r.Age, int(r.Enum)) + ")"
	case reasonStunted:
		return who + "suy dinh dưỡng chiều cao theo tuổi (thấp còi)"
	case reasonUnderweight:
		return who + "suy dinh dưỡng cân nặng theo tuổi (nhẹ cân)"
	case reasonNutritionNone:
		return "không có trẻ dưới " + strconv.Itoa(r.Age) + " tuổi bị suy dinh dưỡng"
	case reasonNoInsurance:
		return who + "không có bảo hiểm y tế"
	case reasonInsuranceAll:
		return "mọi thành viên từ " + strconv.Itoa(r.Age) + " tuổi trở lên có bảo hiểm y tế"
	case reasonIllUntreated:
		return who + "ốm đau nhưng không đi khám chữa bệnh"
	case reasonIllNone:
		return "không có người ốm đau mà không đi khám chữa bệnh"
	case reasonAdultEducation:
		return who + "trình độ " + label(educationVI, r.Enum) + ", không đi học"
	case reasonAdultEducationNone:
		return "không có người lớn thiếu bằng cấp so với độ tuổi"
	case reasonNotInSchool:
		return who + "không đi học"
	case reasonBehindLevel:
		return who + "đang học " + label(schoolVI, r.Enum) + ", chưa đúng cấp học theo độ tuổi (" + label(schoolVI, r.Enum2) + ")"
	case reasonSchoolingAll:
		return "mọi trẻ từ " + strconv.Itoa(r.Age) + " đến " + strconv.Itoa(int(r.Enum)) + " tuổi đi học đúng cấp"
	case reasonHousingQuality:
		if r.Enum&7 == 0 {
			return "cả 3 kết cấu chính (tường, cột, mái) bền chắc"
		}
		return strconv.Itoa(r.Age) + "/3 kết cấu chính không bền chắc: " + structuresVI[r.Enum&7]
	case reasonArea:
		per := 0.0
		if r.Age > 0 {
			per = r.Value / float64(r.Age)
		}
		return "diện tích bình quân " + num(per) + " m²/người (" + num(r.Value) + " m², " + strconv.Itoa(r.Age) + " người)"
	case reasonWater:
		return "nguồn nước: " + label(waterVI, r.Enum)
	case reasonLatrine:
		return "nhà tiêu: " + label(latrineVI, r.Enum)
	case reasonTelecom:
		if r.Enum == 1 {
			return "không có thành viên nào sử dụng thuê bao điện thoại hoặc internet"
		}
		return "có thành viên sử dụng thuê bao điện thoại hoặc internet"
	case reasonDevice:
		return "có " + label(deviceVI, r.Enum)
	case reasonLoudspeaker:
		return "nghe được loa truyền thanh xã/thôn"
	case reasonNoDevice:
		if r.Enum == 1 {
			return "không có phương tiện tiếp cận thông tin và không nghe được loa truyền thanh xã/thôn"
		}
		return "không có phương tiện tiếp cận thông tin"
	case reasonDigital:
		if r.Enum == 1 {
			return "không có thành viên nào sử dụng dịch vụ công trực tuyến hoặc ngân hàng số"
		}
		return "có thành viên sử dụng dịch vụ công trực tuyến hoặc ngân hàng số"
	case reasonWaste:
		return "rác thải: " + label(wasteVI, r.Enum)
	}
	return "?"
}

func percent(a, b int) string {
	if b == 0 {
		return "0%"
	}
	return num(100*float64(a)/float64(b)) + "%"
}

// num writes a figure the Vietnamese way, with a decimal comma.
func num(f float64) string {
	s := strconv.FormatFloat(f, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return strings.Replace(s, ".", ",", 1)
}

func label(m map[int32]string, v int32) string {
	if s, ok := m[v]; ok {
		return s
	}
	return strconv.Itoa(int(v))
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
// reasons in words.
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
	}
	if a.HasScoreA {
		out.ScoreA = proto.Int32(a.ScoreA)
	}
	return out
}

func (a *Assessment) addIndicators(out *rasoatv1.Assessment, h *Household) {
	// One block for the results and one for the reasons: a bulk stream
	// renders a few dozen of each per household.
	nReasons := 0
	for i := range a.Indicators {
		nReasons += len(a.Indicators[i].Reasons)
	}
	results := make([]rasoatv1.IndicatorResult, len(a.Indicators))
	reasons := make([]rasoatv1.Reason, nReasons)
	reasonPtrs := make([]*rasoatv1.Reason, nReasons)
	out.Indicators = make([]*rasoatv1.IndicatorResult, len(a.Indicators))
	k := 0
	for i := range a.Indicators {
		r := &a.Indicators[i]
		ir := &results[i]
		ir.Indicator, ir.Dimension, ir.Name = r.Indicator.ID, r.Indicator.dimension, r.Indicator.Name
		ir.Deprived, ir.Provisional = r.Deprived, r.Indicator.Provisional
		ir.Reasons = reasonPtrs[k : k+len(r.Reasons) : k+len(r.Reasons)]
		for j, why := range r.Reasons {
			pr := &reasons[k]
			pr.Text = why.Text(h)
			if why.Member >= 0 && why.Member < len(h.GetMembers()) {
				pr.MemberId = h.GetMembers()[why.Member].GetId()
			}
			ir.Reasons[j] = pr
			k++
		}
		out.Indicators[i] = ir
	}
}

// Notes are the remarks a reviewer should read with this assessment.
func (a *Assessment) Notes() []string {
	var notes []string
	if a.MiddleUnknown && a.Classification == rasoatv1.Classification_CLASSIFICATION_NOT_POOR {
		notes = append(notes, "above the poverty line, but no middle-living-standard cut-off is known for this income basis under this standard: MIDDLE cannot be told apart from NOT_POOR")
	}
	if a.Provisional {
		notes = append(notes, "provisional: this standard has figures not yet confirmed against the final legal text")
	}
	return append(notes, a.Standard.Notes...)
}
