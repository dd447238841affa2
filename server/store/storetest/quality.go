package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/server/store"
)

// QualityFacts adds to fs the quality checks' facts in realistic shares,
// the same for a seed's facts: a flag on one household in eight, an
// acknowledgement on half of them, two or three people a household, and
// one person in a hundred also on another household's roster (another
// village's one time in two), a member entered twice on a roster one
// time in a thousand; every decided result gets figures.
func QualityFacts(fs []store.HouseholdFacts) {
	codes := []string{"EDUCATION_CONTRADICTION", "AREA_HALVED", "INCOME_TENFOLD", "CHILD_OLDER_THAN_PARENT", "STALE_REVIEW_DATE", "OPEN_CONFLICT"}
	for i := range fs {
		f := &fs[i]
		f.Flags, f.Acks, f.People = nil, nil, nil
		if i%8 == 3 {
			c := codes[i%len(codes)]
			f.Flags = append(f.Flags, store.FlagFact{Code: c, Detail: fmt.Sprintf("chi tiết %d", i)})
			if i%16 == 3 {
				f.Acks = map[string]string{c: fmt.Sprintf("đã xác minh %d", i)}
			}
		}
		for m := range 2 + i%2 {
			name := fmt.Sprintf("người %d-%d", i, m)
			if m == 0 && i%100 == 7 && i >= 100 {
				// The same person as a household 100 or 101 before:
				// another village when the village count is odd.
				name = fmt.Sprintf("người %d-%d", i-100-(i/100)%2, 0)
			}
			if m == 1 && i%1000 == 6 {
				// A member entered twice on one roster (household 6's
				// first member is also on household 107's).
				name = fmt.Sprintf("người %d-%d", i, 0)
			}
			f.People = append(f.People, store.PersonFact{MemberID: fmt.Sprintf("%s-m%d", f.HouseholdID[:8], m),
				Key: name + "|1990-01-02", FullName: name, BirthDate: "1990-01-02"})
		}
		if i%100 == 7 && i >= 100 && i%200 == 7 {
			f.Acks = map[string]string{"DUPLICATE_PERSON": "hai người khác nhau"}
		}
		for j := range f.Decisions {
			f.Decisions[j].FloorAreaM2, f.Decisions[j].IncomePerCapita = float64(20+i%30), int64(1_000_000+i)
		}
	}
}

