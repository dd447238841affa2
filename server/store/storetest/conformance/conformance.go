// Package conformance is the suite every sync store passes
// (server/store/sqlite now; the PostgreSQL store of the province tier next),
// as litestream runs one suite against every replica client: a behaviour of
// the store the service relies on is pinned here once, and every engine
// must keep it. It drives a store through syncsvc.Store alone — push,
// duplicates, content mismatch, bases, entities bound to their household's
// village, pull order and batching, villages, cursors and the log id,
// snapshots under concurrent pushes, refused and cancelled pushes leaving
// nothing, the Guard hook (a refusal stores nothing), pushes cut by a close
// each whole or absent, and durability across a reopen.
//
// What only one engine has (SQLite's migrations, WAL bounds, group commit
// internals) is tested beside that engine.
package conformance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/syncsvc"
	"google.golang.org/protobuf/proto"
)

// Store is the sync store as the service uses it.
type Store = syncsvc.Store

// Open returns a new, empty store with a log of its own, and reopen: it
// closes the store last opened (waiting for the pushes in flight) and opens
// the same log again, as a restart of the server does. Open closes the last
// store it opened when t ends.
type Open func(t *testing.T) (st Store, reopen func(t *testing.T) Store)

// Run runs the suite, each case on stores of its own from open.
func Run(t *testing.T, open Open) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, open Open)
	}{
		// Push.
		{"PushThenPullReturnsEveryChangeOnceInServerOrder", pushThenPull},
		{"AnIdenticalResendIsADuplicateCountedAndSkipped", duplicates},
		{"ReplicaHighSeqIsThePushingReplicasNotTheOrigins", replicaHighSeq},
		{"AStoredOriginAndSeqWithOtherContentIsRefused", contentMismatch},
		{"TwoChangesWithOneOriginAndSeqInOneBatchAreRefused", contentMismatchInBatch},
		{"AReusedSeqIsTheSameWriteOnlyOverTheSameBase", sameWrite},
		{"ASeqBelowStoredOnesIsTakenOnlyStampedBeforeThem", outOfOrder},
		{"ABaseNamesAStoredChangeOfItsFieldOrOneEarlierInTheBatch", bases},
		{"EveryStoredChangeMayBeNamedAsABase", everyChangeNameable},
		{"AChangeMatchesItsEntity", entityMismatch},
		{"MembersAndReviewsBelongToTheirHouseholdsVillage", householdVillage},
		{"TheStateIsTheSameWhateverThePushOrder", pushOrder},
		{"ACancelledPushStoresNothing", cancelled},
		{"ConcurrentPushesAreEachAllOrNothing", concurrentPushes},
		{"TheGuardChecksEachNewChangeAndItsRefusalStoresNothing", guardHook},
		{"AStoreClosedUnderPushesKeepsEachWholeOrNothing", crashAtomicity},
		// Pull.
		{"PullBatchesResumeFromAnyReturnedPosition", pullBatches},
		{"PullReadsOnlyTheVillagesAsked", pullVillages},
		{"ACursorCountsInItsLogOnly", cursors},
		{"PullWhilePushingMissesNothing", pullWhilePushing},
		{"ALogOfLongAndMixedPushesReadsTheSameFromEveryPosition", longLog},
		// Snapshot.
		{"SnapshotThenPullFromItsPositionIsTheWholeLog", snapshotThenPull},
		{"SnapshotUnderConcurrentPushesThenPullIsTheWholeLog", snapshotUnderPushes},
		{"SnapshotReadsTheEntitiesAndVillagesAsked", snapshotQuery},
		// The log.
		{"TheLogIDIsTheStoresAndKeptAcrossAReopen", logID},
		{"EverythingAcknowledgedIsThereAfterAReopen", durability},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// ---------------------------------------------------------------------------
// Reading a store.

// logged is a change as the log holds it.
type logged struct {
	pos store.Position
	c   *rasoatv1.Change
}

// pullAll pulls villages after from, in batches of limit, to the end.
func pullAll(t *testing.T, st Store, villages store.Villages, from store.Position, limit int) []logged {
	t.Helper()
	var out []logged
	for {
		n := 0
		next, more, err := st.Pull(t.Context(), villages, from, limit, func(c *rasoatv1.Change, pos store.Position) error {
			out = append(out, logged{pos, c})
			n++
			return nil
		})
		if err != nil {
			t.Fatalf("pull after %d: %v", from.Seq, err)
		}
		if n > limit {
			t.Fatalf("pull of at most %d gave %d changes", limit, n)
		}
		if n > 0 && next != out[len(out)-1].pos {
			t.Fatalf("pull returned next %+v, want the last change's position %+v", next, out[len(out)-1].pos)
		}
		if !more {
			return out
		}
		if n == 0 {
			t.Fatalf("pull after %d says more follow but gave none", from.Seq)
		}
		from = next
	}
}

// logOf pulls the whole log.
func logOf(t *testing.T, st Store) []logged {
	t.Helper()
	return pullAll(t, st, store.AllVillages(), store.Position{}, 1000)
}

// snapshotOf reads q's states by entity id, and the position they reflect.
func snapshotOf(t *testing.T, st Store, q store.SnapshotQuery) (map[string]*rasoatv1.EntityState, store.Position) {
	t.Helper()
	out := map[string]*rasoatv1.EntityState{}
	var seen []store.Position
	pos, err := st.Snapshot(t.Context(), q, func(p store.Position, e *rasoatv1.EntityState) error {
		if _, dup := out[e.EntityId]; dup {
			return fmt.Errorf("snapshot gave entity %s twice", e.EntityId)
		}
		out[e.EntityId] = e
		seen = append(seen, p)
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	for _, p := range seen {
		if p != pos {
			t.Fatalf("snapshot gave position %+v with an entity and returned %+v", p, pos)
		}
	}
	return out, pos
}

// contents is a digest of everything a store holds that a replica can read:
// its log id, its log in order with positions, and every entity's state.
type contents struct {
	changes, entities int
	digest            string
}

func (c contents) String() string {
	return fmt.Sprintf("%d changes, %d entities, digest %s", c.changes, c.entities, c.digest[:16])
}

var marshal = proto.MarshalOptions{Deterministic: true}

func contentsOf(t *testing.T, st Store) contents {
	t.Helper()
	h := sha256.New()
	fmt.Fprintf(h, "log %s\n", st.LogID())
	log := logOf(t, st)
	for _, l := range log {
		b, err := marshal.Marshal(l.c)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d %d %x\n", l.pos.Seq, l.pos.Check, b)
	}
	states, pos := snapshotOf(t, st, store.SnapshotQuery{Villages: store.AllVillages()})
	fmt.Fprintf(h, "snapshot at %d %d\n", pos.Seq, pos.Check)
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range states {
			if !yield(id) {
				return
			}
		}
	}) {
		e := states[id]
		fmt.Fprintf(h, "%s %d %s %s %x\n", e.EntityId, e.Kind, e.HouseholdId, e.VillageCode, e.State)
	}
	return contents{len(log), len(states), hex.EncodeToString(h.Sum(nil))}
}

// untouched fails t unless st holds exactly what before described.
func untouched(t *testing.T, st Store, before contents, what string) {
	t.Helper()
	if after := contentsOf(t, st); after != before {
		t.Errorf("%s touched the store: before %v, after %v", what, before, after)
	}
}

// replay is the states a replica holds after applying changes in order,
// starting from states (which it copies), by entity id, encoded.
func replay(t *testing.T, states map[string]*rasoatv1.EntityState, changes []logged) map[string][]byte {
	t.Helper()
	m := map[string]*entity.State{}
	for id, e := range states {
		s := &entity.State{}
		if err := s.UnmarshalBinary(e.State); err != nil {
			t.Fatalf("entity %s: %v", id, err)
		}
		m[id] = s
	}
	for _, l := range changes {
		s := m[l.c.EntityId]
		if s == nil {
			s = &entity.State{}
			m[l.c.EntityId] = s
		}
		if _, err := s.Apply(l.c); err != nil {
			t.Fatalf("apply change %d: %v", l.pos.Seq, err)
		}
	}
	out := map[string][]byte{}
	for id, s := range m {
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out[id] = b
	}
	return out
}

// sameStates fails t unless got and want hold the same states.
func sameStates(t *testing.T, got, want map[string][]byte, what string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entities, want %d", what, len(got), len(want))
	}
	for id, w := range want {
		if !bytes.Equal(got[id], w) {
			t.Fatalf("%s: entity %s differs", what, id)
		}
	}
}

