package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

const reviewUsage = `Usage:

  rasoat review start [--db F] [--date YYYY-MM-DD] HOUSEHOLD_ID
  rasoat review submit [--db F] REVIEW_ID

Review moves a household's review round (đợt rà soát) through its workflow:
draft → submitted → approved | returned. The tablet drafts and submits; a
commune officer approves or returns it on the server (a returned review
comes back by sync with the officer's comment, and can be submitted again).

"review start" opens a round in status draft, dated --date (default today),
and prints the review's id. "review submit" sends a draft or returned
review for approval. A review's comment is a field like any other:

  rasoat set REVIEW_ID comment '"Đã xác minh tại hộ"'

Neither needs a network: the next rasoat sync sends the change.

Flags:

  --db F              the tablet file (default tablet.db in the working
                      directory)
  --date YYYY-MM-DD   with start: the review date (ngày rà soát)

Exit status: 0 when written; 1 when the id is unknown, the date invalid or
the review's status does not allow the step (nothing is written); 2 for bad
usage or a file that cannot be opened.
`

func runReview(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "review", usage: reviewUsage, stdout: stdout, stderr: stderr}
	sub, rest, help := subcommand(args, "db", "date")
	switch sub {
	case "start":
		v.name = "review start"
		return runReviewStart(ctx, v, rest)
	case "submit":
		v.name = "review submit"
		return runReviewSubmit(ctx, v, rest)
	case "":
		if help {
			fmt.Fprint(stdout, reviewUsage)
			return exitOK
		}
		return v.usageError(errors.New("missing start or submit"))
	}
	return v.usageError(fmt.Errorf("unknown subcommand %q: want start or submit", sub))
}

func runReviewStart(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	date := fs.String("date", time.Now().Format(time.DateOnly), "")
	pos, code, ok := v.parse(fs, args, 1, 1, "HOUSEHOLD_ID")
	if !ok {
		return code
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	id, err := c.StartReview(ctx, pos[0], *date)
	if err != nil {
		return v.fail(err)
	}
	fmt.Fprintln(v.stdout, id)
	return exitOK
}

func runReviewSubmit(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	pos, code, ok := v.parse(fs, args, 1, 1, "REVIEW_ID")
	if !ok {
		return code
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	if err := c.Submit(ctx, pos[0]); err != nil {
		return v.fail(err)
	}
	fmt.Fprintf(v.stdout, "%s: submitted\n", pos[0])
	return exitOK
}
