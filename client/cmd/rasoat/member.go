package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

const memberUsage = `Usage:

  rasoat member add [--db F] HOUSEHOLD_ID [file|-]
  rasoat member remove [--db F] --reason died|moved-out|other MEMBER_ID

Member changes a household's roster (danh sách thành viên).

"member add" reads one member as JSON from file, or from standard input
when file is absent or "-" (a rasoat.v1.Member in protojson, as in a
household's "members" list; an empty id is made here), adds it to the
household and prints the member's id.

"member remove" records that a member left the household: chết (died),
chuyển đi (moved-out) or another reason (other: entered by mistake, a
duplicate). The member stays in the history and no longer counts; removal
merges like any other answer. Rasoat show lists the members with their ids.
Either id may be typed as its first characters (at least 4) when no other
household, or member, of this file has an id beginning with them.

Neither needs a network: the next rasoat sync sends the change.

Flags:

  --db F         the tablet file (default tablet.db in the working directory)
  --reason WHY   with remove: died, moved-out or other

Exit status: 0 when written; 1 when the id is unknown or the input invalid
(the error names the field, and nothing is written); 2 for bad usage or a
file that cannot be read or opened.
`

func runMember(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "member", usage: memberUsage, stdout: stdout, stderr: stderr}
	add := func(ctx context.Context, v *verb, args []string) int { return runMemberAdd(ctx, v, args, stdin) }
	return runSub(ctx, v, args, []string{"db", "reason"}, sub{"add", add}, sub{"remove", runMemberRemove})
}

func runMemberAdd(ctx context.Context, v *verb, args []string, stdin io.Reader) int {
	fs, db := v.flags()
	pos, code, ok := v.parse(fs, args, 1, 2, "HOUSEHOLD_ID")
	if !ok {
		return code
	}
	input := ""
	if len(pos) == 2 {
		input = pos[1]
	}
	b, err := readInput(stdin, input)
	if err != nil {
		return v.fail(err)
	}
	m := &rasoatv1.Member{}
	if err := decodeJSON(b, m); err != nil {
		return v.fail(fmt.Errorf("decode member: %w", err))
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	hh, err := c.ResolveID(ctx, pos[0], rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD)
	if err != nil {
		return v.fail(err)
	}
	id, err := c.AddMember(ctx, hh, m)
	if err != nil {
		return v.fail(err)
	}
	fmt.Fprintln(v.stdout, id)
	return exitOK
}

// removalReasons are the words --reason takes.
var removalReasons = map[string]rasoatv1.Removal{
	"died":      rasoatv1.Removal_REMOVAL_DIED,
	"moved-out": rasoatv1.Removal_REMOVAL_MOVED_OUT,
	"other":     rasoatv1.Removal_REMOVAL_OTHER,
}

func runMemberRemove(ctx context.Context, v *verb, args []string) int {
	fs, db := v.flags()
	reason := fs.String("reason", "", "")
	pos, code, ok := v.parse(fs, args, 1, 1, "MEMBER_ID")
	if !ok {
		return code
	}
	why, known := removalReasons[strings.ToLower(*reason)]
	if !known {
		if *reason == "" {
			return v.usageError(errors.New("--reason is required: died, moved-out or other"))
		}
		return v.usageError(fmt.Errorf("--reason %q: want died, moved-out or other", *reason))
	}
	c, err := openDB(ctx, *db, false)
	if err != nil {
		return v.fail(err)
	}
	defer c.Close()
	id, err := c.ResolveID(ctx, pos[0], rasoatv1.EntityKind_ENTITY_KIND_MEMBER)
	if err != nil {
		return v.fail(err)
	}
	if err := c.RemoveMember(ctx, id, why); err != nil {
		return v.fail(err)
	}
	fmt.Fprintf(v.stdout, "%s: removed (%s)\n", id, strings.ToLower(*reason))
	return exitOK
}
