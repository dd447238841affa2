package robustness

import (
	"fmt"
	"slices"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/directory"
	"google.golang.org/grpc"
)

// The world runs with authentication and scopes on, as the field does: the
// server is the real assembly (server.New with WithSync and WithAuth), the
// commune is authtest's (xã Quan Sơn, 06517) with the world's villages and
// the bulk one, and every caller is an enrolled device.
//
//   - Tablet 0 is a commune officer's (the whole commune; in bulk worlds the
//     world's villages, so that it does not read the bulk village). Tablet 1
//     is a collaborator's of village 1, sometimes 2 as well; tablet 2 a
//     collaborator's of village 3 only, so that 1 and 2 never share a
//     village; tablet 3, when there is one, a second device of tablet 1's
//     collaborator or a third collaborator of one or two villages. Each
//     tablet writes only in its person's villages and must hold exactly
//     the entities of those villages, converged with the server.
//   - A tablet enrols through client.Enrol with a code from authtest.Code,
//     before its first write or, for some, after it (the file then moves
//     to a fresh replica id and the server binds the old one to the
//     device); a reinstalled tablet enrols its new file for the same
//     person, as a new device.
//   - The hostile replica (hostile_test.go) is a commune server's device in
//     the wrong hands, which may relay any replica's changes, so that its
//     forged pushes pass the scope and reach the deep checks; beside it a
//     collaborator's device pushes changes its person may not write.
//   - The stalled readers and the bulk village's writer are enrolled too;
//     the checker pulls the log as an officer of the world's villages.

// nVillages is how many villages the world's tablets write: 06517-01 to
// 06517-03. The bulk village is the next one (hostile_test.go).
const nVillages = 3

var villages = func() []string {
	var vs []string
	for i := 1; i <= nVillages; i++ {
		vs = append(vs, authtest.Village(i))
	}
	return vs
}()

// generousLimiter is the server's pace of failed authentications: faults
// cancel calls mid-way, and nothing a tablet does here should be paced.
func generousLimiter() *auth.Limiter { return auth.NewLimiter(time.Microsecond, 1<<20) }

// device is an enrolled device the test drives with raw gRPC.
type device struct {
	person  directory.Person
	replica string
	token   string
	conn    *grpc.ClientConn // with the token; dialled again after a server restart
	seq     uint64           // the last origin seq it pushed
	reads   []string         // the world villages its person's units cover
}

// officerUnits is the officer's units: the whole commune, but for the
// bulk worlds, where the bulk village would make every snapshot of
// tablet 0 a few MiB.
func (w *world) officerUnits() []string {
	if w.bulk {
		return slices.Clone(villages)
	}
	return []string{authtest.Commune}
}

// assignPeople decides whose each first tablet is.
func (w *world) assignPeople(n int) []directory.Person {
	officer := authtest.Person("officer", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}, w.officerUnits()...)
	col1 := authtest.Collaborator("col1", villages[0])
	if w.r.IntN(2) == 0 {
		col1.Units = append(col1.Units, villages[1])
	}
	col2 := authtest.Collaborator("col2", villages[2])
	out := []directory.Person{officer, col1, col2}
	if n > 3 {
		if w.r.IntN(2) == 0 {
			out = append(out, col1) // a second device of the same person
		} else {
			col3 := authtest.Collaborator("col3", pick(w.r, villages))
			if w.r.IntN(2) == 0 {
				col3.Units = append(col3.Units, pick(w.r, villages))
				col3.Units = slices.Compact(slices.Sorted(slices.Values(col3.Units)))
			}
			out = append(out, col3)
		}
	}
	return out
}

// unitVillages returns the world's villages among units (a commune covers
// them all).
func unitVillages(units []string) []string {
	if slices.Contains(units, authtest.Commune) {
		return slices.Clone(villages)
	}
	var out []string
	for _, v := range villages {
		if slices.Contains(units, v) {
			out = append(out, v)
		}
	}
	return out
}

