package sqlite

import (
	"bytes"
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store"
	"google.golang.org/protobuf/proto"
)

// directorySchema is schema version 4: administrative units, people and
// their roles and units, enrolment codes, devices and the replica ids bound
// to them, and one receipt per push saying who sent it. A receipt covers the
// server_seq range the push appended (a push's new changes are contiguous
// in the log), so attributing a change costs one row per push, not one
// column per change.
const directorySchema = `
CREATE TABLE units (
	code   TEXT    PRIMARY KEY,
	name   TEXT    NOT NULL,
	level  INTEGER NOT NULL,          -- rasoatv1.UnitLevel
	kind   TEXT    NOT NULL,
	parent TEXT    NOT NULL           -- '' for a province
);
CREATE INDEX units_parent ON units (parent);
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE people (
	id       TEXT    PRIMARY KEY,
	name     TEXT    NOT NULL,
	disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE person_roles (
	person_id TEXT    NOT NULL REFERENCES people (id),
	role      INTEGER NOT NULL,       -- rasoatv1.Role
	PRIMARY KEY (person_id, role)
) WITHOUT ROWID;
CREATE TABLE person_units (
	person_id TEXT NOT NULL REFERENCES people (id),
	unit_code TEXT NOT NULL,
	PRIMARY KEY (person_id, unit_code)
) WITHOUT ROWID;
CREATE TABLE codes (
	id         TEXT    PRIMARY KEY,
	hash       BLOB    NOT NULL,      -- SHA-256 of the secret part
	person_id  TEXT    NOT NULL REFERENCES people (id),
	expires_at INTEGER NOT NULL,      -- unix seconds
	attempts   INTEGER NOT NULL,      -- wrong secrets still allowed
	used_at    INTEGER                -- unix seconds, once redeemed
);
CREATE TABLE devices (
	id          TEXT    PRIMARY KEY,
	person_id   TEXT    NOT NULL REFERENCES people (id),
	name        TEXT    NOT NULL,
	token_id    TEXT    NOT NULL UNIQUE,
	token_hash  BLOB    NOT NULL,     -- SHA-256 of the token's secret
	replica_id  TEXT    NOT NULL,     -- the replica it writes under now
	enrolled_at INTEGER NOT NULL,
	revoked_at  INTEGER,
	last_seen   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX devices_person ON devices (person_id);
CREATE TABLE replicas (
	replica_id TEXT    PRIMARY KEY,
	device_id  TEXT    NOT NULL REFERENCES devices (id),
	person_id  TEXT    NOT NULL,      -- whom the device was enrolled for when bound: the author
	bound_at   INTEGER NOT NULL
);
CREATE INDEX replicas_device ON replicas (device_id);
CREATE TABLE receipts (
	last_seq  INTEGER PRIMARY KEY,    -- the push's last new change
	first_seq INTEGER NOT NULL,
	replica   TEXT    NOT NULL,
	person_id TEXT    NOT NULL,
	device_id TEXT    NOT NULL,
	at        INTEGER NOT NULL        -- unix seconds
);
`

// insertReceipt records who sent the push whose new changes end at
// res.ServerSeq.
func insertReceipt(ctx context.Context, tx *sql.Tx, by store.Sender, res store.PushResult, at int64) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO receipts (last_seq, first_seq, replica, person_id, device_id, at) VALUES (?, ?, ?, ?, ?, ?)",
		res.ServerSeq, res.ServerSeq-uint64(res.Accepted)+1, by.Replica, by.PersonID, by.DeviceID, at)
	if err != nil {
		return fmt.Errorf("push: record who sent it: %w", err)
	}
	return nil
}

// inTx runs fn in a write transaction on the writer connection; the
// directory cache is emptied after it, whatever it wrote.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	defer db.cache.Clear()
	if err := db.writable(); err != nil {
		return err
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return classify(err)
	}
	if err := tx.Commit(); err != nil {
		return classify(err)
	}
	return db.durable()
}

