package syncsvc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
	"github.com/rasoat/rasoat/server/syncsvc"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// serve starts the service over a real SQLite file on a loopback port and
// returns a client.
func serve(t testing.TB, opts ...syncsvc.Option) rasoatv1.SyncServiceClient {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "rasoat.db"))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20))
	rasoatv1.RegisterSyncServiceServer(srv, syncsvc.New(db, opts...))
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		db.Close()
	})
	return rasoatv1.NewSyncServiceClient(conn)
}

func push(t testing.TB, c rasoatv1.SyncServiceClient, changes []*rasoatv1.Change) *rasoatv1.PushResponse {
	t.Helper()
	res, err := c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: "tab-a", Changes: changes})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// pull runs one Pull to the end and returns its responses.
func pull(t testing.TB, c rasoatv1.SyncServiceClient, req *rasoatv1.PullRequest) []*rasoatv1.PullResponse {
	t.Helper()
	stream, err := c.Pull(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var out []*rasoatv1.PullResponse
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
}

// violations checks err is InvalidArgument with BadRequest details and
// returns them by field.
func violations(t *testing.T, err error) map[string]string {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("error %v, want InvalidArgument", err)
	}
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out[v.GetField()] = v.GetDescription()
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%v: no field violations", err)
	}
	return out
}

func TestPushTwiceReportsDuplicatesAndLeavesTheLog(t *testing.T) {
	c := serve(t)
	changes := storetest.Must(storetest.New("tab-a", "001").Household(2))
	first := push(t, c, changes)
	second := push(t, c, changes)
	if first.Accepted != uint32(len(changes)) || second.Accepted != 0 || second.Duplicates != uint32(len(changes)) {
		t.Fatalf("pushes = %v then %v", first, second)
	}
	if second.ServerSeq != first.ServerSeq {
		t.Fatalf("log position moved from %d to %d on a retry", first.ServerSeq, second.ServerSeq)
	}
	n := 0
	for _, r := range pull(t, c, &rasoatv1.PullRequest{ReplicaId: "tab-b"}) {
		n += len(r.Changes)
	}
	if n != len(changes) {
		t.Fatalf("log holds %d changes, want %d", n, len(changes))
	}
}

func TestBatchWithOneInvalidChangeStoresNothing(t *testing.T) {
	c := serve(t)
	changes := storetest.Must(storetest.New("tab-a", "001").Household(1))
	changes[3] = proto.Clone(changes[3]).(*rasoatv1.Change)
	changes[3].Field = "housing.colour"
	_, err := c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: "tab-a", Changes: changes})
	v := violations(t, err)
	if _, ok := v["changes[3].field"]; !ok || len(v) != 1 {
		t.Fatalf("violations %v, want changes[3].field alone", v)
	}
	resp := pull(t, c, &rasoatv1.PullRequest{ReplicaId: "tab-b"})
	if len(resp) != 1 || len(resp[0].Changes) != 0 || !resp[0].Done {
		t.Fatalf("pull after a refused push = %v, want one empty done batch", resp)
	}
}

func TestChangeTooFarInTheFutureIsRejected(t *testing.T) {
	now := time.Date(2025, 11, 15, 8, 0, 0, 0, time.UTC)
	c := serve(t, syncsvc.WithClock(func() time.Time { return now }))
	changes := storetest.Must(storetest.New("tab-a", "001").Household(0))
	for _, ch := range changes {
		ch.Stamp.Hlc = uint64(hlc.At(now, 1))
	}
	changes[2].Stamp.Hlc = uint64(hlc.At(now.Add(72*time.Hour), 0))
	_, err := c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: "tab-a", Changes: changes})
	v := violations(t, err)
	desc, ok := v["changes[2].stamp.hlc"]
	if !ok || !strings.Contains(desc, "72h0m0s ahead") || !strings.Contains(desc, "max 24h0m0s") {
		t.Fatalf("violations %v, want changes[2].stamp.hlc saying 72h ahead, max 24h", v)
	}
}

