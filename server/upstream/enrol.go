package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// maxMessage bounds one gRPC message either way, as the server does.
const maxMessage = 16 << 20

// maxCAFile bounds a CA file: a PEM chain is a few KB.
const maxCAFile = 1 << 20

// Dial makes the connection to the province at addr: TLS trusting the PEM
// file ca when given, TLS with the system's authorities when useTLS, plain
// gRPC otherwise (a province on the same machine or behind a TLS tunnel).
// token, when set, is sent on every call. Keepalives make a link that died
// without a word (a cut cable, a NAT that forgot it) fail its calls within
// about a minute rather than hang.
func Dial(addr, ca string, useTLS bool, token string) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	switch {
	case ca != "":
		pool, err := readCA(ca)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	case useTLS:
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}),
	}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", addr, err)
	}
	return conn, nil
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so that a province reached over a
// plain connection (loopback, a tunnel) still gets the token; rasoatd
// warns when such a link leaves the machine.
func (bearer) RequireTransportSecurity() bool { return false }

func readCA(name string) (*x509.CertPool, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("upstream CA: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("upstream CA: %w", err)
	}
	if len(b) > maxCAFile {
		return nil, fmt.Errorf("upstream CA %s: over %d bytes: not a PEM certificate file", name, maxCAFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("upstream CA %s: no PEM certificate in it", name)
	}
	return pool, nil
}

// ErrNotCommuneServer: the code is for a person without the COMMUNE_SERVER
// role, whose pushes the province would check as a tablet's (only its own
// replica's changes, through the review workflow) and refuse.
var ErrNotCommuneServer = errors.New("the code's person does not have the COMMUNE_SERVER role")

// Enrol redeems a one-time enrolment code of the province (issued for a
// person with role COMMUNE_SERVER, scope the commune) over conn and keeps
// the token in st. Enrolling again (a revoked token) moves to a fresh
// replica id, naming the earlier one as prior so that it stays this
// server's; the cursors are kept: the province's log and this one's are
// the same as before.
func Enrol(ctx context.Context, st Store, conn grpc.ClientConnInterface, server, code, deviceName string) (Enrolment, error) {
	prev, err := LoadEnrolment(ctx, st)
	if err != nil && !errors.Is(err, ErrNotEnrolled) {
		return Enrolment{}, err
	}
	replica := uuid.Must(uuid.NewV7()).String()
	req := &rasoatv1.EnrolRequest{Code: code, ReplicaId: replica, DeviceName: deviceName, PreviousToken: prev.Token}
	if prev.Replica != "" {
		req.PriorReplicaIds = []string{prev.Replica}
	}
	res, err := rasoatv1.NewEnrolServiceClient(conn).Enrol(ctx, req)
	if err != nil {
		return Enrolment{}, fmt.Errorf("enrol with %s: %w", server, err)
	}
	if !slices.Contains(res.GetPerson().GetRoles(), rasoatv1.Role_ROLE_COMMUNE_SERVER) {
		return Enrolment{}, fmt.Errorf("enrol with %s as %s: %w: ask the province's admin for a code of a commune-server person", server, res.GetPerson().GetId(), ErrNotCommuneServer)
	}
	e := Enrolment{Server: server, Token: res.GetToken(), Replica: replica, PersonID: res.GetPerson().GetId(), DeviceID: res.GetDevice().GetId(), At: time.Now().UTC()}
	if err := SaveEnrolment(ctx, st, e); err != nil {
		return Enrolment{}, fmt.Errorf("enrolled with %s, but could not keep the token (ask for a new code): %w", server, err)
	}
	return e, nil
}
