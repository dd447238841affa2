package quality

import (
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/proto"
)

func household(members ...*rasoatv1.Member) *rasoatv1.Household {
	return &rasoatv1.Household{
		Id: "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d01", VillageCode: "06517-01", ReviewDate: "2025-10-20",
		Housing: &rasoatv1.Housing{FloorAreaM2: proto.Float64(40)},
		Members: members,
	}
}

func person(name, birth string, rel rasoatv1.Relation, edit ...func(*rasoatv1.Member)) *rasoatv1.Member {
	m := &rasoatv1.Member{FullName: name, BirthDate: birth, Relation: rel}
	for _, e := range edit {
		e(m)
	}
	return m
}

func diploma(l rasoatv1.EducationLevel) func(*rasoatv1.Member) {
	return func(m *rasoatv1.Member) { m.HighestEducation = l }
}

func attending(l rasoatv1.SchoolLevel) func(*rasoatv1.Member) {
	return func(m *rasoatv1.Member) { m.InSchool, m.SchoolLevel = proto.Bool(true), l }
}

var head = person("Lò Văn Hùng", "1985-03-02", rasoatv1.Relation_RELATION_HEAD, diploma(rasoatv1.EducationLevel_EDUCATION_LEVEL_UPPER_SECONDARY))

// TestRules pins each rule: a case that should trip it and one, as close
// as can be, that should not.
func TestRules(t *testing.T) {
	prior := &Prior{ListYear: 2025, FloorAreaM2: 40, IncomePerCapita: 1_200_000}
	for _, tc := range []struct {
		name string
		in   Input
		want Code // "" for no flag at all
	}{
		{"EDUCATION_CONTRADICTION: a university degree at 15 trips it",
			Input{Household: household(head, person("Lò Văn Nam", "2010-01-01", rasoatv1.Relation_RELATION_CHILD, diploma(rasoatv1.EducationLevel_EDUCATION_LEVEL_UNIVERSITY)))}, EducationContradiction},
		{"EDUCATION_CONTRADICTION: a university degree at 30 is quiet",
			Input{Household: household(head, person("Lò Văn Nam", "1995-01-01", rasoatv1.Relation_RELATION_SIBLING, diploma(rasoatv1.EducationLevel_EDUCATION_LEVEL_UNIVERSITY)))}, ""},
		{"EDUCATION_CONTRADICTION: a member aged 30 with a degree attending lower secondary trips it (in school, so exempt for nothing)",
			Input{Household: household(head, person("Lò Thị Mai", "1995-01-01", rasoatv1.Relation_RELATION_SIBLING, diploma(rasoatv1.EducationLevel_EDUCATION_LEVEL_UNIVERSITY), attending(rasoatv1.SchoolLevel_SCHOOL_LEVEL_LOWER_SECONDARY)))}, EducationContradiction},
		{"EDUCATION_CONTRADICTION: a graduate in vocational training is quiet",
			Input{Household: household(head, person("Lò Thị Mai", "1995-01-01", rasoatv1.Relation_RELATION_SIBLING, diploma(rasoatv1.EducationLevel_EDUCATION_LEVEL_UNIVERSITY), attending(rasoatv1.SchoolLevel_SCHOOL_LEVEL_VOCATIONAL)))}, ""},
		{"EDUCATION_CONTRADICTION: at 20 in university with no primary diploma trips it",
			Input{Household: household(head, person("Lò Văn Tú", "2005-01-01", rasoatv1.Relation_RELATION_CHILD, diploma(rasoatv1.EducationLevel_EDUCATION_LEVEL_NONE), attending(rasoatv1.SchoolLevel_SCHOOL_LEVEL_HIGHER)))}, EducationContradiction},
		{"EDUCATION_CONTRADICTION: at 20 in university with upper secondary is quiet",
			Input{Household: household(head, person("Lò Văn Tú", "2005-01-01", rasoatv1.Relation_RELATION_CHILD, diploma(rasoatv1.EducationLevel_EDUCATION_LEVEL_UPPER_SECONDARY), attending(rasoatv1.SchoolLevel_SCHOOL_LEVEL_HIGHER)))}, ""},
		{"AREA_HALVED: 20 m² after 40 trips it",
			Input{Household: withArea(household(head), 20), Prior: prior, IncomePerCapita: 1_300_000}, AreaHalved},
		{"AREA_HALVED: 20.5 m² after 40 is quiet",
			Input{Household: withArea(household(head), 20.5), Prior: prior, IncomePerCapita: 1_300_000}, ""},
		{"AREA_HALVED: no last round, nothing to compare",
			Input{Household: withArea(household(head), 5)}, ""},
		{"AREA_HALVED: a last round's area not known is quiet",
			Input{Household: withArea(household(head), 5), Prior: &Prior{ListYear: 2025, FloorAreaM2: -1, IncomePerCapita: -1}}, ""},
		{"INCOME_TENFOLD: 12,000,000 after 1,200,000 trips it",
			Input{Household: household(head), Prior: prior, IncomePerCapita: 12_000_000}, IncomeTenfold},
		{"INCOME_TENFOLD: a fall to a tenth trips it",
			Input{Household: household(head), Prior: prior, IncomePerCapita: 120_000}, IncomeTenfold},
		{"INCOME_TENFOLD: nine times is quiet",
			Input{Household: household(head), Prior: prior, IncomePerCapita: 10_799_999}, ""},
		{"INCOME_TENFOLD: a household not scored now is quiet",
			Input{Household: household(head), Prior: prior, IncomePerCapita: -1}, ""},
		{"CHILD_OLDER_THAN_PARENT: a child born before the head trips it",
			Input{Household: household(head, person("Lò Văn An", "1980-01-01", rasoatv1.Relation_RELATION_CHILD))}, ChildOlderThanParent},
		{"CHILD_OLDER_THAN_PARENT: a child 11 years younger than the head trips it",
			Input{Household: household(head, person("Lò Văn An", "1996-03-01", rasoatv1.Relation_RELATION_CHILD))}, ChildOlderThanParent},
		{"CHILD_OLDER_THAN_PARENT: a child 12 years younger is quiet",
			Input{Household: household(head, person("Lò Văn An", "1997-03-02", rasoatv1.Relation_RELATION_CHILD))}, ""},
		{"CHILD_OLDER_THAN_PARENT: a spouse younger than the head's child is quiet (a step-parent)",
			Input{Household: household(head, person("Vi Thị Lan", "2000-01-01", rasoatv1.Relation_RELATION_SPOUSE), person("Lò Văn An", "1999-01-01", rasoatv1.Relation_RELATION_CHILD))}, ""},
		{"CHILD_OLDER_THAN_PARENT: a parent younger than the head trips it",
			Input{Household: household(head, person("Lò Văn Cả", "1990-01-01", rasoatv1.Relation_RELATION_PARENT))}, ChildOlderThanParent},
		{"CHILD_OLDER_THAN_PARENT: a removed child is quiet",
			Input{Household: household(head, person("Lò Văn An", "1980-01-01", rasoatv1.Relation_RELATION_CHILD, func(m *rasoatv1.Member) { m.Removed = rasoatv1.Removal_REMOVAL_OTHER }))}, ""},
		{"STALE_REVIEW_DATE: scored from last year's date trips it",
			Input{Household: withDate(household(head), "2024-10-01"), RoundDate: "2025-10-20"}, StaleReviewDate},
		{"STALE_REVIEW_DATE: scored from its round's date is quiet",
			Input{Household: household(head), RoundDate: "2025-10-20"}, ""},
		{"STALE_REVIEW_DATE: no round started is quiet",
			Input{Household: withDate(household(head), "2024-10-01")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Check(tc.in)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("flags %+v; want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Code != tc.want || got[0].Detail == "" {
				t.Fatalf("flags %+v; want one %s with a detail", got, tc.want)
			}
		})
	}
}

