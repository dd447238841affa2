package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// guardFunc is a store.Guard from a function.
type guardFunc func(ctx context.Context, c *rasoatv1.Change, v store.View) error

func (f guardFunc) Check(ctx context.Context, c *rasoatv1.Change, v store.View) error {
	return f(ctx, c, v)
}

// fieldErr is a guard's refusal naming the change's field.
type fieldErr struct {
	field string
	err   error
}

func (e *fieldErr) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldErr) Unwrap() error { return e.err }
func (e *fieldErr) Field() string { return e.field }

// guardHook: the store calls the push's Guard for each new change (not for
// a duplicate), after the checks of its entity and bases, with a View of
// what is stored and the batch so far; a refusal wrapping store.ErrWorkflow
// or store.ErrLocked refuses the push naming the change and stores
// nothing; any other guard error fails the push, storing nothing.
func guardHook(t *testing.T, open Open) {
	st, _ := open(t)
	g := storetest.New("tab-a", "001")
	hh := storetest.Must(g.Household(1))
	push(t, st, "tab-a", hh[:3]...)
	memberAt := slices.IndexFunc(hh, func(c *rasoatv1.Change) bool { return c.Kind == rasoatv1.EntityKind_ENTITY_KIND_MEMBER })

	t.Run("it sees the stored state and the batch so far, and only new changes", func(t *testing.T) {
		var mu sync.Mutex
		var checked []uint64
		guard := guardFunc(func(ctx context.Context, c *rasoatv1.Change, v store.View) error {
			mu.Lock()
			checked = append(checked, c.Seq)
			mu.Unlock()
			s, err := v.Entity(ctx, c.EntityId)
			if err != nil {
				return err
			}
			hhID := entity.HouseholdOf(c)
			if c.Kind == rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD && (s == nil || s.ID != c.EntityId) {
				return fmt.Errorf("the view lacks household %s, stored or earlier in the batch", c.EntityId)
			}
			all, err := v.Household(ctx, hhID)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(all, func(s *entity.State) bool { return s.ID == hhID }) {
				return fmt.Errorf("the household view of %s lacks the household itself", hhID)
			}
			if c.Kind == rasoatv1.EntityKind_ENTITY_KIND_MEMBER && c.Seq > hh[memberAt].Seq &&
				!slices.ContainsFunc(all, func(s *entity.State) bool { return s.ID == c.EntityId }) {
				return fmt.Errorf("the household view lacks member %s written earlier in the batch", c.EntityId)
			}
			if p, err := v.PersonOf(ctx, c.Stamp.ReplicaId); err != nil || p != "" {
				return fmt.Errorf("PersonOf an unbound replica = %q, %v", p, err)
			}
			return nil
		})
		res, err := st.Push(t.Context(), store.Sender{Replica: "tab-a", Guard: guard}, hh)
		if err != nil || res.Accepted != len(hh)-3 || res.Duplicates != 3 {
			t.Fatalf("push = %+v, %v; want %d accepted, 3 duplicates", res, err, len(hh)-3)
		}
		if len(checked) != len(hh)-3 || checked[0] != hh[3].Seq {
			t.Errorf("the guard checked seqs %v; want the %d new ones from %d", checked, len(hh)-3, hh[3].Seq)
		}
	})

	edit := g.Edit(fieldOf(t, hh, "headName"), `"Lò Văn Sáng"`)
	next := g.Edit(edit, `"Lò Văn Sang"`)
	for _, cause := range []error{store.ErrWorkflow, store.ErrLocked} {
		t.Run("a refusal wrapping "+cause.Error()+" stores nothing", func(t *testing.T) {
			guard := guardFunc(func(_ context.Context, c *rasoatv1.Change, _ store.View) error {
				if c.Seq == next.Seq {
					return &fieldErr{"value", fmt.Errorf("%w: not now", cause)}
				}
				return nil
			})
			before := contentsOf(t, st)
			_, err := st.Push(t.Context(), store.Sender{Replica: "tab-a", Guard: guard}, []*rasoatv1.Change{edit, next})
			var r store.Refused
			if !errors.As(err, &r) || len(r) != 1 || r[0].Index != 1 || r[0].Field != "value" || !errors.Is(err, cause) || !errors.Is(err, store.ErrChange) {
				t.Fatalf("push = %v; want changes[1].value refused with %v", err, cause)
			}
			untouched(t, st, before, "a push the guard refused")
		})
	}
	t.Run("an error that is not a refusal fails the push and stores nothing", func(t *testing.T) {
		broken := errors.New("the guard could not read")
		guard := guardFunc(func(context.Context, *rasoatv1.Change, store.View) error { return broken })
		before := contentsOf(t, st)
		_, err := st.Push(t.Context(), store.Sender{Replica: "tab-a", Guard: guard}, []*rasoatv1.Change{edit, next})
		var r store.Refused
		if !errors.Is(err, broken) || errors.As(err, &r) {
			t.Fatalf("push = %v; want the guard's own error, not a refusal", err)
		}
		untouched(t, st, before, "a push whose guard failed")
	})
	t.Run("a change refused before the guard is not shown to it", func(t *testing.T) {
		unknown := g.Edit(edit, `"Ai Đó"`)
		unknown.Base[0].Hlc++ // names no stored change
		must(unknown)
		called := false
		guard := guardFunc(func(context.Context, *rasoatv1.Change, store.View) error { called = true; return nil })
		if _, err := st.Push(t.Context(), store.Sender{Replica: "tab-a", Guard: guard}, []*rasoatv1.Change{unknown}); !errors.Is(err, store.ErrBaseUnknown) {
			t.Fatalf("push = %v; want %v", err, store.ErrBaseUnknown)
		}
		if called {
			t.Error("the guard was called for a change with an unknown base")
		}
	})
	push(t, st, "tab-a", edit, next)
}

