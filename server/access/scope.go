package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/replica"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/directory"
	reviewsvc "github.com/rasoat/rasoat/server/review"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/survey"
)

// Directory is what a Scope reads and writes (server/store/sqlite
// implements it).
type Directory interface {
	// VillagesUnder returns the villages at or under any of codes, within
	// the unit the server serves.
	VillagesUnder(ctx context.Context, codes []string) ([]string, error)
	// BindReplica binds a successor replica id to a device.
	BindReplica(ctx context.Context, deviceID, personID, replica string, at time.Time) error
}

// MaxLineage bounds PushRequest.lineage: a tablet moves to a successor id
// once per restored copy of its file that meets the server.
const MaxLineage = 64

// Scope is the sync service's scope for authenticated callers.
type Scope struct {
	dir       Directory
	policy    Policy
	standards *survey.Registry
}

// NewScope returns the scope over dir with the write policy p.
func NewScope(dir Directory, p Policy) *Scope { return &Scope{dir: dir, policy: p} }

// WithStandards sets the standards the review workflow scores a decided
// household with (the server's, with a province's files; default the
// built-ins).
func (s *Scope) WithStandards(reg *survey.Registry) *Scope {
	s.standards = reg
	return s
}

// Denied is a refusal naming the reason and the change's field.
type Denied struct {
	reason rasoatv1.ErrorReason
	field  string
	msg    string
}

func (d *Denied) Error() string                { return d.msg }
func (d *Denied) Reason() rasoatv1.ErrorReason { return d.reason }
func (d *Denied) Field() string                { return d.field }
func deny(r rasoatv1.ErrorReason, field, format string, a ...any) *Denied {
	return &Denied{reason: r, field: field, msg: fmt.Sprintf(format, a...)}
}

// errNoIdentity: the server wired the scope without authentication.
var errNoIdentity = errors.New("no authenticated caller")

// Villages returns the caller's villages among requested (all of them when
// requested is empty). A read's replica id grants nothing, so it is not
// checked: a tablet that just moved to a successor id reads before its
// next push proves the id.
func (s *Scope) Villages(ctx context.Context, replica string, requested []string) (store.Villages, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return store.Villages{}, errNoIdentity
	}
	mine, err := s.dir.VillagesUnder(ctx, id.Person.Units)
	if err != nil {
		return store.Villages{}, err
	}
	if len(requested) == 0 {
		return store.OnlyVillages(mine...), nil
	}
	var out []string
	for _, v := range requested {
		if _, ok := slices.BinarySearch(mine, v); !ok {
			return store.Villages{}, deny(rasoatv1.ErrorReason_OUT_OF_SCOPE, "", "village %s is not one of %s's", v, id.Person.ID)
		}
		out = append(out, v)
	}
	return store.OnlyVillages(out...), nil
}

// Writer checks the pushing replica (binding a successor the lineage
// proves), and returns the check of each change: its origin is a replica
// of the caller's device (a commune server relays anyone's), its village
// one of the person's, and some role of theirs may write its field.
func (s *Scope) Writer(ctx context.Context, req *rasoatv1.PushRequest) (store.Sender, func(*rasoatv1.Change) error, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return store.Sender{}, nil, errNoIdentity
	}
	relay := id.Person.Has(rasoatv1.Role_ROLE_COMMUNE_SERVER)
	replicas := slices.Clone(id.Device.Replicas)
	if err := s.bindLineage(ctx, id, &replicas, req.GetLineage()); err != nil {
		return store.Sender{}, nil, err
	}
	replica := req.GetReplicaId()
	if replica == "" {
		replica = id.Device.Replica
	} else if !slices.Contains(replicas, replica) {
		return store.Sender{}, nil, deny(rasoatv1.ErrorReason_REPLICA_NOT_BOUND, "", "replica_id %s is not this device's (enrolled as %s)", replica, id.Device.Replica)
	}
	sender := store.Sender{Replica: replica, PersonID: id.Person.ID, DeviceID: id.Device.ID}
	if !relay {
		// A commune server relays what its commune already checked: the
		// workflow is run where the review is done, once.
		g := reviewsvc.NewGuard(id.Person.ID, id.Person.Roles)
		if s.standards != nil {
			g.Standards = s.standards
		}
		sender.Guard = g
	}
	if !s.policy.Writes(id.Person.Roles) {
		return sender, nil, deny(rasoatv1.ErrorReason_ROLE_DENIED, "", "person %s has no role that writes household data", id.Person.ID)
	}
	villages, err := s.dir.VillagesUnder(ctx, id.Person.Units)
	if err != nil {
		return sender, nil, err
	}
	check := func(c *rasoatv1.Change) error {
		if origin := c.GetStamp().GetReplicaId(); !relay && !slices.Contains(replicas, origin) {
			return deny(rasoatv1.ErrorReason_REPLICA_NOT_BOUND, "stamp.replica_id", "replica %s is not this device's: a device pushes only what its own replicas wrote", origin)
		}
		if _, ok := slices.BinarySearch(villages, c.GetVillageCode()); !ok {
			return deny(rasoatv1.ErrorReason_OUT_OF_SCOPE, "village_code", "village %s is not assigned to %s", c.GetVillageCode(), id.Person.ID)
		}
		if !s.policy.MayWrite(id.Person.Roles, c) {
			field := "field"
			if s.policy.MayWriteField(id.Person.Roles, c.GetKind(), c.GetField()) {
				field = "value"
			}
			return deny(rasoatv1.ErrorReason_ROLE_DENIED, field, "%s may not write %s %s = %s", id.Person.ID, entity.KindName(c.GetKind()), c.GetField(), c.GetValue())
		}
		return nil
	}
	return sender, check, nil
}

// bindLineage checks each step of the lineage and binds the successors
// the device does not hold yet.
func (s *Scope) bindLineage(ctx context.Context, id *auth.Identity, replicas *[]string, lineage []*rasoatv1.Succession) error {
	if len(lineage) > MaxLineage {
		return deny(rasoatv1.ErrorReason_TOO_LARGE, "", "lineage has %d steps, over the limit of %d", len(lineage), MaxLineage)
	}
	for i, st := range lineage {
		if replica.Successor(st.GetFromReplicaId(), st.GetFromSeq()) != st.GetReplicaId() {
			return deny(rasoatv1.ErrorReason_REPLICA_NOT_BOUND, "", "lineage[%d]: %s is not the successor of %s at %d", i, st.GetReplicaId(), st.GetFromReplicaId(), st.GetFromSeq())
		}
		if slices.Contains(*replicas, st.GetReplicaId()) {
			continue
		}
		if !slices.Contains(*replicas, st.GetFromReplicaId()) {
			return deny(rasoatv1.ErrorReason_REPLICA_NOT_BOUND, "", "lineage[%d]: %s is not this device's", i, st.GetFromReplicaId())
		}
		err := s.dir.BindReplica(ctx, id.Device.ID, id.Person.ID, st.GetReplicaId(), time.Now())
		if errors.Is(err, directory.ErrReplicaTaken) {
			return deny(rasoatv1.ErrorReason_REPLICA_NOT_BOUND, "", "lineage[%d]: %s is another device's", i, st.GetReplicaId())
		}
		if err != nil {
			return err
		}
		*replicas = append(*replicas, st.GetReplicaId())
	}
	return nil
}
