// Package store holds what the sync service and its storage adapters
// (server/store/sqlite, later server/store/postgres) share: the result of a
// push and the errors a caller branches on. The service declares the store
// interface it uses (syncsvc.Store); this package does not.
package store

import (
	"errors"
	"fmt"
)

// PushResult is what a durable push did.
type PushResult struct {
	Accepted   int    // changes newly stored
	Duplicates int    // changes already stored (same origin replica and sequence), skipped
	ServerSeq  uint64 // the log position after the push
}

// ErrChange is wrapped by *ChangeError.
var ErrChange = errors.New("change refused")

// ChangeError is a change of a push batch that the store refused because of
// what is already stored (e.g. an entity's village differs), so nothing of
// the batch was stored. Index is the change's place in the batch; Field, in
// rasoatv1.Change's proto names, the field at fault.
type ChangeError struct {
	Index int
	Field string
	Err   error
}

func (e *ChangeError) Error() string {
	return fmt.Sprintf("changes[%d].%s: %v", e.Index, e.Field, e.Err)
}

// Unwrap returns both ErrChange and the cause.
func (e *ChangeError) Unwrap() []error { return []error{ErrChange, e.Err} }

// ErrBusy is wrapped by an error from a store that could not get its lock in
// time: the call may be retried.
var ErrBusy = errors.New("store busy")

// ErrFull is wrapped by an error from a store whose disk is full.
var ErrFull = errors.New("store full")

// ErrCursorAhead is returned by a pull after a cursor beyond the end of the
// log: the replica synced with a server whose log went further (a backup
// restored since, or another server).
var ErrCursorAhead = errors.New("cursor beyond the end of the log")
