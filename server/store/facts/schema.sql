-- Report facts (store.HouseholdFacts): one row per household, rewritten in
-- the push that changes it; its deprived indicators; its decided results.
-- The same statements on SQLite and PostgreSQL.
CREATE TABLE household_facts (
	household_id      TEXT    PRIMARY KEY,
	village_code      TEXT    NOT NULL,
	urban             INTEGER NOT NULL, -- 1 urban, 0 rural
	minority_head     INTEGER NOT NULL, -- 1 ethnic minority, 0 Kinh, -1 not given
	members           INTEGER NOT NULL,
	class             TEXT    NOT NULL, -- POOR, NEAR_POOR, MIDDLE, NOT_POOR; '' not scored
	standard          TEXT    NOT NULL,
	deprivations      INTEGER NOT NULL,
	indicators        INTEGER NOT NULL,
	md_poor           INTEGER NOT NULL, -- 1 when deprived in the standard's threshold or more (Alkire–Foster k)
	income_per_capita BIGINT  NOT NULL,
	review_id         TEXT    NOT NULL, -- the latest started review, '' none
	round             TEXT    NOT NULL,
	list_year         INTEGER NOT NULL,
	review_date       TEXT    NOT NULL,
	status            TEXT    NOT NULL,
	status_at         BIGINT  NOT NULL, -- unix seconds
	surveyor          TEXT    NOT NULL,
	due_date          TEXT    NOT NULL  -- a regular review's, '' none
);
CREATE INDEX household_facts_village ON household_facts (village_code);
-- The village and whether the household is poor are repeated here so that
-- an indicator's shares are one scan of this table, with no join: a
-- province's 200,000 households in under 2 s.
CREATE TABLE household_deprived (
	household_id TEXT    NOT NULL,
	indicator    TEXT    NOT NULL,
	village_code TEXT    NOT NULL,
	poor         INTEGER NOT NULL, -- 1 when the household's class is POOR
	PRIMARY KEY (household_id, indicator)
);
CREATE TABLE household_decided (
	household_id TEXT    NOT NULL,
	list_year    INTEGER NOT NULL,
	review_id    TEXT    NOT NULL,
	standard     TEXT    NOT NULL,
	result       TEXT    NOT NULL,
	deprivations INTEGER NOT NULL,
	PRIMARY KEY (household_id, list_year, review_id)
);
