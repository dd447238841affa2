package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/server/syncsvc"
	"github.com/rasoat/rasoat/server/upstream"
)

const upstreamUsage = `Usage:
  rasoatd upstream enrol --upstream HOST:PORT --code CODE [--db rasoat.db] [--upstream-ca FILE | --upstream-tls] [--name NAME]
  rasoatd upstream status [--db rasoat.db] [--json] [--limit 20]

enrol redeems a one-time code the province's admin issued for this commune
server (a person with the COMMUNE_SERVER role, scope the commune) and keeps
the token in the store; rasoatd --upstream HOST:PORT then syncs with the
province. status prints the link's state as the running rasoatd last kept
it in the store (it may run while rasoatd runs), with the changes set
aside and why; exit code 0 in sync, 3 otherwise.
`

// upstreamHealthName is the health service name the link's state is
// published under: SERVING while it syncs or is in sync.
const upstreamHealthName = "rasoat.v1.Upstream"

func upstreamCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, upstreamUsage)
		return nil
	}
	fs := flag.NewFlagSet("rasoatd upstream "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	db := fs.String("db", "rasoat.db", "")
	switch args[0] {
	case "enrol":
		addr := fs.String("upstream", "", "")
		code := fs.String("code", "", "")
		ca := fs.String("upstream-ca", "", "")
		useTLS := fs.Bool("upstream-tls", false, "")
		name := fs.String("name", "", "")
		if err := parseSub(fs, args[1:], stdout); err != nil {
			return err
		}
		if *addr == "" || *code == "" {
			return errors.New("upstream enrol: --upstream and --code are needed (see rasoatd upstream -h)")
		}
		st, err := openDB(ctx, *db)
		if err != nil {
			return fmt.Errorf("open --db %s: %w", redactURL(*db), err)
		}
		defer st.Close()
		conn, err := upstream.Dial(*addr, *ca, *useTLS, "")
		if err != nil {
			return err
		}
		defer conn.Close()
		if *name == "" {
			host, _ := os.Hostname()
			*name = "rasoatd " + host
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		e, err := upstream.Enrol(cctx, st, conn, *addr, *code, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enrolled with %s as %s (device %s); start rasoatd --upstream %s\n", *addr, e.PersonID, e.DeviceID, *addr)
		return nil
	case "status":
		asJSON := fs.Bool("json", false, "")
		limit := fs.Int("limit", 20, "")
		if err := parseSub(fs, args[1:], stdout); err != nil {
			return err
		}
		st, err := openDB(ctx, *db)
		if err != nil {
			return fmt.Errorf("open --db %s: %w", redactURL(*db), err)
		}
		defer st.Close()
		if _, err := upstream.LoadEnrolment(ctx, st); err != nil {
			return err
		}
		s, aside, err := upstream.ReadStatus(ctx, st, max(*limit, 0))
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			if err := enc.Encode(struct {
				upstream.Status
				Aside []upstream.Aside `json:"aside"`
			}{s, aside}); err != nil {
				return err
			}
		} else {
			printStatus(stdout, s, aside)
		}
		if s.State != upstream.StateInSync {
			return errNotInSync
		}
		return nil
	}
	return fmt.Errorf("upstream: unknown verb %q (see rasoatd upstream -h)", args[0])
}

// errNotInSync makes rasoatd upstream status exit 3.
var errNotInSync = errors.New("the upstream link is not in sync")

func parseSub(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, upstreamUsage)
			return errHelpShown
		}
		return fmt.Errorf("%s: %w (see rasoatd upstream -h)", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

var errHelpShown = errors.New("help shown")

func printStatus(w io.Writer, s upstream.Status, aside []upstream.Aside) {
	at := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Local().Format(time.DateTime) + " (" + time.Since(t).Round(time.Second).String() + " ago)"
	}
	fmt.Fprintf(w, "upstream     %s\n", s.Upstream)
	fmt.Fprintf(w, "state        %s since %s\n", s.State, at(s.Since))
	if s.LastError != "" {
		fmt.Fprintf(w, "last error   %s: %s\n", s.LastReason, s.LastError)
	}
	if !s.NextAttempt.IsZero() && s.State != upstream.StateInSync {
		fmt.Fprintf(w, "next try     %s\n", s.NextAttempt.Local().Format(time.DateTime))
	}
	fmt.Fprintf(w, "in sync      %s\n", at(s.LastInSync))
	fmt.Fprintf(w, "pushed       up to #%d of this log (since start: %d new, %d held already)\n", s.PushCursor, s.Pushed, s.PushedDup)
	fmt.Fprintf(w, "pulled       up to #%d of log %s (since start: %d new)\n", s.PullCursor, s.PullLogID, s.Pulled)
	fmt.Fprintf(w, "set aside    %d\n", s.SetAside)
	for _, a := range aside {
		who := "province refused"
		if a.Dir == "pull" {
			who = "refused here"
		}
		fmt.Fprintf(w, "  %s #%d (%s, %s): %s: %s\n", a.Origin, a.Seq, who, a.At.Local().Format(time.DateTime), a.Reason, strings.ReplaceAll(a.Message, "\n", " "))
	}
}

