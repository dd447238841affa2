package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/auth"
	"github.com/rasoat/rasoat/server/directory"
)

const bootstrapUsage = `Usage: rasoatd bootstrap [--db rasoat.db] [--admin admin] [--name "Quản trị"] [--ttl 24h]

Bootstrap makes the first admin, on the server machine itself: it creates
the person --admin with the ADMIN role (if missing) in the store file and
prints one enrolment code for them, alone on standard output. Enrol a
computer with it (rasoat enrol --code …), then use rasoat admin for
everything else. Run it again for a new code (the old one stays valid
until it expires). Whoever can run it can read the store file anyway: it
is the operator's way in, not a door from the network.
`

func bootstrap(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rasoatd bootstrap", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	db := fs.String("db", "rasoat.db", "")
	id := fs.String("admin", "admin", "")
	name := fs.String("name", "Quản trị hệ thống", "")
	ttl := fs.Duration("ttl", 24*time.Hour, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, bootstrapUsage)
			return nil
		}
		return fmt.Errorf("bootstrap: %w (see rasoatd bootstrap -h)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bootstrap: unexpected argument %q", fs.Arg(0))
	}
	if err := directory.ValidPersonID(*id); err != nil {
		return fmt.Errorf("bootstrap: --admin %w", err)
	}
	if *ttl <= 0 || *ttl > directory.MaxCodeTTL {
		return fmt.Errorf("bootstrap: --ttl must be between 0 and %v", directory.MaxCodeTTL)
	}
	st, err := openDB(ctx, *db)
	if err != nil {
		return fmt.Errorf("bootstrap: open --db %s: %w", redactURL(*db), err)
	}
	defer st.Close()
	p, err := st.Person(ctx, *id)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		p = directory.Person{ID: *id, Name: *name, Roles: []rasoatv1.Role{rasoatv1.Role_ROLE_ADMIN}}
	case err != nil:
		return fmt.Errorf("bootstrap: %w", err)
	case !p.Has(rasoatv1.Role_ROLE_ADMIN) || p.Disabled:
		p.Roles = append(p.Roles, rasoatv1.Role_ROLE_ADMIN)
		p.Disabled = false
	}
	if _, _, err := st.PutPeople(ctx, []directory.Person{p}); err != nil {
		return fmt.Errorf("bootstrap: store the admin: %w", err)
	}
	c := auth.NewCode()
	if err := st.IssueCode(ctx, directory.Code{ID: c.ID, Hash: c.Hash, PersonID: p.ID, ExpiresAt: time.Now().Add(*ttl), Attempts: directory.CodeAttempts}); err != nil {
		return fmt.Errorf("bootstrap: issue the code: %w", err)
	}
	fmt.Fprintln(stdout, c.Text)
	return nil
}
