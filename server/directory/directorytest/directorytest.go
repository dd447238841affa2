// Package directorytest is the conformance suite every directory store
// passes (server/store/sqlite now; the PostgreSQL store of the province
// tier next): units and the villages under them, people, codes,
// enrolment, devices, replica bindings and who sent each push.
package directorytest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/authtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// Store is what the suite exercises.
type Store interface {
	PutUnits(ctx context.Context, units []*rasoatv1.Unit, served string) (int, int, error)
	Units(ctx context.Context) ([]*rasoatv1.Unit, string, error)
	VillagesUnder(ctx context.Context, codes []string) ([]string, error)
	PutPeople(ctx context.Context, people []directory.Person) (int, int, error)
	People(ctx context.Context) ([]directory.Person, error)
	Person(ctx context.Context, id string) (directory.Person, error)
	IssueCode(ctx context.Context, c directory.Code) error
	Enrol(ctx context.Context, e directory.Enrolment) (directory.Enrolled, error)
	DeviceByToken(ctx context.Context, tokenID string) (directory.Device, directory.Person, error)
	Devices(ctx context.Context, personID string) ([]directory.Device, error)
	RevokeDevice(ctx context.Context, deviceID string, at time.Time) (directory.Device, error)
	BindReplica(ctx context.Context, deviceID, personID, replica string, at time.Time) error
	Push(ctx context.Context, by store.Sender, changes []*rasoatv1.Change) (store.PushResult, error)
	History(ctx context.Context, entityID string, after uint64, limit int) ([]store.HistoryEntry, bool, error)
	TouchDevice(ctx context.Context, deviceID string, t time.Time) error
	HasAdmin(ctx context.Context) (bool, error)
}

// Run runs the suite; open returns a new, empty store.
func Run(t *testing.T, open func(t *testing.T) Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, st Store)
	}{
		{"VillagesUnderFollowTheTreeWithinTheServedUnit", villagesUnder},
		{"PutPeopleReplacesRolesAndUnits", putPeople},
		{"ACodeEnrolsOnce", codeOnce},
		{"AWrongSecretUsesUpAnAttemptEvenThoughRefused", wrongSecret},
		{"AnExpiredCodeIsRefused", expired},
		{"APreviousTokenKeepsTheDeviceAndItsReplicas", previousToken},
		{"AReplicaOfAnotherDeviceIsNeverBound", replicaTaken},
		{"RevokingKeepsTheDeviceAndIsIdempotent", revoke},
		{"EachStoredChangeNamesWhoSentAndWhoWroteIt", history},
		{"AWriteIsSeenByTheNextCallDespiteTheCache", cacheSeesWrites},
		{"TouchingMovesLastSeenAndKeepsTheRest", touch},
		{"HasAdminCountsOnlyEnabledAdmins", hasAdmin},
		{"TheGuardsViewNamesTheAuthorOfABoundReplica", personOf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			if err := authtest.Seed(t.Context(), st, 3,
				authtest.Collaborator("col1", authtest.Village(1)), authtest.Collaborator("col2", authtest.Village(2)), authtest.Officer("officer")); err != nil {
				t.Fatal(err)
			}
			tc.fn(t, st)
		})
	}
}

