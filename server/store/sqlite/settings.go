package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Setting returns the value kept under key in the settings table (ok false
// if none). The upstream link (server/upstream) keeps its token, cursors,
// status and set-aside changes there, so they live and die with the log
// they count in.
func (db *DB) Setting(ctx context.Context, key string) (value string, ok bool, err error) {
	err = db.r.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read setting %s: %w", key, classify(err))
	}
	return value, true, nil
}

// PutSettings sets the keys of set and deletes the keys of del in one
// durable transaction. It does not touch the directory cache: no setting
// it is meant for (the upstream link's) is one the directory reads.
func (db *DB) PutSettings(ctx context.Context, set map[string]string, del []string) error {
	if err := db.writable(); err != nil {
		return fmt.Errorf("put settings: %w", err)
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put settings: %w", classify(err))
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for k, v := range set {
		if _, err := tx.ExecContext(ctx, "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", k, v); err != nil {
			return fmt.Errorf("put setting %s: %w", k, classify(err))
		}
	}
	for _, k := range del {
		if _, err := tx.ExecContext(ctx, "DELETE FROM settings WHERE key = ?", k); err != nil {
			return fmt.Errorf("delete setting %s: %w", k, classify(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put settings: %w", classify(err))
	}
	if err := db.durable(); err != nil {
		return fmt.Errorf("put settings: %w", err)
	}
	return nil
}

// Settings calls fn with the settings whose key begins with prefix, in key
// order, at most limit of them after the key after (exclusive; "" from the
// first), and returns how many there are with that prefix in all.
func (db *DB) Settings(ctx context.Context, prefix, after string, limit int, fn func(key, value string) error) (total int, err error) {
	// The upper bound of the prefix's range: keys are text, so prefix +
	// U+10FFFF sorts after every key that begins with prefix.
	hi := prefix + "\U0010FFFF"
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM settings WHERE key >= ? AND key < ?", prefix, hi).Scan(&total); err != nil {
		return 0, fmt.Errorf("count settings %s: %w", prefix, classify(err))
	}
	rows, err := db.r.QueryContext(ctx, "SELECT key, value FROM settings WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?", prefix, hi, after, limit)
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