func TestPushRefusesAnOversizedBatch(t *testing.T) {
	c := serve(t)
	_, err := c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: "tab-a", Changes: make([]*rasoatv1.Change, syncsvc.MaxPushBatch+1)})
	if _, ok := violations(t, err)["changes"]; !ok {
		t.Fatalf("%v does not name changes", err)
	}
}

func TestChangeOfAnotherVillageNamesItsIndex(t *testing.T) {
	c := serve(t)
	g := storetest.New("tab-a", "001")
	hh := storetest.Must(g.Household(0))
	push(t, c, hh)
	moved := g.Edit(hh[1], `"AREA_URBAN"`)
	moved.VillageCode = "002"
	_, err := c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: "tab-a", Changes: []*rasoatv1.Change{moved}})
	if _, ok := violations(t, err)["changes[0].village_code"]; !ok {
		t.Fatalf("%v does not name changes[0].village_code", err)
	}
}

func TestPullStreamsBatchesResumableFromAnyCursor(t *testing.T) {
	c := serve(t)
	g := storetest.New("tab-a", "001")
	var pushed int
	for range 4 {
		hh := storetest.Must(g.Household(3))
		pushed += len(hh)
		push(t, c, hh)
	}
	resp := pull(t, c, &rasoatv1.PullRequest{ReplicaId: "tab-b", BatchSize: 50})
	var all []*rasoatv1.Change
	var cursors []uint64
	for i, r := range resp {
		if len(r.Changes) > 50 {
			t.Fatalf("batch %d holds %d changes, over the asked 50", i, len(r.Changes))
		}
		if r.Done != (i == len(resp)-1) {
			t.Fatalf("batch %d done=%v", i, r.Done)
		}
		all = append(all, r.Changes...)
		cursors = append(cursors, r.Cursor)
	}
	if len(all) != pushed {
		t.Fatalf("pulled %d changes, want %d", len(all), pushed)
	}
	for _, k := range []int{0, 2, len(cursors) - 1} {
		var rest []*rasoatv1.Change
		for _, r := range pull(t, c, &rasoatv1.PullRequest{ReplicaId: "tab-b", Cursor: cursors[k], BatchSize: 33}) {
			rest = append(rest, r.Changes...)
		}
		done := 0
		for _, r := range resp[:k+1] {
			done += len(r.Changes)
		}
		if len(rest) != len(all)-done {
			t.Fatalf("resuming at cursor %d gave %d changes, want %d", cursors[k], len(rest), len(all)-done)
		}
		for i := range rest {
			if !proto.Equal(rest[i], all[done+i]) {
				t.Fatalf("resuming at cursor %d: change %d differs", cursors[k], i)
			}
		}
	}
}