// ExpectFlags computes, from the facts themselves, the flags a store's
// Flags must list for q: each stored flag, and a DUPLICATE_PERSON for a
// household of q's villages whose person key is another household's
// anywhere, each with the acknowledgement its facts hold.
func ExpectFlags(fs []store.HouseholdFacts, q store.FlagsQuery) []store.FlagRow {
	holders := map[string]map[string]bool{}
	for _, f := range fs {
		for _, p := range f.People {
			if holders[p.Key] == nil {
				holders[p.Key] = map[string]bool{}
			}
			holders[p.Key][f.HouseholdID] = true
		}
	}
	var out []store.FlagRow
	for _, f := range fs {
		if !q.Villages.Has(f.VillageCode) || q.ListYear != 0 && f.ListYear != q.ListYear || slices.Contains([]string{"decided", "refused", "approved"}, f.Status) {
			continue // closed: its flags can no longer be acknowledged
		}
		row := func(code, detail string) store.FlagRow {
			c, ok := f.Acks[code]
			return store.FlagRow{HouseholdID: f.HouseholdID, HeadName: f.HeadName, Village: f.VillageCode, Code: code, Detail: detail, Acked: ok, Comment: c}
		}
		for _, fl := range f.Flags {
			out = append(out, row(fl.Code, fl.Detail))
		}
		for _, p := range f.People {
			if len(holders[p.Key]) > 1 {
				out = append(out, row("DUPLICATE_PERSON", ""))
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b store.FlagRow) int {
		return cmp.Or(cmp.Compare(a.Village, b.Village), cmp.Compare(a.HouseholdID, b.HouseholdID), cmp.Compare(a.Code, b.Code))
	})
	return out
}

// QualitySuite checks a store's quality facts: Flags against ExpectFlags
// over 3,000 households (the commune, one village, a list year), a
// DUPLICATE_PERSON naming the other household only within the villages
// asked, a household's facts rewritten (its flags, acknowledgements and
// people replaced), and the guard's reads, decided (View.Decided: the
// figures kept) and same (View.SamePeople), each in a push's
// transaction. put stores facts as a push would.
func QualitySuite(t *testing.T, put func([]store.HouseholdFacts) error, flags func(store.FlagsQuery) ([]store.FlagRow, error),
	decided func(hh string) ([]store.DecidedFact, error), same func(hh string, keys []string) ([]store.PersonMatch, error)) {
	fs := SyntheticFacts(3000, 7, "06517", 11)
	QualityFacts(fs)
	if err := put(fs); err != nil {
		t.Fatal(err)
	}
	// Rewritten: the first flagged household loses its flag and its
	// acknowledgement; a household gains a flag.
	fs[3].Flags, fs[3].Acks = nil, nil
	fs[4].Flags = []store.FlagFact{{Code: "AREA_HALVED", Detail: "diện tích nhà 10 m²"}}
	if err := put(fs[3:5]); err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.FlagsQuery{
		{Villages: store.AllVillages()},
		{Villages: store.OnlyVillages("06517-02")},
		{Villages: store.OnlyVillages("06517-01", "06517-05"), ListYear: 2026},
		{Villages: store.OnlyVillages()},
	} {
		t.Run(fmt.Sprintf("%v/%d", q.Villages.Codes(), q.ListYear), func(t *testing.T) {
			got, err := flags(q)
			if err != nil {
				t.Fatal(err)
			}
			want := ExpectFlags(fs, q)
			if len(got) != len(want) {
				t.Fatalf("%d flags; want %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.Code == "DUPLICATE_PERSON" {
					checkDuplicateDetail(t, g, fs, q.Villages)
					w.Detail = g.Detail
				}
				if g != w {
					t.Fatalf("flag %d = %+v; want %+v", i, g, w)
				}
			}
		})
	}
	t.Run("decided figures", func(t *testing.T) {
		for _, f := range fs[:50] {
			got, err := decided(f.HouseholdID)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(f.Decisions)
			by := func(a, b store.DecidedFact) int { return cmp.Compare(a.ListYear, b.ListYear) }
			slices.SortFunc(got, by)
			slices.SortFunc(want, by)
			if !slices.Equal(got, want) {
				t.Fatalf("%s decided %+v; want %+v", f.HouseholdID, got, want)
			}
		}
	})
	t.Run("the same people in other households", func(t *testing.T) {
		f := fs[107]
		keys := []string{f.People[0].Key, f.People[1].Key}
		got, err := same(f.HouseholdID, keys)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Key != f.People[0].Key || got[0].HouseholdID == f.HouseholdID {
			t.Fatalf("matches %+v; want the one other household with %s", got, f.People[0].Key)
		}
		for _, o := range fs {
			if o.HouseholdID == got[0].HouseholdID && (o.HeadName == "" || got[0].HeadName != o.HeadName) {
				t.Fatalf("the match names its household's head %q; want %q", got[0].HeadName, o.HeadName)
			}
		}
		if got, err := same(f.HouseholdID, []string{"không ai|1900-01-01"}); err != nil || len(got) != 0 {
			t.Fatalf("matches of nobody: %+v, %v", got, err)
		}
		// Bounded: a key on many rosters returns store.MaxPersonMatches.
		var many []store.HouseholdFacts
		for i := range store.MaxPersonMatches + 5 {
			many = append(many, store.HouseholdFacts{HouseholdID: fmt.Sprintf("ffffffff-0000-7000-8000-%012x", i), VillageCode: "06517-01", MinorityHead: -1,
				People: []store.PersonFact{{MemberID: "m", Key: "nhập trùng|2000-01-01", FullName: "Nhập Trùng", BirthDate: "2000-01-01"}}})
		}
		if err := put(many); err != nil {
			t.Fatal(err)
		}
		if got, err := same("x", []string{"nhập trùng|2000-01-01"}); err != nil || len(got) != store.MaxPersonMatches {
			t.Fatalf("%d matches, %v; want %d", len(got), err, store.MaxPersonMatches)
		}
	})
}

// checkDuplicateDetail: the flag names each other household within
// villages, and none outside.
func checkDuplicateDetail(t *testing.T, g store.FlagRow, fs []store.HouseholdFacts, villages store.Villages) {
	t.Helper()
	parts := strings.Split(g.Detail, "; ")
	for i := 1; i < len(parts); i++ {
		if slices.Contains(parts[:i], parts[i]) {
			t.Fatalf("%s's duplicate flag %q says %q twice", g.HouseholdID, g.Detail, parts[i])
		}
	}
	var mine []string
	for _, f := range fs {
		if f.HouseholdID == g.HouseholdID {
			for _, p := range f.People {
				mine = append(mine, p.Key)
			}
		}
	}
	for _, f := range fs {
		if f.HouseholdID == g.HouseholdID {
			continue
		}
		for _, p := range f.People {
			if !slices.Contains(mine, p.Key) {
				continue
			}
			named := strings.Contains(g.Detail, f.HouseholdID)
			if villages.Has(f.VillageCode) != named {
				t.Fatalf("%s's duplicate flag %q: names %s (village %s) = %v; want %v", g.HouseholdID, g.Detail, f.HouseholdID, f.VillageCode, named, villages.Has(f.VillageCode))
			}
			// Named, by its head too: "hộ <head> (<id>, <village>)".
			if withHead := "hộ " + f.HeadName + " (" + f.HouseholdID; named && !strings.Contains(g.Detail, withHead) {
				t.Fatalf("%s's duplicate flag %q does not name %s by its head %q", g.HouseholdID, g.Detail, f.HouseholdID, f.HeadName)
			}
		}
	}
}
