package conformance

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
)

// longLog: a log written by long pushes and mixed ones reads the same from
// every position. An engine may keep its log in any shape (SQLite keeps
// runs of up to 256 changes of one origin in one village, a row each);
// every read — a pull of all villages or of one, a cursor's check, a
// duplicate's lookup dense or sparse, a content check — crosses the
// shape's seams as a log of one row a change would. The log: a tablet's
// first upload of 624 changes switching village every two households; a
// commune's relay of three origins' changes interleaved one by one; and
// an origin whose seqs jump (changes set aside and discarded on its
// tablet).
func longLog(t *testing.T, open Open) {
	st, _ := open(t)
	long := storetest.New("tab-long", "001")
	var upload []*rasoatv1.Change
	for i := range 8 {
		hh := storetest.Must(long.Household(4))
		if i/2%2 == 1 {
			for _, c := range hh {
				c.VillageCode = "002"
			}
		}
		upload = append(upload, hh...)
	}
	push(t, st, "tab-long", upload...)

	var relayed [][]*rasoatv1.Change
	for i, v := range []string{"001", "002", "001"} {
		g := storetest.New(fmt.Sprintf("tab-relayed-%d", i), v)
		relayed = append(relayed, storetest.Must(append(g.Household(2), g.Household(1)...)))
	}
	var relay []*rasoatv1.Change
	for k := 0; len(relay) < len(relayed[0])+len(relayed[1])+len(relayed[2]); k++ {
		for _, r := range relayed {
			if k < len(r) {
				relay = append(relay, r[k])
			}
		}
	}
	push(t, st, "commune-relay", relay...)

	sparse := newWriter("tab-sparse")
	hh := sparse.household("002", "address", `"Thôn Nà Pàn"`)
	sparse.seq = 1_000
	m := sparse.member(hh, "fullName", `"Lò Văn Sáng"`)
	sparse.seq = 1 << 40
	push(t, st, "tab-sparse", hh, m, sparse.edit(hh, `"Thôn Bản Chiếu"`))

	all := logOf(t, st)
	if want := len(upload) + len(relay) + 3; len(all) != want {
		t.Fatalf("the log holds %d changes, want %d", len(all), want)
	}
	after := func(k int) store.Position { // the position after which all[k:] follow
		if k == 0 {
			return store.Position{}
		}
		return all[k-1].pos
	}
	for k := 0; k <= len(all); k++ {
		sameLog(t, pullN(t, st, store.AllVillages(), after(k), 5), all[k:min(k+5, len(all))], fmt.Sprintf("pull of 5 after change %d", k))
	}
	for _, v := range []string{"001", "002"} {
		var village []logged
		for _, l := range all {
			if l.c.GetVillageCode() == v {
				village = append(village, l)
			}
		}
		for k := 0; k <= len(all); k++ {
			from := after(k)
			i, _ := slices.BinarySearchFunc(village, from.Seq, func(l logged, s uint64) int { return cmp.Compare(l.pos.Seq, s+1) })
			sameLog(t, pullN(t, st, store.OnlyVillages(v), from, 3), village[i:min(i+3, len(village))],
				fmt.Sprintf("pull of village %s after change %d", v, k))
		}
	}
	noFn := func(*rasoatv1.Change, store.Position) error { return errors.New("a pull that must fail gave a change") }
	for _, k := range []int{1, 255, 256, 257, len(upload), len(all) - 1} {
		from := all[k].pos
		from.Check ^= 1
		if _, _, err := st.Pull(t.Context(), store.AllVillages(), from, 1, noFn); !errors.Is(err, store.ErrLogChanged) {
			t.Fatalf("pull after change %d with a wrong check = %v, want ErrLogChanged", k, err)
		}
	}
	if _, _, err := st.Pull(t.Context(), store.AllVillages(), store.Position{Seq: all[len(all)-1].pos.Seq + 1}, 1, noFn); !errors.Is(err, store.ErrCursorAhead) {
		t.Fatalf("pull after the end = %v, want ErrCursorAhead", err)
	}

	// Everything resent is a duplicate: whole, a sparse pick across the
	// upload's seams, the relay, the jumping seqs.
	picks := []*rasoatv1.Change{upload[0], upload[254], upload[255], upload[256], upload[511], upload[512], upload[len(upload)-1]}
	for _, tc := range []struct {
		sender  string
		changes []*rasoatv1.Change
	}{
		{"tab-long", upload}, {"tab-long", picks}, {"commune-relay", relay}, {"tab-sparse", []*rasoatv1.Change{hh, m}},
	} {
		if res := push(t, st, tc.sender, tc.changes...); res.Accepted != 0 || res.Duplicates != len(tc.changes) {
			t.Fatalf("resending %d changes as %s: %+v, want each a duplicate", len(tc.changes), tc.sender, res)
		}
	}
	// Other content under a stored (origin, seq), wherever it lies.
	for _, c := range []*rasoatv1.Change{upload[300], relay[40], m} {
		forged := clone(c)
		forged.Stamp.Hlc++
		refused(t, st, "tab-x", store.ErrContentMismatch, 0, "seq", forged)
	}
	sameLog(t, logOf(t, st), all, "the log after the resends")
}

// pullN is one pull of at most limit changes after from.
func pullN(t *testing.T, st Store, villages store.Villages, from store.Position, limit int) []logged {
	t.Helper()
	var out []logged
	if _, _, err := st.Pull(t.Context(), villages, from, limit, func(c *rasoatv1.Change, pos store.Position) error {
		out = append(out, logged{pos, c})
		return nil
	}); err != nil {
		t.Fatalf("pull after %d: %v", from.Seq, err)
	}
	return out
}