// encoded is states' encodings by entity id.
func encoded(states map[string]*rasoatv1.EntityState) map[string][]byte {
	out := make(map[string][]byte, len(states))
	for id, e := range states {
		out[id] = e.State
	}
	return out
}

// ---------------------------------------------------------------------------
// Writing to a store.

func push(t *testing.T, st Store, replica string, changes ...*rasoatv1.Change) store.PushResult {
	t.Helper()
	res, err := st.Push(t.Context(), store.Sender{Replica: replica}, changes)
	if err != nil {
		t.Fatalf("push of %d changes as %s: %v", len(changes), replica, err)
	}
	return res
}

// refused pushes changes as replica, expecting a refusal wrapping cause on
// changes[index].field that leaves st untouched; it returns the refusal.
func refused(t *testing.T, st Store, replica string, cause error, index int, field string, changes ...*rasoatv1.Change) *store.ChangeError {
	t.Helper()
	before := contentsOf(t, st)
	res, err := st.Push(t.Context(), store.Sender{Replica: replica}, changes)
	if err == nil {
		t.Fatalf("push accepted (%+v), want %v on changes[%d].%s", res, cause, index, field)
	}
	var r store.Refused
	if !errors.As(err, &r) || len(r) == 0 {
		t.Fatalf("push = %v, want store.Refused", err)
	}
	if !errors.Is(err, store.ErrChange) || !errors.Is(err, cause) {
		t.Fatalf("push = %v, want %v", err, cause)
	}
	ce := r[0]
	if ce.Index != index || ce.Field != field || !errors.Is(ce, cause) {
		t.Fatalf("first refusal changes[%d].%s: %v; want changes[%d].%s: %v", ce.Index, ce.Field, ce.Err, index, field, cause)
	}
	untouched(t, st, before, "a refused push")
	return ce
}

