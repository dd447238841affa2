package main

// What the verbs that reach a server share (sync, enrol, whoami, admin,
// history): the flags --server, --ca, --tls and --timeout, the one dial
// function, and turning a server's refusal into words by its reason
// (internal/rpcerr), never by its message.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rasoat/rasoat/client"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// defaultServer is rasoatd's default address.
const defaultServer = "127.0.0.1:7443"

// maxMessage bounds one gRPC message either way, as the server does.
const maxMessage = 16 << 20

// maxCAFile bounds a --ca file: a PEM chain is a few KB.
const maxCAFile = 1 << 20

// netFlagsUsage is the flags of every verb that dials, for its usage.
const netFlagsUsage = `  --server HOST:PORT  the server (default: the one this file is enrolled
                      with, else 127.0.0.1:7443, rasoatd's default)
  --ca FILE           connect over TLS, trusting the certificate(s) in the
                      PEM FILE (a commune server's own certificate, or the
                      authority that signed it)
  --tls               connect over TLS, trusting the system's authorities
                      (a server with a public certificate)
`

// netFlags are the flags of a verb that dials.
type netFlags struct {
	fs      *flag.FlagSet
	server  *string
	ca      *string
	tls     *bool
	timeout *time.Duration
	dflt    time.Duration
}

// netFlags adds --server, --ca, --tls and --timeout (default timeout) to fs.
func (v *verb) netFlags(fs *flag.FlagSet, timeout time.Duration) *netFlags {
	return &netFlags{
		fs:      fs,
		server:  fs.String("server", "", ""),
		ca:      fs.String("ca", "", ""),
		tls:     fs.Bool("tls", false, ""),
		timeout: fs.Duration("timeout", timeout, ""),
		dflt:    timeout,
	}
}

// check refuses flags that cannot work, before anything is opened.
func (n *netFlags) check() error {
	set := map[string]bool{}
	n.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set["server"] && *n.server == "":
		return errors.New("--server is empty")
	case set["ca"] && *n.ca == "":
		return errors.New("--ca is empty")
	case *n.timeout < 0:
		return fmt.Errorf("--timeout %v is negative", *n.timeout)
	case *n.ca != "":
		_, err := readCA(*n.ca)
		return err
	}
	return nil
}

// address is --server when given, else the server the file is enrolled
// with, else rasoatd's default.
func (n *netFlags) address(ctx context.Context, c *client.Client) string {
	if *n.server != "" {
		return *n.server
	}
	if c != nil {
		if e, err := c.Enrolled(ctx); err == nil && e.Server != "" {
			return e.Server
		}
	}
	return defaultServer
}

// withTimeout bounds ctx by --timeout (0: no bound).
func (n *netFlags) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if *n.timeout > 0 {
		return context.WithTimeout(ctx, *n.timeout)
	}
	return context.WithCancel(ctx)
}

// secure reports whether the connection is TLS.
func (n *netFlags) secure() bool { return *n.ca != "" || *n.tls }

// dial makes the connection to server every verb uses: TLS trusting the
// PEM file ca when given, TLS with the system's authorities when useTLS,
// plain gRPC otherwise. It does not connect yet: the first call does.
func dial(server, ca string, useTLS bool) (*grpc.ClientConn, error) {
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
	conn, err := grpc.NewClient(server,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)))
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w", server, err)
	}
	return conn, nil
}

