package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/internal/authtest"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/adminsvc"
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

// TestListsComeInPages: a list longer than a page comes in pages that
// together hold every record once, in order.
func TestListsComeInPages(t *testing.T) {
	c := newCommune(t, nil)
	ctx := t.Context()
	api := rasoatv1.NewAdminServiceClient(c.as("admin"))
	var units []*rasoatv1.Unit
	for i := 4; i <= 130; i++ {
		units = append(units, &rasoatv1.Unit{Code: authtest.Village(i), Name: "Thôn", Level: rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE, Kind: "thôn", ParentCode: authtest.Commune})
	}
	if _, err := api.PutUnits(ctx, &rasoatv1.PutUnitsRequest{Units: units}); err != nil {
		t.Fatal(err)
	}
	all, err := api.ListUnits(ctx, &rasoatv1.ListUnitsRequest{PageSize: adminsvc.MaxPage})
	if err != nil || all.GetNextPageToken() != "" {
		t.Fatalf("one page of everything: %v, next %q", err, all.GetNextPageToken())
	}
	var paged []string
	pages := 0
	for token := ""; ; pages++ {
		res, err := api.ListUnits(ctx, &rasoatv1.ListUnitsRequest{PageSize: 50, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetUnits()) > 50 {
			t.Fatalf("a page of %d units; asked 50", len(res.GetUnits()))
		}
		for _, u := range res.GetUnits() {
			paged = append(paged, u.GetCode())
		}
		if token = res.GetNextPageToken(); token == "" {
			break
		}
	}
	var want []string
	for _, u := range all.GetUnits() {
		want = append(want, u.GetCode())
	}
	if pages != 2 || !slices.Equal(paged, want) || len(want) != 2+130 {
		t.Errorf("%d pages of %d units; want 3 pages holding the %d units once, in order", pages+1, len(paged), len(want))
	}
	// People and devices page the same way.
	people, err := api.ListPeople(ctx, &rasoatv1.ListPeopleRequest{PageSize: 3})
	if err != nil || len(people.GetPeople()) != 3 || people.GetNextPageToken() != people.GetPeople()[2].GetId() {
		t.Fatalf("a page of 3 people: %v, %v", people, err)
	}
	rest, err := api.ListPeople(ctx, &rasoatv1.ListPeopleRequest{PageToken: people.GetNextPageToken()})
	if err != nil || len(rest.GetPeople()) != len(roleOf)-3 || rest.GetNextPageToken() != "" {
		t.Fatalf("the rest of the people: %d, %v", len(rest.GetPeople()), err)
	}
	devs, err := api.ListDevices(ctx, &rasoatv1.ListDevicesRequest{PageSize: 1})
	if err != nil || len(devs.GetDevices()) != 1 || devs.GetNextPageToken() == "" {
		t.Fatalf("a page of 1 device: %v, %v", devs, err)
	}
}

// TestBulkRequestsOfAProvinceGoThrough: a bulk import bigger than the wire
// guard's default count for a repeated field (a province's villages, a
// commune's people) reaches the service and is stored whole.
func TestBulkRequestsOfAProvinceGoThrough(t *testing.T) {
	c := newCommune(t, nil)
	ctx := t.Context()
	api := rasoatv1.NewAdminServiceClient(c.as("admin"))
	const villages, people = 3_000, 600
	var units []*rasoatv1.Unit
	for i := 4; i < 4+villages; i++ {
		units = append(units, &rasoatv1.Unit{Code: authtest.Village(i), Name: "Thôn", Level: rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE, Kind: "thôn", ParentCode: authtest.Commune})
	}
	res, err := api.PutUnits(ctx, &rasoatv1.PutUnitsRequest{Units: units})
	if err != nil || res.GetCreated() != villages {
		t.Fatalf("PutUnits of %d villages: %v, %v", villages, res, err)
	}
	var ps []*rasoatv1.Person
	for i := range people {
		ps = append(ps, &rasoatv1.Person{Id: fmt.Sprintf("ctv-%04d", i), Name: "Cộng tác viên", Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR}, UnitCodes: []string{authtest.Village(4 + i)}})
	}
	pres, err := api.PutPeople(ctx, &rasoatv1.PutPeopleRequest{People: ps})
	if err != nil || pres.GetCreated() != people {
		t.Fatalf("PutPeople of %d people: %v, %v", people, pres, err)
	}
}
