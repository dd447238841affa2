-- The quality checks' facts (internal/quality): SQLite schema version 6,
-- PostgreSQL migration 3. The same statements on both engines.
--
-- A decided review keeps the figures the next round's checks compare
-- (-1: not known: a review decided before they were kept, whose
-- household has changed since).
ALTER TABLE household_decided ADD COLUMN floor_area_m2 DOUBLE PRECISION NOT NULL DEFAULT -1;
ALTER TABLE household_decided ADD COLUMN income_per_capita BIGINT NOT NULL DEFAULT -1;
-- Each household's flags but DUPLICATE_PERSON, rewritten with its facts.
CREATE TABLE household_flags (
	household_id TEXT NOT NULL,
	code         TEXT NOT NULL, -- quality.Code
	village_code TEXT NOT NULL,
	detail       TEXT NOT NULL,
	PRIMARY KEY (household_id, code)
);
CREATE INDEX household_flags_village ON household_flags (village_code);
-- The acknowledgements on each household's latest started review.
CREATE TABLE household_acks (
	household_id TEXT NOT NULL,
	code         TEXT NOT NULL,
	comment      TEXT NOT NULL,
	PRIMARY KEY (household_id, code)
);
-- The members present, for DUPLICATE_PERSON: found by person_key
-- (quality.PersonKey: the folded name and the birth date) across
-- households, by the index.
CREATE TABLE household_people (
	household_id TEXT NOT NULL,
	member_id    TEXT NOT NULL,
	village_code TEXT NOT NULL,
	person_key   TEXT NOT NULL,
	full_name    TEXT NOT NULL,
	birth_date   TEXT NOT NULL,
	PRIMARY KEY (household_id, member_id)
);
CREATE INDEX household_people_key ON household_people (person_key);
-- Every household's facts are derived again (the store's SetDeriver
-- finds them missing), now with their flags, people and figures.
DELETE FROM household_facts;