func TestPullFiltersByVillage(t *testing.T) {
	c := serve(t)
	push(t, c, storetest.Must(storetest.New("tab-a", "001").Household(1)))
	want := storetest.Must(storetest.New("tab-b", "002").Household(1))
	push(t, c, want)
	var got []*rasoatv1.Change
	for _, r := range pull(t, c, &rasoatv1.PullRequest{ReplicaId: "tab-b", VillageCodes: []string{"002"}}) {
		got = append(got, r.Changes...)
	}
	if len(got) != len(want) {
		t.Fatalf("pulled %d changes of village 002, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("change %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// snapshot runs one Snapshot to the end.
func snapshot(t testing.TB, c rasoatv1.SyncServiceClient, req *rasoatv1.SnapshotRequest) (states []*rasoatv1.EntityState, cursor uint64) {
	t.Helper()
	stream, err := c.Snapshot(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			t.Fatal("snapshot ended without a done response")
		}
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, r.Entities...)
		cursor = r.Cursor
		if r.Done {
			return states, cursor
		}
	}
}

// TestSnapshotThenPullEqualsReplayingTheLog: a first sync that merges the
// snapshot and pulls after its cursor ends with exactly the states a
// replica that replayed every change would hold.
func TestSnapshotThenPullEqualsReplayingTheLog(t *testing.T) {
	c := serve(t)
	g := storetest.New("tab-a", "001")
	var before []*rasoatv1.Change
	for range 30 {
		before = append(before, storetest.Must(g.Household(4))...)
	}
	push(t, c, before)
	states, cursor := snapshot(t, c, &rasoatv1.SnapshotRequest{ReplicaId: "tab-b"})
	if cursor == 0 || len(states) != 30*5 {
		t.Fatalf("snapshot: %d states at cursor %d, want 150 at a positive cursor", len(states), cursor)
	}
	// Writes after the snapshot reach the replica through Pull.
	var after []*rasoatv1.Change
	for _, ch := range before[:20] {
		if ch.Field == "headName" || ch.Field == "address" {
			after = append(after, g.Edit(ch, `"Pá Hu, bản Nậm"`))
		}
	}
	if len(after) == 0 {
		t.Fatal("generator wrote no headName or address in its first changes")
	}
	push(t, c, after)

	got := map[string]*entity.State{}
	for _, e := range states {
		var s entity.State
		if err := s.UnmarshalBinary(e.State); err != nil {
			t.Fatal(err)
		}
		got[e.EntityId] = &s
	}
	for _, r := range pull(t, c, &rasoatv1.PullRequest{ReplicaId: "tab-b", Cursor: cursor}) {
		for _, ch := range r.Changes {
			if _, err := got[ch.EntityId].Apply(ch); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]*entity.State{}
	for _, ch := range append(before, after...) {
		if want[ch.EntityId] == nil {
			want[ch.EntityId] = &entity.State{}
		}
		if _, err := want[ch.EntityId].Apply(ch); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d entities after snapshot and pull, want %d", len(got), len(want))
	}
	for id, w := range want {
		wb, _ := w.MarshalBinary()
		gb, _ := got[id].MarshalBinary()
		if !bytes.Equal(gb, wb) {
			t.Fatalf("entity %s differs after snapshot and pull", id)
		}
	}
	// A village filter applies to the snapshot too.
	if other, _ := snapshot(t, c, &rasoatv1.SnapshotRequest{ReplicaId: "tab-b", VillageCodes: []string{"002"}}); len(other) != 0 {
		t.Fatalf("snapshot of village 002 holds %d entities of 001", len(other))
	}
}

// TestPullAfterTheEndOfTheLogIsAFailedPrecondition: a replica whose cursor
// is past this server's log synced with a server that went further (a
// backup restored since); it must learn so, not get an empty "up to date".
func TestPullAfterTheEndOfTheLogIsAFailedPrecondition(t *testing.T) {
	c := serve(t)
	push(t, c, storetest.Must(storetest.New("tab-a", "001").Household(1)))
	end := pull(t, c, &rasoatv1.PullRequest{ReplicaId: "tab-b"})
	last := end[len(end)-1].Cursor
	if got := pull(t, c, &rasoatv1.PullRequest{ReplicaId: "tab-b", Cursor: last}); len(got) != 1 || len(got[0].Changes) != 0 || !got[0].Done {
		t.Fatalf("pull at the log's end = %v, want one empty done batch", got)
	}
	stream, err := c.Pull(context.Background(), &rasoatv1.PullRequest{ReplicaId: "tab-b", Cursor: last + 10})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("pull after %d with the log ending at %d: %v, want FailedPrecondition", last+10, last, err)
	}
	stream, err = c.Pull(context.Background(), &rasoatv1.PullRequest{ReplicaId: "tab-b", Cursor: 1 << 63})
	if err == nil {
		_, err = stream.Recv()
	}
	if v := violations(t, err); v["cursor"] == "" {
		t.Fatalf("a cursor past 2^63-1 names %v, want cursor", v)
	}
}
