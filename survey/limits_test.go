package survey_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
)

// text is a string of exactly n bytes of Vietnamese letters (ệ is 3 bytes).
func text(n int) string {
	return strings.Repeat("ệ", n/3) + strings.Repeat("a", n%3)
}

// TestSizeBounds: a household at every bound is classified; one past a
// bound is refused with a single violation naming the field, however far
// past it is, and nothing else of it is looked at.
func TestSizeBounds(t *testing.T) {
	withMembers := func(n int) func(*rasoatv1.Household) {
		return func(h *rasoatv1.Household) {
			for i := len(h.Members); i < n; i++ {
				m := member(fmt.Sprintf("Thành viên %d", i), rasoatv1.Sex_SEX_FEMALE, "1990-01-01")
				m.Id = fmt.Sprintf("m-%d", i)
				h.Members = append(h.Members, m)
			}
		}
	}
	flags := func(n int) func(*rasoatv1.Household) {
		return func(h *rasoatv1.Household) {
			h.PolicyFlags = slices.Repeat([]rasoatv1.PolicyFlag{rasoatv1.PolicyFlag_POLICY_FLAG_SOCIAL_PROTECTION}, n)
		}
	}
	devices := func(n int) func(*rasoatv1.Household) {
		return func(h *rasoatv1.Household) {
			h.Information.InfoDevices = slices.Repeat([]rasoatv1.InfoDevice{rasoatv1.InfoDevice_INFO_DEVICE_TV}, n)
		}
	}
	// Every string answer, set to a text of the given length.
	texts := map[string]func(h *rasoatv1.Household, s string){
		"id":                  func(h *rasoatv1.Household, s string) { h.Id = s },
		"villageCode":         func(h *rasoatv1.Household, s string) { h.VillageCode = s },
		"headName":            func(h *rasoatv1.Household, s string) { h.HeadName = s },
		"address":             func(h *rasoatv1.Household, s string) { h.Address = s },
		"headEthnicity":       func(h *rasoatv1.Household, s string) { h.HeadEthnicity = s },
		"members[0].id":       func(h *rasoatv1.Household, s string) { h.Members[0].Id = s },
		"members[2].fullName": func(h *rasoatv1.Household, s string) { h.Members[2].FullName = s },
		"members[3].ethnicity": func(h *rasoatv1.Household, s string) {
			h.Members[3].Ethnicity = s
		},
	}
	type bound struct {
		field string
		// at sets a value at the bound, past one past it, far one far
		// past it (at, far: when there is one to test).
		at, past, far func(*rasoatv1.Household)
	}
	bounds := []bound{
		{field: "members", at: withMembers(survey.MaxMembers), past: withMembers(survey.MaxMembers + 1),
			far: func(h *rasoatv1.Household) {
				h.Members = make([]*rasoatv1.Member, 100_000) // all null: not one is looked at
			}},
		{field: "policyFlags", at: flags(survey.MaxListLen), past: flags(survey.MaxListLen + 1),
			far: func(h *rasoatv1.Household) {
				h.PolicyFlags = make([]rasoatv1.PolicyFlag, 1_000_000) // all invalid: not one is reported
			}},
		{field: "information.infoDevices", at: devices(survey.MaxListLen), past: devices(survey.MaxListLen + 1)},
		// Dates longer than a date are refused as too long, not quoted.
		{field: "reviewDate", past: func(h *rasoatv1.Household) { h.ReviewDate = text(survey.MaxTextBytes + 1) },
			far: func(h *rasoatv1.Household) { h.ReviewDate = text(1 << 20) }},
		{field: "members[1].birthDate", past: func(h *rasoatv1.Household) { h.Members[1].BirthDate = text(survey.MaxTextBytes + 1) }},
	}
	for field, set := range texts {
		bounds = append(bounds, bound{
			field: field,
			at:    func(h *rasoatv1.Household) { set(h, text(survey.MaxTextBytes)) },
			past:  func(h *rasoatv1.Household) { set(h, text(survey.MaxTextBytes+1)) },
			far:   func(h *rasoatv1.Household) { set(h, text(1<<20)) },
		})
	}

	s, err := survey.Builtin().ByID("2021-2025")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bounds {
		t.Run(b.field, func(t *testing.T) {
			if b.at != nil {
				h := base("2021-2025")
				b.at(h)
				if _, err := s.Assess(h); err != nil {
					t.Errorf("at the bound: %v", err)
				}
			}
			for _, edit := range []func(*rasoatv1.Household){b.past, b.far} {
				if edit == nil {
					continue
				}
				h := base("2021-2025")
				edit(h)
				_, err := s.Assess(h)
				var ve *survey.ValidationError
				if !errors.As(err, &ve) || len(ve.Violations) != 1 || ve.Violations[0].Field != b.field {
					t.Fatalf("past the bound: got %v, want one violation naming %s", err, b.field)
				}
				if d := ve.Violations[0].Description; len(d) > 100 {
					t.Errorf("past the bound: a description of %d bytes: %.100s…", len(d), d)
				}
			}
		})
	}
}

// TestViolationsAreCapped: a roster of bad answers (five bad enums for
// every member) reports the first MaxViolations, in order.
func TestViolationsAreCapped(t *testing.T) {
	s, err := survey.Builtin().ByID("2021-2025")
	if err != nil {
		t.Fatal(err)
	}
	h := base("2021-2025")
	for range survey.MaxMembers - len(h.Members) {
		h.Members = append(h.Members, &rasoatv1.Member{Sex: 99, Relation: 99, HighestEducation: 99, SchoolLevel: 99, Employment: 99})
	}
	_, err = s.Assess(h)
	var ve *survey.ValidationError
	if !errors.As(err, &ve) || len(ve.Violations) != survey.MaxViolations {
		t.Fatalf("got %v, want %d violations", err, survey.MaxViolations)
	}
	if first := ve.Violations[0]; first.Field != "members[4].sex" {
		t.Errorf("first violation %+v, want members[4].sex", first)
	}
}