func withArea(h *rasoatv1.Household, a float64) *rasoatv1.Household {
	h.Housing.FloorAreaM2 = proto.Float64(a)
	return h
}

func withDate(h *rasoatv1.Household, d string) *rasoatv1.Household {
	h.ReviewDate = d
	return h
}

func TestPersonKeyFoldsWhatTabletsTypeDifferently(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"Nguyễn Thị Hoa", "nguyen thi hoa"},
		{"Đặng  Văn Đức", "Dang Van Duc"},
		{" Lò Văn Hùng ", "LÒ VĂN HÙNG"},
	} {
		if ka, kb := PersonKey(tc.a, "1990-01-02"), PersonKey(tc.b, "1990-01-02"); ka == "" || ka != kb {
			t.Errorf("PersonKey(%q) = %q, PersonKey(%q) = %q; want the same", tc.a, ka, tc.b, kb)
		}
	}
	if PersonKey("Nguyễn Thị Hoa", "1990-01-02") == PersonKey("Nguyễn Thị Hoa", "1990-01-03") {
		t.Error("two birth dates give one key")
	}
	if PersonKey("", "1990-01-02") != "" || PersonKey("A", "") != "" {
		t.Error("a person without a name or a date has a key")
	}
}

func TestAckPathsAndComments(t *testing.T) {
	for _, p := range AckPaths() {
		c, ok := CodeOfPath(p)
		if !ok || AckPath(c) != p {
			t.Errorf("CodeOfPath(%q) = %q, %v", p, c, ok)
		}
	}
	if _, ok := CodeOfPath(AckPath(OpenConflict)); ok {
		t.Error("an open conflict is acknowledged; it must be resolved")
	}
	if _, ok := CodeOfPath("ack.NOT_A_RULE"); ok {
		t.Error("an unknown code is a path")
	}
	for _, bad := range []string{"", "  ", strings.Repeat("x", MaxAckComment+1), "a\x00b", "\xff"} {
		if CheckComment(bad) == nil {
			t.Errorf("CheckComment(%q) = nil", bad)
		}
	}
	if err := CheckComment("Hộ xây lại nhà sau lũ, đã kiểm tra thực tế"); err != nil {
		t.Error(err)
	}
	for _, r := range Rules {
		if r.Vietnamese == "" || r.English == "" {
			t.Errorf("%s: a rule without its texts", r.Code)
		}
	}
}
