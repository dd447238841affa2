package syncsvc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store"
	"github.com/rasoat/rasoat/server/store/storetest"
	"github.com/rasoat/rasoat/server/syncsvc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// failingScope fails every call with err, as access.Scope does when the
// directory it reads cannot be read.
type failingScope struct{ err error }

func (s failingScope) Writer(context.Context, *rasoatv1.PushRequest) (store.Sender, func(*rasoatv1.Change) error, error) {
	return store.Sender{}, nil, s.err
}

func (s failingScope) Villages(context.Context, string, []string) (store.Villages, error) {
	return store.Villages{}, s.err
}

// wholeRefusal is a scope's wholeRefusal of the whole call (access.Denied's shape).
type wholeRefusal struct{}

func (wholeRefusal) Error() string                { return "village 001 is not yours" }
func (wholeRefusal) Reason() rasoatv1.ErrorReason { return rasoatv1.ErrorReason_OUT_OF_SCOPE }
func (wholeRefusal) Field() string                { return "" }

// TestScopeReadFailureIsNotARefusal: when the scope cannot read the
// directory (the province's database failing over), a push or a pull is
// answered as the store's failure — Unavailable when it is out of reach, so
// a commune server retries the same batch; Internal, without the text,
// otherwise — never PermissionDenied, which would have the caller set its
// changes aside for good, and never with the database's address in the
// message. A wholeRefusal the scope says is one stays PermissionDenied.
func TestScopeReadFailureIsNotARefusal(t *testing.T) {
	secret := "dial tcp 10.20.0.5:5432: connect: connection refused"
	for _, tc := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"the directory's database out of reach", fmt.Errorf("read the villages: %w: %s", store.ErrBusy, secret), codes.Unavailable},
		{"any other failure to read it", errors.New(secret), codes.Internal},
		{"a refusal", wholeRefusal{}, codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, syncsvc.WithScope(failingScope{tc.err}))
			g := storetest.New("tab-a", "001")
			_, err := c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: "tab-a", Changes: g.Household(1)})
			if status.Code(err) != tc.want {
				t.Fatalf("push: %v, want %v", err, tc.want)
			}
			if strings.Contains(status.Convert(err).Message(), "10.20.0.5") {
				t.Fatalf("push: the answer gives the database's address away: %v", err)
			}
			stream, err := c.Pull(context.Background(), &rasoatv1.PullRequest{ReplicaId: "tab-a"})
			if err == nil {
				_, err = stream.Recv()
			}
			if status.Code(err) != tc.want {
				t.Fatalf("pull: %v, want %v", err, tc.want)
			}
		})
	}
}
