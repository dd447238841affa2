package main

import (
	"context"

	"github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/store/postgres"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/syncsvc"
)

// db is what rasoatd needs of a store: the sync log, the directory, and
// closing it. Both engines implement it.
type db interface {
	syncsvc.Store
	server.Directory
	Person(ctx context.Context, id string) (directory.Person, error)
	PutPeople(ctx context.Context, people []directory.Person) (created, updated int, err error)
	IssueCode(ctx context.Context, c directory.Code) error
	HasAdmin(ctx context.Context) (bool, error)
	// The upstream link's state (server/upstream).
	Setting(ctx context.Context, key string) (string, bool, error)
	PutSettings(ctx context.Context, set map[string]string, del []string) error
	Settings(ctx context.Context, prefix, after string, limit int, fn func(key, value string) error) (int, error)
	Close() error
}

var (
	_ db = (*sqlite.DB)(nil)
	_ db = (*postgres.DB)(nil)
)

// openDB opens --db: a postgres:// or postgresql:// URL is a PostgreSQL
// database (a province), anything else a SQLite file (the embedded
// default, created if missing).
func openDB(ctx context.Context, spec string) (db, error) {
	if postgres.IsURL(spec) {
		return postgres.Open(ctx, spec)
	}
	return sqlite.Open(ctx, spec)
}
