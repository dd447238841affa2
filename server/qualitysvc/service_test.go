package qualitysvc

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestARequestOutOfBoundsNamesItsField(t *testing.T) {
	s := New(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tc := range []struct {
		req   *rasoatv1.FlagsRequest
		field string
	}{
		{&rasoatv1.FlagsRequest{}, "unit_code"},
		{&rasoatv1.FlagsRequest{UnitCode: strings.Repeat("0", MaxUnitCode+1)}, "unit_code"},
		{&rasoatv1.FlagsRequest{UnitCode: "06517", ListYear: 1999}, "list_year"},
		{&rasoatv1.FlagsRequest{UnitCode: "06517", ListYear: 2101}, "list_year"},
	} {
		_, err := s.Flags(t.Context(), tc.req)
		v := rpcerr.Violations(err)
		if status.Code(err) != codes.InvalidArgument || len(v) != 1 || v[0].Field != tc.field {
			t.Errorf("%v: %v (violations %+v); want InvalidArgument naming %s", tc.req, err, v, tc.field)
		}
	}
}

// TestBuildCountsEveryFlagAndBoundsTheList: the counts are over every
// flag, an acknowledged one does not stand, an open conflict always does,
// and the list stops at MaxHouseholds.
func TestBuildCountsEveryFlagAndBoundsTheList(t *testing.T) {
	var rows []store.FlagRow
	for i := range MaxHouseholds + 10 {
		hh := fmt.Sprintf("hh-%05d", i)
		rows = append(rows, store.FlagRow{HouseholdID: hh, Village: "06517-01", Code: "AREA_HALVED", Acked: i%2 == 0, Comment: "x"})
		if i == 1 {
			rows = append(rows, store.FlagRow{HouseholdID: hh, Village: "06517-01", Code: "OPEN_CONFLICT", Acked: true})
		}
	}
	res := Build(rows, false)
	if !res.GetTruncated() || len(res.GetHouseholds()) != MaxHouseholds {
		t.Errorf("%d households, truncated %v; want %d and truncated", len(res.GetHouseholds()), res.GetTruncated(), MaxHouseholds)
	}
	c := res.GetByVillage()[0]
	if c.GetHouseholdsFlagged() != MaxHouseholds+10 || c.GetUnacknowledged() != (MaxHouseholds+10)/2+1 || c.GetOpenConflicts() != 1 {
		t.Errorf("counts %v", c)
	}
	if f := res.GetHouseholds()[1].GetFlags(); len(f) != 2 || f[1].GetCode() != "OPEN_CONFLICT" || f[1].GetAcknowledged() || f[1].GetAckable() {
		t.Errorf("an open conflict is shown as %v; want not acknowledged, not ackable", f)
	}
	open := Build(rows, true)
	for _, h := range open.GetHouseholds() {
		for _, f := range h.GetFlags() {
			if f.GetAcknowledged() {
				t.Fatalf("--open lists an acknowledged flag: %v", f)
			}
		}
	}
}
