package postgres

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/protobuf/proto"
)

// inTx runs fn in a transaction; the directory cache is emptied after it,
// whatever it wrote.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	defer db.cache.Clear()
	return classify(pgx.BeginFunc(ctx, db.pool, fn))
}

// PutUnits creates or updates units by code and, when served is not
// empty, sets the unit this server serves.
func (db *DB) PutUnits(ctx context.Context, units []*rasoatv1.Unit, served string) (created, updated int, err error) {
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		created, updated = 0, 0
		for _, u := range units {
			var inserted bool
			// xmax = 0 only on a row this statement inserted.
			if err := tx.QueryRow(ctx, `INSERT INTO units (code, name, level, kind, parent) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level, kind = excluded.kind, parent = excluded.parent
RETURNING xmax = 0`, u.GetCode(), u.GetName(), int16(u.GetLevel()), u.GetKind(), u.GetParentCode()).Scan(&inserted); err != nil {
				return fmt.Errorf("store unit %s: %w", u.GetCode(), err)
			}
			if inserted {
				created++
			} else {
				updated++
			}
		}
		if served != "" {
			if _, err := tx.Exec(ctx, "INSERT INTO settings (key, value) VALUES ('served_unit', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", served); err != nil {
				return fmt.Errorf("set the served unit: %w", err)
			}
		}
		return nil
	})
	return created, updated, err
}

// Units returns every unit, by code, and the unit this server serves.
func (db *DB) Units(ctx context.Context) ([]*rasoatv1.Unit, string, error) {
	rows, err := db.pool.Query(ctx, "SELECT code, name, level, kind, parent FROM units ORDER BY code")
	if err != nil {
		return nil, "", classify(err)
	}
	defer rows.Close()
	var out []*rasoatv1.Unit
	for rows.Next() {
		u := &rasoatv1.Unit{}
		var level int16
		if err := rows.Scan(&u.Code, &u.Name, &level, &u.Kind, &u.ParentCode); err != nil {
			return nil, "", err
		}
		u.Level = rasoatv1.UnitLevel(level)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, "", classify(err)
	}
	var served string
	err = db.pool.QueryRow(ctx, "SELECT value FROM settings WHERE key = 'served_unit'").Scan(&served)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	return out, served, classify(err)
}

// VillagesUnder returns the villages at or under any of codes that are also
// under the served unit, sorted (none with no served unit set).
func (db *DB) VillagesUnder(ctx context.Context, codes []string) ([]string, error) {
	if len(codes) == 0 {
		return nil, nil
	}
	key, now := directory.VillagesKey(codes), time.Now()
	if v, ok := db.cache.VillagesOf(key, now); ok {
		return v, nil
	}
	rows, err := db.pool.Query(ctx, `WITH RECURSIVE
served(code) AS (SELECT value FROM settings WHERE key = 'served_unit'
	UNION SELECT u.code FROM units u JOIN served s ON u.parent = s.code),
sub(code) AS (SELECT code FROM units WHERE code = ANY($1) UNION SELECT u.code FROM units u JOIN sub s ON u.parent = s.code)
SELECT u.code FROM units u WHERE u.level = $2 AND u.code IN (SELECT code FROM sub) AND u.code IN (SELECT code FROM served) ORDER BY u.code COLLATE "C"`,
		codes, int16(rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE))
	if err != nil {
		return nil, classify(err)
	}
	v, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, classify(err)
	}
	db.cache.PutVillages(key, v, now)
	return v, nil
}

// PutPeople creates or updates people by id, replacing their roles and
// units.
func (db *DB) PutPeople(ctx context.Context, people []directory.Person) (created, updated int, err error) {
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		created, updated = 0, 0
		for _, p := range people {
			var inserted bool
			if err := tx.QueryRow(ctx, `INSERT INTO people (id, name, disabled) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, disabled = excluded.disabled RETURNING xmax = 0`, p.ID, p.Name, p.Disabled).Scan(&inserted); err != nil {
				return fmt.Errorf("store person %s: %w", p.ID, err)
			}
			if inserted {
				created++
			} else {
				updated++
			}
			roles := make([]int16, len(p.Roles))
			for i, r := range p.Roles {
				roles[i] = int16(r)
			}
			units := p.Units
			if units == nil {
				units = []string{}
			}
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{"DELETE FROM person_roles WHERE person_id = $1", []any{p.ID}},
				{"DELETE FROM person_units WHERE person_id = $1", []any{p.ID}},
				{"INSERT INTO person_roles (person_id, role) SELECT $1, r FROM unnest($2::smallint[]) r ON CONFLICT DO NOTHING", []any{p.ID, roles}},
				{"INSERT INTO person_units (person_id, unit_code) SELECT $1, u FROM unnest($2::text[]) u ON CONFLICT DO NOTHING", []any{p.ID, units}},
			} {
				if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
					return fmt.Errorf("store person %s: %w", p.ID, err)
				}
			}
		}
		return nil
	})
	return created, updated, err
}