func villagesUnder(t *testing.T, st Store) {
	ctx := t.Context()
	// A village grouped under another, and a second commune not served.
	extra := []*rasoatv1.Unit{
		{Code: authtest.Village(4), Name: "Xóm 4", Level: rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE, Kind: "xóm", ParentCode: authtest.Village(3)},
		{Code: "06520", Name: "Khác", Level: rasoatv1.UnitLevel_UNIT_LEVEL_COMMUNE, Kind: "xã", ParentCode: authtest.Province},
		{Code: "06520-01", Name: "Thôn Khác", Level: rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE, Kind: "thôn", ParentCode: "06520"},
	}
	if _, _, err := st.PutUnits(ctx, extra, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		codes []string
		want  []string
	}{
		{[]string{authtest.Commune}, []string{authtest.Village(1), authtest.Village(2), authtest.Village(3), authtest.Village(4)}},
		{[]string{authtest.Village(3)}, []string{authtest.Village(3), authtest.Village(4)}},
		{[]string{authtest.Village(2), authtest.Village(1)}, []string{authtest.Village(1), authtest.Village(2)}},
		{[]string{"06520"}, nil},    // not served
		{[]string{"06520-01"}, nil}, // not served
		{[]string{authtest.Province}, []string{authtest.Village(1), authtest.Village(2), authtest.Village(3), authtest.Village(4)}},
		{[]string{"no-such-unit"}, nil},
		{nil, nil},
	} {
		got, err := st.VillagesUnder(ctx, tc.codes)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("VillagesUnder(%v) = %v, %v; want %v", tc.codes, got, err, tc.want)
		}
	}
	units, served, err := st.Units(ctx)
	if err != nil || served != authtest.Commune || len(units) != 2+3+3 {
		t.Errorf("Units = %d units, served %q, %v", len(units), served, err)
	}
}

func putPeople(t *testing.T, st Store) {
	ctx := t.Context()
	p := authtest.Person("col1", []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR, rasoatv1.Role_ROLE_VILLAGE_HEAD}, authtest.Village(3))
	created, updated, err := st.PutPeople(ctx, []directory.Person{p, authtest.Collaborator("col9", authtest.Village(1))})
	if err != nil || created != 1 || updated != 1 {
		t.Fatalf("PutPeople = %d created, %d updated, %v; want 1, 1", created, updated, err)
	}
	got, err := st.Person(ctx, "col1")
	if err != nil || !slices.Equal(got.Units, []string{authtest.Village(3)}) || len(got.Roles) != 2 {
		t.Errorf("col1 = %+v, %v", got, err)
	}
	if _, err := st.Person(ctx, "nobody"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("unknown person: %v", err)
	}
	if err := st.IssueCode(ctx, directory.Code{ID: "ZZZZ", Hash: auth.Hash("x"), PersonID: "nobody", ExpiresAt: time.Now().Add(time.Hour), Attempts: 5}); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("a code for nobody: %v", err)
	}
}

// enrolment is a ready Enrolment of code for replica.
func enrolment(c auth.Code, replica string) directory.Enrolment {
	tok := auth.NewToken()
	return directory.Enrolment{CodeID: c.ID, CodeHash: c.Hash, DeviceID: uuid.NewString(), DeviceName: "tablet",
		TokenID: tok.ID, TokenHash: tok.Hash, Replica: replica, At: time.Now()}
}

func issue(t *testing.T, st Store, person string, ttl time.Duration) auth.Code {
	t.Helper()
	c := auth.NewCode()
	if err := st.IssueCode(t.Context(), directory.Code{ID: c.ID, Hash: c.Hash, PersonID: person, ExpiresAt: time.Now().Add(ttl), Attempts: directory.CodeAttempts}); err != nil {
		t.Fatal(err)
	}
	return c
}

func codeOnce(t *testing.T, st Store) {
	ctx := t.Context()
	c := issue(t, st, "col1", time.Hour)
	got, err := st.Enrol(ctx, enrolment(c, "tab-1"))
	if err != nil || got.Person.ID != "col1" || got.Device.Replica != "tab-1" {
		t.Fatalf("Enrol = %+v, %v", got, err)
	}
	d, p, err := st.DeviceByToken(ctx, got.Device.TokenID)
	if err != nil || d.ID != got.Device.ID || p.ID != "col1" || d.Revoked() {
		t.Errorf("DeviceByToken = %+v, %+v, %v", d, p, err)
	}
	if _, err := st.Enrol(ctx, enrolment(c, "tab-2")); !errors.Is(err, directory.ErrCodeInvalid) {
		t.Errorf("second use: %v", err)
	}
}

