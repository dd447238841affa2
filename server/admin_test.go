package server_test

import (
	"strings"
	"testing"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestAdminRequestsNameTheFieldAndStoreNothing: a bad record in a bulk
// request names its index and field, and nothing of the request is stored.
func TestAdminRequestsNameTheFieldAndStoreNothing(t *testing.T) {
	c := newCommune(t, nil)
	ctx := t.Context()
	api := rasoatv1.NewAdminServiceClient(c.as("admin"))
	village := func(code, parent string) *rasoatv1.Unit {
		return &rasoatv1.Unit{Code: code, Name: "Thôn " + code, Level: rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE, Kind: "thôn", ParentCode: parent}
	}
	collab := func(id string, units ...string) *rasoatv1.Person {
		return &rasoatv1.Person{Id: id, Name: "Người " + id, Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR}, UnitCodes: units}
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"a village whose parent is unknown", func() error {
			_, err := api.PutUnits(ctx, &rasoatv1.PutUnitsRequest{Units: []*rasoatv1.Unit{village(authtest.Village(7), authtest.Commune), village(authtest.Village(8), "06517-99")}})
			return err
		}, "units[1].parent"},
		{"a village of another commune's code", func() error {
			_, err := api.PutUnits(ctx, &rasoatv1.PutUnitsRequest{Units: []*rasoatv1.Unit{village("06520-01", authtest.Commune)}})
			return err
		}, "units[0]"},
		{"a unit without a level", func() error {
			_, err := api.PutUnits(ctx, &rasoatv1.PutUnitsRequest{Units: []*rasoatv1.Unit{{Code: authtest.Village(9), Name: "X", ParentCode: authtest.Commune}}})
			return err
		}, "units[0].level"},
		{"a village as the served unit", func() error {
			_, err := api.PutUnits(ctx, &rasoatv1.PutUnitsRequest{ServedUnitCode: authtest.Village(1)})
			return err
		}, "served_unit_code"},
		{"a person of an unknown unit", func() error {
			_, err := api.PutPeople(ctx, &rasoatv1.PutPeopleRequest{People: []*rasoatv1.Person{collab("col7", authtest.Village(1)), collab("col8", "06517-99")}})
			return err
		}, "people[1].unit_codes[0]"},
		{"a person twice", func() error {
			_, err := api.PutPeople(ctx, &rasoatv1.PutPeopleRequest{People: []*rasoatv1.Person{collab("col7", authtest.Village(1)), collab("col7", authtest.Village(2))}})
			return err
		}, "people[1].id"},
		{"a person id with capitals", func() error {
			_, err := api.PutPeople(ctx, &rasoatv1.PutPeopleRequest{People: []*rasoatv1.Person{collab("Col7", authtest.Village(1))}})
			return err
		}, "people[0].id"},
		{"a person without a role", func() error {
			_, err := api.PutPeople(ctx, &rasoatv1.PutPeopleRequest{People: []*rasoatv1.Person{{Id: "col7", Name: "A"}}})
			return err
		}, "people[0].roles"},
		{"a code valid too long", func() error {
			_, err := api.IssueCode(ctx, &rasoatv1.IssueCodeRequest{PersonId: "col1", TtlSeconds: 31 * 24 * 3600})
			return err
		}, "ttl_seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := c.dump()
			err := tc.call()
			if code := status.Code(err); code != codes.InvalidArgument && code != codes.NotFound {
				t.Fatalf("got %v; want InvalidArgument or NotFound", err)
			}
			vs := rpcerr.Violations(err)
			if len(vs) == 0 || !strings.HasPrefix(vs[0].Field, tc.field) {
				t.Errorf("violations %v; want the first naming %s", vs, tc.field)
			}
			if c.dump() != before {
				t.Error("a refused request changed the store")
			}
		})
	}
	_, err := api.IssueCode(ctx, &rasoatv1.IssueCodeRequest{PersonId: "nobody"})
	wantReason(t, err, codes.NotFound, rasoatv1.ErrorReason_NOT_FOUND)
	// And a good bulk request goes in whole.
	res, err := api.PutPeople(ctx, &rasoatv1.PutPeopleRequest{People: []*rasoatv1.Person{collab("col7", authtest.Village(1)), collab("col1", authtest.Village(3))}})
	if err != nil || res.GetCreated() != 1 || res.GetUpdated() != 1 {
		t.Fatalf("PutPeople = %v, %v; want 1 created, 1 updated", res, err)
	}
	code, err := api.IssueCode(ctx, &rasoatv1.IssueCodeRequest{PersonId: "col7"})
	if err != nil || len(code.GetCode()) != 14 || code.GetAttempts() == 0 {
		t.Fatalf("IssueCode = %v, %v", code, err)
	}
}