// People returns everyone, by id.
func (db *DB) People(ctx context.Context) ([]directory.Person, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, name, disabled,
	coalesce((SELECT array_agg(role ORDER BY role) FROM person_roles WHERE person_id = p.id), '{}'),
	coalesce((SELECT array_agg(unit_code ORDER BY unit_code COLLATE "C") FROM person_units WHERE person_id = p.id), '{}')
FROM people p ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []directory.Person
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, classify(rows.Err())
}

func scanPerson(row pgx.Row) (directory.Person, error) {
	var p directory.Person
	var roles []int16
	if err := row.Scan(&p.ID, &p.Name, &p.Disabled, &roles, &p.Units); err != nil {
		return p, err
	}
	for _, r := range roles {
		p.Roles = append(p.Roles, rasoatv1.Role(r))
	}
	if len(p.Units) == 0 {
		p.Units = nil
	}
	return p, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Person returns one person (directory.ErrNotFound).
func (db *DB) Person(ctx context.Context, id string) (directory.Person, error) {
	p, err := personIn(ctx, db.pool, id)
	return p, classify(err)
}

func personIn(ctx context.Context, q querier, id string) (directory.Person, error) {
	p, err := scanPerson(q.QueryRow(ctx, `SELECT id, name, disabled,
	coalesce((SELECT array_agg(role ORDER BY role) FROM person_roles WHERE person_id = p.id), '{}'),
	coalesce((SELECT array_agg(unit_code ORDER BY unit_code COLLATE "C") FROM person_units WHERE person_id = p.id), '{}')
FROM people p WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("person %q: %w", id, directory.ErrNotFound)
	}
	return p, err
}

// IssueCode stores an enrolment code for an existing person.
func (db *DB) IssueCode(ctx context.Context, c directory.Code) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM people WHERE id = $1)", c.PersonID).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("person %q: %w", c.PersonID, directory.ErrNotFound)
		}
		_, err := tx.Exec(ctx, "INSERT INTO codes (id, hash, person_id, expires_at, attempts) VALUES ($1, $2, $3, $4, $5)",
			c.ID, c.Hash, c.PersonID, c.ExpiresAt.Unix(), c.Attempts)
		return err
	})
}

// Enrol redeems a code in one transaction (see the SQLite store's Enrol):
// a wrong secret uses up an attempt, and that is committed.
func (db *DB) Enrol(ctx context.Context, e directory.Enrolment) (directory.Enrolled, error) {
	var out directory.Enrolled
	var wrongSecret bool
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var (
			hash      []byte
			personID  string
			expiresAt int64
			attempts  int
			usedAt    *int64
		)
		// FOR UPDATE: two redemptions of one code at once must not both pass.
		err := tx.QueryRow(ctx, "SELECT hash, person_id, expires_at, attempts, used_at FROM codes WHERE id = $1 FOR UPDATE", e.CodeID).
			Scan(&hash, &personID, &expiresAt, &attempts, &usedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return directory.ErrCodeInvalid
		}
		if err != nil {
			return err
		}
		if usedAt != nil || attempts <= 0 || e.At.Unix() >= expiresAt {
			return directory.ErrCodeInvalid
		}
		if subtle.ConstantTimeCompare(hash, e.CodeHash) != 1 {
			wrongSecret = true
			_, err := tx.Exec(ctx, "UPDATE codes SET attempts = attempts - 1 WHERE id = $1", e.CodeID)
			return err // committed: the attempt counts
		}
		person, err := personIn(ctx, tx, personID)
		if err != nil {
			return err
		}
		if person.Disabled {
			return directory.ErrCodeInvalid
		}
		if _, err := tx.Exec(ctx, "UPDATE codes SET used_at = $1 WHERE id = $2", e.At.Unix(), e.CodeID); err != nil {
			return err
		}
		deviceID, known := e.DeviceID, false
		if e.PreviousTokenID != "" {
			var id string
			var prev []byte
			err := tx.QueryRow(ctx, "SELECT id, token_hash FROM devices WHERE token_id = $1", e.PreviousTokenID).Scan(&id, &prev)
			if err == nil && subtle.ConstantTimeCompare(prev, e.PreviousTokenHash) == 1 {
				deviceID, known = id, true
			} else if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		q := `INSERT INTO devices (person_id, name, token_id, token_hash, replica_id, enrolled_at, id) VALUES ($1, $2, $3, $4, $5, $6, $7)`
		if known {
			q = `UPDATE devices SET person_id = $1, name = $2, token_id = $3, token_hash = $4, replica_id = $5, enrolled_at = $6, revoked_at = NULL WHERE id = $7`
		}
		if _, err := tx.Exec(ctx, q, personID, e.DeviceName, e.TokenID, e.TokenHash, e.Replica, e.At.Unix(), deviceID); err != nil {
			return err
		}
		owner, err := replicaOwner(ctx, tx, e.Replica)
		if err != nil {
			return err
		}
		if owner != "" && owner != deviceID {
			return fmt.Errorf("replica_id %s: %w", e.Replica, directory.ErrReplicaTaken)
		}
		if owner == "" {
			if err := bindReplica(ctx, tx, e.Replica, deviceID, personID, e.At); err != nil {
				return err
			}
		}
		out.Unbound = nil
		for _, r := range e.PriorReplicas {
			owner, err := replicaOwner(ctx, tx, r)
			if err != nil {
				return err
			}
			switch owner {
			case deviceID:
			case "":
				if err := bindReplica(ctx, tx, r, deviceID, personID, e.At); err != nil {
					return err
				}
			default:
				out.Unbound = append(out.Unbound, r)
			}
		}
		out.Person = person
		out.Device, err = deviceIn(ctx, tx, "id", deviceID)
		return err
	})
	if err == nil && wrongSecret {
		err = directory.ErrCodeInvalid
	}
	return out, err
}

func replicaOwner(ctx context.Context, tx pgx.Tx, replica string) (string, error) {
	var owner string
	err := tx.QueryRow(ctx, "SELECT device_id FROM replicas WHERE replica_id = $1", replica).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return owner, err
}

func bindReplica(ctx context.Context, tx pgx.Tx, replica, device, person string, at time.Time) error {
	_, err := tx.Exec(ctx, "INSERT INTO replicas (replica_id, device_id, person_id, bound_at) VALUES ($1, $2, $3, $4)", replica, device, person, at.Unix())
	return err
}

// BindReplica binds a replica id the device moved to (directory.ErrReplicaTaken
// if another device holds it; a no-op if the device does).
func (db *DB) BindReplica(ctx context.Context, deviceID, personID, replica string, at time.Time) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		owner, err := replicaOwner(ctx, tx, replica)
		switch {
		case err != nil:
			return err
		case owner == deviceID:
			return nil
		case owner != "":
			return fmt.Errorf("replica_id %s: %w", replica, directory.ErrReplicaTaken)
		}
		return bindReplica(ctx, tx, replica, deviceID, personID, at)
	})
}

const deviceColumns = "id, person_id, name, token_id, token_hash, replica_id, enrolled_at, coalesce(revoked_at, 0), last_seen"

// deviceIn reads the device whose column col (id or token_id) is v, with
// its replicas.
func deviceIn(ctx context.Context, q querier, col, v string) (directory.Device, error) {
	var d directory.Device
	var enrolled, revoked, seen int64
	err := q.QueryRow(ctx, "SELECT "+deviceColumns+" FROM devices WHERE "+col+" = $1", v).
		Scan(&d.ID, &d.PersonID, &d.Name, &d.TokenID, &d.TokenHash, &d.Replica, &enrolled, &revoked, &seen)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("device: %w", directory.ErrNotFound)
	}
	if err != nil {
		return d, err
	}
	d.EnrolledAt = time.Unix(enrolled, 0)
	if revoked != 0 {
		d.RevokedAt = time.Unix(revoked, 0)
	}
	if seen != 0 {
		d.LastSeen = time.Unix(seen, 0)
	}
	rows, err := q.Query(ctx, "SELECT replica_id FROM replicas WHERE device_id = $1 ORDER BY bound_at DESC, replica_id COLLATE \"C\"", d.ID)
	if err != nil {
		return d, err
	}
	rs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return d, err
	}
	d.Replicas = []string{d.Replica}
	for _, r := range rs {
		if r != d.Replica {
			d.Replicas = append(d.Replicas, r)
		}
	}
	return d, nil
}

// DeviceByToken returns the device holding the token id, revoked or not,
// and its person (directory.ErrNotFound).
func (db *DB) DeviceByToken(ctx context.Context, tokenID string) (directory.Device, directory.Person, error) {
	now := time.Now()
	if e, ok := db.cache.Device(tokenID, now); ok {
		return e.Dev, e.Person, nil
	}
	d, err := deviceIn(ctx, db.pool, "token_id", tokenID)
	if err != nil {
		return d, directory.Person{}, classify(err)
	}
	p, err := personIn(ctx, db.pool, d.PersonID)
	if err != nil {
		return d, p, classify(err)
	}
	db.cache.PutDevice(tokenID, directory.CachedDevice{Dev: d, Person: p, At: now})
	return d, p, nil
}

// Devices returns the devices of one person, or of everyone.
func (db *DB) Devices(ctx context.Context, personID string) ([]directory.Device, error) {
	rows, err := db.pool.Query(ctx, "SELECT id FROM devices WHERE $1 = '' OR person_id = $1 ORDER BY enrolled_at, id COLLATE \"C\"", personID)
	if err != nil {
		return nil, classify(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, classify(err)
	}
	out := make([]directory.Device, 0, len(ids))
	for _, id := range ids {
		d, err := deviceIn(ctx, db.pool, "id", id)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, d)
	}
	return out, nil
}

// RevokeDevice revokes a device's token (a no-op on one already revoked).
func (db *DB) RevokeDevice(ctx context.Context, deviceID string, at time.Time) (directory.Device, error) {
	var d directory.Device
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE devices SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2", at.Unix(), deviceID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("device %q: %w", deviceID, directory.ErrNotFound)
		}
		d, err = deviceIn(ctx, tx, "id", deviceID)
		return err
	})
	return d, err
}

// TouchDevice records that the device called at t. It changes nothing a
// call is checked against, so it keeps the cache, moving only the device's
// last-seen time in it.
func (db *DB) TouchDevice(ctx context.Context, deviceID string, t time.Time) error {
	if _, err := db.pool.Exec(ctx, "UPDATE devices SET last_seen = $1 WHERE id = $2", t.Unix(), deviceID); err != nil {
		return classify(err)
	}
	db.cache.Touch(deviceID, t)
	return nil
}

// HasAdmin reports whether anyone enabled holds ROLE_ADMIN.
func (db *DB) HasAdmin(ctx context.Context) (bool, error) {
	var ok bool
	err := db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM person_roles r JOIN people p ON p.id = r.person_id WHERE r.role = $1 AND NOT p.disabled)",
		int16(rasoatv1.Role_ROLE_ADMIN)).Scan(&ok)
	return ok, classify(err)
}

// History returns the changes to one entity after server position after,
// in log order, at most limit, and whether more follow.
func (db *DB) History(ctx context.Context, entityID string, after uint64, limit int) ([]store.HistoryEntry, bool, error) {
	rows, err := db.pool.Query(ctx, `SELECT c.server_seq, c.payload, coalesce(r.at, 0), coalesce(r.person_id, ''), coalesce(r.device_id, ''), coalesce(b.person_id, '')
FROM changes c
LEFT JOIN LATERAL (SELECT * FROM receipts WHERE last_seq >= c.server_seq ORDER BY last_seq LIMIT 1) r ON r.first_seq <= c.server_seq
LEFT JOIN replicas b ON b.replica_id = c.origin
WHERE c.entity_id = $1 AND c.server_seq > $2
ORDER BY c.server_seq LIMIT $3`, entityID, i64(min(after, 1<<63-1)), limit+1)
	if err != nil {
		return nil, false, classify(err)
	}
	defer rows.Close()
	var out []store.HistoryEntry
	for rows.Next() {
		var (
			e       store.HistoryEntry
			seq, at int64
			payload []byte
		)
		if err := rows.Scan(&seq, &payload, &at, &e.SenderPerson, &e.SenderDevice, &e.AuthorPerson); err != nil {
			return nil, false, err
		}
		e.ServerSeq = uint64(seq)
		if at != 0 {
			e.ReceivedAt = time.Unix(at, 0)
		}
		c := &rasoatv1.Change{}
		if err := proto.Unmarshal(payload, c); err != nil {
			return nil, false, fmt.Errorf("history: change %d: %w", seq, err)
		}
		e.Change = c
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, classify(err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}
