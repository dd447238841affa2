-- A base is checked against the changes that are no longer heads of their
-- field (superseded by a later base, or covered when they arrived), which
-- each push records, instead of an index over every change's stamp: the
-- SQLite store's version 9. Every change logged so far is recorded, a
-- superset of those no longer heads, which the check allows.

-- +goose Up
CREATE TABLE superseded (
	origin     text COLLATE "C" NOT NULL, -- stamp.replica_id
	hlc        bigint NOT NULL,           -- stamp.hlc
	origin_seq bigint NOT NULL,           -- the change's row: changes (origin, origin_seq)
	PRIMARY KEY (origin, hlc, origin_seq)
);
INSERT INTO superseded (origin, hlc, origin_seq) SELECT origin, hlc, origin_seq FROM changes ON CONFLICT DO NOTHING;
DROP INDEX changes_stamp;

-- +goose Down
CREATE INDEX changes_stamp ON changes (origin, hlc);
DROP TABLE superseded;
