-- The province store's schema: the change log, the entities' merged
-- state, the log's id, and the directory (units, people, codes, devices,
-- replicas, receipts), as the SQLite store holds them after its version 4.
-- Payloads and states are bytea: PostgreSQL refuses NUL in text, and they
-- are protobuf and entity.State encodings, not text.

-- +goose Up
CREATE TABLE log_meta (
	id     integer PRIMARY KEY CHECK (id = 1),
	log_id text COLLATE "C"    NOT NULL
);
CREATE TABLE changes (
	server_seq   bigint PRIMARY KEY,     -- given under the push lock: gapless, in commit order
	origin       text COLLATE "C"   NOT NULL,        -- stamp.replica_id
	origin_seq   bigint NOT NULL,        -- seq (entity.Validate bounds it to 2^63-1)
	village_code text COLLATE "C"   NOT NULL,
	entity_id    text COLLATE "C"   NOT NULL,
	payload      bytea  NOT NULL,        -- rasoatv1.Change, deterministic proto encoding
	hlc          bigint NOT NULL,        -- stamp.hlc
	field        text COLLATE "C"   NOT NULL,
	chain        bigint NOT NULL         -- digest of the log up to this change (store.NextChain)
);
CREATE UNIQUE INDEX changes_origin ON changes (origin, origin_seq);
CREATE INDEX changes_village ON changes (village_code, server_seq);
CREATE INDEX changes_stamp ON changes (origin, hlc);
CREATE INDEX changes_entity ON changes (entity_id, server_seq);
CREATE TABLE entities (
	id           text COLLATE "C"     PRIMARY KEY,
	kind         smallint NOT NULL,      -- rasoatv1.EntityKind
	household_id text COLLATE "C"     NOT NULL,      -- its own id for a household
	village_code text COLLATE "C"     NOT NULL,
	state        bytea    NOT NULL       -- entity.State encoding
);
CREATE INDEX entities_household ON entities (household_id);
CREATE INDEX entities_village ON entities (village_code, id);

CREATE TABLE units (
	code   text COLLATE "C"     PRIMARY KEY,
	name   text COLLATE "C"     NOT NULL,
	level  smallint NOT NULL,            -- rasoatv1.UnitLevel
	kind   text COLLATE "C"     NOT NULL,
	parent text COLLATE "C"     NOT NULL             -- '' for a province
);
CREATE INDEX units_parent ON units (parent);
CREATE TABLE settings (
	key   text COLLATE "C" PRIMARY KEY,
	value text COLLATE "C" NOT NULL
);
CREATE TABLE people (
	id       text COLLATE "C"    PRIMARY KEY,
	name     text COLLATE "C"    NOT NULL,
	disabled boolean NOT NULL DEFAULT false
);
CREATE TABLE person_roles (
	person_id text COLLATE "C"     NOT NULL REFERENCES people (id),
	role      smallint NOT NULL,         -- rasoatv1.Role
	PRIMARY KEY (person_id, role)
);
CREATE TABLE person_units (
	person_id text COLLATE "C" NOT NULL REFERENCES people (id),
	unit_code text COLLATE "C" NOT NULL,
	PRIMARY KEY (person_id, unit_code)
);
CREATE TABLE codes (
	id         text COLLATE "C"    PRIMARY KEY,
	hash       bytea   NOT NULL,         -- SHA-256 of the secret part
	person_id  text COLLATE "C"    NOT NULL REFERENCES people (id),
	expires_at bigint  NOT NULL,         -- unix seconds
	attempts   integer NOT NULL,         -- wrong secrets still allowed
	used_at    bigint                    -- unix seconds, once redeemed
);
CREATE TABLE devices (
	id          text COLLATE "C"   PRIMARY KEY,
	person_id   text COLLATE "C"   NOT NULL REFERENCES people (id),
	name        text COLLATE "C"   NOT NULL,
	token_id    text COLLATE "C"   NOT NULL UNIQUE,
	token_hash  bytea  NOT NULL,         -- SHA-256 of the token's secret
	replica_id  text COLLATE "C"   NOT NULL,         -- the replica it writes under now
	enrolled_at bigint NOT NULL,
	revoked_at  bigint,
	last_seen   bigint NOT NULL DEFAULT 0
);
CREATE INDEX devices_person ON devices (person_id);
CREATE TABLE replicas (
	replica_id text COLLATE "C"   PRIMARY KEY,
	device_id  text COLLATE "C"   NOT NULL REFERENCES devices (id),
	person_id  text COLLATE "C"   NOT NULL,          -- whom the device was enrolled for when bound: the author
	bound_at   bigint NOT NULL
);
CREATE INDEX replicas_device ON replicas (device_id);
CREATE TABLE receipts (
	last_seq  bigint PRIMARY KEY,        -- the push's last new change
	first_seq bigint NOT NULL,
	replica   text COLLATE "C"   NOT NULL,
	person_id text COLLATE "C"   NOT NULL,
	device_id text COLLATE "C"   NOT NULL,
	at        bigint NOT NULL            -- unix seconds
);
-- The log's id, made with the store: a cursor counts in one log only.
INSERT INTO log_meta (id, log_id) VALUES (1, gen_random_uuid()::text);

-- +goose Down
DROP TABLE receipts, replicas, devices, codes, person_units, person_roles, people, settings, units, entities, changes, log_meta;
