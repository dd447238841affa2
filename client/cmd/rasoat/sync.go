package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/rasoat/rasoat/client"
)

const syncUsage = `Usage: rasoat sync [--db F] [--server HOST:PORT] [--ca FILE | --tls] [--timeout 10m]

Sync exchanges changes with a rasoat server, the only verb that needs a
network besides enrol, whoami, admin and history. It pushes this file's
changes not yet acknowledged, in batches (a batch leaves the file only
once the server has stored it), then pulls the changes others made in
your villages since the last sync; the first sync of a file takes the
server's households whole. While it runs, progress goes to standard
error: on a terminal, one line updated in place,

  push 1200 sent · pull 5400 received

and otherwise (a log file, a pipe) the same words as plain lines, with no
carriage return: one after the first batch, one as each phase (push,
snapshot, pull) ends, one every 10 seconds during a long phase, and the
last state at the end.

and at the end one summary line goes to standard output: changes pushed,
duplicates (already on the server: a resend), restamped (a clock that was
ahead), entity states taken from a snapshot, changes pulled, the server log
position now held, and the open conflicts (see rasoat conflicts).

An interrupted sync (Ctrl-C, a dropped connection, --timeout) loses
nothing: what the server acknowledged and what was received is kept, and
running rasoat sync again goes on from there, without duplicates.

A server with authentication (rasoatd) takes only enrolled devices: enrol
this file once with rasoat enrol --code CODE, and sync sends its device
token from then on. Over a network, connect with TLS (--ca or --tls): the
token and the households cross it. Without either, the connection is
plain gRPC, as to a rasoatd on this machine.

Flags:

  --db F              the tablet file (default tablet.db in the working
                      directory; created if missing, for a first sync)
` + netFlagsUsage + `  --timeout D         give up after D (default 10m; 0 for no limit)

Exit status: 0 when the sync completed; 2 for bad usage, a file that
cannot be opened, or a sync that did not complete (server unreachable or
refusing, device not enrolled or revoked, timed out, interrupted): run it
again, after enrolling when it says so.
`

func runSync(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "sync", usage: syncUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	nf := v.netFlags(fs, 10*time.Minute)
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	if err := nf.check(); err != nil {
		return v.usageError(err)
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
	cl, code := v.dialFile(ctx, nf, *db, true, client.WithLogger(log))
	if cl == nil {
		return code
	}
	defer cl.close()
	c := cl.c

	pp := &progressPrinter{w: stderr, tty: terminal(stderr), now: time.Now}
	st, err := c.Sync(cl.ctx, cl.conn, client.WithProgress(pp.update))
	pp.end()
	if err != nil {
		why, _ := cl.explain(err, nil)
		fmt.Fprintf(stderr, "rasoat sync: %s\n", why)
		if !authReason(err) && !strings.Contains(why, err.Error()) {
			fmt.Fprintf(stderr, "rasoat sync: error: %v\n", err)
		}
		fmt.Fprintf(stderr, "rasoat sync: done before stopping: %s\n", syncSummary(st))
		if authReason(err) {
			fmt.Fprintln(stderr, "rasoat sync: nothing written on this device is lost: it syncs once the device may sync again")
		} else {
			fmt.Fprintln(stderr, "rasoat sync: nothing acknowledged or received is lost: run rasoat sync again to go on")
		}
		return exitUsage
	}
	open := 0
	if err := c.Conflicts(ctx, func(client.Conflict) error { open++; return nil }); err != nil {
		return v.fail(err)
	}
	fmt.Fprintf(stdout, "synced with %s: %s · open conflicts %d\n", cl.server, syncSummary(st), open)
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

// terminal reports whether w is a terminal, where a line may be rewritten
// in place with a carriage return: a character device, as os.File.Stat
// tells without cgo on every platform the client builds for. A log file,
// a pipe or a buffer is not one.
func terminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&fs.ModeCharDevice != 0
}

// progressEvery is how often a long phase of a sync shows it is still
// going where progress cannot be rewritten in place (a log).
const progressEvery = 10 * time.Second

// progressPrinter shows a sync's progress on w: one line rewritten in
// place on a terminal; elsewhere plain lines, one after the first batch,
// one as each phase ends, one every progressEvery, and the last state at
// the end, so a log holds a few readable lines and no carriage return.
type progressPrinter struct {
	w       io.Writer
	tty     bool
	now     func() time.Time
	last    client.Progress // the latest state reported
	has     bool            // last is set
	printed bool            // last has been written as a plain line
	at      time.Time       // when the last plain line was written
}

func progressText(p client.Progress) string {
	return fmt.Sprintf("push %d sent · pull %d received", p.Sent, p.Received)
}

func (pp *progressPrinter) update(p client.Progress) {
	if pp.tty {
		fmt.Fprintf(pp.w, "\r%s", progressText(p))
		pp.last, pp.has = p, true
		return
	}
	if pp.has && !pp.printed && p.Phase != pp.last.Phase {
		pp.line(pp.last) // the phase before ended
	}
	pp.last, pp.has, pp.printed = p, true, false
	if pp.at.IsZero() || pp.now().Sub(pp.at) >= progressEvery {
		pp.line(p) // the first batch: the sync is moving
	}
}

func (pp *progressPrinter) line(p client.Progress) {
	fmt.Fprintln(pp.w, progressText(p))
	pp.printed, pp.at = true, pp.now()
}

// end finishes the progress: the line in place ends, or the last state is
// written if it was not.
func (pp *progressPrinter) end() {
	switch {
	case !pp.has:
	case pp.tty:
		fmt.Fprintln(pp.w)
	case !pp.printed:
		pp.line(pp.last)
	}
}
