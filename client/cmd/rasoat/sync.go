package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/rasoat/rasoat/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const syncUsage = `Usage: rasoat sync [--db F] [--server HOST:PORT] [--timeout 10m]

Sync exchanges changes with a rasoat server, the only verb that needs a
network. It pushes this file's changes not yet acknowledged, in batches (a
batch leaves the file only once the server has stored it), then pulls the
changes others made since the last sync; the first sync of a file takes
the server's households whole. While it runs, one progress line on
standard error is updated in place:

  push 1200 sent · pull 5400 received

and at the end one summary line goes to standard output: changes pushed,
duplicates (already on the server: a resend), restamped (a clock that was
ahead), entity states taken from a snapshot, changes pulled, the server log
position now held, and the open conflicts (see rasoat conflicts).

An interrupted sync (Ctrl-C, a dropped connection, --timeout) loses
nothing: what the server acknowledged and what was received is kept, and
running rasoat sync again goes on from there, without duplicates.

The connection is plain gRPC, without TLS or authentication: those come
with a later issue. Use it on a trusted network or through a tunnel.

Flags:

  --db F              the tablet file (default tablet.db in the working
                      directory; created if missing, for a first sync)
  --server HOST:PORT  the server (default 127.0.0.1:7443, rasoatd's default)
  --timeout D         give up after D (default 10m; 0 for no limit)

Exit status: 0 when the sync completed; 2 for bad usage, a file that
cannot be opened, or a sync that did not complete (server unreachable or
refusing, timed out, interrupted): run it again.
`

// defaultServer is rasoatd's default address.
const defaultServer = "127.0.0.1:7443"

// maxMessage bounds one gRPC message either way, as the server does.
const maxMessage = 16 << 20

func runSync(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "sync", usage: syncUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	server := fs.String("server", defaultServer, "")
	timeout := fs.Duration("timeout", 10*time.Minute, "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	switch {
	case *server == "":
		return v.usageError(errors.New("--server is empty"))
	case *timeout < 0:
		return v.usageError(fmt.Errorf("--timeout %v is negative", *timeout))
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{
		Level: slog.LevelWarn,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	c, err := openDB(ctx, *db, true, client.WithLogger(log))
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	// TLS and authentication come with a later issue.
	conn, err := grpc.NewClient(*server,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)))
	if err != nil {
		return v.usageError(fmt.Errorf("--server %s: %w", *server, err))
	}
	defer conn.Close()

	sctx := ctx
	if *timeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	shown := false
	progress := func(p client.Progress) {
		fmt.Fprintf(stderr, "\rpush %d sent · pull %d received", p.Sent, p.Received)
		shown = true
	}
	st, err := c.Sync(sctx, conn, client.WithProgress(progress))
	if shown {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		why := "failed"
		switch {
		case errors.Is(sctx.Err(), context.DeadlineExceeded):
			why = fmt.Sprintf("timed out after %v", *timeout)
		case sctx.Err() != nil:
			why = "interrupted"
		case status.Code(err) == codes.Unavailable:
			why = fmt.Sprintf("cannot reach a rasoat server at %s (is rasoatd running there?)", *server)
		}
		fmt.Fprintf(stderr, "rasoat sync: %s: %v\n", why, err)
		fmt.Fprintf(stderr, "rasoat sync: done before stopping: %s\n", syncSummary(st))
		fmt.Fprintln(stderr, "rasoat sync: nothing acknowledged or received is lost: run rasoat sync again to go on")
		return exitUsage
	}
	open := 0
	if err := c.Conflicts(ctx, func(client.Conflict) error { open++; return nil }); err != nil {
		return v.fail(err)
	}
	fmt.Fprintf(stdout, "synced with %s: %s · open conflicts %d\n", *server, syncSummary(st), open)
	return exitOK
}

// syncSummary is what one sync did, in the order it did it; what happens
// rarely (a change refused for good, a restored file) only when it did.
func syncSummary(st client.SyncStats) string {
	s := fmt.Sprintf("pushed %d · duplicates %d · restamped %d · snapshot states %d · pulled %d · cursor %d",
		st.Pushed, st.Duplicates, st.Restamped, st.Snapshot, st.Pulled, st.Cursor)
	if st.Reissued > 0 {
		s += fmt.Sprintf(" · issued again under a fresh replica id (restored file) %d", st.Reissued)
	}
	if st.Refused > 0 {
		s += fmt.Sprintf(" · refused by the server and set aside %d (see rasoat refused)", st.Refused)
	}
	return s
}
