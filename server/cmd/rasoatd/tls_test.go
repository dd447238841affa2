package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/authtest"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// selfSigned is authtest.SelfSigned, and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certFile, keyFile = authtest.SelfSigned(t)
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no certificate in", certFile)
	}
	return certFile, keyFile, pool
}

// TestRunServesTLSOnAnyAddress: with a certificate, rasoatd may listen
// beyond loopback; a client trusting the certificate gets through, a
// plain-text one does not.
func TestRunServesTLSOnAnyAddress(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	addr, logs, stop := start(t, "--addr", "0.0.0.0:0", "--tls-cert", certFile, "--tls-key", keyFile)
	defer stop()
	_, port, _ := net.SplitHostPort(addr)
	target := net.JoinHostPort("127.0.0.1", port)
	check := func(creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := contextWithTimeout(t, 5*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := check(credentials.NewTLS(&tls.Config{RootCAs: pool})); err != nil {
		t.Fatalf("TLS client trusting the certificate: %v\n%s", err, logs)
	}
	if err := check(insecure.NewCredentials()); err == nil {
		t.Error("a plain-text client got an answer from a TLS server")
	}
	if err := check(credentials.NewTLS(&tls.Config{})); err == nil {
		t.Error("a client not trusting the self-signed certificate got through")
	}
}

// contextWithTimeout bounds one check of the test.
func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
