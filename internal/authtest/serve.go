package authtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/store/sqlite"
)

// Server is a commune server as rasoatd serves one: sync and
// authentication over one new SQLite file, on a free port of 127.0.0.1.
type Server struct {
	Addr  string
	Store *sqlite.DB
	srv   *server.Server
}

// Serve starts a Server until the test ends; lim nil takes the default
// failure allowance, opts add to the server's (server.WithTLS, say).
func Serve(t testing.TB, lim *auth.Limiter, opts ...server.Option) *Server {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rasoat.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(append([]server.Option{server.WithSync(st), server.WithAuth(st, lim)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, lis) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		st.Close()
	})
	return &Server{Addr: lis.Addr().String(), Store: st, srv: srv}
}

// Server returns the served gRPC server (its services, for a test that
// checks each has a rule).
func (s *Server) Server() *server.Server { return s.srv }

// SelfSigned writes a self-signed certificate for 127.0.0.1 and localhost,
// and its key, in a new directory, as an operator would make one for a
// commune server with no public name; it returns the two PEM files.
func SelfSigned(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rasoatd xã Quan Sơn"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "commune.pem"), filepath.Join(dir, "commune-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
