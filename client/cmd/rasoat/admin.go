package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

const adminUsage = `Usage:

  rasoat admin units import FILE.csv|FILE.json [--serve CODE]
  rasoat admin units list [--json | --csv]
  rasoat admin person put ID [--name NAME] [--roles R1,R2] [--units U1,U2] [--disabled[=false]]
  rasoat admin people import FILE.csv
  rasoat admin people list [--json]
  rasoat admin code PERSON_ID [--ttl 72h]
  rasoat admin devices [--person ID] [--json]
  rasoat admin revoke DEVICE_ID

  (each also takes --db F, --server HOST:PORT, --ca FILE or --tls, --timeout D)

Admin is the operator's (quản trị): the administrative units a server
knows, the people who may use it with their roles and units, enrolment
codes for their devices, and the devices enrolled. The tablet file must be
enrolled (rasoat enrol) for a person with the admin role; the first admin's
code comes from rasoatd bootstrap on the server machine.

"units import" sends a units file (the tree province → commune → village,
in CSV with the header code,name,level,kind,parent, or in JSON: see
examples/units) to the server in one request: all of it is stored, or
nothing, and a unit refused is named by its line (record, for JSON).
--serve CODE also sets the commune (or province) this server serves.
"units list" prints the server's units; --csv prints them as a units file.

"person put" creates a person or changes one: a flag left out keeps the
person's current value (a new person needs --name, --roles and, for every
role but admin, --units). Roles: collaborator, village_head,
commune_officer, commune_chair, admin, service, commune_server. Units: the
villages of a collaborator or village head, the commune of an officer or a
chair. --disabled refuses the person's devices until --disabled=false.
A changed assignment takes effect on the person's next call.

"people import" creates or updates people from a CSV file (UTF-8, with or
without a byte order mark) with the header id,name,roles,units (and
optionally disabled); roles and units are separated by ";" inside their
cell:

  id,name,roles,units
  hoa,Nguyễn Thị Hoa,collaborator,06517-01;06517-02
  binh,Lê Văn Bình,commune_officer;village_head,06517

All of the file is stored, or nothing; a refused row is named by its line.

"code" issues a one-time enrolment code for a person and prints it alone
on standard output (pipe it to a QR code maker), and when it expires on
standard error. Give it to the person, who runs rasoat enrol --code CODE.

"devices" lists enrolled devices (of one person with --person); "revoke"
ends a device's token at once (a lost tablet): what it already sent stays,
and what it has not sent syncs after it is enrolled again.

Exit status: 0 when done; 1 when the server or this command refused the
input (a field, a line or an id named as wrong; nothing stored); 2 for bad
usage, a file that cannot be read or opened, a device not enrolled or not
an admin's, or a server that cannot be reached.
`

// adminValueFlags are the admin flags that take a value, for subcommand.
var adminValueFlags = []string{"db", "server", "ca", "timeout", "serve", "name", "roles", "units", "ttl", "person"}

func runAdmin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "admin", usage: adminUsage, stdout: stdout, stderr: stderr}
	sub, rest, help := subcommand(args, adminValueFlags...)
	pick := func(want ...string) (string, []string, int, bool) {
		sub2, rest2, help2 := subcommand(rest, adminValueFlags...)
		if sub2 == "" {
			if help || help2 {
				fmt.Fprint(stdout, adminUsage)
				return "", nil, exitOK, false
			}
			return "", nil, v.usageError(fmt.Errorf("missing %s", strings.Join(want, " or "))), false
		}
		for _, w := range want {
			if sub2 == w {
				v.name += " " + sub + " " + sub2
				return sub2, rest2, 0, true
			}
		}
		return "", nil, v.usageError(fmt.Errorf("unknown subcommand %q of %s: want %s", sub2, sub, strings.Join(want, " or "))), false
	}
	switch sub {
	case "units":
		what, rest, code, ok := pick("import", "list")
		if !ok {
			return code
		}
		if what == "import" {
			return runAdminUnitsImport(ctx, v, rest)
		}
		return runAdminUnitsList(ctx, v, rest)
	case "person":
		_, rest, code, ok := pick("put")
		if !ok {
			return code
		}
		return runAdminPersonPut(ctx, v, rest)
	case "people":
		what, rest, code, ok := pick("import", "list")
		if !ok {
			return code
		}
		if what == "import" {
			return runAdminPeopleImport(ctx, v, rest)
		}
		return runAdminPeopleList(ctx, v, rest)
	case "code":
		v.name += " code"
		return runAdminCode(ctx, v, rest)
	case "devices":
		v.name += " devices"
		return runAdminDevices(ctx, v, rest)
	case "revoke":
		v.name += " revoke"
		return runAdminRevoke(ctx, v, rest)
	case "":
		if help {
			fmt.Fprint(stdout, adminUsage)
			return exitOK
		}
		return v.usageError(errors.New("missing units, person, people, code, devices or revoke"))
	}
	return v.usageError(fmt.Errorf("unknown subcommand %q: want units, person, people, code, devices or revoke", sub))
}