// readCA reads the certificates of a PEM file into a pool.
func readCA(name string) (*x509.CertPool, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	if len(b) > maxCAFile {
		return nil, fmt.Errorf("--ca %s: over %d bytes: not a PEM certificate file", name, maxCAFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate in it (-----BEGIN CERTIFICATE-----)", name)
	}
	return pool, nil
}

// loopback reports whether server's host is this machine.
func loopback(server string) bool {
	host, _, err := net.SplitHostPort(server)
	if err != nil {
		host = server
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// connect dials the server of n for the verb, warning on stderr when a
// plain connection leaves this machine (the token and households would
// cross the network in clear).
func (v *verb) connect(n *netFlags, server string) (*grpc.ClientConn, error) {
	if !n.secure() && !loopback(server) {
		fmt.Fprintf(v.stderr, "rasoat %s: warning: a plain connection to %s: the device token and households cross the network in clear; give --ca FILE or --tls for a server with TLS\n", v.name, server)
	}
	return dial(server, *n.ca, *n.tls)
}

// call is one verb's exchange with a server: the tablet file, the
// connection, and what the words of a failure need.
type call struct {
	v      *verb
	n      *netFlags
	c      *client.Client
	conn   *grpc.ClientConn
	server string
	db     string
	ctx    context.Context // bounded by --timeout
	parent context.Context // the verb's (interrupted by Ctrl-C)
	cancel context.CancelFunc
}

// dialFile opens the tablet file db (made when create is set; otherwise
// it must exist, and a missing one is a device not enrolled) and dials
// the server of n. On failure it has printed why and returns the exit code.
func (v *verb) dialFile(ctx context.Context, n *netFlags, db string, create bool, opts ...client.Option) (*call, int) {
	if db != "" && !create {
		if _, err := os.Stat(db); errors.Is(err, os.ErrNotExist) {
			cl := &call{v: v, n: n, db: db, server: n.address(ctx, nil)}
			fmt.Fprintf(v.stderr, "rasoat %s: %s: no such file: this device is not enrolled: %s, or name the enrolled file with --db\n", v.name, db, cl.enrolHint())
			return nil, exitUsage
		}
	}
	c, err := openDB(ctx, db, true, opts...)
	if err != nil {
		return nil, v.fail(err)
	}
	cl := &call{v: v, n: n, c: c, db: db, parent: ctx}
	cl.server = n.address(ctx, c)
	if cl.conn, err = v.connect(n, cl.server); err != nil {
		c.Close()
		return nil, v.usageError(err)
	}
	cl.ctx, cl.cancel = n.withTimeout(ctx)
	return cl, exitOK
}

// close ends the call and closes the connection and the file.
func (c *call) close() {
	c.cancel()
	c.conn.Close()
	c.c.Close()
}

// authed is the call's context with the device token (none for a file
// not enrolled: the server then says TOKEN_MISSING).
func (c *call) authed() (context.Context, error) {
	return c.c.WithToken(c.ctx)
}

// enrolHint is the command that enrols the file with the call's server.
func (c *call) enrolHint() string {
	h := "rasoat enrol --server " + c.server
	if c.db != defaultDB {
		h += " --db " + c.db
	}
	switch {
	case *c.n.ca != "":
		h += " --ca " + *c.n.ca
	case *c.n.tls:
		h += " --tls"
	}
	return h + " --code CODE"
}

// explain says why a call to the server failed, in words a collaborator
// or an officer acts on, from the error's reason and code (never its
// message), and whether it is about the input (exit 1) rather than the
// device, the network or the server (exit 2). fields maps a violation's
// field in the request ("people[3].name") to the input's words ("line 5:
// name"); nil keeps it.
func (c *call) explain(err error, fields func(string) string) (msg string, input bool) {
	reason, meta := rpcerr.Info(err)
	switch {
	case c.parent.Err() != nil:
		return "interrupted", false
	case errors.Is(c.ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("timed out after %v", *c.n.timeout), false
	}
	if vs := rpcerr.Violations(err); len(vs) > 0 {
		var b strings.Builder
		b.WriteString("the server refused the request (nothing of it was stored):")
		for _, x := range vs {
			f := x.Field
			if fields != nil {
				f = fields(f)
			}
			fmt.Fprintf(&b, "\n  %s: %s", f, x.Desc)
		}
		return b.String(), true
	}
	switch reason {
	case rasoatv1.ErrorReason_TOKEN_MISSING:
		return "this device is not enrolled: " + c.enrolHint() + " (ask the commune officer/admin for a code)", false
	case rasoatv1.ErrorReason_TOKEN_UNKNOWN:
		return "the server at " + c.server + " does not know this device's token (enrolled with another server, or its store was replaced): enrol again: " + c.enrolHint(), false
	case rasoatv1.ErrorReason_TOKEN_REVOKED:
		return "this device's token was revoked (by an admin, or its person was disabled): ask the commune officer/admin for a new code, then " + c.enrolHint() + "; nothing written on this device is lost", false
	case rasoatv1.ErrorReason_ROLE_DENIED:
		return "the person this device is enrolled for has no role that may do this (rasoat whoami shows the roles; an admin gives them)", false
	case rasoatv1.ErrorReason_RATE_LIMITED:
		wait := "a minute"
		if s, ok := rpcerr.MetaInt(meta, "retry_after_s"); ok {
			wait = strconv.FormatUint(s, 10) + " s"
		}
		return "too many failed attempts from this address: wait " + wait + ", then try again", false
	case rasoatv1.ErrorReason_CODE_INVALID:
		return "the code is not valid (unknown, expired, used or out of attempts): ask the commune officer/admin for a new one", true
	case rasoatv1.ErrorReason_REPLICA_TAKEN:
		return "the server has this file's replica id bound to another device (is this file a copy of another device's?): enrol a fresh file (--db NEW.db)", true
	case rasoatv1.ErrorReason_OUT_OF_SCOPE:
		return "not in your villages: " + status.Convert(err).Message(), true
	case rasoatv1.ErrorReason_NOT_FOUND:
		return status.Convert(err).Message(), true
	}
	switch status.Code(err) {
	case codes.Unavailable:
		if reason == rasoatv1.ErrorReason_STORE_BUSY {
			return "the server is busy: try again in a moment", false
		}
		how := "over plain gRPC (if it serves TLS, give --ca FILE or --tls)"
		if c.n.secure() {
			how = "over TLS (is its certificate the one --ca names? if it serves plain gRPC, give neither --ca nor --tls)"
		}
		return fmt.Sprintf("cannot reach a rasoat server at %s %s: %v", c.server, how, err), false
	case codes.Unimplemented:
		return "the server at " + c.server + " does not offer this (a rasoatd without authentication, or an older one)", false
	case codes.PermissionDenied:
		return "refused: " + status.Convert(err).Message(), false
	}
	return "failed: " + err.Error(), false
}

// fail prints why the call failed and returns the exit code.
func (c *call) fail(err error, fields func(string) string) int {
	msg, input := c.explain(err, fields)
	fmt.Fprintf(c.v.stderr, "rasoat %s: %s\n", c.v.name, msg)
	if input {
		return exitInvalid
	}
	return exitUsage
}

// authReason reports whether err is the server refusing this device's
// token or role: running the same verb again will not help.
func authReason(err error) bool {
	switch rpcerr.Reason(err) {
	case rasoatv1.ErrorReason_TOKEN_MISSING, rasoatv1.ErrorReason_TOKEN_UNKNOWN,
		rasoatv1.ErrorReason_TOKEN_REVOKED, rasoatv1.ErrorReason_ROLE_DENIED:
		return true
	}
	return false
}
