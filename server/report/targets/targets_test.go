package targets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/proto"
)

var known = Known(survey.Builtin())

const head = "mã đơn vị,chỉ tiêu,giá trị,ghi chú\n"

func TestTheSampleFileReadsAsTheIssueSetsIt(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "..", "examples", "targets", "lang-son-2026.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadCSV(f, known)
	if err != nil {
		t.Fatal(err)
	}
	want := &rasoatv1.ReportTargets{
		Units: []*rasoatv1.UnitTarget{
			{UnitCode: "20", PovertyRateReductionPoints: proto.Float64(3)},
			{UnitCode: "06517", PovertyRateReductionPoints: proto.Float64(5), ReducePoor: proto.Int32(8), ReduceNearPoor: proto.Int32(9)},
		},
	}
	for _, in := range []struct {
		unit  string
		ids   []string
		share float64
	}{
		{"20", []string{"WATER"}, 0.99}, {"20", []string{"LATRINE"}, 0.5}, {"20", []string{"TELECOM"}, 0.98}, {"20", []string{"INFO_DEVICES"}, 1},
		{"20", []string{"HOUSING_QUALITY", "HOUSING_AREA"}, 0.85}, {"20", []string{"CHILD_SCHOOLING"}, 1},
		{"06517", []string{"WATER"}, 0.99}, {"06517", []string{"LATRINE"}, 0.5}, {"06517", []string{"HOUSING_QUALITY", "HOUSING_AREA"}, 0.85},
	} {
		want.Indicators = append(want.Indicators, &rasoatv1.IndicatorTarget{UnitCode: in.unit, Indicators: in.ids, Share: in.share})
	}
	for _, in := range got.GetIndicators() {
		if in.GetLabel() == "" {
			t.Errorf("indicator target %v has no label: the note column is its label", in)
		}
		in.Label = ""
	}
	if !proto.Equal(got, want) {
		t.Errorf("read\n%v\nwant\n%v", got, want)
	}
	if vs := Check(got, known); len(vs) != 0 {
		t.Errorf("the sample read fails the server's check: %v", vs)
	}
}

func TestReadCSVForms(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       *rasoatv1.ReportTargets
	}{
		{"English headings, no note column", "unit,target,value\n06517,reduce_poor,8\n",
			&rasoatv1.ReportTargets{Units: []*rasoatv1.UnitTarget{{UnitCode: "06517", ReducePoor: proto.Int32(8)}}}},
		{"semicolons, a decimal comma and a percent sign, as Excel writes them", "\ufeffmã đơn vị;chỉ tiêu;giá trị\n06517;WATER;99,5%\n",
			&rasoatv1.ReportTargets{Indicators: []*rasoatv1.IndicatorTarget{{UnitCode: "06517", Indicators: []string{"WATER"}, Share: 0.995}}}},
		{"columns in any order, notes and blank rows skipped", "giá trị,mã đơn vị,chỉ tiêu\n# a note\n,,\n2.5,06517,Giảm tỷ lệ hộ nghèo\n",
			&rasoatv1.ReportTargets{Units: []*rasoatv1.UnitTarget{{UnitCode: "06517", PovertyRateReductionPoints: proto.Float64(2.5)}}}},
		{"indicator ids in lower case", head + "06517,housing_quality + housing_area,85,\n",
			&rasoatv1.ReportTargets{Indicators: []*rasoatv1.IndicatorTarget{{UnitCode: "06517", Indicators: []string{"HOUSING_QUALITY", "HOUSING_AREA"}, Share: 0.85}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadCSV(strings.NewReader(tc.file), known)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tc.want) {
				t.Errorf("read %v; want %v", got, tc.want)
			}
		})
	}
}