// PutUnits creates or updates units by code and, when served is not
// empty, sets the unit this server serves. The caller has checked the
// tree (server/units).
func (db *DB) PutUnits(ctx context.Context, units []*rasoatv1.Unit, served string) (created, updated int, err error) {
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		created, updated = 0, 0
		for _, u := range units {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM units WHERE code = ?", u.GetCode()).Scan(&n); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO units (code, name, level, kind, parent) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level, kind = excluded.kind, parent = excluded.parent`,
				u.GetCode(), u.GetName(), int32(u.GetLevel()), u.GetKind(), u.GetParentCode()); err != nil {
				return fmt.Errorf("store unit %s: %w", u.GetCode(), err)
			}
			if n == 0 {
				created++
			} else {
				updated++
			}
		}
		if served != "" {
			if _, err := tx.ExecContext(ctx, "INSERT INTO settings (key, value) VALUES ('served_unit', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", served); err != nil {
				return fmt.Errorf("set the served unit: %w", err)
			}
		}
		return nil
	})
	return created, updated, err
}

// Units returns every unit, by code, and the unit this server serves ("" if
// none is set).
func (db *DB) Units(ctx context.Context) ([]*rasoatv1.Unit, string, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT code, name, level, kind, parent FROM units ORDER BY code")
	if err != nil {
		return nil, "", classify(err)
	}
	defer rows.Close()
	var out []*rasoatv1.Unit
	for rows.Next() {
		u := &rasoatv1.Unit{}
		var level int32
		if err := rows.Scan(&u.Code, &u.Name, &level, &u.Kind, &u.ParentCode); err != nil {
			return nil, "", err
		}
		u.Level = rasoatv1.UnitLevel(level)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, "", classify(err)
	}
	served, err := db.servedUnit(ctx)
	return out, served, err
}

func (db *DB) servedUnit(ctx context.Context) (string, error) {
	var served string
	err := db.r.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = 'served_unit'").Scan(&served)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return served, classify(err)
}

// VillagesUnder returns the villages at or under any of codes that are also
// under the served unit, sorted: the villages a person assigned those units
// reads. With no served unit set, none.
func (db *DB) VillagesUnder(ctx context.Context, codes []string) ([]string, error) {
	if len(codes) == 0 {
		return nil, nil
	}
	key, now := directory.VillagesKey(codes), time.Now()
	if v, ok := db.cache.VillagesOf(key, now); ok {
		return v, nil
	}
	v, err := db.villagesUnder(ctx, codes)
	if err == nil {
		db.cache.PutVillages(key, v, now)
	}
	return v, err
}

func (db *DB) villagesUnder(ctx context.Context, codes []string) ([]string, error) {
	var q strings.Builder
	q.WriteString(`WITH RECURSIVE
served(code) AS (SELECT value FROM settings WHERE key = 'served_unit'
	UNION SELECT u.code FROM units u JOIN served s ON u.parent = s.code),
sub(code) AS (SELECT code FROM units WHERE code IN (`)
	args := make([]any, len(codes))
	for i, c := range codes {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('?')
		args[i] = c
	}
	q.WriteString(`) UNION SELECT u.code FROM units u JOIN sub s ON u.parent = s.code)
SELECT u.code FROM units u WHERE u.level = ? AND u.code IN (SELECT code FROM sub) AND u.code IN (SELECT code FROM served) ORDER BY u.code`)
	args = append(args, int32(rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE))
	rows, err := db.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, classify(rows.Err())
}

