package access

import (
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

func TestDefaultPolicy(t *testing.T) {
	col := []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR}
	officer := []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}
	change := func(kind rasoatv1.EntityKind, field, value string) *rasoatv1.Change {
		return &rasoatv1.Change{Kind: kind, Field: field, Value: []byte(value)}
	}
	for _, tc := range []struct {
		name  string
		roles []rasoatv1.Role
		c     *rasoatv1.Change
		want  bool
	}{
		{"a collaborator writes any household field", col, change(household, "housing.floorAreaM2", "36.5"), true},
		{"a collaborator removes a member", col, change(member, "removed", `"REMOVAL_REASON_DIED"`), true},
		{"a collaborator submits a review", col, change(review, "status", `"submitted"`), true},
		{"a collaborator keeps a review in draft", col, change(review, "status", `"draft"`), true},
		// Which status, from which, by whom, is the workflow's
		// (server/review), checked against the stored review.
		{"a collaborator's status write is left to the workflow", col, change(review, "status", `"decided"`), true},
		{"a collaborator sets the round's kind", col, change(review, "round", `"regular"`), true},
		{"an officer writes any review field", officer, change(review, "comment", `"x"`), true},
		{"a village head records the meeting as a status", []rasoatv1.Role{rasoatv1.Role_ROLE_VILLAGE_HEAD}, change(review, "status", `"agreed"`), true},
		{"a village head writes no household", []rasoatv1.Role{rasoatv1.Role_ROLE_VILLAGE_HEAD}, change(household, "headName", `"A"`), false},
		{"a village head writes no review comment", []rasoatv1.Role{rasoatv1.Role_ROLE_VILLAGE_HEAD}, change(review, "comment", `"A"`), false},
		{"a chair decides as a status", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_CHAIR}, change(review, "status", `"decided"`), true},
		{"a chair writes no household", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_CHAIR}, change(household, "headName", `"A"`), false},
		{"an admin writes no household", []rasoatv1.Role{rasoatv1.Role_ROLE_ADMIN}, change(household, "headName", `"A"`), false},
		{"a scoring service writes nothing", []rasoatv1.Role{rasoatv1.Role_ROLE_SERVICE}, change(member, "fullName", `"A"`), false},
		{"a commune server relays anything", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_SERVER}, change(review, "status", `"approved"`), true},
		{"roles add up", []rasoatv1.Role{rasoatv1.Role_ROLE_VILLAGE_HEAD, rasoatv1.Role_ROLE_COLLABORATOR}, change(household, "headName", `"A"`), true},
		{"no role, no write", nil, change(household, "headName", `"A"`), false},
		// A quality flag's acknowledgement (internal/quality) is the
		// officer's and the chair's, never the surveyor's own.
		{"an officer acknowledges a quality flag", officer, change(review, "ack.AREA_HALVED", `"nhà xây lại"`), true},
		{"a chair does not acknowledge a quality flag: the officer does, the chair decides", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_CHAIR}, change(review, "ack.AREA_HALVED", `"nhà xây lại"`), false},
		{"a collaborator does not acknowledge a quality flag", col, change(review, "ack.AREA_HALVED", `"nhà xây lại"`), false},
		{"a village head does not acknowledge a quality flag", []rasoatv1.Role{rasoatv1.Role_ROLE_VILLAGE_HEAD}, change(review, "ack.DUPLICATE_PERSON", `"x"`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DefaultPolicy.MayWrite(tc.roles, tc.c); got != tc.want {
				t.Errorf("MayWrite = %v; want %v", got, tc.want)
			}
		})
	}
}

func TestGrantFieldPatterns(t *testing.T) {
	p := Policy{rasoatv1.Role_ROLE_VILLAGE_HEAD: {{Kind: household, Field: "housing.*"}, {Kind: review, Field: "comment"}}}
	roles := []rasoatv1.Role{rasoatv1.Role_ROLE_VILLAGE_HEAD}
	for _, tc := range []struct {
		kind  rasoatv1.EntityKind
		field string
		want  bool
	}{
		{household, "housing.floorAreaM2", true},
		{household, "housing", false},
		{household, "housingX.a", false},
		{household, "headName", false},
		{member, "housing.floorAreaM2", false},
		{review, "comment", true},
		{review, "comments", false},
	} {
		if got := p.MayWrite(roles, &rasoatv1.Change{Kind: tc.kind, Field: tc.field}); got != tc.want {
			t.Errorf("%v %s: %v; want %v", tc.kind, tc.field, got, tc.want)
		}
		if got := p.MayWriteField(roles, tc.kind, tc.field); got != tc.want {
			t.Errorf("MayWriteField %v %s: %v; want %v", tc.kind, tc.field, got, tc.want)
		}
	}
}