// allVillages returns every village units cover, the bulk one too: what
// enrolment answers.
func allVillages(units []string) []string {
	if slices.Contains(units, authtest.Commune) {
		return append(slices.Clone(villages), bulkVillage)
	}
	out := slices.Clone(units)
	slices.Sort(out)
	return out
}

// seedDirectory stores the commune, the tablets' people and the devices'
// people, and enrols the devices. It runs once, on the first server.
func (w *world) seedDirectory(people []directory.Person) {
	w.relay = &device{person: authtest.Person("relay", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_SERVER}, authtest.Commune),
		replica: fmt.Sprintf("robustness-hostile-%d", w.seed)}
	w.field = &device{person: authtest.Collaborator("field", villages[0]), replica: fmt.Sprintf("robustness-field-%d", w.seed)}
	w.reader = &device{person: authtest.Collaborator("reader", villages...), replica: stallReplica}
	if w.bulk {
		w.reader = &device{person: authtest.Collaborator("bulk", bulkVillage), replica: bulkReplica}
	}
	w.checker = &device{person: authtest.Person("checker", []rasoatv1.Role{rasoatv1.Role_ROLE_COMMUNE_OFFICER}, villages...), replica: "robustness-checker"}
	devs := w.devices()
	for _, d := range devs {
		d.reads = unitVillages(d.person.Units)
		if !slices.ContainsFunc(people, func(p directory.Person) bool { return p.ID == d.person.ID }) {
			people = append(people, d.person)
		}
	}
	// Persons appear once even when two tablets share one.
	var distinct []directory.Person
	for _, p := range people {
		if !slices.ContainsFunc(distinct, func(q directory.Person) bool { return q.ID == p.ID }) {
			distinct = append(distinct, p)
		}
	}
	if err := authtest.Seed(w.ctx, w.srv.db, nVillages+1, distinct...); err != nil {
		w.fatalf("seed the directory: %v", err)
	}
	conn := w.dial()
	defer conn.Close()
	for _, d := range devs {
		tok, err := authtest.Enrol(w.ctx, w.srv.db, conn, d.person.ID, d.replica)
		if err != nil {
			w.fatalf("enrol the device of %s: %v", d.person.ID, err)
		}
		d.token = tok
		d.conn = w.dial(authtest.Bearer(tok))
	}
}

// devices are the raw devices, in a fixed order.
func (w *world) devices() []*device { return []*device{w.relay, w.field, w.reader, w.checker} }

// enrol redeems a fresh code for tb's person through the client, and
// checks what the server answered and what the file did with its replica
// id: a file that has written keeps its writes under the old id (bound to
// the device) and writes under a fresh one from then on.
func (w *world) enrol(tb *tablet) {
	code, err := authtest.Code(w.ctx, w.srv.db, tb.person.ID)
	if err != nil {
		w.fatalf("issue a code for %s: %v", tb.person.ID, err)
	}
	before := tb.c.ReplicaID()
	e, err := tb.c.Enrol(w.ctx, tb.conn, "robustness", code, "tablet "+tb.name)
	if err != nil {
		w.fatalf("%s enrol as %s: %v", tb.name, tb.person.ID, err)
	}
	if want := allVillages(tb.person.Units); e.PersonID != tb.person.ID || !slices.Equal(e.Villages, want) {
		w.fatalf("%s enrolled as %s reading %v; want %s reading %v", tb.name, e.PersonID, e.Villages, tb.person.ID, want)
	}
	moved := tb.c.ReplicaID() != before
	if moved != (tb.next > 1) {
		w.fatalf("%s enrolled after writing %d changes: replica %s → %s", tb.name, tb.next-1, before, tb.c.ReplicaID())
	}
	w.record("%s enrolled as %s (villages %v), replica %s → %s", tb.name, tb.person.ID, tb.villages, before, tb.c.ReplicaID())
}

// reads reports whether tb's person's villages hold village.
func (tb *tablet) reads(village string) bool { return slices.Contains(tb.villages, village) }