// PutPeople creates or updates people by id, replacing their roles and
// units.
func (db *DB) PutPeople(ctx context.Context, people []directory.Person) (created, updated int, err error) {
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		created, updated = 0, 0
		for _, p := range people {
			res, err := tx.ExecContext(ctx, "UPDATE people SET name = ?, disabled = ? WHERE id = ?", p.Name, p.Disabled, p.ID)
			if err != nil {
				return fmt.Errorf("store person %s: %w", p.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				if _, err := tx.ExecContext(ctx, "INSERT INTO people (id, name, disabled) VALUES (?, ?, ?)", p.ID, p.Name, p.Disabled); err != nil {
					return fmt.Errorf("store person %s: %w", p.ID, err)
				}
				created++
			} else {
				updated++
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM person_roles WHERE person_id = ?", p.ID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM person_units WHERE person_id = ?", p.ID); err != nil {
				return err
			}
			for _, r := range p.Roles {
				if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO person_roles (person_id, role) VALUES (?, ?)", p.ID, int32(r)); err != nil {
					return err
				}
			}
			for _, u := range p.Units {
				if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO person_units (person_id, unit_code) VALUES (?, ?)", p.ID, u); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return created, updated, err
}

// People returns everyone, by id.
// (Three queries for everyone, rather than personIn's three per person.)
func (db *DB) People(ctx context.Context) ([]directory.Person, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT id, name, disabled FROM people ORDER BY id")
	if err != nil {
		return nil, classify(err)
	}
	var out []directory.Person
	index := map[string]int{}
	for rows.Next() {
		var p directory.Person
		if err := rows.Scan(&p.ID, &p.Name, &p.Disabled); err != nil {
			rows.Close()
			return nil, err
		}
		index[p.ID] = len(out)
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, classify(err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	rows, err = db.r.QueryContext(ctx, "SELECT person_id, role FROM person_roles ORDER BY person_id, role")
	if err != nil {
		return nil, classify(err)
	}
	for rows.Next() {
		var pid string
		var r int32
		if err := rows.Scan(&pid, &r); err != nil {
			rows.Close()
			return nil, err
		}
		if i, ok := index[pid]; ok {
			out[i].Roles = append(out[i].Roles, rasoatv1.Role(r))
		}
	}
	rows.Close()
	rows, err = db.r.QueryContext(ctx, "SELECT person_id, unit_code FROM person_units ORDER BY person_id, unit_code")
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid, u string
		if err := rows.Scan(&pid, &u); err != nil {
			return nil, err
		}
		if i, ok := index[pid]; ok {
			out[i].Units = append(out[i].Units, u)
		}
	}
	return out, classify(rows.Err())
}

// IssueCode stores an enrolment code for an existing person.
func (db *DB) IssueCode(ctx context.Context, c directory.Code) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM people WHERE id = ?", c.PersonID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("person %q: %w", c.PersonID, directory.ErrNotFound)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO codes (id, hash, person_id, expires_at, attempts) VALUES (?, ?, ?, ?, ?)",
			c.ID, c.Hash, c.PersonID, c.ExpiresAt.Unix(), c.Attempts)
		return err
	})
}

