package server_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rasoat/rasoat/internal/authtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store/storetest"
	"google.golang.org/grpc"
)

var (
	scopeSeeds = flag.Int("scope.seeds", 6, "random worlds TestScopeProperty runs")
	scopeSteps = flag.Int("scope.steps", 40, "steps of each world")
)

// TestScopeProperty: random units, people, assignments and reassignments,
// random pushes and pulls through a real server. No change and no entity
// ever reaches a device outside its person's villages at the time of the
// read, through Pull or Snapshot; and every change within them does.
func TestScopeProperty(t *testing.T) {
	for seed := range *scopeSeeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { scopeWorld(t, uint64(seed)) })
	}
}

type scopeDevice struct {
	person  string
	replica string
	conn    *grpc.ClientConn
	seq     uint64 // the replica's last seq
}

func scopeWorld(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	ctx := t.Context()
	srv := authtest.Serve(t, auth.NewLimiter(1, 1<<20))
	st := srv.Store
	nv := 2 + r.IntN(5)
	villages := make([]string, nv)
	for i := range villages {
		villages[i] = authtest.Village(i + 1)
	}
	pickVillages := func() []string {
		var out []string
		for _, v := range villages {
			if r.IntN(3) == 0 {
				out = append(out, v)
			}
		}
		if len(out) == 0 {
			out = append(out, villages[r.IntN(nv)])
		}
		return out
	}
	people := []directory.Person{authtest.Admin("admin"), authtest.Officer("officer")}
	np := 2 + r.IntN(5)
	assigned := map[string][]string{"officer": villages}
	for i := range np {
		id := fmt.Sprintf("col%d", i)
		assigned[id] = pickVillages()
		people = append(people, authtest.Collaborator(id, assigned[id]...))
	}
	if err := authtest.Seed(ctx, st, nv, people...); err != nil {
		t.Fatal(err)
	}
	c := &commune{t: t, addr: srv.Addr}
	var devices []*scopeDevice
	for i := range np + 1 {
		person := "officer"
		if i < np {
			person = fmt.Sprintf("col%d", i)
		}
		replica := fmt.Sprintf("dev-%s", person)
		tok, err := authtest.Enrol(ctx, st, c.conn(""), person, replica)
		if err != nil {
			t.Fatal(err)
		}
		devices = append(devices, &scopeDevice{person: person, replica: replica, conn: c.conn(tok)})
	}
	admin, err := authtest.Enrol(ctx, st, c.conn(""), "admin", "dev-admin")
	if err != nil {
		t.Fatal(err)
	}
	adminConn := c.conn(admin)
	written := map[string]string{} // entity id → village, of every stored change
	gens := map[string]*storetest.Gen{}
	for step := range *scopeSteps {
		d := devices[r.IntN(len(devices))]
		switch op := r.IntN(10); {
		case op < 4: // push a household into one of the person's villages, or outside them
			v := villages[r.IntN(nv)]
			in := slices.Contains(assigned[d.person], v)
			g := gens[d.replica+v]
			if g == nil {
				g = storetest.New(d.replica, v)
				gens[d.replica+v] = g
			}
			// One generator per replica and village, but seqs per replica:
			// renumber from the replica's own counter.
			hh := storetest.Must(g.Household(r.IntN(2)))
			_, err := rasoatv1.NewSyncServiceClient(d.conn).Push(ctx, &rasoatv1.PushRequest{Changes: renumber(d, hh)})
			switch {
			case in && err != nil:
				t.Fatalf("step %d: %s pushing into its village %s: %v", step, d.person, v, err)
			case !in && err == nil:
				t.Fatalf("step %d: %s pushed into %s, outside %v", step, d.person, v, assigned[d.person])
			case in:
				for _, ch := range hh {
					written[ch.GetEntityId()] = v
				}
			default:
				unrenumber(d, len(hh)) // refused: the seqs were not used
			}
		case op < 6: // reassign a collaborator
			if d.person == "officer" {
				continue
			}
			assigned[d.person] = pickVillages()
			if _, err := rasoatv1.NewAdminServiceClient(adminConn).PutPeople(ctx, &rasoatv1.PutPeopleRequest{People: []*rasoatv1.Person{
				{Id: d.person, Name: "Người " + d.person, Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR}, UnitCodes: assigned[d.person]},
			}}); err != nil {
				t.Fatal(err)
			}
		default: // read everything the device may: exactly its villages' entities
			pulledV, snapV, err := villagesRead(t, d.conn)
			if err != nil {
				t.Fatalf("step %d: %s reads: %v", step, d.person, err)
			}
			var want []string
			for _, v := range written {
				if slices.Contains(assigned[d.person], v) {
					want = append(want, v)
				}
			}
			slices.Sort(want)
			want = slices.Compact(want)
			if !slices.Equal(pulledV, want) || !slices.Equal(snapV, want) {
				t.Fatalf("step %d: %s (villages %v) read villages %v by pull, %v by snapshot; want %v",
					step, d.person, assigned[d.person], pulledV, snapV, want)
			}
			// And every in-scope entity, by id, through Pull.
			ids := pulledIDs(t, d.conn)
			for id, v := range written {
				if in := slices.Contains(assigned[d.person], v); in != ids[id] {
					t.Fatalf("step %d: %s: entity %s of village %s received=%v, in scope=%v", step, d.person, id, v, ids[id], in)
				}
			}
		}
	}
}

// renumber gives hh the device replica's next seqs (its generators, one
// per village, each count from 1).
func renumber(d *scopeDevice, hh []*rasoatv1.Change) []*rasoatv1.Change {
	for _, ch := range hh {
		d.seq++
		ch.Seq = d.seq
	}
	return hh
}

func unrenumber(d *scopeDevice, n int) { d.seq -= uint64(n) }

func pulledIDs(t *testing.T, conn *grpc.ClientConn) map[string]bool {
	t.Helper()
	p, err := rasoatv1.NewSyncServiceClient(conn).Pull(t.Context(), &rasoatv1.PullRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for {
		r, err := p.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range r.GetChanges() {
			out[ch.GetEntityId()] = true
		}
		if r.GetDone() {
			return out
		}
	}
}
