package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/rasoat/rasoat/internal/apply"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/facts"
)

// PutFacts is apply.Tx's: deletes by array, the rows by COPY into the
// child tables and one upsert per household of the facts, all in one
// round trip (a batch).
func (t pgTx) PutFacts(ctx context.Context, fs []store.HouseholdFacts) error {
	if len(fs) == 0 {
		return nil
	}
	ids := make([]string, len(fs))
	var deprived, decided, flags, acks, people [][]any
	for i := range fs {
		f := &fs[i]
		ids[i] = f.HouseholdID
		deprived = append(deprived, facts.Deprived(f)...)
		decided = append(decided, facts.DecidedRows(f)...)
		flags = append(flags, facts.Flags(f)...)
		acks = append(acks, facts.Acks(f)...)
		people = append(people, facts.People(f)...)
	}
	b := &pgx.Batch{}
	for _, t := range []string{"household_deprived", "household_decided", "household_flags", "household_acks", "household_people"} {
		b.Queue("DELETE FROM "+t+" WHERE household_id = ANY($1)", ids)
	}
	for i := range fs {
		b.Queue("INSERT INTO household_facts ("+facts.Columns+") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20) "+
			"ON CONFLICT (household_id) DO UPDATE SET "+upsertSet, facts.Row(&fs[i])...)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if len(deprived) > 0 {
		if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"household_deprived"}, facts.DeprivedColumns, pgx.CopyFromRows(deprived)); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"household_decided", facts.DecidedColumns, decided},
		{"household_flags", facts.FlagColumns, flags},
		{"household_acks", facts.AckColumns, acks},
		{"household_people", facts.PeopleColumns, people},
	} {
		if len(c.rows) == 0 {
			continue
		}
		if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			return err
		}
	}
	return nil
}

// Decided is apply.Tx's, for the quality checks.
func (t pgTx) Decided(ctx context.Context, hh string) ([]store.DecidedFact, error) {
	rows, err := t.tx.Query(ctx, facts.Rebind(facts.DecidedFiguresSQL), hh)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.DecidedFact
	for rows.Next() {
		var d store.DecidedFact
		var year, deprivations int32
		if err := rows.Scan(&year, &d.ReviewID, &d.Standard, &d.Result, &deprivations, &d.FloorAreaM2, &d.IncomePerCapita); err != nil {
			return nil, err
		}
		d.ListYear, d.Deprivations = int(year), int(deprivations)
		out = append(out, d)
	}
	return out, rows.Err()
}

// SamePeople is apply.Tx's, for the quality checks.
func (t pgTx) SamePeople(ctx context.Context, hh string, keys []string) ([]store.PersonMatch, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	rows, err := t.tx.Query(ctx, facts.Rebind(facts.SamePeopleSQL("person_key = ANY(?)")), keys, hh, store.MaxPersonMatches)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PersonMatch
	for rows.Next() {
		var m store.PersonMatch
		if err := rows.Scan(&m.Key, &m.HouseholdID, &m.VillageCode, &m.HeadName); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// upsertSet replaces every column but the key.
var upsertSet = func() string {
	var set []string
	for _, c := range strings.Split(facts.Columns, ",")[1:] {
		c = strings.TrimSpace(c)
		set = append(set, c+" = EXCLUDED."+c)
	}
	return strings.Join(set, ", ")
}()

// SetDeriver makes every push keep the report facts of the households it
// changes, derived by d, and derives now those of the households stored
// without facts, or, with rebuild, of every household.
func (db *DB) SetDeriver(ctx context.Context, d store.Deriver, rebuild bool) error {
	db.derive.Store(&d)
	q := "SELECT id FROM entities WHERE kind = $1 AND NOT EXISTS (SELECT 1 FROM household_facts f WHERE f.household_id = entities.id) ORDER BY id"
	if rebuild {
		q = "SELECT id FROM entities WHERE kind = $1 ORDER BY id"
	}
	rows, err := db.pool.Query(ctx, q, int32(rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD))
	if err != nil {
		return fmt.Errorf("report facts: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("report facts: %w", err)
	}
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(pushLock)); err != nil {
				return err
			}
			return apply.PutFacts(ctx, pgTx{tx}, part, d)
		})
		if err != nil {
			return fmt.Errorf("report facts of %d households: %w", len(part), classify(err))
		}
	}
	return nil
}

func (db *DB) deriver() store.Deriver {
	if p := db.derive.Load(); p != nil {
		return *p
	}
	return nil
}

// Report reads a report's figures from the facts of q's villages, in one
// repeatable-read transaction (the three queries see one snapshot).
// inVillages is the facts queries' filter on a list of villages (one
// array parameter): a semi-join, hashed once. "= ANY(array)" with the
// array a parameter compares each row with every village in turn, and a
// province's report names a thousand of them.
const inVillages = "village_code IN (SELECT unnest(?::text[]))"

// reportWorkMem is the memory a report's hash or sort may take before it
// spills to disk: a province's 200,000 households' decisions grouped by
// household fit in it. A report holds a few such nodes at once, and
// reports are few (officers, a few times a day).
const reportWorkMem = "64MB"

