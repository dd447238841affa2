package client

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/proto"
)

var marshalChange = proto.MarshalOptions{Deterministic: true}

// ent is one entity a write transaction reads or writes.
type ent struct {
	state entity.State
	id    string
	kind  rasoatv1.EntityKind
	hh    string // household id (its own for a household)
	vill  string
	dirty bool
}

// writeTx is one local write: every change it makes goes to the outbox and
// to its entity's state in one SQLite transaction, numbered with the next
// origin sequence numbers and stamped by the clock inside it, so that
// stamps increase with sequence numbers.
type writeTx struct {
	c     *Client
	ctx   context.Context
	tx    *sql.Tx
	m     meta
	clock *hlc.Clock
	ents  map[string]*ent
	order []string
	wr    written             // answers written, checked by the engine before commit
	hhs   []string            // households wr touches, in order
	made  map[string]bool     // entities created here
	newMs map[string][]string // members created here, by household
}

// write runs fn in one transaction and commits what it wrote; an error from
// fn (or a crash) leaves the file as it was.
func (c *Client) write(ctx context.Context, op string, fn func(w *writeTx) error) error {
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	m, err := readMeta(ctx, tx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	w := &writeTx{c: c, ctx: ctx, tx: tx, m: m, clock: c.clock.Load(), ents: map[string]*ent{}, wr: written{}}
	err = fn(w)
	for _, hh := range w.hhs {
		if err != nil {
			break
		}
		err = w.checkAnswers(hh, w.wr)
	}
	if err != nil {
		var fe *entity.FieldError
		if errors.As(err, &fe) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) || errors.Is(err, ErrWorkflow) {
			return err // already names what is wrong
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := w.flush(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", op, err)
	}
	return nil
}

// load returns the entity id as stored, or ErrNotFound.
func (w *writeTx) load(id string) (*ent, error) {
	if e := w.ents[id]; e != nil {
		return e, nil
	}
	var b []byte
	err := w.tx.QueryRowContext(w.ctx, "SELECT state FROM entities WHERE id = ?", id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("entity %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read entity %s: %w", id, err)
	}
	e := &ent{}
	if err := e.state.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("read entity %s: %w", id, err)
	}
	e.id, e.kind, e.hh, e.vill = e.state.ID, e.state.Kind, e.state.HouseholdID, e.state.VillageCode
	w.ents[id] = e
	w.order = append(w.order, id)
	return e, nil
}

// create returns a new entity; ErrExists if id is taken.
func (w *writeTx) create(id string, kind rasoatv1.EntityKind, household, village string) (*ent, error) {
	if _, err := w.load(id); err == nil {
		return nil, fmt.Errorf("%s %s: %w", entity.KindName(kind), id, ErrExists)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	e := &ent{id: id, kind: kind, hh: household, vill: village}
	w.ents[id] = e
	w.order = append(w.order, id)
	if w.made == nil {
		w.made, w.newMs = map[string]bool{}, map[string][]string{}
	}
	w.made[id] = true
	if kind == rasoatv1.EntityKind_ENTITY_KIND_MEMBER {
		w.newMs[household] = append(w.newMs[household], id)
	}
	return e, nil
}

// set writes value (canonical JSON) to path of e as one change whose Base
// is the field's current heads, so it covers every value this replica has
// seen there and resolves an open conflict. name is the field as the
// caller knows it, for errors.
func (w *writeTx) set(e *ent, path string, value []byte, name string) error {
	var base []merge.Stamp
	if f := e.state.Field(path); f != nil {
		base = f.Base()
		if len(f.Heads) == 1 && bytes.Equal(f.Heads[0].Value, value) {
			return nil // already the value, no conflict: nothing to write
		}
	}
	for _, b := range base {
		// A stamp below every Base entry would be refused (merge.Change.Validate);
		// the clock has observed them, unless a pull refused one as too far ahead.
		w.clock.Restore(b.HLC)
	}
	hh := e.hh
	if e.kind == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
		hh = ""
	}
	c := &rasoatv1.Change{
		EntityId:    e.id,
		Kind:        e.kind,
		HouseholdId: hh,
		VillageCode: e.vill,
		Field:       path,
		Value:       value,
		Stamp:       &rasoatv1.Stamp{Hlc: uint64(w.clock.Now()), ReplicaId: w.m.replica},
		Seq:         w.m.nextSeq,
	}
	for _, b := range base {
		c.Base = append(c.Base, &rasoatv1.Stamp{Hlc: uint64(b.HLC), ReplicaId: b.Replica})
	}
	if _, err := e.state.Apply(c); err != nil {
		return renamed(name, err)
	}
	e.dirty = true
	w.wrote(e, path, value, name)
	payload, err := marshalChange.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode change: %w", err)
	}
	if _, err := w.tx.ExecContext(w.ctx, "INSERT INTO outbox (origin_seq, entity_id, hlc, payload) VALUES (?, ?, ?, ?)",
		int64(c.Seq), c.EntityId, int64(c.Stamp.Hlc), payload); err != nil {
		return fmt.Errorf("write change %d to the outbox: %w", c.Seq, err)
	}
	w.m.nextSeq++
	if w.c.hookWrite != nil {
		if err := w.c.hookWrite(path); err != nil {
			return err
		}
	}
	return nil
}

