package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rasoat/rasoat/internal/hlc"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

const historyUsage = `Usage: rasoat history ENTITY_ID [--db F] [--server HOST:PORT] [--ca FILE | --tls] [--json]

History (lịch sử thay đổi) asks the server for every change it holds to
one household, member or review, in the order it stored them: for each,
when it was written (the writer's clock) and received, who wrote it (the
person the writing device was enrolled for), who sent it and from which
device (for a change relayed by a commune server, that server), the field
and the value. Only what is in your villages can be asked for. ENTITY_ID
may be the first characters (at least 4) of an id this file holds.

Flags:

  --db F              the tablet file (default tablet.db in the working
                      directory), enrolled with the server
` + netFlagsUsage + `  --timeout D         give up after D (default 1m)
  --json              print JSON Lines, one object per change:
                        {"serverSeq":…,"writtenAt":"<RFC 3339>","receivedAt":…,
                         "author":…,"sender":…,"senderDevice":…,"replica":…,"seq":…,
                         "entityId":…,"kind":"household","field":…,"value":<JSON>}

Exit status: 0 when listed; 1 when the id is not a server's entity or not
in your villages; 2 for bad usage, a file that cannot be opened, a device
not enrolled, or a server that cannot be reached.
`

// historyPage is the entries asked for at once.
const historyPage = 1000

type historyJSON struct {
	ServerSeq    uint64          `json:"serverSeq"`
	WrittenAt    string          `json:"writtenAt"`
	ReceivedAt   string          `json:"receivedAt,omitempty"`
	Author       string          `json:"author"`
	Sender       string          `json:"sender"`
	SenderDevice string          `json:"senderDevice"`
	Replica      string          `json:"replica"`
	Seq          uint64          `json:"seq"`
	EntityID     string          `json:"entityId"`
	Kind         string          `json:"kind"`
	Field        string          `json:"field"`
	Value        json.RawMessage `json:"value"`
}

func historyJSONOf(e *rasoatv1.HistoryEntry) historyJSON {
	c := e.GetChange()
	v := json.RawMessage(c.GetValue())
	if !json.Valid(v) {
		b, _ := json.Marshal(string(c.GetValue()))
		v = b
	}
	return historyJSON{
		ServerSeq: e.GetServerSeq(), WrittenAt: hlc.Timestamp(c.GetStamp().GetHlc()).Wall().Format(conflictTime),
		ReceivedAt: unixTime(e.GetReceivedAtUnix()), Author: e.GetAuthorPersonId(), Sender: e.GetSenderPersonId(),
		SenderDevice: e.GetSenderDeviceId(), Replica: c.GetStamp().GetReplicaId(), Seq: c.GetSeq(),
		EntityID: c.GetEntityId(), Kind: kindName(c.GetKind()), Field: c.GetField(), Value: v,
	}
}

// kindName is "household" for ENTITY_KIND_HOUSEHOLD.
func kindName(k rasoatv1.EntityKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "ENTITY_KIND_"))
}

func runHistory(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	v := &verb{name: "history", usage: historyUsage, stdout: stdout, stderr: stderr}
	fs, db := v.flags()
	nf := v.netFlags(fs, time.Minute)
	asJSON := fs.Bool("json", false, "")
	pos, code, ok := v.parse(fs, args, 1, 1, "ENTITY_ID")
	if !ok {
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
	// A prefix is completed from the ids this file holds; a whole id goes
	// to the server as it is, held here or not.
	id, err := cl.c.ResolveID(ctx, pos[0])
	if err != nil {
		return v.fail(err)
	}
	actx, err := cl.authed()
	if err != nil {
		return v.fail(err)
	}
	api := rasoatv1.NewHistoryServiceClient(cl.conn)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	n := 0
	for after := uint64(0); ; {
		res, err := api.EntityHistory(actx, &rasoatv1.EntityHistoryRequest{EntityId: id, AfterSeq: after, Limit: historyPage})
		if err != nil {
			tw.Flush()
			return cl.fail(err, func(f string) string {
				if f == "entity_id" {
					return "ENTITY_ID"
				}
				return f
			})
		}
		for _, e := range res.GetEntries() {
			j := historyJSONOf(e)
			n++
			if *asJSON {
				if err := writeJSON(stdout, j); err != nil {
					return v.fail(err)
				}
				continue
			}
			if n == 1 {
				fmt.Fprintln(tw, "SEQ\tWRITTEN\tRECEIVED\tAUTHOR\tSENT BY\tDEVICE\tFIELD\tVALUE")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ServerSeq, j.WrittenAt, dash(j.ReceivedAt), dash(j.Author), dash(j.Sender), dash(j.SenderDevice), j.Field, j.Value)
		}
		entries := res.GetEntries()
		if !res.GetMore() || len(entries) == 0 {
			break
		}
		after = entries[len(entries)-1].GetServerSeq()
	}
	if err := tw.Flush(); err != nil {
		return v.fail(err)
	}
	if n == 0 && !*asJSON {
		fmt.Fprintf(stderr, "rasoat history: no change to %s on the server\n", id)
	}
	return exitOK
}