// Enrol redeems a code: in one transaction it checks the code (a wrong
// secret uses up one attempt, and that is committed), creates the device or
// takes over the one PreviousToken names, gives it a new token, and binds
// the replica ids. The code is then used.
func (db *DB) Enrol(ctx context.Context, e directory.Enrolment) (directory.Enrolled, error) {
	var out directory.Enrolled
	var wrongSecret bool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var (
			hash      []byte
			personID  string
			expiresAt int64
			attempts  int
			usedAt    sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, "SELECT hash, person_id, expires_at, attempts, used_at FROM codes WHERE id = ?", e.CodeID).
			Scan(&hash, &personID, &expiresAt, &attempts, &usedAt)
		if errors.Is(err, sql.ErrNoRows) {
			return directory.ErrCodeInvalid
		}
		if err != nil {
			return err
		}
		if usedAt.Valid || attempts <= 0 || e.At.Unix() >= expiresAt {
			return directory.ErrCodeInvalid
		}
		if subtle.ConstantTimeCompare(hash, e.CodeHash) != 1 {
			wrongSecret = true
			_, err := tx.ExecContext(ctx, "UPDATE codes SET attempts = attempts - 1 WHERE id = ?", e.CodeID)
			return err // committed: the attempt counts
		}
		person, err := personIn(ctx, tx, personID)
		if err != nil {
			return err
		}
		if person.Disabled {
			return directory.ErrCodeInvalid
		}
		if _, err := tx.ExecContext(ctx, "UPDATE codes SET used_at = ? WHERE id = ?", e.At.Unix(), e.CodeID); err != nil {
			return err
		}
		deviceID, known := e.DeviceID, false
		if e.PreviousTokenID != "" {
			var id string
			var prev []byte
			err := tx.QueryRowContext(ctx, "SELECT id, token_hash FROM devices WHERE token_id = ?", e.PreviousTokenID).Scan(&id, &prev)
			if err == nil && subtle.ConstantTimeCompare(prev, e.PreviousTokenHash) == 1 {
				deviceID, known = id, true
			} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		// Only the previous token takes over a device; a new one is
		// inserted, never upserted over an id it happens to share.
		q := `INSERT INTO devices (person_id, name, token_id, token_hash, replica_id, enrolled_at, id) VALUES (?, ?, ?, ?, ?, ?, ?)`
		if known {
			q = `UPDATE devices SET person_id = ?, name = ?, token_id = ?, token_hash = ?, replica_id = ?, enrolled_at = ?, revoked_at = NULL WHERE id = ?`
		}
		if _, err := tx.ExecContext(ctx, q, personID, e.DeviceName, e.TokenID, e.TokenHash, e.Replica, e.At.Unix(), deviceID); err != nil {
			return err
		}
		// The new replica must be free or already this device's.
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

func replicaOwner(ctx context.Context, tx *sql.Tx, replica string) (string, error) {
	var owner string
	err := tx.QueryRowContext(ctx, "SELECT device_id FROM replicas WHERE replica_id = ?", replica).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return owner, err
}

func bindReplica(ctx context.Context, tx *sql.Tx, replica, device, person string, at time.Time) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO replicas (replica_id, device_id, person_id, bound_at) VALUES (?, ?, ?, ?)", replica, device, person, at.Unix())
	return err
}

// BindReplica binds a replica id the device moved to (a tablet restored
// from an older copy of its file, issuing again under a successor id) to
// the device and its person. Binding one already the device's is a no-op;
// one bound elsewhere is directory.ErrReplicaTaken.
func (db *DB) BindReplica(ctx context.Context, deviceID, personID, replica string, at time.Time) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
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

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// Person returns one person (directory.ErrNotFound).
func (db *DB) Person(ctx context.Context, id string) (directory.Person, error) {
	p, err := personIn(ctx, db.r, id)
	return p, classify(err)
}

func personIn(ctx context.Context, q querier, id string) (directory.Person, error) {
	var p directory.Person
	err := q.QueryRowContext(ctx, "SELECT id, name, disabled FROM people WHERE id = ?", id).Scan(&p.ID, &p.Name, &p.Disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("person %q: %w", id, directory.ErrNotFound)
	}
	if err != nil {
		return p, err
	}
	rows, err := q.QueryContext(ctx, "SELECT role FROM person_roles WHERE person_id = ? ORDER BY role", id)
	if err != nil {
		return p, err
	}
	for rows.Next() {
		var r int32
		if err := rows.Scan(&r); err != nil {
			rows.Close()
			return p, err
		}
		p.Roles = append(p.Roles, rasoatv1.Role(r))
	}
	rows.Close()
	rows, err = q.QueryContext(ctx, "SELECT unit_code FROM person_units WHERE person_id = ? ORDER BY unit_code", id)
	if err != nil {
		return p, err
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return p, err
		}
		p.Units = append(p.Units, u)
	}
	return p, rows.Err()
}

const deviceColumns = "id, person_id, name, token_id, token_hash, replica_id, enrolled_at, coalesce(revoked_at, 0), last_seen"