func wrongSecret(t *testing.T, st Store) {
	ctx := t.Context()
	c := issue(t, st, "col1", time.Hour)
	bad := c
	bad.Hash = auth.Hash("wrong")
	for range directory.CodeAttempts {
		if _, err := st.Enrol(ctx, enrolment(bad, "tab-1")); !errors.Is(err, directory.ErrCodeInvalid) {
			t.Fatalf("wrong secret: %v", err)
		}
	}
	if _, err := st.Enrol(ctx, enrolment(c, "tab-1")); !errors.Is(err, directory.ErrCodeInvalid) {
		t.Errorf("the right secret after %d wrong ones: %v; want refused", directory.CodeAttempts, err)
	}
	if devs, _ := st.Devices(ctx, ""); len(devs) != 0 {
		t.Errorf("devices after refusals: %v", devs)
	}
}

func expired(t *testing.T, st Store) {
	c := issue(t, st, "col1", -time.Second)
	if _, err := st.Enrol(t.Context(), enrolment(c, "tab-1")); !errors.Is(err, directory.ErrCodeInvalid) {
		t.Errorf("expired code: %v", err)
	}
}

func previousToken(t *testing.T, st Store) {
	ctx := t.Context()
	first, err := st.Enrol(ctx, enrolment(issue(t, st, "col1", time.Hour), "tab-1"))
	if err != nil {
		t.Fatal(err)
	}
	e := enrolment(issue(t, st, "col2", time.Hour), "tab-1b")
	e.DeviceID = "would-be-new"
	e.PreviousTokenID, e.PreviousTokenHash = first.Device.TokenID, first.Device.TokenHash
	e.PriorReplicas = []string{"tab-1", "tab-0"}
	again, err := st.Enrol(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if again.Device.ID != first.Device.ID || again.Device.PersonID != "col2" {
		t.Errorf("re-enrolled device %+v; want device %s for col2", again.Device, first.Device.ID)
	}
	for _, r := range []string{"tab-1", "tab-1b", "tab-0"} {
		if !slices.Contains(again.Device.Replicas, r) {
			t.Errorf("replicas %v lack %s", again.Device.Replicas, r)
		}
	}
	if _, _, err := st.DeviceByToken(ctx, first.Device.TokenID); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("the old token still finds the device: %v", err)
	}
	// A wrong previous token makes a new device: nobody takes over
	// another's replicas by naming its token id.
	e = enrolment(issue(t, st, "col1", time.Hour), "tab-9")
	e.PreviousTokenID, e.PreviousTokenHash = again.Device.TokenID, auth.Hash("guess")
	other, err := st.Enrol(ctx, e)
	if err != nil || other.Device.ID == first.Device.ID {
		t.Errorf("a wrong previous token: %+v, %v; want a new device", other.Device, err)
	}
}

