package client

import (
	"context"
	"errors"
	"testing"

	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

func TestCreateHouseholdsEnrolsAllInOneTransactionOrNone(t *testing.T) {
	ctx := context.Background()
	batch := func(n int, change func(i int, h *rasoatv1.Household)) []*rasoatv1.Household {
		hs := make([]*rasoatv1.Household, n)
		for i := range hs {
			hs[i] = fullHousehold(2)
			if change != nil {
				change(i, hs[i])
			}
		}
		return hs
	}
	tests := []struct {
		name    string
		village string
		hs      []*rasoatv1.Household
		index   int    // of the household refused; -1 when all are enrolled
		field   string // the field its error names
		is      error
	}{
		{"every household is enrolled, in order", "001", batch(3, nil), -1, "", nil},
		{"each household may name its own village", "", batch(2, func(i int, h *rasoatv1.Household) { h.VillageCode = []string{"001", "002"}[i] }), -1, "", nil},
		{"a household without a village, when none is given for all, is named", "", batch(2, func(i int, h *rasoatv1.Household) {
			if i == 0 {
				h.VillageCode = "001"
			}
		}), 1, "villageCode", entity.ErrInvalid},
		{"a bad answer in the third refuses all, naming it", "001", batch(3, func(i int, h *rasoatv1.Household) {
			if i == 2 {
				h.Members[1].BirthDate = "2030-01-01"
			}
		}), 2, "members[1].birthDate", ErrInvalidAnswer},
		{"an unknown enum in the second refuses all", "001", batch(3, func(i int, h *rasoatv1.Household) {
			if i == 1 {
				h.Area = 42
			}
		}), 1, "area", entity.ErrUnknownValue},
		{"an id used twice in one batch names the second", "001", batch(2, func(i int, h *rasoatv1.Household) { h.Id = "0190f0c2-0000-7000-8000-0000000000a1" }), 1, "", ErrExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tablet(t)
			before := dump(t, c)
			ids, err := c.CreateHouseholds(ctx, tt.village, tt.hs)
			if tt.index < 0 {
				if err != nil {
					t.Fatal(err)
				}
				for i, id := range ids {
					h, err := c.Household(ctx, id)
					if err != nil || h.GetHeadName() != tt.hs[i].GetHeadName() || len(h.GetMembers()) != 2 {
						t.Errorf("household %d (%s): %v, %v", i, id, h, err)
					}
				}
				return
			}
			var he *HouseholdError
			if !errors.As(err, &he) || he.Index != tt.index || !errors.Is(err, tt.is) {
				t.Fatalf("error %v; want household %d refused with %v", err, tt.index, tt.is)
			}
			var fe *entity.FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
				t.Errorf("error %v; want it to name %s", err, tt.field)
			}
			if got := dump(t, c); got != before {
				t.Errorf("a refused batch changed the file:\n%s", got)
			}
		})
	}
}

func TestCreateHouseholdsIsBounded(t *testing.T) {
	c := tablet(t)
	hs := make([]*rasoatv1.Household, MaxHouseholdsPerCall+1)
	_, err := c.CreateHouseholds(context.Background(), "001", hs)
	var fe *entity.FieldError
	if !errors.As(err, &fe) || fe.Field != "households" || !fe.OverLimit {
		t.Fatalf("error %v; want a FieldError naming households, over the limit", err)
	}
}