func scanDevice(sc interface{ Scan(...any) error }) (directory.Device, error) {
	var d directory.Device
	var enrolled, revoked, seen int64
	err := sc.Scan(&d.ID, &d.PersonID, &d.Name, &d.TokenID, &d.TokenHash, &d.Replica, &enrolled, &revoked, &seen)
	d.EnrolledAt = time.Unix(enrolled, 0)
	if revoked != 0 {
		d.RevokedAt = time.Unix(revoked, 0)
	}
	if seen != 0 {
		d.LastSeen = time.Unix(seen, 0)
	}
	return d, err
}

// deviceIn reads the device whose column col (id or token_id) is v, with
// its replicas.
func deviceIn(ctx context.Context, q querier, col, v string) (directory.Device, error) {
	d, err := scanDevice(q.QueryRowContext(ctx, "SELECT "+deviceColumns+" FROM devices WHERE "+col+" = ?", v))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("device: %w", directory.ErrNotFound)
	}
	if err != nil {
		return d, err
	}
	rows, err := q.QueryContext(ctx, "SELECT replica_id FROM replicas WHERE device_id = ? ORDER BY bound_at DESC, replica_id", d.ID)
	if err != nil {
		return d, err
	}
	defer rows.Close()
	d.Replicas = []string{d.Replica}
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return d, err
		}
		if r != d.Replica {
			d.Replicas = append(d.Replicas, r)
		}
	}
	return d, rows.Err()
}

// DeviceByToken returns the device holding the token id, revoked or not,
// and its person (directory.ErrNotFound).
func (db *DB) DeviceByToken(ctx context.Context, tokenID string) (directory.Device, directory.Person, error) {
	now := time.Now()
	if e, ok := db.cache.Device(tokenID, now); ok {
		return e.Dev, e.Person, nil
	}
	seen := db.seen.now()
	d, err := deviceIn(ctx, db.r, "token_id", tokenID)
	if err != nil {
		return d, directory.Person{}, classify(err)
	}
	seen.show(&d)
	p, err := personIn(ctx, db.r, d.PersonID)
	if err != nil {
		return d, p, classify(err)
	}
	db.cache.PutDevice(tokenID, directory.CachedDevice{Dev: d, Person: p, At: now})
	return d, p, nil
}

// Devices returns the devices of one person, or of everyone.
func (db *DB) Devices(ctx context.Context, personID string) ([]directory.Device, error) {
	where, args := "", []any{}
	if personID != "" {
		where, args = " WHERE person_id = ?", []any{personID}
	}
	rows, err := db.r.QueryContext(ctx, "SELECT id FROM devices"+where+" ORDER BY enrolled_at, id", args...)
	if err != nil {
		return nil, classify(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	seen := db.seen.now()
	out := make([]directory.Device, 0, len(ids))
	for _, id := range ids {
		d, err := deviceIn(ctx, db.r, "id", id)
		if err != nil {
			return nil, classify(err)
		}
		seen.show(&d)
		out = append(out, d)
	}
	return out, nil
}

// RevokeDevice revokes a device's token (a no-op on one already revoked).
func (db *DB) RevokeDevice(ctx context.Context, deviceID string, at time.Time) (directory.Device, error) {
	var d directory.Device
	seen := db.seen.now()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE devices SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", at.Unix(), deviceID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("device %q: %w", deviceID, directory.ErrNotFound)
		}
		d, err = deviceIn(ctx, tx, "id", deviceID)
		return err
	})
	seen.show(&d)
	return d, err
}

