package survey

import (
	"math"
	"strconv"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// TestTextIsTheStringVersion: Text, now written by appending, says exactly
// what the string concatenation it replaced (textBefore, kept here as the
// reference) said, for every reason code over a grid of figures, members
// in and out of the roster, unknown labels and awkward areas.
func TestTextIsTheStringVersion(t *testing.T) {
	h := &Household{Members: []*rasoatv1.Member{{FullName: "Vi Thị Mai"}, {FullName: ""}}}
	values := []float64{0, 0.004, 0.005, 1, 7.25, 14.5, 31.99, 100, 1e6, -3.5, math.NaN(), math.Inf(1)}
	n := 0
	for code := ReasonCode(0); code <= reasonWaste+1; code++ {
		for _, member := range []int{-1, 0, 1, 2} {
			for _, age := range []int{0, 1, 3, 12, 100} {
				for _, enum := range []int32{-1, 0, 1, 2, 3, 5, 7, 8, 99} {
					for _, v := range values {
						r := Reason{Member: member, Code: code, Age: age, Enum: enum, Enum2: enum / 2, Value: v}
						if code == reasonArea || code == reasonDependants {
							// With a threshold (Enum2) these now keep the
							// figure on its verdict's side: TestReasonNeverRoundsAcrossTheThreshold.
							r.Enum2 = 0
						}
						if got, want := r.Text(h), r.textBefore(h); got != want {
							t.Fatalf("%+v: Text %q, before %q", r, got, want)
						}
						n++
					}
				}
			}
		}
	}
	t.Logf("%d reasons compared", n)
}

// textBefore and the helpers below are Text as it was (commit dc036de),
// string by string.
func (r Reason) textBefore(h *Household) string {
	who := ""
	if r.Member >= 0 && r.Member < len(h.GetMembers()) {
		who = h.GetMembers()[r.Member].GetFullName() + ", " + strconv.Itoa(r.Age) + " tuổi, "
	}
	switch r.Code {
	case reasonEmployment:
		return who + labelBefore(employmentVI, r.Enum)
	case reasonEmploymentNone:
		return "không có người trong độ tuổi lao động thất nghiệp hoặc làm công ăn lương không có hợp đồng lao động"
	case reasonDependants:
		return strconv.Itoa(r.Age) + "/" + strconv.Itoa(int(r.Enum)) + " nhân khẩu là người phụ thuộc (" + percentBefore(r.Age, int(r.Enum)) + ")"
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
		return who + "trình độ " + labelBefore(educationVI, r.Enum) + ", không đi học"
	case reasonAdultEducationNone:
		return "không có người lớn thiếu bằng cấp so với độ tuổi"
	case reasonNotInSchool:
		return who + "không đi học"
	case reasonBehindLevel:
		return who + "đang học " + labelBefore(schoolVI, r.Enum) + ", chưa đúng cấp học theo độ tuổi (" + labelBefore(schoolVI, r.Enum2) + ")"
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
		return "diện tích bình quân " + numBefore(per) + " m²/người (" + numBefore(r.Value) + " m², " + strconv.Itoa(r.Age) + " người)"
	case reasonWater:
		return "nguồn nước: " + labelBefore(waterVI, r.Enum)
	case reasonLatrine:
		return "nhà tiêu: " + labelBefore(latrineVI, r.Enum)
	case reasonTelecom:
		if r.Enum == 1 {
			return "không có thành viên nào sử dụng thuê bao điện thoại hoặc internet"
		}
		return "có thành viên sử dụng thuê bao điện thoại hoặc internet"
	case reasonDevice:
		return "có " + labelBefore(deviceVI, r.Enum)
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
		return "rác thải: " + labelBefore(wasteVI, r.Enum)
	}
	return "?"
}

func percentBefore(a, b int) string {
	if b == 0 {
		return "0%"
	}
	return numBefore(100*float64(a)/float64(b)) + "%"
}

func numBefore(f float64) string {
	s := strconv.FormatFloat(f, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return strings.Replace(s, ".", ",", 1)
}

func labelBefore(m map[int32]string, v int32) string {
	if s, ok := m[v]; ok {
		return s
	}
	return strconv.Itoa(int(v))
}