// adminCall opens the enrolled file and dials, once the flags are parsed;
// ctx carries the device token. On failure it has printed why.
func adminCall(ctx context.Context, v *verb, nf *netFlags, db string) (*call, context.Context, int) {
	if err := nf.check(); err != nil {
		return nil, nil, v.usageError(err)
	}
	cl, code := v.dialFile(ctx, nf, db, false)
	if cl == nil {
		return nil, nil, code
	}
	actx, err := cl.authed()
	if err != nil {
		cl.close()
		return nil, nil, v.fail(err)
	}
	return cl, actx, exitOK
}

func runAdminCode(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	ttl := fs.Duration("ttl", 72*time.Hour, "")
	pos, code, ok := v.parse(fs, args, 1, 1, "PERSON_ID")
	if !ok {
		return code
	}
	if *ttl <= 0 {
		return v.usageError(fmt.Errorf("--ttl %v: give a positive duration, e.g. 72h", *ttl))
	}
	secs := (*ttl + time.Second - 1) / time.Second
	if secs > 1<<32-1 {
		secs = 1<<32 - 1 // the server refuses it as over its limit
	}
	cl, actx, code := adminCall(ctx, v, nf, *db)
	if cl == nil {
		return code
	}
	defer cl.close()
	res, err := rasoatv1.NewAdminServiceClient(cl.conn).IssueCode(actx, &rasoatv1.IssueCodeRequest{PersonId: pos[0], TtlSeconds: uint32(secs)})
	if err != nil {
		return cl.fail(err, func(f string) string {
			switch f {
			case "ttl_seconds":
				return "--ttl"
			case "person_id":
				return "PERSON_ID"
			}
			return f
		})
	}
	fmt.Fprintln(v.stdout, res.GetCode())
	exp := time.Unix(res.GetExpiresAtUnix(), 0)
	fmt.Fprintf(v.stderr, "rasoat %s: for %s; expires %s (in %v); %d wrong tries allowed; on the device: rasoat enrol --server %s --code %s\n",
		v.name, pos[0], exp.UTC().Format(time.RFC3339), roughly(time.Until(exp)), res.GetAttempts(), cl.server, res.GetCode())
	return exitOK
}

func runAdminDevices(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	person := fs.String("person", "", "")
	asJSON := fs.Bool("json", false, "")
	if _, code, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return code
	}
	cl, actx, code := adminCall(ctx, v, nf, *db)
	if cl == nil {
		return code
	}
	defer cl.close()
	res, err := allDevices(actx, rasoatv1.NewAdminServiceClient(cl.conn), *person)
	if err != nil {
		return cl.fail(err, nil)
	}
	if *asJSON {
		for _, d := range res.GetDevices() {
			if err := writeJSON(v.stdout, deviceJSONOf(d)); err != nil {
				return v.fail(err)
			}
		}
		return exitOK
	}
	if len(res.GetDevices()) == 0 {
		fmt.Fprintln(v.stdout, "no device enrolled")
		return exitOK
	}
	tw := tabwriter.NewWriter(v.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tPERSON\tNAME\tENROLLED\tLAST SEEN\tSTATUS")
	for _, d := range res.GetDevices() {
		j := deviceJSONOf(d)
		status := "active"
		if j.Revoked {
			status = "revoked " + j.RevokedAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.PersonID, j.Name, dash(j.EnrolledAt), dash(j.LastSeen), status)
	}
	tw.Flush()
	return exitOK
}

// roughly is d to the minute, without zero units: "72h", "1h30m".
func roughly(d time.Duration) string {
	s := d.Round(time.Minute).String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runAdminRevoke(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	pos, code, ok := v.parse(fs, args, 1, 1, "DEVICE_ID")
	if !ok {
		return code
	}
	cl, actx, code := adminCall(ctx, v, nf, *db)
	if cl == nil {
		return code
	}
	defer cl.close()
	res, err := rasoatv1.NewAdminServiceClient(cl.conn).RevokeDevice(actx, &rasoatv1.RevokeDeviceRequest{DeviceId: pos[0]})
	if err != nil {
		return cl.fail(err, nil)
	}
	d := res.GetDevice()
	fmt.Fprintf(v.stdout, "device %s (%s, of %s) revoked: its token no longer works; what it already sent stays, and what it has not sent syncs once it is enrolled again\n",
		d.GetId(), d.GetName(), d.GetPersonId())
	return exitOK
}
