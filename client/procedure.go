package client

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rasoat/rasoat/internal/workflow"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey/procedure"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// maxProcedureUnits is how many villages one ProcedureService call asks
// for (the server's bound).
const maxProcedureUnits = 64

// procedure fetches the settings in force at the villages this file holds
// (the province's periods, the commune's planned meetings day) and keeps
// them, so that deadlines read offline as on the server. It is best
// effort: a server without the service, or a failure, leaves the settings
// kept before, and the sync's own result stands.
func (s *syncer) procedure(ctx context.Context, f *settingsFetch) {
	if err := s.keepProcedure(ctx, f); err != nil {
		if c := status.Code(err); c != codes.Unimplemented && c != codes.Canceled {
			s.c.log.Warn("procedure settings not fetched: deadlines use those kept before", "err", err)
		}
	}
}

// settingsFetch is the procedure settings of some villages, asked for
// while the sync pulls: the call's round trip then costs the sync nothing
// (it was a fifth of a sync of ten changes, waited for after the pull).
type settingsFetch struct {
	villages []string
	got      map[string][]byte
	err      error
	done     chan struct{}
}

// fetchSettings starts fetching the settings of the villages the file
// holds now.
func (s *syncer) fetchSettings(ctx context.Context) *settingsFetch {
	f := &settingsFetch{done: make(chan struct{})}
	if f.villages, f.err = s.c.Villages(ctx); f.err != nil || len(f.villages) == 0 {
		close(f.done)
		return f
	}
	go func() {
		defer close(f.done)
		f.got, f.err = s.settings(ctx, f.villages)
	}()
	return f
}

// keepProcedure keeps what f fetched, fetching again if the villages the
// file holds changed meanwhile (a first sync without a snapshot, a
// collaborator given another village).
func (s *syncer) keepProcedure(ctx context.Context, f *settingsFetch) error {
	<-f.done
	if f.err != nil {
		return f.err
	}
	villages, err := s.c.Villages(ctx)
	if err != nil || len(villages) == 0 {
		return err
	}
	got := f.got
	if !slices.Equal(villages, f.villages) {
		if got, err = s.settings(ctx, villages); err != nil {
			return err
		}
	}
	if same, err := s.c.procedureHeld(ctx, got); err != nil || same {
		return err // unchanged since the last sync: no write
	}
	return s.c.write(ctx, "keep procedure settings", func(w *writeTx) error {
		if _, err := w.tx.ExecContext(ctx, "DELETE FROM procedure"); err != nil {
			return err
		}
		now := time.Now().Unix()
		for code, b := range got {
			if _, err := w.tx.ExecContext(ctx, "INSERT INTO procedure (unit_code, settings, at) VALUES (?, ?, ?)", code, b, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// settings asks the server for the settings in force at villages.
func (s *syncer) settings(ctx context.Context, villages []string) (map[string][]byte, error) {
	got := map[string][]byte{}
	for i := 0; i < len(villages); i += maxProcedureUnits {
		res, err := s.proc.Procedure(ctx, &rasoatv1.ProcedureRequest{UnitCodes: villages[i:min(i+maxProcedureUnits, len(villages))]})
		if err != nil {
			return nil, err
		}
		for _, u := range res.GetUnits() {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(u.GetSettings())
			if err != nil {
				return nil, err
			}
			got[u.GetUnitCode()] = b
		}
	}
	return got, nil
}

// procedureHeld reports whether the file already holds exactly got.
func (c *Client) procedureHeld(ctx context.Context, got map[string][]byte) (bool, error) {
	rows, err := c.r.QueryContext(ctx, "SELECT unit_code, settings FROM procedure")
	if err != nil {
		return false, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var code string
		var b []byte
		if err := rows.Scan(&code, &b); err != nil {
			return false, err
		}
		if g, ok := got[code]; !ok || !bytes.Equal(g, b) {
			return false, nil
		}
		n++
	}
	return n == len(got), rows.Err()
}

// villagesSQL steps through entities_village from one village to the
// next, a search each (a skip scan), where DISTINCT read every entity's
// entry: a millisecond for a commune's 10,000, at every sync.
const villagesSQL = `WITH RECURSIVE v(code) AS (
	SELECT min(village_code) FROM entities
	UNION ALL
	SELECT (SELECT min(village_code) FROM entities WHERE village_code > v.code) FROM v WHERE v.code IS NOT NULL
)
SELECT code FROM v WHERE code IS NOT NULL`

// Villages returns the villages this file holds entities of, sorted.
func (c *Client) Villages(ctx context.Context) ([]string, error) {
	rows, err := c.r.QueryContext(ctx, villagesSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Procedure returns the procedure settings in force at a village as last
// fetched from the server (nil when none were: the national rules, with
// the periods no text fixes unset).
func (c *Client) Procedure(ctx context.Context, village string) (*rasoatv1.ProcedureSettings, error) {
	var b []byte
	err := c.r.QueryRowContext(ctx, "SELECT settings FROM procedure WHERE unit_code = ?", village).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("procedure of %s: %w", village, err)
	}
	s := &rasoatv1.ProcedureSettings{}
	if err := proto.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("procedure of %s: %w", village, err)
	}
	return s, nil
}

// Rules returns the procedure rules and the commune's plan in force at a
// village: the national rules with the periods its province set, and its
// commune's planned meetings day.
func (c *Client) Rules(ctx context.Context, village string) (procedure.Rules, workflow.Plan, error) {
	s, err := c.Procedure(ctx, village)
	if err != nil {
		return procedure.Rules{}, workflow.Plan{}, err
	}
	rules, plan := workflow.Apply(s)
	return rules, plan, nil
}

// Deadlines returns what is due for review r on today, under the rules in
// force at its village (Rules).
func (c *Client) Deadlines(ctx context.Context, r Review, today time.Time) ([]workflow.Due, error) {
	rules, plan, err := c.Rules(ctx, r.VillageCode)
	if err != nil {
		return nil, err
	}
	return r.DeadlinesUnder(today, rules, plan), nil
}
