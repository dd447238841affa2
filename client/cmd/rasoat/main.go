// Command rasoat is the command-line client of rasoat (rà soát hộ nghèo, hộ
// cận nghèo): it classifies households against a multidimensional poverty
// standard, and enrols, enters, reviews and syncs them as a collaborator's
// tablet does, with a local SQLite file (--db, default tablet.db in the
// working directory) through the client library. It enrols the file as a
// device of a server (enrol, whoami), and an admin's file manages the
// server's units, people, codes and devices (admin). Every verb but enrol,
// whoami, sync, admin and history works with no network.
//
// Each verb lives in its own file (score.go, add.go, set.go, member.go,
// show.go, list.go, conflicts.go, review.go, quality.go, sync.go, refused.go, enrol.go,
// whoami.go, admin*.go, history.go) with its test beside it and one line
// in the commands table below; db.go holds what the verbs on the tablet
// file share, dial.go what the verbs that reach a server share.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"text/tabwriter"
)

// Exit codes shared by every verb.
const (
	exitOK = 0
	// exitInvalid: some input was invalid; the rest was still processed.
	exitInvalid = 1
	// exitUsage: bad usage, unreadable input or a bad configuration file;
	// nothing (or only part of the input) was processed.
	exitUsage = 2
)

// command is one verb of the client.
type command struct {
	name    string
	summary string
	// run gets the arguments after the verb. It writes results to stdout,
	// diagnostics to stderr, and returns the exit code.
	run func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// commands is the verb table, in the order the usage lists them.
var commands = []command{
	{"score", "classify households (JSON Lines) under a poverty standard", runScore},
	{"add", "enrol households (JSON, JSON Lines or a JSON array) in the tablet file", runAdd},
	{"set", "set one field of a household, member or review; resolves a conflict there", runSet},
	{"member", "add a member to a household, or remove one", runMember},
	{"show", "show a household and its local assessment", runShow},
	{"list", "list households with their local classification", runList},
	{"conflicts", "list the open conflicts (concurrent edits)", runConflicts},
	{"review", "start a review round, or submit it for approval", runReview},
	{"enrol", "enrol this tablet file as a device of a server, with a one-time code", runEnrol},
	{"whoami", "ask the server who it takes this device for", runWhoami},
	{"token", "print this file's device token, for another tool calling the server", runToken},
	{"sync", "exchange changes with a server", runSync},
	{"refused", "list changes a server refused for good; retry or discard one", runRefused},
	{"history", "ask the server who changed a household, member or review, and when", runHistory},
	{"procedure", "show or set the posting, complaint and re-check periods and the planned meetings day", runProcedure},
	{"report", "ask the server for a commune's or village's figures: rates, indicators, progress", runReport},
	{"quality", "list a unit's quality flags, or acknowledge one with a comment (officer, chair)", runQuality},
	{"admin", "manage a server's units, people, enrolment codes and devices (admin role)", runAdmin},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args (without the program name) to a verb; tests call it
// in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				return c.run(ctx, []string{"-h"}, stdin, stdout, stderr)
			}
			fmt.Fprintf(stderr, "rasoat: unknown command %q\n\n", args[1])
			usage(stderr)
			return exitUsage
		}
		usage(stdout)
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "rasoat: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return c.run(ctx, args[1:], stdin, stdout, stderr)
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, `rasoat is the command-line client of rasoat, the household poverty review
(rà soát hộ nghèo, hộ cận nghèo).

Usage:

	rasoat <command> [arguments]

Commands:

`)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "\t%s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Enrol, whoami, sync, history and admin reach a server (--server; over TLS
with --ca FILE or --tls); every other command works with no network.

Run "rasoat help <command>" or "rasoat <command> -h" for a command's usage.
`)
}
