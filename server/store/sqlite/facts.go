package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/rasoat/rasoat/internal/apply"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/facts"
)

// factsPerStmt is how many households one chunk of statements writes:
// the most one prepared IN list takes.
const factsPerStmt = maxIn

// factTables are the tables of a household's facts beside household_facts,
// each a row per deprivation, decision, flag, acknowledgement or person.
var factTables = []struct {
	table string
	cols  []string
	rows  func(*store.HouseholdFacts) [][]any
}{
	{"household_deprived", facts.DeprivedColumns, facts.Deprived},
	{"household_decided", facts.DecidedColumns, facts.DecidedRows},
	{"household_flags", facts.FlagColumns, facts.Flags},
	{"household_acks", facts.AckColumns, facts.Acks},
	{"household_people", facts.PeopleColumns, facts.People},
}

// The facts' statements, prepared with the store for every chunk size: a
// push writes the facts of each household it changed, and parsing these
// statements cost as much as running them.
var (
	upsertFacts = newFamily(func(n int) string {
		return insertSQL("INSERT OR REPLACE INTO household_facts ("+facts.Columns+") VALUES ", facts.NColumns, n, "")
	}, chunkSizes)
	factInserts = map[string]*family{}
	factDeletes = map[string]*family{}
)

func init() {
	for _, t := range factTables {
		factInserts[t.table] = newFamily(func(n int) string {
			return insertSQL("INSERT INTO "+t.table+" ("+strings.Join(t.cols, ", ")+") VALUES ", len(t.cols), n, "")
		}, chunkSizes)
		factDeletes[t.table] = newFamily(func(n int) string {
			return "DELETE FROM " + t.table + " WHERE household_id IN (?" + strings.Repeat(",?", n-1) + ")"
		}, chunkSizes[slices.Index(chunkSizes, maxIn):])
	}
}