// crashAtomicity: the store closed (a restart) while pushes are in flight
// keeps each push whole or leaves nothing of it, and every push that was
// acknowledged is there after the reopen.
func crashAtomicity(t *testing.T, open Open) {
	first, reopen := open(t)
	const pushers = 6
	type outcome struct {
		batch []*rasoatv1.Change
		acked bool
	}
	var mu sync.Mutex
	var outcomes []outcome
	var wg sync.WaitGroup
	started := make(chan struct{}, pushers)
	for p := range pushers {
		wg.Go(func() {
			replica := fmt.Sprintf("tab-%d", p)
			g := storetest.New(replica, "001")
			for r := 0; ; r++ {
				batch := storetest.Must(g.Household(4))
				_, err := first.Push(context.Background(), store.Sender{Replica: replica}, batch)
				mu.Lock()
				outcomes = append(outcomes, outcome{batch, err == nil})
				mu.Unlock()
				if r == 0 {
					started <- struct{}{}
				}
				if err != nil {
					return // the store was closed under it
				}
			}
		})
	}
	for range pushers {
		<-started
	}
	st := reopen(t) // closes first while the pushers keep pushing
	wg.Wait()
	type key struct {
		origin string
		seq    uint64
	}
	logged := map[key]bool{}
	for _, l := range logOf(t, st) {
		logged[key{l.c.Stamp.ReplicaId, l.c.Seq}] = true
	}
	acked := 0
	for _, o := range outcomes {
		n := 0
		for _, c := range o.batch {
			if logged[key{c.Stamp.ReplicaId, c.Seq}] {
				n++
			}
		}
		switch {
		case o.acked && n != len(o.batch):
			t.Fatalf("an acknowledged push of %d changes has %d in the log after the reopen", len(o.batch), n)
		case n != 0 && n != len(o.batch):
			t.Fatalf("a push interrupted by the close left %d of its %d changes", n, len(o.batch))
		}
		if o.acked {
			acked++
		}
	}
	if acked < pushers {
		t.Fatalf("only %d pushes were acknowledged before the close", acked)
	}
	states, _ := snapshotOf(t, st, store.SnapshotQuery{Villages: store.AllVillages()})
	sameStates(t, encoded(states), replay(t, nil, logOf(t, st)), "snapshot against replaying the log after the reopen")
}
