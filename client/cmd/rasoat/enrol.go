package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

const enrolUsage = `Usage: rasoat enrol --code CODE [--db F] [--server HOST:PORT] [--ca FILE | --tls] [--name "device name"] [--json]

Enrol (đăng ký thiết bị) makes this tablet file a device of a rasoat
server: it redeems the one-time code the commune officer or admin issued
(rasoat admin code, or rasoatd bootstrap for the first admin), and keeps
the device token the server answers with in the file. Sync, admin and
history send it from then on; the server takes who you are and your
villages from it, never from what the tablet says.

It prints who the server takes this device for: the person, their roles,
their units and the villages they may read, and the device's id (an admin
revokes a lost tablet by it). A code is typed as read out, in any case,
with or without its dashes.

Enrolling a file again (a new code after a revocation, or the tablet
handed to another collaborator) keeps every change not yet sent: they
still sync, as written by whoever wrote them. If the server finds some of
the ids this file wrote under bound to another device (the file was
copied from another tablet), it says so, and those changes will be set
aside at sync (rasoat refused).

Flags:

  --code CODE         the enrolment code, e.g. K7Q2-M4XP-9RTC (required)
  --db F              the tablet file (default tablet.db in the working
                      directory; created if missing)
` + netFlagsUsage + `  --name NAME         a name for this device an admin will recognise
                      (default: this machine's host name)
  --timeout D         give up after D (default 1m)
  --json              print one JSON object instead

Exit status: 0 when enrolled; 1 when the code is refused (unknown,
expired, used or out of attempts: ask for a new one); 2 for bad usage, a
file that cannot be opened, or a server that cannot be reached or asks to
wait.
`

func runEnrol(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "enrol", usage: enrolUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	code := fs.String("code", "", "")
	name := fs.String("name", "", "")
	asJSON := fs.Bool("json", false, "")
	if _, ex, ok := v.parse(fs, args, 0, 0, ""); !ok {
		return ex
	}
	if err := nf.check(); err != nil {
		return v.usageError(err)
	}
	if strings.TrimSpace(*code) == "" {
		return v.usageError(errors.New("--code is required: the enrolment code the commune officer/admin gave you"))
	}
	if *name == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			*name = h
		}
	}
	cl, ex := v.dialFile(ctx, nf, *db, true)
	if cl == nil {
		return ex
	}
	defer cl.close()
	before, berr := cl.c.Enrolled(ctx)
	e, err := cl.c.Enrol(cl.ctx, cl.conn, cl.server, strings.TrimSpace(*code), *name)
	if err != nil {
		return cl.fail(err, nil)
	}
	if berr == nil {
		fmt.Fprintf(stderr, "rasoat enrol: enrolled again (before: with %s, for %s); what this file wrote before stays %s's\n", before.Server, before.PersonID, before.PersonID)
	}
	id := identityJSON{Server: cl.server, Person: personJSONOf(e.Person), Device: deviceJSON{ID: e.DeviceID, PersonID: e.PersonID, Name: *name},
		Villages: nonNil(e.Villages), Unbound: e.Unbound}
	if *asJSON {
		if err := writeJSON(stdout, id); err != nil {
			return v.fail(err)
		}
	} else {
		fmt.Fprintf(stdout, "enrolled with %s\n", cl.server)
		writeIdentity(stdout, id)
	}
	if len(e.Unbound) > 0 {
		fmt.Fprintf(stderr, "rasoat enrol: warning: %d replica id(s) this file wrote under are bound to another device on the server (was this file copied from another tablet?): %s. Their changes not yet sent will be refused and set aside at sync (see rasoat refused).\n",
			len(e.Unbound), strings.Join(e.Unbound, ", "))
	}
	return exitOK
}

// identityJSON is who a server takes a device for (enrol, whoami).
type identityJSON struct {
	Server   string     `json:"server"`
	Person   personJSON `json:"person"`
	Device   deviceJSON `json:"device"`
	Villages []string   `json:"villages"`
	// Unbound: replica ids of this file bound to another device (enrol).
	Unbound []string `json:"unboundReplicaIds,omitempty"`
}