// PutFacts is apply.Tx's: per chunk of households, their old rows deleted
// and the new ones inserted, in prepared statements.
func (w *writer) PutFacts(ctx context.Context, fs []store.HouseholdFacts) error {
	for start := 0; start < len(fs); start += factsPerStmt {
		chunk := fs[start:min(start+factsPerStmt, len(fs))]
		ids := make([]any, 0, maxIn) // of those with facts to replace
		var rows []any
		byTable := make([][][]any, len(factTables))
		for i := range chunk {
			f := &chunk[i]
			if !f.New {
				ids = append(ids, f.HouseholdID)
			}
			rows = append(rows, facts.Row(f)...)
			for t := range factTables {
				byTable[t] = append(byTable[t], factTables[t].rows(f)...)
			}
		}
		if len(ids) > 0 {
			ids = padIn(ids)
			for _, t := range factTables {
				if _, err := w.exec(ctx, factDeletes[t.table].sql(len(ids)), ids...); err != nil {
					return err
				}
			}
		}
		for start, n := range chunks(len(chunk)) {
			if _, err := w.exec(ctx, upsertFacts.sql(n), rows[start*facts.NColumns:(start+n)*facts.NColumns]...); err != nil {
				return err
			}
		}
		for i, t := range factTables {
			if err := w.insertRows(ctx, factInserts[t.table], len(t.cols), byTable[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// insertRows inserts rows, of cols values each, with f's prepared
// statements.
func (w *writer) insertRows(ctx context.Context, f *family, cols int, rows [][]any) error {
	args := make([]any, 0, min(len(rows), rowsPerInsert)*cols)
	for start, n := range chunks(len(rows)) {
		args = args[:0]
		for _, r := range rows[start : start+n] {
			args = append(args, r...)
		}
		if _, err := w.exec(ctx, f.sql(n), args...); err != nil {
			return err
		}
	}
	return nil
}

// Decided is apply.Tx's, for the quality checks.
func (w *writer) Decided(ctx context.Context, hh string) ([]store.DecidedFact, error) {
	rows, err := w.query(ctx, facts.DecidedFiguresSQL, hh)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.DecidedFact
	for rows.Next() {
		var d store.DecidedFact
		if err := rows.Scan(&d.ListYear, &d.ReviewID, &d.Standard, &d.Result, &d.Deprivations, &d.FloorAreaM2, &d.IncomePerCapita); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SamePeople is apply.Tx's, for the quality checks.
func (w *writer) SamePeople(ctx context.Context, hh string, keys []string) ([]store.PersonMatch, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(keys)+2)
	for _, k := range keys {
		args = append(args, k)
	}
	args = append(args, hh, store.MaxPersonMatches)
	rows, err := w.query(ctx, facts.SamePeopleSQL("person_key IN (?"+strings.Repeat(",?", len(keys)-1)+")"), args...)
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

// SetDeriver makes every push keep the report facts of the households it
// changes, derived by d, and derives now those of the households stored
// without facts (a file from before facts were kept), or, with rebuild, of
// every household (other standards).
func (db *DB) SetDeriver(ctx context.Context, d store.Deriver, rebuild bool) error {
	db.derive.Store(&d)
	q := "SELECT id FROM entities WHERE kind = ? AND id NOT IN (SELECT household_id FROM household_facts) ORDER BY id"
	if rebuild {
		q = "SELECT id FROM entities WHERE kind = ? ORDER BY id"
	}
	rows, err := db.r.QueryContext(ctx, q, int64(rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD))
	if err != nil {
		return fmt.Errorf("report facts: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("report facts: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("report facts: %w", err)
	}
	for start := 0; start < len(ids); start += factsPerStmt {
		chunk := ids[start:min(start+factsPerStmt, len(ids))]
		_, err := db.group.do(ctx, len(chunk), func(ctx context.Context, tx *sql.Tx) (store.PushResult, error) {
			return store.PushResult{}, apply.PutFacts(ctx, &writer{tx, db.stmts}, chunk, d)
		})
		if err != nil {
			return fmt.Errorf("report facts of %d households: %w", len(chunk), classify(err))
		}
	}
	return nil
}

// deriver returns the Deriver pushes use, nil if none.
func (db *DB) deriver() store.Deriver {
	if p := db.derive.Load(); p != nil {
		return *p
	}
	return nil
}

// Report reads a report's figures from the facts of q's villages, in one
// read transaction (the three queries see one state of the store).
func (db *DB) Report(ctx context.Context, q store.ReportQuery) (store.ReportRows, error) {
	var out store.ReportRows
	if q.Villages.Empty() {
		return out, nil
	}
	where, vargs := "", []any{}
	if !q.Villages.All() {
		codes := q.Villages.Codes()
		where = "village_code IN (?" + strings.Repeat(",?", len(codes)-1) + ")"
		for _, c := range codes {
			vargs = append(vargs, c)
		}
	}
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return out, fmt.Errorf("report: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	each := func(sqlText string, args []any, scan func(*sql.Rows) error) error {
		rows, err := tx.QueryContext(ctx, sqlText, args...)
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
	err = each(facts.GroupsSQL(where), append([]any{q.ListYear}, vargs...), func(r *sql.Rows) error {
		var g store.ReportGroup
		var urban int
		if err := r.Scan(&g.Village, &urban, &g.MinorityHead, &g.Households, &g.Reviewed, &g.Poor, &g.NearPoor, &g.Middle, &g.NotPoor, &g.Unscored, &g.MDPoor, &g.MDShareSum); err != nil {
			return err
		}
		g.Urban = urban == 1
		out.Groups = append(out.Groups, g)
		return nil
	})
	if err == nil {
		err = each(facts.IndicatorsSQL(where), vargs, func(r *sql.Rows) error {
			var i store.ReportIndicator
			if err := r.Scan(&i.Indicator, &i.Deprived, &i.DeprivedPoor); err != nil {
				return err
			}
			out.Indicators = append(out.Indicators, i)
			return nil
		})
	}
	if err == nil {
		err = each(facts.ProgressSQL(where), append([]any{q.Today, q.ListYear}, vargs...), func(r *sql.Rows) error {
			var p store.ReportProgress
			if err := r.Scan(&p.Village, &p.Surveyor, &p.Status, &p.Households, &p.Overdue); err != nil {
				return err
			}
			out.Progress = append(out.Progress, p)
			return nil
		})
	}
	if err == nil {
		y := q.ListYear
		err = each(facts.DecidedSQL(where), append([]any{y, y, y, y, y}, vargs...), func(r *sql.Rows) error {
			var village, prev, cur string
			var earlier, n int
			if err := r.Scan(&village, &prev, &cur, &earlier, &n); err != nil {
				return err
			}
			facts.Decided(&out, village, prev, cur, earlier == 1, n)
			return nil
		})
	}
	if err == nil && len(q.AnyDeprived) > 0 {
		text, args := facts.AnyDeprivedSQL(where, q.AnyDeprived)
		err = each(text, append(args, vargs...), func(r *sql.Rows) error {
			var a store.ReportAnyDeprived
			if err := r.Scan(&a.Set, &a.Village, &a.Poor); err != nil {
				return err
			}
			out.AnyDeprived = append(out.AnyDeprived, a)
			return nil
		})
	}
	if err == nil && q.Watch.Limit > 0 {
		err = db.watch(ctx, tx, q.Watch, where, vargs, &out)
	}
	if err != nil {
		return store.ReportRows{}, fmt.Errorf("report: %w", err)
	}
	return out, nil
}

// watch reads the watch list's count, its first households and their
// deprived indicators.
func (db *DB) watch(ctx context.Context, tx *sql.Tx, w store.WatchQuery, where string, vargs []any, out *store.ReportRows) error {
	text, args := facts.WatchSQL(where, w, true)
	if err := tx.QueryRowContext(ctx, text, append(args, vargs...)...).Scan(&out.WatchTotal); err != nil {
		return err
	}
	text, args = facts.WatchSQL(where, w, false)
	rows, err := tx.QueryContext(ctx, text, append(append(args, vargs...), w.Limit)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	at := map[string]int{}
	for rows.Next() {
		var h store.WatchedHousehold
		var urban, near, many int
		if err := rows.Scan(&h.HouseholdID, &h.HeadName, &h.Village, &h.Class, &h.Standard, &urban, &h.IncomePerCapita, &h.Deprivations, &near, &many); err != nil {
			return err
		}
		h.Urban, h.NearLine, h.ManyDeprived = urban == 1, near == 1, many == 1
		at[h.HouseholdID] = len(out.Watch)
		out.Watch = append(out.Watch, h)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(out.Watch) == 0 {
		return nil
	}
	ids := make([]any, len(out.Watch))
	for i, h := range out.Watch {
		ids[i] = h.HouseholdID
	}
	drows, err := tx.QueryContext(ctx, "SELECT household_id, indicator FROM household_deprived WHERE household_id IN (?"+strings.Repeat(",?", len(ids)-1)+") ORDER BY household_id, indicator", ids...)
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