// flush stores the changed entities and the meta row.
func (w *writeTx) flush() error {
	for _, id := range w.order {
		e := w.ents[id]
		if !e.dirty {
			continue
		}
		if err := putState(w.ctx, w.tx, &e.state); err != nil {
			return err
		}
	}
	w.m.hlcLast = max(w.m.hlcLast, w.clock.Last())
	_, err := w.tx.ExecContext(w.ctx, "UPDATE meta SET next_seq = ?, hlc_last = ? WHERE id = 1", int64(w.m.nextSeq), int64(w.m.hlcLast))
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// putState stores s, with its conflict flag.
func putState(ctx context.Context, x execer, s *entity.State) error {
	b, err := s.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode entity %s: %w", s.ID, err)
	}
	return putEncoded(ctx, x, s, b)
}

func putEncoded(ctx context.Context, x execer, s *entity.State, b []byte) error {
	_, err := x.ExecContext(ctx, `INSERT INTO entities (id, kind, household_id, village_code, state, conflicted) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, conflicted = excluded.conflicted`,
		s.ID, int64(s.Kind), s.HouseholdID, s.VillageCode, b, conflicted(s))
	if err != nil {
		return fmt.Errorf("write entity %s: %w", s.ID, err)
	}
	return nil
}

// conflicted reports whether some field of s has an open conflict.
func conflicted(s *entity.State) bool {
	for _, p := range s.Paths() {
		if _, _, ok := s.Field(p).Conflict(); ok {
			return true
		}
	}
	return false
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// CreateHousehold enrols a household (hộ) in villageCode: every field h
// sets becomes a change on the household entity, and every member a member
// entity with its own changes. Empty ids (h.Id, each member's Id) are made
// here as UUIDv7. h.Id must not be taken; h.VillageCode, if set, must equal
// villageCode; h.HeadName is required. It returns the household's id.
// Bad input returns a *entity.FieldError naming the field
// ("members[1].birthDate") and writes nothing.
func (c *Client) CreateHousehold(ctx context.Context, villageCode string, h *rasoatv1.Household) (string, error) {
	nh, err := newHousehold(villageCode, h)
	if err != nil {
		return "", err
	}
	if err := c.write(ctx, "create household", nh.write); err != nil {
		return "", err
	}
	return nh.id, nil
}

// MaxHouseholdsPerCall bounds CreateHouseholds: a village's households
// (a few hundred; the largest a little over a thousand) in one call, while
// the one transaction that holds them, some 40 changes each, stays a few
// seconds of a tablet's write lock.
const MaxHouseholdsPerCall = 2000

// HouseholdError is CreateHouseholds' error for one of its households:
// Index is its place in the slice given, Err what CreateHousehold would
// have said of it (a *entity.FieldError naming the field, ErrExists, ...).
type HouseholdError struct {
	Index int
	Err   error
}

func (e *HouseholdError) Error() string { return fmt.Sprintf("households[%d]: %v", e.Index, e.Err) }

// Unwrap returns Err.
func (e *HouseholdError) Unwrap() error { return e.Err }

// CreateHouseholds enrols many households in one transaction, as
// CreateHousehold does each: all of them, or, on the first refused, none
// (a *HouseholdError saying which and why). villageCode, when not empty, is
// the village of every household (each one's own villageCode must then be
// empty or agree); when empty, each household names its own. It returns
// the ids in the order of hs.
func (c *Client) CreateHouseholds(ctx context.Context, villageCode string, hs []*rasoatv1.Household) ([]string, error) {
	if len(hs) > MaxHouseholdsPerCall {
		return nil, &entity.FieldError{Field: "households", OverLimit: true,
			Desc: fmt.Sprintf("%d households, over the limit of %d in one call: split them", len(hs), MaxHouseholdsPerCall)}
	}
	nhs := make([]*newHH, len(hs))
	for i, h := range hs {
		v := villageCode
		if v == "" {
			v = h.GetVillageCode()
		}
		nh, err := newHousehold(v, h)
		if err != nil {
			return nil, &HouseholdError{Index: i, Err: err}
		}
		nhs[i] = nh
	}
	err := c.write(ctx, "create households", func(w *writeTx) error {
		for i, nh := range nhs {
			err := nh.write(w)
			if err == nil {
				// Checked here to name the household; write then skips it.
				err = w.checkAnswers(nh.id, w.wr)
				w.hhs = slices.DeleteFunc(w.hhs, func(id string) bool { return id == nh.id })
			}
			if err != nil {
				return &HouseholdError{Index: i, Err: err}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(nhs))
	for i, nh := range nhs {
		ids[i] = nh.id
	}
	return ids, nil
}

// newHH is a household checked and ready to write: its id, its answers
// and its members with their ids.
type newHH struct {
	id, village string
	values      map[string][]byte
	members     []*rasoatv1.Member
}

// newHousehold checks h for enrolment in villageCode and makes its ids.
func newHousehold(villageCode string, h *rasoatv1.Household) (*newHH, error) {
	switch {
	case villageCode == "":
		return nil, fieldError("villageCode", "is empty")
	case h.GetVillageCode() != "" && h.GetVillageCode() != villageCode:
		return nil, fieldError("villageCode", "%q differs from the village %q it is enrolled in", h.GetVillageCode(), villageCode)
	case h.GetHeadName() == "":
		return nil, fieldError("headName", "is required")
	}
	id := h.GetId()
	if id == "" {
		id = newID()
	} else if !entity.ValidID(id) {
		return nil, fieldError("id", "%q is not a UUID in canonical form", id)
	}
	hh := proto.Clone(h).(*rasoatv1.Household)
	hh.Id, hh.VillageCode, hh.Members = "", "", nil
	values, err := entity.Leaves(hh, entity.Paths(rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD))
	if err != nil {
		return nil, fmt.Errorf("create household: %w", err)
	}
	members := make([]*rasoatv1.Member, len(h.GetMembers()))
	seen := map[string]bool{id: true}
	for i, m := range h.GetMembers() {
		m = proto.Clone(m).(*rasoatv1.Member)
		if m.Id == "" {
			m.Id = newID()
		} else if !entity.ValidID(m.Id) {
			return nil, fieldError(fmt.Sprintf("members[%d].id", i), "%q is not a UUID in canonical form", m.Id)
		}
		if seen[m.Id] {
			return nil, fieldError(fmt.Sprintf("members[%d].id", i), "%s is used twice", m.Id)
		}
		seen[m.Id] = true
		members[i] = m
	}
	return &newHH{id: id, village: villageCode, values: values, members: members}, nil
}

// write enrols nh in w.
func (nh *newHH) write(w *writeTx) error {
	e, err := w.create(nh.id, rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, nh.id, nh.village)
	if err != nil {
		return err
	}
	if err := w.setAll(e, nh.values, ""); err != nil {
		return err
	}
	for i, m := range nh.members {
		if err := w.addMember(e, m, fmt.Sprintf("members[%d].", i)); err != nil {
			return err
		}
	}
	return nil
}

// setAll writes values in path order; prefix names the entity in errors.
func (w *writeTx) setAll(e *ent, values map[string][]byte, prefix string) error {
	paths := make([]string, 0, len(values))
	for p := range values {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		v, err := entity.Canonical(e.kind, p, values[p]) // refuses enum numbers the contract does not know
		if err != nil {
			return renamed(prefix+p, err)
		}
		if err := w.set(e, p, v, prefix+p); err != nil {
			return err
		}
	}
	return nil
}

// addMember writes m (its Id set) as a new member of household h. Its
// removed field is always written, so that a member with no other answer
// still exists as an entity.
func (w *writeTx) addMember(h *ent, m *rasoatv1.Member, prefix string) error {
	e, err := w.create(m.GetId(), rasoatv1.EntityKind_ENTITY_KIND_MEMBER, h.id, h.vill)
	if err != nil {
		return err
	}
	mm := proto.Clone(m).(*rasoatv1.Member)
	mm.Id = ""
	values, err := entity.Leaves(mm, entity.Paths(rasoatv1.EntityKind_ENTITY_KIND_MEMBER))
	if err != nil {
		return err
	}
	if _, ok := values["removed"]; !ok {
		values["removed"] = jsonString(rasoatv1.Removal_REMOVAL_UNSPECIFIED.String())
	}
	return w.setAll(e, values, prefix)
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// household loads id and checks it is a household.
func (w *writeTx) household(id string) (*ent, error) {
	e, err := w.load(id)
	if err != nil {
		return nil, err
	}
	if e.kind != rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD {
		return nil, fmt.Errorf("household %s: %w (it is a %s)", id, ErrNotFound, entity.KindName(e.kind))
	}
	return e, nil
}

// AddMember adds m to the roster (danh sách thành viên) of a household and
// returns its id (m.Id, or a new UUIDv7 if empty).
func (c *Client) AddMember(ctx context.Context, householdID string, m *rasoatv1.Member) (string, error) {
	m = proto.Clone(m).(*rasoatv1.Member)
	if m.Id == "" {
		m.Id = newID()
	} else if !entity.ValidID(m.Id) {
		return "", fieldError("id", "%q is not a UUID in canonical form", m.Id)
	}
	err := c.write(ctx, "add member", func(w *writeTx) error {
		h, err := w.household(householdID)
		if err != nil {
			return err
		}
		return w.addMember(h, m, "")
	})
	if err != nil {
		return "", err
	}
	return m.Id, nil
}

// SetField writes one field of an entity: path is the field's path in the
// entity's JSON form ("headName", "housing.floorAreaM2", a member's
// "birthDate", a review's "comment"), jsonValue its protojson value ("null"
// clears a field that has presence). The change's Base is every value this
// tablet holds for the field, so writing resolves an open conflict there.
// A review's status changes only through Move (and Submit, Decide): a
// step of the workflow, checked against the status this tablet holds.
func (c *Client) SetField(ctx context.Context, entityID, path string, jsonValue []byte) error {
	return c.write(ctx, "set field", func(w *writeTx) error {
		e, err := w.load(entityID)
		if err != nil {
			return err
		}
		if e.kind == rasoatv1.EntityKind_ENTITY_KIND_REVIEW && path == "status" {
			return fieldError(path, "changes only through the review workflow (Move; rasoat review)")
		}
		v, err := entity.Canonical(e.kind, path, jsonValue)
		if err != nil {
			return err
		}
		return w.set(e, path, v, path)
	})
}

// RemoveMember marks a member as having left the household (chết, chuyển
// đi, ...). Removal is a field, so it merges like any other write and the
// member stays in the history.
func (c *Client) RemoveMember(ctx context.Context, memberID string, reason rasoatv1.Removal) error {
	if reason == rasoatv1.Removal_REMOVAL_UNSPECIFIED || reason.Descriptor().Values().ByNumber(reason.Number()) == nil {
		return fieldError("removed", "%v is not a reason for removal", reason)
	}
	return c.write(ctx, "remove member", func(w *writeTx) error {
		e, err := w.load(memberID)
		if err != nil {
			return err
		}
		if e.kind != rasoatv1.EntityKind_ENTITY_KIND_MEMBER {
			return fmt.Errorf("member %s: %w (it is a %s)", memberID, ErrNotFound, entity.KindName(e.kind))
		}
		return w.set(e, "removed", jsonString(reason.String()), "removed")
	})
}

// Review statuses the tablet writes itself; the others are the steps of
// internal/workflow (Move), and approved is the status the two-step
// workflow before it wrote for an officer's approval.
const (
	StatusDraft     = "draft"
	StatusSubmitted = "submitted"
	StatusApproved  = "approved"
	StatusReturned  = "returned"
)

// StartReview opens a review of a household in the periodic round, dated
// reviewDate ("YYYY-MM-DD"), in status draft, and returns its id (see
// StartRound).
func (c *Client) StartReview(ctx context.Context, householdID, reviewDate string) (string, error) {
	return c.StartRound(ctx, householdID, Round{Date: reviewDate})
}

// Submit sends a draft (or returned) review on: its status becomes
// submitted, for the village meeting.
func (c *Client) Submit(ctx context.Context, reviewID string) error {
	return c.Move(ctx, reviewID, workflow.Transition{State: workflow.Submitted})
}

// winnerString returns the winning value of a string field, "" if unset.
func winnerString(s *entity.State, path string) string { return s.String(path) }
