package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Enrolment is who a server takes this device for.
type Enrolment struct {
	Server   string // as given to Enrol
	PersonID string
	DeviceID string
	Person   *rasoatv1.Person // as the server answered at enrolment
	// Villages the person may read, as the server answered at enrolment;
	// an admin may change them since (Sync always asks the server).
	Villages []string
	// Unbound are replica ids this file wrote under that the server found
	// bound to another device: changes of theirs not yet sent will be
	// refused and set aside (a file copied from another tablet).
	Unbound []string
}

// ErrNotEnrolled is returned by Enrolled for a file never enrolled.
var ErrNotEnrolled = errors.New("this device is not enrolled: rasoat enrol --code …")

// Enrol redeems a one-time enrolment code an admin issued, on the server
// conn reaches (server names it, for the record), and keeps the device
// token in the file; Sync sends it from then on. Enrolling again (a new
// code, or the tablet handed to another collaborator) keeps every unsent
// change: the file moves to a fresh replica id for its future writes, and
// the ids it wrote under before stay bound to this device on the server,
// so what was written before still syncs, attributed to whoever wrote it.
func (c *Client) Enrol(ctx context.Context, conn grpc.ClientConnInterface, server, code, deviceName string) (Enrolment, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	m, err := readMeta(ctx, c.r)
	if err != nil {
		return Enrolment{}, fmt.Errorf("enrol: %w", err)
	}
	prev, err := c.Token(ctx)
	if err != nil && !errors.Is(err, ErrNotEnrolled) {
		return Enrolment{}, fmt.Errorf("enrol: %w", err)
	}
	prior, err := c.retiredReplicas(ctx)
	if err != nil {
		return Enrolment{}, fmt.Errorf("enrol: %w", err)
	}
	// A file that has written nothing and was never enrolled keeps its id;
	// otherwise its writes from now on are the new person's, under a new id,
	// and its earlier ids stay the earlier writers'.
	fresh := m.replica
	if m.nextSeq > 1 || prev != "" {
		fresh = uuid.Must(uuid.NewV7()).String()
		prior = append([]string{m.replica}, prior...)
	}
	res, err := rasoatv1.NewEnrolServiceClient(conn).Enrol(ctx, &rasoatv1.EnrolRequest{
		Code: code, ReplicaId: fresh, PriorReplicaIds: prior, PreviousToken: prev, DeviceName: deviceName,
	})
	if err != nil {
		return Enrolment{}, fmt.Errorf("enrol: %w", err)
	}
	err = c.write(ctx, "enrol", func(w *writeTx) error {
		if fresh != w.m.replica {
			if _, err := w.tx.ExecContext(ctx, "INSERT INTO retired_replicas (replica_id, retired_at, reason) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
				w.m.replica, c.now().Unix(), "enrolled again: writes from now on are "+res.GetPerson().GetId()+"'s"); err != nil {
				return fmt.Errorf("retire replica %s: %w", w.m.replica, err)
			}
			if _, err := w.tx.ExecContext(ctx, "UPDATE meta SET replica_id = ? WHERE id = 1", fresh); err != nil {
				return fmt.Errorf("write the fresh replica id: %w", err)
			}
			w.m.replica = fresh
		}
		_, err := w.tx.ExecContext(ctx, `INSERT INTO enrolment (id, token, server, person_id, device_id, at) VALUES (1, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET token = excluded.token, server = excluded.server, person_id = excluded.person_id, device_id = excluded.device_id, at = excluded.at`,
			res.GetToken(), server, res.GetPerson().GetId(), res.GetDevice().GetId(), c.now().Unix())
		return err
	})
	if err != nil {
		// The server bound a token this file does not hold; enrolling
		// again with a new code recovers (the replica ids stay this
		// device's only through the old token, so say so).
		return Enrolment{}, fmt.Errorf("enrol: the server enrolled this device but the file could not keep its token (%w): ask for a new code", err)
	}
	c.replica.Store(&fresh)
	return Enrolment{
		Server: server, PersonID: res.GetPerson().GetId(), DeviceID: res.GetDevice().GetId(),
		Person: res.GetPerson(), Villages: res.GetVillageCodes(), Unbound: res.GetUnboundReplicaIds(),
	}, nil
}

// Enrolled returns the file's enrolment (ErrNotEnrolled if none).
func (c *Client) Enrolled(ctx context.Context) (Enrolment, error) {
	var e Enrolment
	err := c.r.QueryRowContext(ctx, "SELECT server, person_id, device_id FROM enrolment WHERE id = 1").Scan(&e.Server, &e.PersonID, &e.DeviceID)
	if errors.Is(err, sql.ErrNoRows) {
		return e, ErrNotEnrolled
	}
	if err != nil {
		return e, fmt.Errorf("read enrolment: %w", err)
	}
	return e, nil
}

// Token returns the device token the file holds (ErrNotEnrolled if none),
// for a tool that calls the server itself (a scoring service, grpcurl).
func (c *Client) Token(ctx context.Context) (string, error) {
	var t string
	err := c.r.QueryRowContext(ctx, "SELECT token FROM enrolment WHERE id = 1").Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotEnrolled
	}
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	return t, nil
}

// WithToken returns ctx carrying the file's device token as outgoing
// "authorization: Bearer …" metadata, for calls made outside Sync (the
// command line's admin verbs, history); ctx unchanged for a file not
// enrolled, which servers without authentication still answer.
func (c *Client) WithToken(ctx context.Context) (context.Context, error) {
	t, err := c.Token(ctx)
	if errors.Is(err, ErrNotEnrolled) {
		return ctx, nil
	}
	if err != nil {
		return ctx, err
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+t), nil
}

// retiredReplicas returns the replica ids this file wrote under before.
func (c *Client) retiredReplicas(ctx context.Context) ([]string, error) {
	rows, err := c.r.QueryContext(ctx, "SELECT replica_id FROM retired_replicas ORDER BY retired_at DESC, replica_id LIMIT 63")
	if err != nil {
		return nil, fmt.Errorf("read retired replica ids: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// lineage returns the successions that lead to the current replica id,
// for PushRequest.lineage (at most 64, the most recent).
func (c *Client) lineage(ctx context.Context) ([]*rasoatv1.Succession, error) {
	rows, err := c.r.QueryContext(ctx, "SELECT replica_id, from_seq, successor FROM retired_replicas WHERE successor != '' ORDER BY retired_at, rowid LIMIT 64")
	if err != nil {
		return nil, fmt.Errorf("read lineage: %w", err)
	}
	defer rows.Close()
	var out []*rasoatv1.Succession
	for rows.Next() {
		s := &rasoatv1.Succession{}
		if err := rows.Scan(&s.FromReplicaId, &s.FromSeq, &s.ReplicaId); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
