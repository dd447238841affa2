package client

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[v-1] takes the schema from version v-1 to v (PRAGMA
// user_version). Append only: a released version's statements never change,
// since tablets in the field hold files at every version, and
// testdata/v<N>.db keeps a file written by each so a test proves the next
// migration still opens it.
var migrations = []string{
	// 1: meta, the entities' merged state, the outbox of unacknowledged
	// local changes.
	`
CREATE TABLE meta (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	replica_id  TEXT    NOT NULL,
	next_seq    INTEGER NOT NULL, -- the next origin sequence number
	hlc_last    INTEGER NOT NULL, -- greatest stamp issued or observed: the clock restores from it
	hlc_known   INTEGER NOT NULL, -- greatest stamp a server acknowledged or sent
	pull_cursor INTEGER NOT NULL, -- server log position applied here
	acked_seq   INTEGER NOT NULL  -- greatest origin sequence a server acknowledged
);
CREATE TABLE entities (
	id           TEXT    PRIMARY KEY,
	kind         INTEGER NOT NULL, -- rasoatv1.EntityKind
	household_id TEXT    NOT NULL, -- its own id for a household
	village_code TEXT    NOT NULL,
	state        BLOB    NOT NULL, -- entity.State encoding
	conflicted   INTEGER NOT NULL  -- 1 while some field has an open conflict
);
CREATE INDEX entities_household ON entities (household_id, kind);
CREATE INDEX entities_village ON entities (village_code, kind, id);
CREATE INDEX entities_conflicted ON entities (id) WHERE conflicted;
CREATE TABLE outbox (
	origin_seq INTEGER PRIMARY KEY, -- this replica's sequence number
	entity_id  TEXT    NOT NULL,
	hlc        INTEGER NOT NULL,    -- stamp.hlc, to find changes stamped in the future
	payload    BLOB    NOT NULL     -- rasoatv1.Change, deterministic proto encoding
);
`,
	// 2: the server log the cursor counts in; changes a server refused for
	// good, set aside with its reason until the collaborator retries or
	// discards them; entities to take again from the server after a
	// discard; replica ids this file wrote under before (a restored file
	// moves to a fresh one).
	`
ALTER TABLE meta ADD COLUMN log_id TEXT NOT NULL DEFAULT '';       -- PullResponse.log_id of pull_cursor
ALTER TABLE meta ADD COLUMN cursor_check INTEGER NOT NULL DEFAULT 0; -- PullResponse.cursor_check of pull_cursor
ALTER TABLE outbox ADD COLUMN refused_reason TEXT;  -- rasoatv1.ErrorReason name; NULL while the change waits to be pushed
ALTER TABLE outbox ADD COLUMN refused_field TEXT;   -- the field the server named, e.g. "changes[3].village_code"
ALTER TABLE outbox ADD COLUMN refused_desc TEXT;    -- the server's words, for the collaborator
ALTER TABLE outbox ADD COLUMN refused_at INTEGER;   -- unix seconds
CREATE TABLE refresh (
	entity_id TEXT PRIMARY KEY -- local state to rebuild from the server's and the outbox
);
CREATE TABLE retired_replicas (
	replica_id TEXT PRIMARY KEY,
	retired_at INTEGER NOT NULL, -- unix seconds
	reason     TEXT    NOT NULL
);
`,
	// 3: the device's enrolment (its token, and who the server takes it
	// for); and, for a replica id retired for its successor, the seq it
	// moved at, so that a push can prove the new id descends from it.
	`
CREATE TABLE enrolment (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	token     TEXT    NOT NULL, -- the bearer token; the server keeps only its hash
	server    TEXT    NOT NULL, -- where it was enrolled, as given
	person_id TEXT    NOT NULL,
	device_id TEXT    NOT NULL,
	at        INTEGER NOT NULL  -- unix seconds
);
ALTER TABLE retired_replicas ADD COLUMN successor TEXT NOT NULL DEFAULT ''; -- the id it moved to, when derived (PushRequest.lineage)
ALTER TABLE retired_replicas ADD COLUMN from_seq INTEGER NOT NULL DEFAULT 0;
`,
	// 4: the procedure settings in force at each village this file holds
	// (ProcedureService), fetched at sync, so deadlines read offline as on
	// the server.
	`
CREATE TABLE procedure (
	unit_code TEXT    PRIMARY KEY,
	settings  BLOB    NOT NULL, -- rasoatv1.ProcedureSettings, deterministic encoding
	at        INTEGER NOT NULL  -- unix seconds, when fetched
);
`,
}

// SchemaVersion is the schema version Open migrates a file to.
const SchemaVersion = 4

func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this app's %d: update the app", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		if err := migrateOne(ctx, db, v); err != nil {
			return fmt.Errorf("migrate to schema %d: %w", v+1, err)
		}
	}
	return nil
}

func migrateOne(ctx context.Context, db *sql.DB, v int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
		return err
	}
	return tx.Commit()
}