func (db *DB) Report(ctx context.Context, q store.ReportQuery) (store.ReportRows, error) {
	var out store.ReportRows
	if q.Villages.Empty() {
		return out, nil
	}
	where := ""
	var vargs []any
	if !q.Villages.All() {
		where, vargs = inVillages, []any{q.Villages.Codes()}
	}
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// A province's report groups 200,000 households' decisions by
		// household: with PostgreSQL's default 4 MB per hash the
		// aggregate spills to disk in batches. The report's own
		// transaction takes more, bounded (reportWorkMem a hash or sort).
		// JIT compiling costs a report about 0.2 s and gains less: its
		// queries are short scans.
		for _, set := range []string{"SET LOCAL work_mem = '" + reportWorkMem + "'", "SET LOCAL jit = off"} {
			if _, err := tx.Exec(ctx, set); err != nil {
				return err
			}
		}
		each := func(sqlText string, args []any, scan func(pgx.Rows) error) error {
			rows, err := tx.Query(ctx, facts.Rebind(sqlText), args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if err := scan(rows); err != nil {
					return err
				}
			}
			return rows.Err()
		}
		err := each(facts.GroupsSQL(where), append([]any{int32(q.ListYear)}, vargs...), func(r pgx.Rows) error {
			var g store.ReportGroup
			var urban, minority int32
			var n, reviewed, poor, near, middle, not, unscored, md int64
			if err := r.Scan(&g.Village, &urban, &minority, &n, &reviewed, &poor, &near, &middle, &not, &unscored, &md, &g.MDShareSum); err != nil {
				return err
			}
			g.Urban, g.MinorityHead = urban == 1, int(minority)
			g.Households, g.Reviewed, g.Poor, g.NearPoor, g.Middle, g.NotPoor, g.Unscored, g.MDPoor = int(n), int(reviewed), int(poor), int(near), int(middle), int(not), int(unscored), int(md)
			out.Groups = append(out.Groups, g)
			return nil
		})
		if err != nil {
			return err
		}
		err = each(facts.IndicatorsSQL(where), vargs, func(r pgx.Rows) error {
			var i store.ReportIndicator
			var n, poor int64
			if err := r.Scan(&i.Indicator, &n, &poor); err != nil {
				return err
			}
			i.Deprived, i.DeprivedPoor = int(n), int(poor)
			out.Indicators = append(out.Indicators, i)
			return nil
		})
		if err != nil {
			return err
		}
		err = each(facts.ProgressSQL(where), append([]any{q.Today, int32(q.ListYear)}, vargs...), func(r pgx.Rows) error {
			var p store.ReportProgress
			var n, overdue int64
			if err := r.Scan(&p.Village, &p.Surveyor, &p.Status, &n, &overdue); err != nil {
				return err
			}
			p.Households, p.Overdue = int(n), int(overdue)
			out.Progress = append(out.Progress, p)
			return nil
		})
		if err != nil {
			return err
		}
		y := int32(q.ListYear)
		err = each(facts.DecidedSQL(where), append([]any{y, y, y, y, y}, vargs...), func(r pgx.Rows) error {
			var village, prev, cur string
			var earlier int32
			var n int64
			if err := r.Scan(&village, &prev, &cur, &earlier, &n); err != nil {
				return err
			}
			facts.Decided(&out, village, prev, cur, earlier == 1, int(n))
			return nil
		})
		if err != nil {
			return err
		}
		if len(q.AnyDeprived) > 0 {
			text, args := facts.AnyDeprivedSQL(where, q.AnyDeprived)
			err = each(text, append(args, vargs...), func(r pgx.Rows) error {
				var a store.ReportAnyDeprived
				var set int32
				var n int64
				if err := r.Scan(&set, &a.Village, &n); err != nil {
					return err
				}
				a.Set, a.Poor = int(set), int(n)
				out.AnyDeprived = append(out.AnyDeprived, a)
				return nil
			})
			if err != nil {
				return err
			}
		}
		if q.Watch.Limit > 0 {
			return watch(ctx, tx, q.Watch, where, vargs, &out)
		}
		return nil
	})
	if err != nil {
		return store.ReportRows{}, fmt.Errorf("report: %w", err)
	}
	return out, nil
}

// watch reads the watch list's count, its first households and their
// deprived indicators.
func watch(ctx context.Context, tx pgx.Tx, w store.WatchQuery, where string, vargs []any, out *store.ReportRows) error {
	text, args := facts.WatchSQL(where, w, true)
	var total int64
	if err := tx.QueryRow(ctx, facts.Rebind(text), append(args, vargs...)...).Scan(&total); err != nil {
		return err
	}
	out.WatchTotal = int(total)
	text, args = facts.WatchSQL(where, w, false)
	rows, err := tx.Query(ctx, facts.Rebind(text), append(append(args, vargs...), w.Limit)...)
	if err != nil {
		return err
	}
	at := map[string]int{}
	for rows.Next() {
		var h store.WatchedHousehold
		var urban, near, many, deprivations int32
		if err := rows.Scan(&h.HouseholdID, &h.HeadName, &h.Village, &h.Class, &h.Standard, &urban, &h.IncomePerCapita, &deprivations, &near, &many); err != nil {
			rows.Close()
			return err
		}
		h.Urban, h.NearLine, h.ManyDeprived, h.Deprivations = urban == 1, near == 1, many == 1, int(deprivations)
		at[h.HouseholdID] = len(out.Watch)
		out.Watch = append(out.Watch, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(out.Watch) == 0 {
		return nil
	}
	ids := make([]string, len(out.Watch))
	for i, h := range out.Watch {
		ids[i] = h.HouseholdID
	}
	drows, err := tx.Query(ctx, "SELECT household_id, indicator FROM household_deprived WHERE household_id = ANY($1) ORDER BY household_id, indicator COLLATE \"C\"", ids)
	if err != nil {
		return err
	}
	defer drows.Close()
	for drows.Next() {
		var id, ind string
		if err := drows.Scan(&id, &ind); err != nil {
			return err
		}
		h := &out.Watch[at[id]]
		h.Deprived = append(h.Deprived, ind)
	}
	return drows.Err()
}