// writer writes changes as one replica: its own seqs and clock.
type writer struct {
	replica string
	seq     uint64
	clock   *hlc.Clock
}

func newWriter(replica string) *writer { return &writer{replica: replica, clock: hlc.New(nil)} }

// write returns a change to field of c's entity, having seen bases.
func (w *writer) write(c *rasoatv1.Change, field, value string, base ...*rasoatv1.Stamp) *rasoatv1.Change {
	for _, b := range base {
		w.clock.Restore(hlc.Timestamp(b.Hlc))
	}
	w.seq++
	return must(&rasoatv1.Change{
		EntityId: c.EntityId, Kind: c.Kind, HouseholdId: c.HouseholdId, VillageCode: c.VillageCode,
		Field: field, Value: []byte(value),
		Stamp: &rasoatv1.Stamp{Hlc: uint64(w.clock.Now()), ReplicaId: w.replica},
		Seq:   w.seq,
		Base:  sortedStamps(base),
	})
}

// edit overwrites c's field with value, having seen c.
func (w *writer) edit(c *rasoatv1.Change, value string) *rasoatv1.Change {
	return w.write(c, c.Field, value, c.Stamp)
}

// household returns the first change of a new household in village.
func (w *writer) household(village, field, value string) *rasoatv1.Change {
	return w.write(&rasoatv1.Change{
		EntityId: uuid.Must(uuid.NewV7()).String(), Kind: rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, VillageCode: village,
	}, field, value)
}

// member returns the first change of a new member of household hh.
func (w *writer) member(hh *rasoatv1.Change, field, value string) *rasoatv1.Change {
	return w.write(&rasoatv1.Change{
		EntityId: uuid.Must(uuid.NewV7()).String(), Kind: rasoatv1.EntityKind_ENTITY_KIND_MEMBER,
		HouseholdId: entity.HouseholdOf(hh), VillageCode: hh.VillageCode,
	}, field, value)
}

// review returns the first change of a new review of household hh.
func (w *writer) review(hh *rasoatv1.Change, field, value string) *rasoatv1.Change {
	return w.write(&rasoatv1.Change{
		EntityId: uuid.Must(uuid.NewV7()).String(), Kind: rasoatv1.EntityKind_ENTITY_KIND_REVIEW,
		HouseholdId: entity.HouseholdOf(hh), VillageCode: hh.VillageCode,
	}, field, value)
}

// must panics on a change the service would refuse at the door: the suite
// only pushes changes that passed entity.Validate, as the service does.
func must(c *rasoatv1.Change) *rasoatv1.Change {
	if err := entity.Validate(c); err != nil {
		panic(fmt.Sprintf("conformance: invalid change: %v", err))
	}
	return c
}

func sortedStamps(ss []*rasoatv1.Stamp) []*rasoatv1.Stamp {
	if len(ss) == 0 {
		return nil
	}
	out := make([]*rasoatv1.Stamp, len(ss))
	for i, s := range ss {
		out[i] = &rasoatv1.Stamp{Hlc: s.Hlc, ReplicaId: s.ReplicaId}
	}
	slices.SortFunc(out, func(a, b *rasoatv1.Stamp) int { return mstamp(a).Compare(mstamp(b)) })
	return out
}

func mstamp(s *rasoatv1.Stamp) merge.Stamp {
	return merge.Stamp{HLC: hlc.Timestamp(s.Hlc), Replica: s.ReplicaId}
}

func clone(c *rasoatv1.Change) *rasoatv1.Change { return proto.Clone(c).(*rasoatv1.Change) }

// fieldOf returns the first change of changes writing field.
func fieldOf(t *testing.T, changes []*rasoatv1.Change, field string) *rasoatv1.Change {
	t.Helper()
	for _, c := range changes {
		if c.Field == field {
			return c
		}
	}
	t.Fatalf("no change writes %s", field)
	return nil
}

func highSeq(changes []*rasoatv1.Change) uint64 {
	var m uint64
	for _, c := range changes {
		m = max(m, c.Seq)
	}
	return m
}