// TouchDevice records that the device called at t.
//
// It changes nothing a call is checked against, so unlike the directory's
// writes it keeps the cache, only moving the device's last-seen time in it
// (a cache emptied by every device's minutely touch would hardly cache).
// Nor does it write at once: the time waits in db.seen for the
// committer's next group, which writes it in its own transaction
// (seenWriter), so that a touch never holds the writer's one connection.
// Written one by one, the first calls of a hundred tablets held the
// committer waiting for its connection for a quarter of a second
// (BenchmarkPushLoad's start). Reads of a device show the time at once,
// and Close writes what still waits; one lost to a power cut before its
// group is no loss.
func (db *DB) TouchDevice(ctx context.Context, deviceID string, t time.Time) error {
	if err := db.writable(); err != nil {
		return err
	}
	first, err := db.seen.add(deviceID, t.Unix())
	if err != nil {
		return err
	}
	if first {
		db.group.nudge()
	}
	db.cache.Touch(deviceID, t)
	return nil
}

// lastSeen holds the last-seen times TouchDevice took and no committed
// transaction has written yet.
type lastSeen struct {
	mu      sync.Mutex
	pending map[string]int64 // unix seconds by device id, taken by no group yet
	writing map[string]int64 // taken by the group in flight, not yet committed
	closed  bool             // by Close: take no more
}

// add records t for device id and reports whether it is the first time
// waiting (the committer is then nudged); after close, errClosed.
func (l *lastSeen) add(id string, t int64) (first bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, fmt.Errorf("record device %s last seen: %w", id, errClosed)
	}
	if l.pending == nil {
		l.pending = map[string]int64{}
	}
	first = len(l.pending) == 0
	l.pending[id] = max(l.pending[id], t)
	return first, nil
}

// take moves the waiting times to the group in flight and returns them.
func (l *lastSeen) take() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writing, l.pending = l.pending, nil
	return l.writing
}

// done ends the group in flight: its times are written, or, if it did not
// commit, wait again for the next.
func (l *lastSeen) done(committed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !committed {
		l.requeue()
	}
	l.writing = nil
}

func (l *lastSeen) requeue() {
	for id, t := range l.writing {
		if l.pending == nil {
			l.pending = map[string]int64{}
		}
		l.pending[id] = max(l.pending[id], t)
	}
}

// close takes no more times and returns those not yet written.
func (l *lastSeen) close() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.requeue()
	m := l.pending
	l.pending, l.writing = nil, nil
	return m
}

// now returns the times waiting or being written, taken before a read of
// the devices: looked at after the read, a group committing in between
// would leave a time in neither the read nor lastSeen.
func (l *lastSeen) now() seenNow {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending)+len(l.writing) == 0 {
		return nil
	}
	m := make(seenNow, len(l.pending)+len(l.writing))
	for id, t := range l.writing {
		m[id] = t
	}
	for id, t := range l.pending {
		m[id] = max(m[id], t)
	}
	return m
}

// seenNow is lastSeen's times at one moment, by device id.
type seenNow map[string]int64

// show moves d's last-seen time to the one in s, if later.
func (s seenNow) show(d *directory.Device) {
	if t, ok := s[d.ID]; ok && t > d.LastSeen.Unix() {
		d.LastSeen = time.Unix(t, 0)
	}
}

// seenWriter is the committer's prelude: it writes the waiting last-seen
// times in a savepoint of each group's transaction, so that a failure to
// write them (logged) costs the pushes nothing.
type seenWriter struct{ db *DB }

func (p seenWriter) write(ctx context.Context, tx *sql.Tx) bool {
	m := p.db.seen.take()
	if len(m) == 0 {
		return false
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT seen"); err != nil {
		slog.Warn("store: record devices' last seen", "devices", len(m), "err", err)
		return false
	}
	if err := updateSeen(ctx, tx, m); err != nil {
		slog.Warn("store: record devices' last seen", "devices", len(m), "err", err)
		tx.ExecContext(ctx, "ROLLBACK TO seen") //nolint:errcheck // the group's commit reports a broken transaction
	}
	_, err := tx.ExecContext(ctx, "RELEASE seen")
	return err == nil
}

func (p seenWriter) done(committed bool) { p.db.seen.done(committed) }

