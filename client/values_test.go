package client

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/proto"
)

// refusedAnswer checks err is the door's refusal of field, saying desc.
func refusedAnswer(t *testing.T, err error, field, desc string) {
	t.Helper()
	var fe *entity.FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidAnswer) {
		t.Fatalf("error %v; want a FieldError with reason ErrInvalidAnswer", err)
	}
	if fe.Field != field || !strings.Contains(fe.Desc, desc) {
		t.Errorf("error %v; want it to name %s and say %q", err, field, desc)
	}
}

func TestAnswersTheEngineRefusesAreRefusedWhenWritten(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	id, err := c.CreateHousehold(ctx, "001", fullHousehold(2))
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Household(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	child := h.Members[1].Id
	before := dump(t, c)
	for _, tc := range []struct {
		name, entity, path, value, field, desc string
	}{
		{"a negative floor area names the range", id, "housing.floorAreaM2", `-3`, "housing.floorAreaM2", "must be between 0 and 1000000 m², got -3"},
		{"a floor area over a million m² names the range", id, "housing.floorAreaM2", `1e7`, "housing.floorAreaM2", "must be between 0 and 1000000"},
		{"a negative score A names the field inside income", id, "income", `{"scoreA":-4}`, "income.scoreA", "must be between 0 and 10000, got -4"},
		{"a negative wage names the source", id, "income", `{"annual":{"wagesVnd":"-5"}}`, "income.annual.wagesVnd", "must be between 0 and 10000000000000"},
		{"a monthly income over the bound", id, "income", `{"monthlyPerCapitaVnd":"99999999999999"}`, "income.monthlyPerCapitaVnd", "must be between 0 and"},
		{"a birth date after the review date", child, "birthDate", `"2026-01-15"`, "birthDate", "after the review date 2025-11-15"},
		{"a birth date that makes a member 130", child, "birthDate", `"1890-01-01"`, "birthDate", "years old"},
		{"a review date that is no date", id, "reviewDate", `"2025-13-01"`, "reviewDate", "not a date as YYYY-MM-DD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusedAnswer(t, c.SetField(ctx, tc.entity, tc.path, []byte(tc.value)), tc.field, tc.desc)
		})
	}
	if got := dump(t, c); got != before {
		t.Fatalf("refused answers changed the file:\n%s\nwas\n%s", got, before)
	}
}

func TestAnswersTheEngineTakesAreWritten(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		reviewDate string
		path       string
		value      string
	}{
		{"clearing an answer is never refused at the door", "2025-11-15", "housing.floorAreaM2", `null`},
		{"zero m² is in range", "2025-11-15", "housing.floorAreaM2", `0`},
		{"a score A in range", "2025-11-15", "income", `{"scoreA":120}`},
		{"without a review date a value some standard takes is written", "", "income", `{"scoreA":120}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tablet(t)
			h := fullHousehold(1)
			h.ReviewDate = tc.reviewDate
			id, err := c.CreateHousehold(ctx, "001", h)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SetField(ctx, id, tc.path, []byte(tc.value)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestScoreAIsRefusedUnderAStandardWithoutCutOffs(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	h := fullHousehold(1)
	h.ReviewDate = "2026-10-01" // decides the 2027 list: Decree 351/2025, no score A cut-offs yet
	id, err := c.CreateHousehold(ctx, "001", h)
	if err != nil {
		t.Fatal(err)
	}
	refusedAnswer(t, c.SetField(ctx, id, "income", []byte(`{"scoreA":120}`)), "income.scoreA", "no confirmed score A cut-offs")
}

func TestCreateAndAddMemberRefuseWhatTheEngineRefusesNamingTheInputsField(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	before := dump(t, c)

	negative := fullHousehold(1)
	negative.Housing.FloorAreaM2 = ptr(-3.0)
	// Members are ordered by id in the household; the error names the
	// member by its place in the input all the same.
	unordered := fullHousehold(2)
	unordered.Members[0].Id = "0190f0c2-0000-7000-8000-0000000000b2"
	unordered.Members[1].Id = "0190f0c2-0000-7000-8000-0000000000b1"
	unordered.Members[0].BirthDate = "2030-01-01"
	for _, tc := range []struct {
		name        string
		h           *rasoatv1.Household
		field, desc string
	}{
		{"a negative floor area", negative, "housing.floorAreaM2", "must be between 0 and 1000000"},
		{"a member born after the review date, by its input index", unordered, "members[0].birthDate", "after the review date"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateHousehold(ctx, "001", tc.h)
			refusedAnswer(t, err, tc.field, tc.desc)
		})
	}
	if got := dump(t, c); got != before {
		t.Fatalf("refused households changed the file:\n%s", got)
	}

	id, err := c.CreateHousehold(ctx, "001", fullHousehold(1))
	if err != nil {
		t.Fatal(err)
	}
	before = dump(t, c)
	m := proto.Clone(fullHousehold(2).Members[1]).(*rasoatv1.Member)
	m.BirthDate = "2030-01-01"
	_, err = c.AddMember(ctx, id, m)
	refusedAnswer(t, err, "birthDate", "after the review date 2025-11-15")
	if got := dump(t, c); got != before {
		t.Fatalf("a refused member changed the file:\n%s", got)
	}
}
