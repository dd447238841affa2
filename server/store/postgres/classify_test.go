package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rasoat/rasoat/server/store"
)

// TestClassifyFailoverIsBusy: what a push meets while the province's
// primary fails over is "busy, retry" (Unavailable to the commune server),
// never an error the caller would take for a refusal or a bug; PostgreSQL's
// real answers about the data stay what they are.
func TestClassifyFailoverIsBusy(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		err  error
		busy bool
	}{
		{"the primary is gone: connection refused", refused, true},
		{"every host failed to connect", &pgconn.ConnectError{}, true},
		{"the connection cut under a query", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"a connection closed before", pgconn.ErrConnClosed, true},
		{"reset by peer", fmt.Errorf("write: %w", syscall.ECONNRESET), true},
		{"a standby not yet promoted", &pgconn.PgError{Code: "25006"}, true},
		{"the server shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"the server starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"a deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"a unique violation is an answer", &pgconn.PgError{Code: "23505"}, false},
		{"a syntax error is a bug", &pgconn.PgError{Code: "42601"}, false},
		{"anything else", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if errors.Is(got, store.ErrBusy) != tc.busy {
				t.Fatalf("classify(%v) = %v; busy %v, want %v", tc.err, got, errors.Is(got, store.ErrBusy), tc.busy)
			}
			if !errors.Is(got, tc.err) {
				t.Fatalf("classify(%v) = %v lost the cause", tc.err, got)
			}
		})
	}
	if got := classify(context.DeadlineExceeded); !errors.Is(got, context.DeadlineExceeded) {
		t.Fatalf("a deadline is still a deadline: %v", got)
	}
}