func TestReadCSVNamesTheLineAndColumnAtFault(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       string // the error's text contains it
	}{
		{"a percentage over 100 is refused", head + "06517,WATER,101,\n", "line 2, giá trị: 101 %: a share of poor households is 0 to 100 %"},
		{"a negative percentage is refused", head + "06517,LATRINE,-5,\n", "line 2, giá trị: -5 %"},
		{"a percentage that is not a number is refused", head + "06517,LATRINE,năm mươi,\n", `line 2, giá trị: "năm mươi": not a number`},
		{"a reduction over 100 points is refused", head + "06517,giảm tỷ lệ hộ nghèo,300,\n", "line 2, giá trị: 300: a reduction in percentage points is 0 to 100"},
		{"a count of households must be whole", head + "06517,giảm số hộ nghèo,8.5,\n", "line 2, giá trị: 8.5: a number of households is a whole number"},
		{"an empty value is refused", head + "06517,WATER,,\n", `line 2, giá trị: "": empty`},
		{"an unknown indicator is refused, listing the known ones", head + "06517,WATR,99,\n", "line 2, chỉ tiêu: WATR: not a reduction"},
		{"an unknown indicator among several is named", head + "06517,HOUSING_QUALITY+AREA,85,\n", "line 2, chỉ tiêu: AREA: not a reduction"},
		{"an indicator twice in one target is refused", head + "06517,WATER+WATER,85,\n", "line 2, chỉ tiêu: WATER twice"},
		{"the same unit's reduction twice is refused", head + "06517,giảm số hộ nghèo,8,\n06517,reduce_poor,9,\n", "line 3, chỉ tiêu: reduce_poor for unit 06517 again (line 2 has it)"},
		{"the same unit's indicator set twice is refused, whatever the order", head + "20,HOUSING_AREA+HOUSING_QUALITY,85,\n\n20,HOUSING_QUALITY+HOUSING_AREA,80,\n", "line 4, chỉ tiêu: HOUSING_QUALITY+HOUSING_AREA for unit 20 again (line 2 has it)"},
		{"an empty unit is refused", head + ",WATER,99,\n", "line 2, mã đơn vị: empty"},
		{"a header without the value column is refused", "mã đơn vị,chỉ tiêu\n06517,WATER\n", "the header has no giá trị column"},
		{"a column a targets file does not have is refused", head[:len(head)-1] + ",tỉnh\n", "line 1, tỉnh: not a column of a targets file"},
		{"an empty file is refused", "", "is empty"},
		{"a file not in UTF-8 is refused", "m\xe3 \xf0\n", "not UTF-8"},
		{"a broken quote names its line", head + "06517,\"WATER,99\n", "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCSV(strings.NewReader(tc.file), known)
			var le *LineError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want a *LineError containing %q", err, tc.want)
			}
		})
	}
}

func TestOversizeFilesAreRefusedBeforeTheyAreRead(t *testing.T) {
	t.Run("over the byte limit", func(t *testing.T) {
		big := head + strings.Repeat("# "+strings.Repeat("x", 98)+"\n", MaxFileBytes/100+1)
		_, err := ReadCSV(strings.NewReader(big), known)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "over 1048576 bytes") {
			t.Errorf("error %v; want ErrTooLarge", err)
		}
	})
	t.Run("over the row limit", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(head)
		for i := range MaxTargets + 1 {
			fmt.Fprintf(&b, "%05d,WATER,99,\n", i)
		}
		_, err := ReadCSV(strings.NewReader(b.String()), known)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "line 2002: more than 2000 targets") {
			t.Errorf("error %v; want ErrTooLarge on line 2002", err)
		}
	})
}

func TestCheckNamesTheRequestsField(t *testing.T) {
	ok := func() *rasoatv1.ReportTargets {
		return &rasoatv1.ReportTargets{
			Units:      []*rasoatv1.UnitTarget{{UnitCode: "06517", ReducePoor: proto.Int32(8)}},
			Indicators: []*rasoatv1.IndicatorTarget{{UnitCode: "06517", Indicators: []string{"WATER"}, Share: 0.99}},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*rasoatv1.ReportTargets)
		field  string
	}{
		{"a share over 1 names the share", func(t *rasoatv1.ReportTargets) { t.Indicators[0].Share = 99 }, "targets.indicators[0].share"},
		{"an unknown indicator names its index", func(t *rasoatv1.ReportTargets) {
			t.Indicators[0].Indicators = []string{"WATER", "WATR"}
		}, "targets.indicators[0].indicators[1]"},
		{"no indicator is refused", func(t *rasoatv1.ReportTargets) { t.Indicators[0].Indicators = nil }, "targets.indicators[0].indicators"},
		{"a unit twice is refused", func(t *rasoatv1.ReportTargets) {
			t.Units = append(t.Units, &rasoatv1.UnitTarget{UnitCode: "06517", ReduceNearPoor: proto.Int32(1)})
		}, "targets.units[1].unit_code"},
		{"a unit with no target is refused", func(t *rasoatv1.ReportTargets) { t.Units[0].ReducePoor = nil }, "targets.units[0]"},
		{"negative households are refused", func(t *rasoatv1.ReportTargets) { t.Units[0].ReduceNearPoor = proto.Int32(-1) }, "targets.units[0].reduce_near_poor"},
		{"points over 100 are refused", func(t *rasoatv1.ReportTargets) { t.Units[0].PovertyRateReductionPoints = proto.Float64(101) }, "targets.units[0].poverty_rate_reduction_points"},
		{"a long label is refused", func(t *rasoatv1.ReportTargets) { t.Indicators[0].Label = strings.Repeat("x", 257) }, "targets.indicators[0].label"},
		{"a long unit code is refused", func(t *rasoatv1.ReportTargets) { t.Indicators[0].UnitCode = strings.Repeat("0", 65) }, "targets.indicators[0].unit_code"},
		{"too many targets are refused whole", func(t *rasoatv1.ReportTargets) {
			for range MaxTargets {
				t.Indicators = append(t.Indicators, t.Indicators[0])
			}
		}, "targets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := ok()
			tc.change(tg)
			vs := Check(tg, known)
			if len(vs) == 0 || vs[0].Field != tc.field {
				t.Errorf("violations %v; want the first naming %s", vs, tc.field)
			}
		})
	}
	if vs := Check(ok(), known); vs != nil {
		t.Errorf("right targets: %v", vs)
	}
}
