package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rasoat/rasoat/client"
)

const tokenUsage = `Usage: rasoat token [--db F]

Token prints the device token this file was enrolled with, alone on
standard output, for another tool that calls the server itself: a scoring
service enrolled for a person with the service role, or grpcurl
(-H "authorization: Bearer $(rasoat token --db F)"). Anyone holding it
acts as this device until an admin revokes it: keep it out of logs.

Flags:

  --db F              the enrolled file (default tablet.db in the working
                      directory)

Exit status: 0 when printed; 2 for bad usage, a file that cannot be opened
or one never enrolled.
`

func runToken(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "token", usage: tokenUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	tok, err := c.Token(ctx)
	if errors.Is(err, client.ErrNotEnrolled) {
		err = fmt.Errorf("%s: %w", *db, err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rasoat token: %v\n", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, tok)
	return exitOK
}