func replicaTaken(t *testing.T, st Store) {
	ctx := t.Context()
	a, err := st.Enrol(ctx, enrolment(issue(t, st, "col1", time.Hour), "tab-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enrol(ctx, enrolment(issue(t, st, "col2", time.Hour), "tab-1")); !errors.Is(err, directory.ErrReplicaTaken) {
		t.Errorf("another device's replica: %v", err)
	}
	e := enrolment(issue(t, st, "col2", time.Hour), "tab-2")
	e.PriorReplicas = []string{"tab-1"}
	b, err := st.Enrol(ctx, e)
	if err != nil || !slices.Equal(b.Unbound, []string{"tab-1"}) || slices.Contains(b.Device.Replicas, "tab-1") {
		t.Errorf("a prior replica of another device: %+v, %v; want it unbound", b, err)
	}
	if err := st.BindReplica(ctx, b.Device.ID, "col2", "tab-1", time.Now()); !errors.Is(err, directory.ErrReplicaTaken) {
		t.Errorf("BindReplica of another device's: %v", err)
	}
	if err := st.BindReplica(ctx, a.Device.ID, "col1", "tab-1-next", time.Now()); err != nil {
		t.Error(err)
	}
	if err := st.BindReplica(ctx, a.Device.ID, "col1", "tab-1-next", time.Now()); err != nil {
		t.Errorf("binding twice: %v", err)
	}
}

func revoke(t *testing.T, st Store) {
	ctx := t.Context()
	a, err := st.Enrol(ctx, enrolment(issue(t, st, "col1", time.Hour), "tab-1"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(time.Now().Unix(), 0)
	d, err := st.RevokeDevice(ctx, a.Device.ID, at)
	if err != nil || !d.Revoked() || !d.RevokedAt.Equal(at) {
		t.Fatalf("RevokeDevice = %+v, %v", d, err)
	}
	d, err = st.RevokeDevice(ctx, a.Device.ID, at.Add(time.Hour))
	if err != nil || !d.RevokedAt.Equal(at) {
		t.Errorf("revoking again moved the time: %+v, %v", d, err)
	}
	if d, _, err := st.DeviceByToken(ctx, a.Device.TokenID); err != nil || !d.Revoked() {
		t.Errorf("DeviceByToken of a revoked device: %+v, %v; want found, revoked", d, err)
	}
	if _, err := st.RevokeDevice(ctx, "nope", at); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("revoking nothing: %v", err)
	}
}

func history(t *testing.T, st Store) {
	ctx := t.Context()
	a, err := st.Enrol(ctx, enrolment(issue(t, st, "col1", time.Hour), "tab-1"))
	if err != nil {
		t.Fatal(err)
	}
	g := storetest.New("tab-1", authtest.Village(1))
	hh := storetest.Must(g.Household(1))
	if _, err := st.Push(ctx, store.Sender{Replica: "tab-1", PersonID: "officer", DeviceID: "relay-dev"}, hh[:3]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Push(ctx, store.Sender{Replica: "tab-1", PersonID: "col1", DeviceID: a.Device.ID}, hh); err != nil {
		t.Fatal(err)
	}
	h, more, err := st.History(ctx, hh[0].GetEntityId(), 0, 1000)
	if err != nil || more {
		t.Fatal(err, more)
	}
	n := 0
	for _, c := range hh {
		if c.GetEntityId() == hh[0].GetEntityId() {
			n++
		}
	}
	if len(h) != n {
		t.Fatalf("%d entries; want %d", len(h), n)
	}
	for i, e := range h {
		sender := "col1"
		if i < 3 {
			sender = "officer"
		}
		if e.SenderPerson != sender || e.AuthorPerson != "col1" || e.ReceivedAt.IsZero() || e.Change.GetSeq() != hh[i].GetSeq() {
			t.Errorf("entry %d = %+v; want sent by %s, written by col1", i, e, sender)
		}
	}
	page, more, err := st.History(ctx, hh[0].GetEntityId(), h[1].ServerSeq, 2)
	if err != nil || len(page) != 2 || !more || page[0].ServerSeq != h[2].ServerSeq {
		t.Errorf("page after %d: %d entries, more %v, %v", h[1].ServerSeq, len(page), more, err)
	}
}

// cacheSeesWrites: a store may cache what every call reads (the device
// behind a token, the villages under units), but a directory write through
// it is seen by the very next call: a revoked token, a reassignment, a new
// village.
func cacheSeesWrites(t *testing.T, st Store) {
	ctx := t.Context()
	a, err := st.Enrol(ctx, enrolment(issue(t, st, "col1", time.Hour), "tab-1"))
	if err != nil {
		t.Fatal(err)
	}
	// Fill whatever cache the store keeps.
	if _, _, err := st.DeviceByToken(ctx, a.Device.TokenID); err != nil {
		t.Fatal(err)
	}
	if v, err := st.VillagesUnder(ctx, []string{authtest.Commune}); err != nil || len(v) != 3 {
		t.Fatalf("VillagesUnder = %v, %v", v, err)
	}
	if _, err := st.RevokeDevice(ctx, a.Device.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if d, _, err := st.DeviceByToken(ctx, a.Device.TokenID); err != nil || !d.Revoked() {
		t.Errorf("DeviceByToken right after a revocation = %+v, %v; want revoked", d, err)
	}
	p := authtest.Collaborator("col1", authtest.Village(2))
	p.Disabled = true
	if _, _, err := st.PutPeople(ctx, []directory.Person{p}); err != nil {
		t.Fatal(err)
	}
	if _, got, err := st.DeviceByToken(ctx, a.Device.TokenID); err != nil || !got.Disabled || !slices.Equal(got.Units, []string{authtest.Village(2)}) {
		t.Errorf("the person behind the token right after a reassignment = %+v, %v", got, err)
	}
	extra := []*rasoatv1.Unit{{Code: authtest.Village(5), Name: "Thôn 5", Level: rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE, Kind: "thôn", ParentCode: authtest.Commune}}
	if _, _, err := st.PutUnits(ctx, extra, ""); err != nil {
		t.Fatal(err)
	}
	if v, err := st.VillagesUnder(ctx, []string{authtest.Commune}); err != nil || !slices.Contains(v, authtest.Village(5)) {
		t.Errorf("VillagesUnder right after a new village = %v, %v", v, err)
	}
}

func touch(t *testing.T, st Store) {
	ctx := t.Context()
	a, err := st.Enrol(ctx, enrolment(issue(t, st, "col1", time.Hour), "tab-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.DeviceByToken(ctx, a.Device.TokenID); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(time.Now().Unix()+60, 0)
	if err := st.TouchDevice(ctx, a.Device.ID, at); err != nil {
		t.Fatal(err)
	}
	d, p, err := st.DeviceByToken(ctx, a.Device.TokenID)
	if err != nil || !d.LastSeen.Equal(at) || d.Revoked() || p.ID != "col1" || d.Replica != "tab-1" {
		t.Errorf("after a touch: %+v, %+v, %v; want last seen %v, the rest kept", d, p, err, at)
	}
	devs, err := st.Devices(ctx, "col1")
	if err != nil || len(devs) != 1 || !devs[0].LastSeen.Equal(at) {
		t.Errorf("Devices after a touch = %+v, %v", devs, err)
	}
}

func hasAdmin(t *testing.T, st Store) {
	ctx := t.Context()
	if ok, err := st.HasAdmin(ctx); err != nil || ok {
		t.Fatalf("HasAdmin with no admin = %v, %v", ok, err)
	}
	admin := authtest.Person("root", []rasoatv1.Role{rasoatv1.Role_ROLE_ADMIN})
	admin.Disabled = true
	if _, _, err := st.PutPeople(ctx, []directory.Person{admin}); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.HasAdmin(ctx); err != nil || ok {
		t.Errorf("HasAdmin with a disabled admin = %v, %v", ok, err)
	}
	admin.Disabled = false
	if _, _, err := st.PutPeople(ctx, []directory.Person{admin}); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.HasAdmin(ctx); err != nil || !ok {
		t.Errorf("HasAdmin with an admin = %v, %v", ok, err)
	}
}

// personOf: a push's Guard reads, through the store's View, the person a
// replica is bound to at enrolment (the author of its changes).
func personOf(t *testing.T, st Store) {
	ctx := t.Context()
	if _, err := st.Enrol(ctx, enrolment(issue(t, st, "col1", time.Hour), "tab-1")); err != nil {
		t.Fatal(err)
	}
	var got []string
	guard := guardFunc(func(ctx context.Context, c *rasoatv1.Change, v store.View) error {
		p, err := v.PersonOf(ctx, c.GetStamp().GetReplicaId())
		got = append(got, p)
		return err
	})
	a := storetest.Must(storetest.New("tab-1", authtest.Village(1)).Household(0))[:1]
	b := storetest.Must(storetest.New("tab-x", authtest.Village(1)).Household(0))[:1]
	if _, err := st.Push(ctx, store.Sender{Replica: "tab-1", Guard: guard}, append(a, b...)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"col1", ""}) {
		t.Errorf("PersonOf = %q; want col1 for the bound replica, none for the other", got)
	}
}

type guardFunc func(ctx context.Context, c *rasoatv1.Change, v store.View) error

func (f guardFunc) Check(ctx context.Context, c *rasoatv1.Change, v store.View) error {
	return f(ctx, c, v)
}
