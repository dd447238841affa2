package auth

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/directory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// flakyDirectory holds one device; err, when set, is what every lookup
// returns instead.
type flakyDirectory struct {
	tok Token
	err error
}

func (d *flakyDirectory) DeviceByToken(ctx context.Context, tokenID string) (directory.Device, directory.Person, error) {
	switch {
	case d.err != nil:
		return directory.Device{}, directory.Person{}, d.err
	case ctx.Err() != nil:
		return directory.Device{}, directory.Person{}, ctx.Err()
	case tokenID != d.tok.ID:
		return directory.Device{}, directory.Person{}, directory.ErrNotFound
	}
	return directory.Device{ID: "dev-1", TokenID: d.tok.ID, TokenHash: d.tok.Hash, LastSeen: time.Now()},
		directory.Person{ID: "col1", Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_COLLABORATOR}}, nil
}

func (d *flakyDirectory) TouchDevice(context.Context, string, time.Time) error { return nil }

func bearerContext(ctx context.Context, token string) context.Context {
	return metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+token))
}

// TestOnlyWrongTokensCountAsFailures: the limiter paces guessing, so it
// counts what a guesser learns from, a token the directory does not hold;
// a store that cannot answer now (busy, or the call cancelled while its
// token was looked up) tells the caller nothing and must not use up the
// allowance of everyone behind the caller's address. The caller is told
// to retry (STORE_BUSY), or that its own call was cancelled.
func TestOnlyWrongTokensCountAsFailures(t *testing.T) {
	const method = rasoatv1.SyncService_Push_FullMethodName
	dir := &flakyDirectory{tok: NewToken()}
	a := New(dir, NewLimiter(time.Hour, 2), slog.New(slog.DiscardHandler))
	ctx := t.Context()

	dir.err = errors.New("database is locked")
	for range 5 {
		_, err := a.authenticate(bearerContext(ctx, dir.tok.Text), method)
		if status.Code(err) != codes.Unavailable || rpcerr.Reason(err) != rasoatv1.ErrorReason_STORE_BUSY {
			t.Fatalf("a busy store: %v; want Unavailable, STORE_BUSY", err)
		}
	}
	dir.err = nil
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for range 5 {
		if _, err := a.authenticate(bearerContext(cancelled, dir.tok.Text), method); status.Code(err) != codes.Canceled {
			t.Fatalf("a call cancelled while its token was looked up: %v; want Canceled", err)
		}
	}
	if _, err := a.authenticate(bearerContext(ctx, dir.tok.Text), method); err != nil {
		t.Fatalf("the right token after the store recovered: %v", err)
	}

	// Wrong tokens still count: two allowed, then the address waits.
	wrong := NewToken()
	for range 2 {
		if _, err := a.authenticate(bearerContext(ctx, wrong.Text), method); rpcerr.Reason(err) != rasoatv1.ErrorReason_TOKEN_UNKNOWN {
			t.Fatalf("a wrong token: %v; want TOKEN_UNKNOWN", err)
		}
	}
	if _, err := a.authenticate(bearerContext(ctx, wrong.Text), method); rpcerr.Reason(err) != rasoatv1.ErrorReason_RATE_LIMITED {
		t.Fatalf("a wrong token after the allowance of failures: %v; want RATE_LIMITED", err)
	}
	// A valid token from that address still gets through: a village's
	// tablets often share one address behind a carrier's NAT.
	if _, err := a.authenticate(bearerContext(ctx, dir.tok.Text), method); err != nil {
		t.Fatalf("the right token after the allowance of failures: %v", err)
	}
}
