// Package access decides what an authenticated caller may write and read:
// the write policy by role (data, not code: which role may write which
// entity kinds and fields, and which values), and the Scope the sync
// service asks on every push and read — the person's villages, the replica
// ids bound to their device, and the policy.
package access

import (
	"slices"
	"strings"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// Grant lets a role write one field of one kind of entity.
type Grant struct {
	Kind rasoatv1.EntityKind
	// Field is a field path ("headName", "housing.floorAreaM2"), a prefix
	// ending in ".*" ("housing.*"), or "*" for every field of the kind.
	Field string
	// Values, when not empty, are the only values the role may write, as
	// canonical JSON (`"submitted"`).
	Values []string
}

// Policy is the grants of each role. A role with no grant writes nothing.
type Policy map[rasoatv1.Role][]Grant

var (
	household = rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD
	member    = rasoatv1.EntityKind_ENTITY_KIND_MEMBER
	review    = rasoatv1.EntityKind_ENTITY_KIND_REVIEW
)

// DefaultPolicy is the write policy of DESIGN.md "People". The collaborator
// enters households and members and starts and submits reviews; the
// village head records the village meeting and the chair the decision,
// both as a review's status; the officer corrects anything. Which status
// each may write, from which, is the workflow's (server/review, checked
// against the stored review in the push), not this table's. The admin and
// a scoring service write no household data. A commune server relays what
// its tablets wrote, which the commune already checked, so it may write
// every field.
var DefaultPolicy = Policy{
	rasoatv1.Role_ROLE_COLLABORATOR: {
		{Kind: household, Field: "*"},
		{Kind: member, Field: "*"},
		{Kind: review, Field: "comment"},
		{Kind: review, Field: "reviewDate"},
		{Kind: review, Field: "round"},
		{Kind: review, Field: "request"},
		{Kind: review, Field: "status"},
	},
	rasoatv1.Role_ROLE_VILLAGE_HEAD: {
		{Kind: review, Field: "status"},
	},
	// A quality flag is acknowledged by the commune officer (ack.*:
	// internal/quality), and the decision is the chair's: two people, as
	// the issue has it ("an officer acknowledges each … before the round
	// can be decided"). Nobody acknowledges a flag on answers they wrote
	// (server/review).
	rasoatv1.Role_ROLE_COMMUNE_CHAIR: {
		{Kind: review, Field: "status"},
	},
	rasoatv1.Role_ROLE_COMMUNE_OFFICER: {
		{Kind: household, Field: "*"},
		{Kind: member, Field: "*"},
		{Kind: review, Field: "*"},
	},
	rasoatv1.Role_ROLE_COMMUNE_SERVER: {
		{Kind: household, Field: "*"},
		{Kind: member, Field: "*"},
		{Kind: review, Field: "*"},
	},
}

// covers reports whether g covers a field of a kind, whatever the value.
func (g *Grant) covers(kind rasoatv1.EntityKind, f string) bool {
	if g.Kind != kind {
		return false
	}
	switch {
	case g.Field == "*":
		return true
	case strings.HasSuffix(g.Field, ".*"):
		return strings.HasPrefix(f, g.Field[:len(g.Field)-1])
	}
	return g.Field == f
}

// matches reports whether g covers the change's kind, field and value.
func (g *Grant) matches(c *rasoatv1.Change) bool {
	return g.covers(c.GetKind(), c.GetField()) && (len(g.Values) == 0 || slices.Contains(g.Values, string(c.GetValue())))
}

// MayWriteField reports whether any of roles may write some value of the
// field (so that a refusal can say whether the field or the value was
// wrong).
func (p Policy) MayWriteField(roles []rasoatv1.Role, kind rasoatv1.EntityKind, field string) bool {
	for _, r := range roles {
		for i := range p[r] {
			if p[r][i].covers(kind, field) {
				return true
			}
		}
	}
	return false
}

// MayWrite reports whether any of roles may write c's field and value.
func (p Policy) MayWrite(roles []rasoatv1.Role, c *rasoatv1.Change) bool {
	for _, r := range roles {
		for i := range p[r] {
			if p[r][i].matches(c) {
				return true
			}
		}
	}
	return false
}

// Writes reports whether any of roles may write anything at all.
func (p Policy) Writes(roles []rasoatv1.Role) bool {
	return slices.ContainsFunc(roles, func(r rasoatv1.Role) bool { return len(p[r]) > 0 })
}