func updateSeen(ctx context.Context, tx *sql.Tx, m map[string]int64) error {
	for id, t := range m {
		if _, err := tx.ExecContext(ctx, "UPDATE devices SET last_seen = max(last_seen, ?) WHERE id = ?", t, id); err != nil {
			return err
		}
	}
	return nil
}

// writeSeenAtClose writes the times still waiting once the committer has
// stopped, on the writer's connection, free then.
func (db *DB) writeSeenAtClose(m map[string]int64) error {
	if len(m) == 0 || db.writable() != nil {
		return nil
	}
	err := db.inTx(context.Background(), func(tx *sql.Tx) error { return updateSeen(context.Background(), tx, m) })
	if err != nil {
		return fmt.Errorf("record devices' last seen: %w", err)
	}
	return nil
}

// HasAdmin reports whether anyone enabled holds ROLE_ADMIN.
func (db *DB) HasAdmin(ctx context.Context) (bool, error) {
	var ok bool
	err := db.r.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM person_roles r JOIN people p ON p.id = r.person_id WHERE r.role = ? AND p.disabled = 0)",
		int32(rasoatv1.Role_ROLE_ADMIN)).Scan(&ok)
	return ok, classify(err)
}

// historySQL reads the runs of an entity's village's part of the log
// (log_runs_village) that can hold a change after the cursor: every change
// of an entity carries the entity's village (apply.Batch.Apply refuses
// another), and the log has no index by entity, which every push would pay
// for. A call costs in proportion to its village's changes after the
// cursor, not to the whole log's.
const historySQL = `SELECT first_seq, entries FROM log_runs
WHERE village_code = (SELECT village_code FROM entities WHERE id = ?) AND first_seq >= ?
ORDER BY first_seq`

// historyWhoSQL is who sent a change (the receipt of the push that stored
// it) and the person its origin replica is bound to.
const historyWhoSQL = `SELECT coalesce(r.at, 0), coalesce(r.person_id, ''), coalesce(r.device_id, ''),
	coalesce((SELECT b.person_id FROM replicas b WHERE b.replica_id = ?2), '')
FROM (SELECT 1) LEFT JOIN receipts r ON r.last_seq = (SELECT min(last_seq) FROM receipts WHERE last_seq >= ?1) AND r.first_seq <= ?1`

// History returns the changes to one entity after server position after,
// in log order, at most limit, and whether more follow.
func (db *DB) History(ctx context.Context, entityID string, after uint64, limit int) ([]store.HistoryEntry, bool, error) {
	rows, err := db.r.QueryContext(ctx, historySQL, entityID, runFloor(after+1))
	if err != nil {
		return nil, false, classify(err)
	}
	var out []store.HistoryEntry
	id := []byte(entityID)
	err = eachLogged(rows, false, func(s, _ uint64, p []byte) (bool, error) {
		// The id's bytes first: most of a village's changes are another
		// entity's, and need no decoding.
		if s <= after || !bytes.Contains(p, id) {
			return true, nil
		}
		c := &rasoatv1.Change{}
		if err := proto.Unmarshal(p, c); err != nil {
			return false, fmt.Errorf("change %d: %w", s, err)
		}
		if c.GetEntityId() == entityID {
			out = append(out, store.HistoryEntry{Change: c, ServerSeq: s})
		}
		return len(out) <= limit, nil
	})
	if err != nil {
		return nil, false, classify(fmt.Errorf("history: %w", err))
	}
	for i := range out {
		e := &out[i]
		var at int64
		if err := db.r.QueryRowContext(ctx, historyWhoSQL, e.ServerSeq, e.Change.GetStamp().GetReplicaId()).
			Scan(&at, &e.SenderPerson, &e.SenderDevice, &e.AuthorPerson); err != nil {
			return nil, false, classify(fmt.Errorf("history: change %d: %w", e.ServerSeq, err))
		}
		if at != 0 {
			e.ReceivedAt = time.Unix(at, 0)
		}
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}
