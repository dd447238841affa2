package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Setting returns the value kept under key in the settings table (ok false
// if none): the upstream link's state (server/upstream), as in the SQLite
// store.
func (db *DB) Setting(ctx context.Context, key string) (value string, ok bool, err error) {
	err = db.pool.QueryRow(ctx, "SELECT value FROM settings WHERE key = $1", key).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read setting %s: %w", key, classify(err))
	}
	return value, true, nil
}

// PutSettings sets the keys of set and deletes the keys of del in one
// transaction.
func (db *DB) PutSettings(ctx context.Context, set map[string]string, del []string) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		for k, v := range set {
			if _, err := tx.Exec(ctx, "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", k, v); err != nil {
				return fmt.Errorf("put setting %s: %w", k, err)
			}
		}
		for _, k := range del {
			if _, err := tx.Exec(ctx, "DELETE FROM settings WHERE key = $1", k); err != nil {
				return fmt.Errorf("delete setting %s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put settings: %w", classify(err))
	}
	return nil
}

// Settings calls fn with the settings whose key begins with prefix, in key
// order (bytewise), at most limit of them after the key after, and returns
// how many there are with that prefix in all.
func (db *DB) Settings(ctx context.Context, prefix, after string, limit int, fn func(key, value string) error) (total int, err error) {
	hi := prefix + "\U0010FFFF"
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM settings WHERE key COLLATE "C" >= $1 AND key COLLATE "C" < $2`, prefix, hi).Scan(&total); err != nil {
		return 0, fmt.Errorf("count settings %s: %w", prefix, classify(err))
	}
	rows, err := db.pool.Query(ctx, `SELECT key, value FROM settings WHERE key COLLATE "C" >= $1 AND key COLLATE "C" < $2 AND key COLLATE "C" > $3 ORDER BY key COLLATE "C" LIMIT $4`, prefix, hi, after, limit)
	if err != nil {
		return 0, fmt.Errorf("read settings %s: %w", prefix, classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return 0, fmt.Errorf("read settings %s: %w", prefix, err)
		}
		if err := fn(k, v); err != nil {
			return 0, err
		}
	}
	return total, classify(rows.Err())
}