// personJSON is a person as admin people list --json and enrol print it.
type personJSON struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	Units    []string `json:"units"`
	Disabled bool     `json:"disabled,omitempty"`
}

func personJSONOf(p *rasoatv1.Person) personJSON {
	return personJSON{ID: p.GetId(), Name: p.GetName(), Roles: roleNames(p.GetRoles()), Units: nonNil(p.GetUnitCodes()), Disabled: p.GetDisabled()}
}

// deviceJSON is a device as admin devices --json prints it; times in
// RFC 3339, UTC, empty when not known.
type deviceJSON struct {
	ID         string   `json:"id"`
	PersonID   string   `json:"personId"`
	Name       string   `json:"name"`
	ReplicaIDs []string `json:"replicaIds,omitempty"`
	EnrolledAt string   `json:"enrolledAt,omitempty"`
	LastSeen   string   `json:"lastSeen,omitempty"`
	Revoked    bool     `json:"revoked,omitempty"`
	RevokedAt  string   `json:"revokedAt,omitempty"`
}

func deviceJSONOf(d *rasoatv1.Device) deviceJSON {
	return deviceJSON{ID: d.GetId(), PersonID: d.GetPersonId(), Name: d.GetName(), ReplicaIDs: d.GetReplicaIds(),
		EnrolledAt: unixTime(d.GetEnrolledAtUnix()), LastSeen: unixTime(d.GetLastSeenUnix()),
		Revoked: d.GetRevoked(), RevokedAt: unixTime(d.GetRevokedAtUnix())}
}

// unixTime is t in RFC 3339, UTC; "" for 0 (not known).
func unixTime(t int64) string {
	if t == 0 {
		return ""
	}
	return time.Unix(t, 0).UTC().Format(time.RFC3339)
}

// writeIdentity prints who a server takes a device for, a line a fact.
func writeIdentity(w io.Writer, id identityJSON) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  person\t%s (%s)\n", id.Person.ID, id.Person.Name)
	fmt.Fprintf(tw, "  roles\t%s\n", listOrNone(id.Person.Roles))
	fmt.Fprintf(tw, "  units\t%s\n", listOrNone(id.Person.Units))
	fmt.Fprintf(tw, "  villages\t%s\n", listOrNone(id.Villages))
	dev := id.Device.ID
	if id.Device.Name != "" {
		dev += fmt.Sprintf(" (%s)", id.Device.Name)
	}
	fmt.Fprintf(tw, "  device\t%s\n", dev)
	if id.Person.Disabled || id.Device.Revoked {
		fmt.Fprintf(tw, "  status\tdisabled or revoked\n")
	}
	tw.Flush()
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// writeJSON writes one JSON object on a line, without escaping < > &.
func writeJSON(w io.Writer, x any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(x)
}

// roleName is a role as the command line writes it: "village_head" for
// ROLE_VILLAGE_HEAD.
func roleName(r rasoatv1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

func roleNames(rs []rasoatv1.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = roleName(r)
	}
	return out
}

// parseRole reads a role name: "collaborator", "village_head" (also
// "village-head", "ROLE_VILLAGE_HEAD", any case).
func parseRole(s string) (rasoatv1.Role, error) {
	n := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	n = strings.TrimPrefix(n, "ROLE_")
	if r, ok := rasoatv1.Role_value["ROLE_"+n]; ok && r != 0 {
		return rasoatv1.Role(r), nil
	}
	return 0, fmt.Errorf("%q is not a role: want %s", s, strings.Join(allRoleNames(), ", "))
}

func allRoleNames() []string {
	var out []string
	for r := rasoatv1.Role(1); ; r++ {
		if _, ok := rasoatv1.Role_name[int32(r)]; !ok {
			return out
		}
		out = append(out, roleName(r))
	}
}
