// Command rasoatd is the rasoat server. With no flags it serves the scoring
// and sync services on 127.0.0.1:7443, with the built-in standards and the
// SQLite file rasoat.db in the working directory (created if missing).
// Every call but health, reflection and enrolment needs an enrolled
// device's token; `rasoatd bootstrap` makes the first admin's code.
//
//	rasoatd [--addr host:port] [--db rasoat.db | --db postgres://…] [--tls-cert F --tls-key F] [--insecure-listen]
//	        [--standard-file file.json]... [--log-level info]
//	        [--upstream province:7443 [--upstream-ca F | --upstream-tls]]
//	rasoatd upstream enrol --upstream province:7443 --code CODE [--db rasoat.db]
//	rasoatd upstream status [--db rasoat.db]
//	rasoatd bootstrap [--db rasoat.db] [--admin admin] [--name "…"]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/grpc/credentials"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, errNotInSync) {
		os.Exit(3)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rasoatd: %v\n", err)
		os.Exit(1)
	}
}

// run is rasoatd: it serves until ctx is done, then stops gracefully and
// returns nil. Logs go to stderr; stdout only gets what was asked for (-h).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "bootstrap" {
		return bootstrap(ctx, args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "upstream" {
		if err := upstreamCmd(ctx, args[1:], stdout); !errors.Is(err, errHelpShown) {
			return err
		}
		return nil
	}
	fs := flag.NewFlagSet("rasoatd", flag.ContinueOnError)
	// Parse errors come back to main, which prints them once.
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:7443", "listen on `host:port` (port 0 picks a free one)")
	var files fileList
	fs.Var(&files, "standard-file", "load a standard from a JSON `file` over the built-ins; repeatable or comma-separated; a file with a built-in's id replaces it")
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	db := fs.String("db", "rasoat.db", "serve sync from the SQLite `file` (created if missing), or from PostgreSQL at a postgres://… URL (a province)")
	certFile := fs.String("tls-cert", "", "serve TLS with the certificate chain in PEM `file` (with --tls-key)")
	keyFile := fs.String("tls-key", "", "the private key in PEM `file` of --tls-cert")
	up := addUpstreamFlags(fs)
	insecureListen := fs.Bool("insecure-listen", false, "allow listening without TLS on an address other than loopback (tokens then cross the network in clear: only behind a TLS proxy or on a trusted link)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "Usage: rasoatd [flags]")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("%w (see rasoatd -h)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see rasoatd -h)", fs.Arg(0))
	}

	if (*certFile == "") != (*keyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	tls := *certFile != ""
	if !tls && !*insecureListen && !loopback(*addr) {
		return fmt.Errorf("--addr %s is not a loopback address: serve TLS (--tls-cert, --tls-key), or say --insecure-listen to send tokens and households in clear", *addr)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	reg, err := loadRegistry(files)
	if err != nil {
		return err
	}
	store, err := openDB(ctx, *db)
	if err != nil {
		return fmt.Errorf("open --db %s: %w", redactURL(*db), err)
	}
	defer store.Close()
	link, err := newUpstream(ctx, up, store, log)
	if err != nil {
		return err
	}
	opts := []server.Option{server.WithRegistry(reg), server.WithLogger(log), server.WithSync(store, link.syncOptions()...), server.WithAuth(store, nil)}
	if tls {
		creds, err := credentials.NewServerTLSFromFile(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
		opts = append(opts, server.WithTLS(creds))
	}
	if ok, err := store.HasAdmin(ctx); err == nil && !ok {
		log.Warn("no admin yet: run rasoatd bootstrap --db " + redactURL(*db) + " for the first admin's enrolment code")
	}
	srv, err := server.New(opts...)
	if err != nil {
		link.close()
		return err
	}
	defer link.start(ctx, srv)()
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ids := make([]string, 0, len(reg.Standards()))
	for _, s := range reg.Standards() {
		ids = append(ids, s.ID)
	}
	// Tests read the bound address from this line: keep the "addr" key.
	log.Info("rasoatd listening", "addr", lis.Addr().String(), "db", redactURL(*db), "tls", tls, "standards", strings.Join(ids, ","))
	if err := srv.Serve(ctx, lis); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("rasoatd stopped")
	return nil
}

// loadRegistry is the built-in standards with the files' ones over them.
func loadRegistry(files []string) (*survey.Registry, error) {
	reg := survey.Builtin()
	if len(files) == 0 {
		return reg, nil
	}
	extra := make([]*survey.Standard, 0, len(files))
	for _, name := range files {
		s, err := loadStandardFile(name)
		if err != nil {
			return nil, fmt.Errorf("--standard-file %s: %w", name, err)
		}
		extra = append(extra, s)
	}
	reg, err := reg.With(extra...)
	if err != nil {
		return nil, fmt.Errorf("--standard-file: %w", err)
	}
	return reg, nil
}

func loadStandardFile(name string) (*survey.Standard, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return survey.LoadStandard(f)
}

// fileList is a repeatable, comma-separated list flag.
type fileList []string

func (l *fileList) String() string { return strings.Join(*l, ",") }

func (l *fileList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	return nil
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL is a --db value fit for a log line: a URL's password is
// replaced by "xxxxx".
func redactURL(spec string) string {
	u, err := url.Parse(spec)
	if err != nil || u.User == nil {
		return spec
	}
	return u.Redacted()
}
