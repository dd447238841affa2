package main

import (
	"context"
	"fmt"
	"io"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

const whoamiUsage = `Usage: rasoat whoami [--db F] [--server HOST:PORT] [--ca FILE | --tls] [--json]

Whoami asks the server who it takes this device for, now: the person,
their roles and units, the villages they may read, and the device (an
admin may have changed the assignment since rasoat enrol).

Flags:

  --db F              the tablet file (default tablet.db in the working
                      directory)
` + netFlagsUsage + `  --timeout D         give up after D (default 1m)
  --json              print one JSON object instead

Exit status: 0 when answered; 2 for bad usage, a file that cannot be
opened, a device not enrolled or revoked, or a server that cannot be
reached.
`

func runWhoami(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "whoami", usage: whoamiUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	asJSON := fs.Bool("json", false, "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	if err := nf.check(); err != nil {
		return v.usageError(err)
	}
	cl, code := v.dialFile(ctx, nf, *db, false)
	if cl == nil {
		return code
	}
	defer cl.close()
	actx, err := cl.authed()
	if err != nil {
		return v.fail(err)
	}
	res, err := rasoatv1.NewEnrolServiceClient(cl.conn).WhoAmI(actx, &rasoatv1.WhoAmIRequest{})
	if err != nil {
		return cl.fail(err, nil)
	}
	id := identityJSON{Server: cl.server, Person: personJSONOf(res.GetPerson()), Device: deviceJSONOf(res.GetDevice()), Villages: nonNil(res.GetVillageCodes())}
	if *asJSON {
		if err := writeJSON(stdout, id); err != nil {
			return v.fail(err)
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "enrolled with %s\n", cl.server)
	writeIdentity(stdout, id)
	return exitOK
}