// upstreamFlags are rasoatd's flags for the link to its province.
type upstreamFlags struct {
	addr       *string
	ca         *string
	tls        *bool
	every      *time.Duration
	maxBackoff *time.Duration
	batch      *int
}

func addUpstreamFlags(fs *flag.FlagSet) upstreamFlags {
	return upstreamFlags{
		addr:       fs.String("upstream", "", "sync this commune up to the province server at `host:port` (enrol first: rasoatd upstream enrol)"),
		ca:         fs.String("upstream-ca", "", "reach the province over TLS trusting the certificates in PEM `file`"),
		tls:        fs.Bool("upstream-tls", false, "reach the province over TLS with the system's authorities"),
		every:      fs.Duration("upstream-every", upstream.DefaultEvery, "how often a link in sync looks for the province's new work (a push stored here wakes it at once)"),
		maxBackoff: fs.Duration("upstream-max-backoff", upstream.DefaultMaxBackoff, "the longest wait between tries while the province cannot be reached"),
		batch:      fs.Int("upstream-batch", upstream.DefaultPushBatch, "changes per push to the province (at most 20000): smaller resends less after a cut on a poor link"),
	}
}

// upstreamLink is the link to the province made from rasoatd's flags,
// before the server (whose pushes wake it), started after it (whose health
// it sets).
type upstreamLink struct {
	link   *upstream.Link
	conn   io.Closer
	health func(upstream.State) // set by start, before Run
}

// newUpstream makes the link if --upstream is given (nil otherwise).
func newUpstream(ctx context.Context, f upstreamFlags, st db, log *slog.Logger) (*upstreamLink, error) {
	if *f.addr == "" {
		return nil, nil
	}
	if *f.batch < 1 || *f.batch > upstream.MaxPushBatch {
		return nil, fmt.Errorf("--upstream-batch %d: want 1 to %d", *f.batch, upstream.MaxPushBatch)
	}
	e, err := upstream.LoadEnrolment(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("--upstream %s: %w --upstream %s --code CODE --db …", *f.addr, err, *f.addr)
	}
	if e.Server != *f.addr {
		log.Info("upstream: the province's address differs from the one enrolled with", "enrolled", e.Server, "upstream", *f.addr)
	}
	if *f.ca == "" && !*f.tls && !loopback(*f.addr) {
		log.Warn("upstream: a plain connection to the province: the token and households cross the network in clear; give --upstream-ca FILE or --upstream-tls", "upstream", *f.addr)
	}
	conn, err := upstream.Dial(*f.addr, *f.ca, *f.tls, e.Token)
	if err != nil {
		return nil, err
	}
	u := &upstreamLink{conn: conn}
	u.link, err = upstream.New(ctx, upstream.Config{
		Store: st, Conn: conn, Upstream: *f.addr, Log: log, Every: *f.every, MaxBackoff: *f.maxBackoff, PushBatch: *f.batch,
		OnState: func(s upstream.State) { u.health(s) },
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("--upstream: %w", err)
	}
	return u, nil
}

// syncOptions wake the link whenever a push stores something new, so a
// tablet's change goes up at once rather than after --upstream-every.
func (u *upstreamLink) syncOptions() []syncsvc.Option {
	if u == nil {
		return nil
	}
	return []syncsvc.Option{syncsvc.WithOnStored(u.link.Kick)}
}

// close lets go of a link that was never started.
func (u *upstreamLink) close() {
	if u != nil {
		u.conn.Close()
	}
}

// start runs the link until ctx ends and publishes its state on srv's
// health service; the returned function stops it and waits for it, before
// the store is closed.
func (u *upstreamLink) start(ctx context.Context, srv *server.Server) (wait func()) {
	if u == nil {
		return func() {}
	}
	u.health = func(s upstream.State) {
		srv.SetServing(upstreamHealthName, s == upstream.StateInSync || s == upstream.StateSyncing)
	}
	srv.SetServing(upstreamHealthName, false)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer u.conn.Close()
		u.link.Run(ctx) //nolint:errcheck // returns nil when ctx ends
	}()
	return func() { cancel(); <-done }
}
