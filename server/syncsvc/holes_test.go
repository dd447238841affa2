package syncsvc_test

// Regression tests for the holes in sync listed by the "holes" issue, one
// test per hole, each through the real API: the assembled server
// (server.New with WithSync) serving on a loopback TCP port, over a real
// SQLite file, called by a real gRPC client with grpc-go's defaults (so its
// receive limit is the default 4 MiB). Every refused request is also
// checked to have left the stored data exactly as it was, by a digest of
// the file's tables read through a connection of our own.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/rasoat/rasoat/server/store"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	"github.com/rasoat/rasoat/internal/merge"
	"github.com/rasoat/rasoat/internal/rpcerr"
	"github.com/rasoat/rasoat/internal/sqlitedb"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/store/storetest"
	"github.com/rasoat/rasoat/server/syncsvc"
	"golang.org/x/text/unicode/norm"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// ---------------------------------------------------------------------------
// A server over a file, and what is stored in it.

// holeServer is the real server over one SQLite file.
type holeServer struct {
	path string
	db   *sqlite.DB
	conn *grpc.ClientConn
	c    rasoatv1.SyncServiceClient
	stop func()
}

// startServer opens (or creates) the store at path and serves it with
// server.New on 127.0.0.1:0; the client has grpc-go's default options.
func startServer(t *testing.T, path string, opts ...syncsvc.Option) *holeServer {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.WithSync(db, opts...), server.WithShutdownTimeout(time.Second))
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		db.Close()
		t.Fatal(err)
	}
	s := &holeServer{path: path, db: db, conn: conn, c: rasoatv1.NewSyncServiceClient(conn)}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		conn.Close()
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	}
	t.Cleanup(s.stop)
	return s
}

// newServer serves a new file in t.TempDir().
func newServer(t *testing.T, opts ...syncsvc.Option) *holeServer {
	t.Helper()
	return startServer(t, filepath.Join(t.TempDir(), "rasoat.db"), opts...)
}

// stored is a digest of everything the file holds: the log, the entities'
// states and the log's id, with the row counts for messages.
type stored struct {
	changes, entities int
	digest            string
}

func (s stored) String() string {
	return fmt.Sprintf("%d changes, %d entities, digest %s", s.changes, s.entities, s.digest[:16])
}

// stored reads the file's logical content through a read-only connection
// of its own (not the server's), so it sees exactly what is committed.
func (s *holeServer) stored(t *testing.T) stored {
	t.Helper()
	ro, err := sql.Open(sqlitedb.Driver, sqlitedb.DSN(s.path, sqlitedb.Options{ReadOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	h := sha256.New()
	var out stored
	for _, q := range []struct {
		sql string
		n   *int
	}{
		{"SELECT * FROM log_runs ORDER BY first_seq", nil},
		{"SELECT * FROM entities ORDER BY id", &out.entities},
		{"SELECT * FROM log_meta ORDER BY id", nil},
	} {
		rows, err := ro.Query(q.sql)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(h, "%s %q\n", q.sql, cols)
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					fmt.Fprintf(h, "b%d:", len(b))
					h.Write(b)
				} else {
					fmt.Fprintf(h, "%T:%v|", v, v)
				}
			}
			h.Write([]byte{'\n'})
			if q.n != nil {
				*q.n++
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	if err := ro.QueryRow("SELECT coalesce(sum(n), 0) FROM log_runs").Scan(&out.changes); err != nil {
		t.Fatal(err)
	}
	out.digest = hex.EncodeToString(h.Sum(nil))
	return out
}

// untouched fails t unless the file holds exactly what before described.
func (s *holeServer) untouched(t *testing.T, before stored, what string) {
	t.Helper()
	if after := s.stored(t); after != before {
		t.Errorf("%s touched the store: before %v, after %v", what, before, after)
	}
}

// push pushes changes as replica and fails t on an error.
func (s *holeServer) push(t *testing.T, replica string, changes ...*rasoatv1.Change) *rasoatv1.PushResponse {
	t.Helper()
	res, err := s.c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: replica, Changes: changes})
	if err != nil {
		t.Fatalf("push of %d changes as %s: %v", len(changes), replica, err)
	}
	return res
}

// refusedPush pushes changes as replica, expecting a refusal with code and
// reason that leaves the store untouched; it returns the error's metadata
// and violations by field.
func (s *holeServer) refusedPush(t *testing.T, replica string, code codes.Code, reason rasoatv1.ErrorReason, changes ...*rasoatv1.Change) (map[string]string, map[string]rpcerr.Violation) {
	t.Helper()
	before := s.stored(t)
	_, err := s.c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: replica, Changes: changes})
	meta, vs := refusal(t, err, code, reason)
	s.untouched(t, before, "a refused push")
	return meta, vs
}

// refusal checks err's code and reason and returns its ErrorInfo metadata
// and its field violations by field.
func refusal(t *testing.T, err error, code codes.Code, reason rasoatv1.ErrorReason) (map[string]string, map[string]rpcerr.Violation) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want %v with reason %v", code, reason)
	}
	if got := status.Code(err); got != code {
		t.Fatalf("error %v: code %v, want %v", err, got, code)
	}
	got, meta := rpcerr.Info(err)
	if got != reason {
		t.Fatalf("error %v: reason %v, want %v", err, got, reason)
	}
	vs := map[string]rpcerr.Violation{}
	for _, v := range rpcerr.Violations(err) {
		vs[v.Field] = v
	}
	return meta, vs
}

// violation fails t unless vs holds field with reason, and returns it.
func violation(t *testing.T, vs map[string]rpcerr.Violation, field string, reason rasoatv1.ErrorReason) rpcerr.Violation {
	t.Helper()
	v, ok := vs[field]
	if !ok {
		t.Fatalf("violations %v do not name %s", vs, field)
	}
	if v.Reason != reason {
		t.Fatalf("violation %s: reason %v, want %v (%s)", field, v.Reason, reason, v.Desc)
	}
	return v
}

// pullAll runs one Pull to its end, returning its responses or the error.
func (s *holeServer) pullAll(req *rasoatv1.PullRequest) ([]*rasoatv1.PullResponse, error) {
	stream, err := s.c.Pull(context.Background(), req)
	if err != nil {
		return nil, err
	}
	var out []*rasoatv1.PullResponse
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

// snapshotAll runs one Snapshot to its end.
func (s *holeServer) snapshotAll(req *rasoatv1.SnapshotRequest) ([]*rasoatv1.SnapshotResponse, error) {
	stream, err := s.c.Snapshot(context.Background(), req)
	if err != nil {
		return nil, err
	}
	var out []*rasoatv1.SnapshotResponse
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

// state returns the server's state of one entity, from Snapshot.
func (s *holeServer) state(t *testing.T, id string) *entity.State {
	t.Helper()
	resp, err := s.snapshotAll(&rasoatv1.SnapshotRequest{ReplicaId: "reader", EntityIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp {
		for _, e := range r.Entities {
			if e.EntityId == id {
				var st entity.State
				if err := st.UnmarshalBinary(e.State); err != nil {
					t.Fatal(err)
				}
				return &st
			}
		}
	}
	t.Fatalf("snapshot holds no entity %s", id)
	return nil
}

// ---------------------------------------------------------------------------
// Changes.

// writer writes changes as one replica: its own sequence numbers and clock.
type writer struct {
	replica string
	seq     uint64
	clock   *hlc.Clock
}

func newWriter(replica string) *writer { return &writer{replica: replica, clock: hlc.New(nil)} }

// write returns a change to field of the entity c belongs to, seen bases.
func (w *writer) write(c *rasoatv1.Change, field, value string, base ...*rasoatv1.Stamp) *rasoatv1.Change {
	for _, b := range base {
		w.clock.Restore(hlc.Timestamp(b.Hlc))
	}
	w.seq++
	return &rasoatv1.Change{
		EntityId: c.EntityId, Kind: c.Kind, HouseholdId: c.HouseholdId, VillageCode: c.VillageCode,
		Field: field, Value: []byte(value),
		Stamp: &rasoatv1.Stamp{Hlc: uint64(w.clock.Now()), ReplicaId: w.replica},
		Seq:   w.seq,
		Base:  sortedStamps(base),
	}
}

// edit overwrites c's field with value, having seen c.
func (w *writer) edit(c *rasoatv1.Change, value string) *rasoatv1.Change {
	return w.write(c, c.Field, value, c.Stamp)
}

// review returns the first change of a new review of household hh.
func (w *writer) review(hh *rasoatv1.Change, field, value string) *rasoatv1.Change {
	return w.write(&rasoatv1.Change{
		EntityId: uuid.Must(uuid.NewV7()).String(), Kind: rasoatv1.EntityKind_ENTITY_KIND_REVIEW,
		HouseholdId: entity.HouseholdOf(hh), VillageCode: hh.VillageCode,
	}, field, value)
}

// member returns the first change of a new member of household hh.
func (w *writer) member(hh *rasoatv1.Change, field, value string) *rasoatv1.Change {
	return w.write(&rasoatv1.Change{
		EntityId: uuid.Must(uuid.NewV7()).String(), Kind: rasoatv1.EntityKind_ENTITY_KIND_MEMBER,
		HouseholdId: entity.HouseholdOf(hh), VillageCode: hh.VillageCode,
	}, field, value)
}

func sortedStamps(ss []*rasoatv1.Stamp) []*rasoatv1.Stamp {
	if len(ss) == 0 {
		return nil
	}
	out := make([]*rasoatv1.Stamp, len(ss))
	for i, s := range ss {
		out[i] = &rasoatv1.Stamp{Hlc: s.Hlc, ReplicaId: s.ReplicaId}
	}
	slices.SortFunc(out, func(a, b *rasoatv1.Stamp) int { return mstamp(a).Compare(mstamp(b)) })
	return out
}

func mstamp(s *rasoatv1.Stamp) merge.Stamp {
	return merge.Stamp{HLC: hlc.Timestamp(s.Hlc), Replica: s.ReplicaId}
}

func pstamp(s merge.Stamp) *rasoatv1.Stamp {
	return &rasoatv1.Stamp{Hlc: uint64(s.HLC), ReplicaId: s.Replica}
}

func clone(c *rasoatv1.Change) *rasoatv1.Change { return proto.Clone(c).(*rasoatv1.Change) }

// fieldOf returns the change of changes writing field (of the first entity
// that has it).
func fieldOf(t *testing.T, changes []*rasoatv1.Change, field string) *rasoatv1.Change {
	t.Helper()
	for _, c := range changes {
		if c.Field == field {
			return c
		}
	}
	t.Fatalf("no change writes %s", field)
	return nil
}

// jsonString is a JSON string value of exactly n bytes (n >= 2), distinct
// per tag.
func jsonString(tag string, n int) string {
	s := tag + " " + strings.Repeat("x", n-2-len(tag)-1)
	return `"` + s + `"`
}

func highSeq(changes []*rasoatv1.Change) uint64 {
	var m uint64
	for _, c := range changes {
		m = max(m, c.Seq)
	}
	return m
}

// household returns the first change of a new household in village.
func (w *writer) household(village, field, value string) *rasoatv1.Change {
	return w.write(&rasoatv1.Change{
		EntityId: uuid.Must(uuid.NewV7()).String(), Kind: rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, VillageCode: village,
	}, field, value)
}

// heads returns the stamps of the visible values of field of entity id.
func (s *holeServer) heads(t *testing.T, id, field string) []merge.Head {
	t.Helper()
	f := s.state(t, id).Field(field)
	if f == nil {
		t.Fatalf("entity %s has no field %s", id, field)
	}
	return f.Heads
}

// ---------------------------------------------------------------------------
// Hole 1: same origin, different content.

// TestHoleOriginSeqNamesOneContent: an (origin, seq) names one change. A
// push reusing a stored one with other content is refused with
// CONTENT_MISMATCH and what the replica needs to recover, never counted as
// a duplicate; so is a batch holding two changes with one (origin, seq).
// The identical resend is still a duplicate, and every push reports the
// greatest seq stored from the pushing replica.
func TestHoleOriginSeqNamesOneContent(t *testing.T) {
	s := newServer(t)
	g := storetest.New("tab-a", "001")
	hh := storetest.Must(g.Household(1))
	res := s.push(t, "tab-a", hh...)
	high := highSeq(hh)
	if res.Accepted != uint32(len(hh)) || res.ReplicaHighSeq != high {
		t.Fatalf("first push = %v, want %d accepted and replica_high_seq %d", res, len(hh), high)
	}
	name := fieldOf(t, hh, "headName")
	fresh := newWriter("tab-b") // changes of another origin, new to the server

	t.Run("an identical resend is a duplicate and touches nothing", func(t *testing.T) {
		before := s.stored(t)
		again := s.push(t, "tab-a", hh...)
		if again.Accepted != 0 || again.Duplicates != uint32(len(hh)) || again.ServerSeq != res.ServerSeq || again.ReplicaHighSeq != high {
			t.Fatalf("resend = %v, want 0 accepted, %d duplicates, server_seq %d, replica_high_seq %d", again, len(hh), res.ServerSeq, high)
		}
		s.untouched(t, before, "an identical resend")
	})

	t.Run("replica_high_seq is the pushing replica's, not the changes' origin's", func(t *testing.T) {
		relayed := s.push(t, "commune-1", hh[:3]...)
		if relayed.Duplicates != 3 || relayed.ReplicaHighSeq != 0 {
			t.Fatalf("a relay of tab-a's changes by commune-1 = %v, want 3 duplicates and replica_high_seq 0", relayed)
		}
	})

	t.Run("a stored origin and seq with other content is refused", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			modify func(c *rasoatv1.Change)
		}{
			{"other value", func(c *rasoatv1.Change) { c.Value = []byte(`"Lò Thị Dung"`) }},
			{"other stamp", func(c *rasoatv1.Change) { c.Stamp.Hlc++ }},
			{"other base", func(c *rasoatv1.Change) { c.Base = []*rasoatv1.Stamp{{Hlc: c.Stamp.Hlc - 1, ReplicaId: "tab-z"}} }},
			{"other field", func(c *rasoatv1.Change) { c.Field = "address" }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				forged := clone(name)
				tc.modify(forged)
				ok := fresh.household("001", "headName", `"Vàng A Páo"`)
				meta, vs := s.refusedPush(t, "tab-a", codes.InvalidArgument, rasoatv1.ErrorReason_CONTENT_MISMATCH, ok, forged)
				violation(t, vs, "changes[1].seq", rasoatv1.ErrorReason_CONTENT_MISMATCH)
				want := map[string]string{"index": "1", "origin": "tab-a", "seq": fmt.Sprint(name.Seq), "replica_high_seq": fmt.Sprint(high)}
				for k, v := range want {
					if meta[k] != v {
						t.Errorf("metadata %s = %q, want %q (all: %v)", k, meta[k], v, meta)
					}
				}
			})
		}
	})

	t.Run("two changes with one origin and seq in one batch are refused", func(t *testing.T) {
		next := storetest.Must(g.Household(0))
		area := fieldOf(t, next, "area")
		twin := clone(area)
		twin.Value = []byte(`"AREA_URBAN"`)
		batch := append(slices.Clone(next), twin)
		meta, vs := s.refusedPush(t, "tab-a", codes.InvalidArgument, rasoatv1.ErrorReason_CONTENT_MISMATCH, batch...)
		violation(t, vs, fmt.Sprintf("changes[%d].seq", len(next)), rasoatv1.ErrorReason_CONTENT_MISMATCH)
		want := map[string]string{"index": fmt.Sprint(len(next)), "origin": "tab-a", "seq": fmt.Sprint(area.Seq), "replica_high_seq": fmt.Sprint(high)}
		for k, v := range want {
			if meta[k] != v {
				t.Errorf("metadata %s = %q, want %q (all: %v)", k, meta[k], v, meta)
			}
		}
		// The same batch without its twin is stored.
		if got := s.push(t, "tab-a", next...); got.Accepted != uint32(len(next)) || got.ReplicaHighSeq != highSeq(next) {
			t.Fatalf("the batch without its twin = %v, want %d accepted, replica_high_seq %d", got, len(next), highSeq(next))
		}
		high = highSeq(next)
	})

	t.Run("an identical repeat in one batch is a duplicate", func(t *testing.T) {
		c := fresh.household("001", "headName", `"Giàng Thị Mỷ"`)
		got := s.push(t, "tab-b", c, clone(c))
		if got.Accepted != 1 || got.Duplicates != 1 || got.ReplicaHighSeq != c.Seq {
			t.Fatalf("push of a change twice = %v, want 1 accepted, 1 duplicate, replica_high_seq %d", got, c.Seq)
		}
	})
}

// ---------------------------------------------------------------------------
// Hole 2: bases naming stamps nobody wrote.

// TestHoleBaseNamesAStoredChangeOfItsField: a base stamp must name a change
// to the same field of the same entity that the server holds (even if
// superseded since) or that comes earlier in the batch, and be older than
// its change; so a forged base can no longer hide a conflict.
func TestHoleBaseNamesAStoredChangeOfItsField(t *testing.T) {
	s := newServer(t)
	hh := storetest.Must(storetest.New("tab-a", "001").Household(0))
	s.push(t, "tab-a", hh...)
	other := storetest.Must(storetest.New("tab-b", "001").Household(0))
	s.push(t, "tab-b", other...)
	name, addr := fieldOf(t, hh, "headName"), fieldOf(t, hh, "address")
	otherName := fieldOf(t, other, "headName")
	w := newWriter("tab-c")
	now := time.Now()

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			batch  func() []*rasoatv1.Change
			reason rasoatv1.ErrorReason
			field  string
		}{
			{"a base stamped a day in the future", func() []*rasoatv1.Change {
				e := w.edit(name, `"Lò Văn Pọm"`)
				e.Base = []*rasoatv1.Stamp{{Hlc: uint64(hlc.At(now.Add(24*time.Hour), 0)), ReplicaId: "tab-a"}}
				return []*rasoatv1.Change{e}
			}, rasoatv1.ErrorReason_ERROR_REASON_UNSPECIFIED /* see below */, "changes[0].base[0].hlc"},
			{"a base naming a stamp no change has", func() []*rasoatv1.Change {
				e := w.edit(name, `"Lò Văn Pọm"`)
				e.Base = []*rasoatv1.Stamp{{Hlc: name.Stamp.Hlc, ReplicaId: "tab-z"}}
				return []*rasoatv1.Change{w.edit(addr, `"Bản Nà Pàn"`), e}
			}, rasoatv1.ErrorReason_BASE_UNKNOWN, "changes[1].base[0]"},
			{"a second base naming a stamp no change has", func() []*rasoatv1.Change {
				e := w.edit(name, `"Lò Văn Pọm"`)
				e.Base = []*rasoatv1.Stamp{name.Stamp, {Hlc: name.Stamp.Hlc + 1, ReplicaId: "tab-a"}}
				e.Stamp.Hlc = max(e.Stamp.Hlc, name.Stamp.Hlc+2)
				return []*rasoatv1.Change{e}
			}, rasoatv1.ErrorReason_BASE_UNKNOWN, "changes[0].base[1]"},
			{"a base naming a stored change of another field", func() []*rasoatv1.Change {
				e := w.edit(name, `"Lò Văn Pọm"`)
				e.Base = []*rasoatv1.Stamp{addr.Stamp}
				return []*rasoatv1.Change{e}
			}, rasoatv1.ErrorReason_BASE_UNKNOWN, "changes[0].base[0]"},
			{"a base naming a stored change of another entity's same field", func() []*rasoatv1.Change {
				e := w.write(name, "headName", `"Lò Văn Pọm"`, otherName.Stamp)
				return []*rasoatv1.Change{e}
			}, rasoatv1.ErrorReason_BASE_UNKNOWN, "changes[0].base[0]"},
			{"a base naming a change of another field earlier in the batch", func() []*rasoatv1.Change {
				a := w.edit(addr, `"Bản Nà Pàn"`)
				e := w.write(name, "headName", `"Lò Văn Pọm"`, name.Stamp, a.Stamp)
				return []*rasoatv1.Change{a, e}
			}, rasoatv1.ErrorReason_BASE_UNKNOWN, "changes[1].base[1]"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := s.stored(t)
				_, err := s.c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: "tab-c", Changes: tc.batch()})
				reason := tc.reason
				if reason == rasoatv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
					// A base not older than its change: errors.proto lists it
					// under BASE_UNKNOWN, the service answers INVALID_FIELD
					// (entity.Validate); both refuse the change for good.
					reason = rpcerr.Reason(err)
					if reason != rasoatv1.ErrorReason_BASE_UNKNOWN && reason != rasoatv1.ErrorReason_INVALID_FIELD {
						t.Fatalf("reason %v, want BASE_UNKNOWN or INVALID_FIELD: %v", reason, err)
					}
				}
				_, vs := refusal(t, err, codes.InvalidArgument, reason)
				violation(t, vs, tc.field, reason)
				s.untouched(t, before, "a push with an unknown base")
			})
		}
	})

	t.Run("accepted", func(t *testing.T) {
		a := w.edit(name, `"Lò Văn Pọm"`)
		b := w.edit(a, `"Lò Văn Pọng"`)
		if got := s.push(t, "tab-c", a, b); got.Accepted != 2 {
			t.Fatalf("a base naming a change earlier in the batch: %v, want 2 accepted", got)
		}
		// name is superseded now: no longer visible, but stored.
		for _, h := range s.heads(t, name.EntityId, "headName") {
			if h.Stamp == mstamp(name.Stamp) {
				t.Fatalf("headName's first value is still visible after two edits")
			}
		}
		late := newWriter("tab-d").edit(name, `"Lò Văn Pọm"`)
		if got := s.push(t, "tab-d", late); got.Accepted != 1 {
			t.Fatalf("a base naming a superseded stored change: %v, want 1 accepted", got)
		}
	})

	t.Run("a forged base cannot hide a conflict between two tablets", func(t *testing.T) {
		hh2 := storetest.Must(storetest.New("tab-h", "002").Household(0))
		s.push(t, "tab-h", hh2...)
		orig := fieldOf(t, hh2, "headName")
		va, vb := newWriter("tab-p").edit(orig, `"Sùng A Chứ"`), newWriter("tab-q").edit(orig, `"Sùng A Chử"`)
		s.push(t, "tab-p", va)
		s.push(t, "tab-q", vb)
		conflicted := func(t *testing.T) {
			t.Helper()
			f := s.state(t, orig.EntityId).Field("headName")
			_, others, ok := f.Conflict()
			if len(f.Heads) != 2 || !ok || len(others) != 1 {
				t.Fatalf("headName has %d heads (conflict %v), want the 2 tablets' values in conflict", len(f.Heads), ok)
			}
		}
		conflicted(t)
		evil := newWriter("tab-evil")
		for _, tc := range []struct {
			name         string
			stamp        time.Time
			baseA, baseB uint64
			code         codes.Code
			reason       rasoatv1.ErrorReason
			field        string
		}{
			{"stamps just past both heads", time.Now(), va.Stamp.Hlc + 1, vb.Stamp.Hlc + 1, codes.InvalidArgument, rasoatv1.ErrorReason_BASE_UNKNOWN, "changes[0].base[0]"},
			{"stamps hours ahead, within the clock drift", time.Now().Add(23 * time.Hour), uint64(hlc.At(time.Now().Add(22*time.Hour), 0)), uint64(hlc.At(time.Now().Add(22*time.Hour), 0)), codes.InvalidArgument, rasoatv1.ErrorReason_BASE_UNKNOWN, "changes[0].base[0]"},
			{"stamps a day ahead", time.Now().Add(25 * time.Hour), uint64(hlc.At(time.Now().Add(24*time.Hour), 0)), uint64(hlc.At(time.Now().Add(24*time.Hour), 0)), codes.InvalidArgument, rasoatv1.ErrorReason_CLOCK_AHEAD, "changes[0].stamp.hlc"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				forged := evil.write(orig, "headName", `"Kẻ Gian"`)
				forged.Stamp.Hlc = uint64(hlc.At(tc.stamp, 0))
				forged.Base = sortedStamps([]*rasoatv1.Stamp{{Hlc: tc.baseA, ReplicaId: "tab-p"}, {Hlc: tc.baseB, ReplicaId: "tab-q"}})
				if forged.Stamp.Hlc <= forged.Base[1].Hlc {
					forged.Stamp.Hlc = forged.Base[1].Hlc + 1
				}
				_, vs := s.refusedPush(t, "tab-evil", tc.code, tc.reason, forged)
				violation(t, vs, tc.field, tc.reason)
				conflicted(t)
			})
		}
		// Resolving with the stamps of the values really held is accepted.
		fix := evil.write(orig, "headName", `"Sùng A Chứ"`, va.Stamp, vb.Stamp)
		s.push(t, "tab-evil", fix)
		if f := s.state(t, orig.EntityId).Field("headName"); len(f.Heads) != 1 {
			t.Fatalf("after a resolution naming both heads, %d heads remain", len(f.Heads))
		}
	})
}

// ---------------------------------------------------------------------------
// Hole 3: sizes.

// TestHoleSizesAreBounded: every length and count a change carries into
// the log for ever is bounded, and one over its bound is refused naming
// the field, with TOO_LARGE (or ENTITY_TOO_LARGE for what the stored state
// forbids); at the bound it is accepted.
func TestHoleSizesAreBounded(t *testing.T) {
	s := newServer(t)
	hh := storetest.Must(storetest.New("tab-a", "001").Household(0))
	s.push(t, "tab-a", hh...)
	name := fieldOf(t, hh, "headName")
	longID := strings.Repeat("r", entity.MaxReplicaIDLen+1)
	longVillage := strings.Repeat("v", entity.MaxVillageCodeLen+1)
	w := newWriter("tab-w")

	t.Run("a code over its bound is TOO_LARGE", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			call  func() error
			field string
		}{
			{"push replica_id", func() error {
				_, err := s.c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: longID, Changes: []*rasoatv1.Change{w.edit(name, `"A"`)}})
				return err
			}, "replica_id"},
			{"change stamp.replica_id", func() error {
				c := w.edit(name, `"A"`)
				c.Stamp.ReplicaId = longID
				_, err := s.c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: "tab-w", Changes: []*rasoatv1.Change{w.edit(name, `"B"`), c}})
				return err
			}, "changes[1].stamp.replica_id"},
			{"change base replica_id", func() error {
				c := w.edit(name, `"A"`)
				c.Base[0].ReplicaId = longID
				_, err := s.c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: "tab-w", Changes: []*rasoatv1.Change{c}})
				return err
			}, "changes[0].base[0].replica_id"},
			{"change village_code", func() error {
				c := w.household(longVillage, "headName", `"A"`)
				_, err := s.c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: "tab-w", Changes: []*rasoatv1.Change{c}})
				return err
			}, "changes[0].village_code"},
			{"pull replica_id", func() error {
				_, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: longID})
				return err
			}, "replica_id"},
			{"pull village_codes", func() error {
				_, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: "tab-w", VillageCodes: []string{"001", longVillage}})
				return err
			}, "village_codes[1]"},
			{"snapshot replica_id", func() error {
				_, err := s.snapshotAll(&rasoatv1.SnapshotRequest{ReplicaId: longID})
				return err
			}, "replica_id"},
			{"snapshot village_codes", func() error {
				_, err := s.snapshotAll(&rasoatv1.SnapshotRequest{ReplicaId: "tab-w", VillageCodes: []string{longVillage}})
				return err
			}, "village_codes[0]"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := s.stored(t)
				_, vs := refusal(t, tc.call(), codes.InvalidArgument, rasoatv1.ErrorReason_TOO_LARGE)
				violation(t, vs, tc.field, rasoatv1.ErrorReason_TOO_LARGE)
				s.untouched(t, before, "a refused "+tc.name)
			})
		}
	})

	t.Run("codes at their bounds are accepted", func(t *testing.T) {
		id := strings.Repeat("r", entity.MaxReplicaIDLen)
		village := strings.Repeat("v", entity.MaxVillageCodeLen)
		c := newWriter(id).household(village, "headName", `"Vàng A Páo"`)
		if got := s.push(t, id, c); got.Accepted != 1 {
			t.Fatalf("push = %v", got)
		}
		resp, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: id, VillageCodes: []string{village}})
		if err != nil || len(resp) != 1 || len(resp[0].Changes) != 1 {
			t.Fatalf("pull of the village at the bound = %v, %v", resp, err)
		}
	})

	t.Run("a base over MaxBase stamps is TOO_LARGE", func(t *testing.T) {
		c := w.edit(name, `"A"`)
		c.Base = nil
		for i := range entity.MaxBase + 1 {
			c.Base = append(c.Base, &rasoatv1.Stamp{Hlc: name.Stamp.Hlc, ReplicaId: fmt.Sprintf("tab-%02d", i)})
		}
		_, vs := s.refusedPush(t, "tab-w", codes.InvalidArgument, rasoatv1.ErrorReason_TOO_LARGE, w.edit(name, `"B"`), c)
		violation(t, vs, "changes[1].base", rasoatv1.ErrorReason_TOO_LARGE)
	})

	t.Run("a value over MaxValueSize is TOO_LARGE", func(t *testing.T) {
		big := w.review(name, "comment", jsonString("big", entity.MaxValueSize+1))
		_, vs := s.refusedPush(t, "tab-w", codes.InvalidArgument, rasoatv1.ErrorReason_TOO_LARGE, w.review(name, "status", `"draft"`), big)
		violation(t, vs, "changes[1].value", rasoatv1.ErrorReason_TOO_LARGE)
		if got := s.push(t, "tab-w", w.review(name, "comment", jsonString("max", entity.MaxValueSize))); got.Accepted != 1 {
			t.Fatalf("a value of MaxValueSize bytes: %v, want accepted", got)
		}
	})

	t.Run("a field keeps at most MaxHeads concurrent values", func(t *testing.T) {
		var heads []*rasoatv1.Change
		for i := range entity.MaxHeads {
			heads = append(heads, newWriter(fmt.Sprintf("tab-%02d", i)).edit(name, fmt.Sprintf(`"Người %d"`, i)))
		}
		s.push(t, "tab-00", heads...)
		if n := len(s.heads(t, name.EntityId, "headName")); n != entity.MaxHeads {
			t.Fatalf("headName holds %d heads, want %d", n, entity.MaxHeads)
		}
		one := newWriter("tab-xx").edit(name, `"Người thừa"`)
		_, vs := s.refusedPush(t, "tab-xx", codes.InvalidArgument, rasoatv1.ErrorReason_ENTITY_TOO_LARGE, one)
		violation(t, vs, "changes[0].field", rasoatv1.ErrorReason_ENTITY_TOO_LARGE)
		// The way out: a write that saw every head resolves the field.
		var base []*rasoatv1.Stamp
		for _, h := range heads {
			base = append(base, h.Stamp)
		}
		fix := newWriter("officer").write(name, "headName", `"Người 0"`, base...)
		s.push(t, "officer", fix)
		if n := len(s.heads(t, name.EntityId, "headName")); n != 1 {
			t.Fatalf("after a resolution headName holds %d heads, want 1", n)
		}
	})

	t.Run("an entity's state over MaxStateSize is ENTITY_TOO_LARGE", func(t *testing.T) {
		// MaxHeads concurrent values of MaxValueSize bytes weigh more than
		// MaxStateSize: the last of them is refused, with the batch.
		rv := w.review(name, "comment", `"Mở đầu"`)
		s.push(t, "tab-w", rv)
		var batch []*rasoatv1.Change
		for i := range entity.MaxHeads {
			batch = append(batch, newWriter(fmt.Sprintf("big-%02d", i)).edit(rv, jsonString(fmt.Sprint(i), entity.MaxValueSize)))
		}
		_, vs := s.refusedPush(t, "big-00", codes.InvalidArgument, rasoatv1.ErrorReason_ENTITY_TOO_LARGE, batch...)
		violation(t, vs, fmt.Sprintf("changes[%d].value", len(batch)-1), rasoatv1.ErrorReason_ENTITY_TOO_LARGE)
	})
}

// TestHoleNoResponseOverFourMiB: whatever the store holds within the
// bounds, no Pull or Snapshot response reaches grpc-go's default 4 MiB
// receive limit, which would make a replica unable to sync ever again. The
// store is filled with the largest things it takes: review comments of
// MaxValueSize bytes, fields of MaxHeads concurrent values, resolutions
// naming MaxBase stamps of replica ids of MaxReplicaIDLen bytes, in a
// village code of MaxVillageCodeLen bytes.
func TestHoleNoResponseOverFourMiB(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 7 MB of maximal changes: about 5 s under -race")
	}
	s := newServer(t)
	village := strings.Repeat("v", entity.MaxVillageCodeLen)
	rep := func(i int) string { return fmt.Sprintf("%s%04d", strings.Repeat("r", entity.MaxReplicaIDLen-4), i) }
	hh := storetest.Must(storetest.New(rep(100), village).Household(0))
	s.push(t, rep(100), hh...)
	var ws []*writer
	for i := range entity.MaxHeads + 1 {
		ws = append(ws, newWriter(rep(i)))
	}
	// The largest value of which MaxHeads fit in one entity's state.
	headSize := (entity.MaxStateSize - 8<<10) / entity.MaxHeads
	const reviews, rounds = 8, 2
	var ids []string
	for r := range reviews {
		// One review's history, pushed as one batch (a commune server
		// relaying its tablets' changes): a first comment, then rounds of
		// MaxHeads concurrent comments each resolved by a comment naming
		// them all, and a last round left unresolved.
		first := ws[0].review(hh[0], "comment", jsonString(fmt.Sprintf("r%d", r), entity.MaxValueSize))
		ids = append(ids, first.EntityId)
		batch := []*rasoatv1.Change{first}
		seen := []*rasoatv1.Stamp{first.Stamp}
		for round := range rounds + 1 {
			var stamps []*rasoatv1.Stamp
			for i := range entity.MaxHeads {
				h := ws[i+1].write(first, "comment", jsonString(fmt.Sprintf("r%d.%d.%d", r, round, i), headSize), seen...)
				batch = append(batch, h)
				stamps = append(stamps, h.Stamp)
			}
			if round == rounds {
				break // leave the field at MaxHeads values
			}
			fix := ws[0].write(first, "comment", jsonString(fmt.Sprintf("r%d.%d", r, round), entity.MaxValueSize), stamps...)
			batch = append(batch, fix)
			seen = []*rasoatv1.Stamp{fix.Stamp}
		}
		s.push(t, "commune-1", batch...)
		if n := len(s.heads(t, first.EntityId, "comment")); n != entity.MaxHeads {
			t.Fatalf("review %d's comment holds %d values, want %d", r, n, entity.MaxHeads)
		}
	}
	st := s.stored(t)
	t.Logf("store holds %v", st)

	const limit = 4 << 20
	for _, req := range []*rasoatv1.PullRequest{
		{ReplicaId: rep(99)},
		{ReplicaId: rep(99), BatchSize: syncsvc.MaxPullBatch},
		{ReplicaId: rep(99), BatchSize: syncsvc.MaxPullBatch, VillageCodes: []string{village}},
	} {
		resp, err := s.pullAll(req)
		if err != nil {
			t.Fatalf("pull %v: %v", req, err)
		}
		n, largest := 0, 0
		for _, r := range resp {
			size := proto.Size(r)
			largest = max(largest, size)
			if size >= limit {
				t.Errorf("pull %v: a response of %d bytes, over 4 MiB", req, size)
			}
			n += len(r.Changes)
		}
		if n != st.changes || len(resp) < 3 {
			t.Fatalf("pull %v: %d changes in %d responses, want all %d in several", req, n, len(resp), st.changes)
		}
		t.Logf("pull (batch %d): %d responses, the largest %d bytes", req.BatchSize, len(resp), largest)
	}
	for _, req := range []*rasoatv1.SnapshotRequest{
		{ReplicaId: rep(99)},
		{ReplicaId: rep(99), VillageCodes: []string{village}},
		{ReplicaId: rep(99), EntityIds: ids},
	} {
		resp, err := s.snapshotAll(req)
		if err != nil {
			t.Fatalf("snapshot %v: %v", req.VillageCodes, err)
		}
		n, largest := 0, 0
		for _, r := range resp {
			size := proto.Size(r)
			largest = max(largest, size)
			if size >= limit {
				t.Errorf("snapshot: a response of %d bytes, over 4 MiB", size)
			}
			n += len(r.Entities)
		}
		want := st.entities
		if req.EntityIds != nil {
			want = len(ids)
		}
		if n != want || len(resp) < 2 {
			t.Fatalf("snapshot: %d entities in %d responses, want %d in several", n, len(resp), want)
		}
		t.Logf("snapshot: %d responses, the largest %d bytes", len(resp), largest)
	}
}

// ---------------------------------------------------------------------------
// Hole 4: request limits and malformed bytes.

// TestHoleRequestLimitsAreInvalidArgument: a request over a count limit is
// InvalidArgument with TOO_LARGE naming the field, not Internal with SQL
// text; a request at the limit is answered.
func TestHoleRequestLimitsAreInvalidArgument(t *testing.T) {
	s := newServer(t)
	hh := storetest.Must(storetest.New("tab-a", "001").Household(2))
	s.push(t, "tab-a", hh...)
	villages := func(n int) []string {
		out := []string{"001"}
		for i := 1; i < n; i++ {
			out = append(out, fmt.Sprintf("v%05d", i))
		}
		return out
	}
	ids := func(n int) []string {
		out := []string{hh[0].EntityId}
		for len(out) < n {
			out = append(out, uuid.Must(uuid.NewV7()).String())
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"a push of more than MaxPushBatch changes", func() error {
			changes := make([]*rasoatv1.Change, syncsvc.MaxPushBatch+1)
			for i := range changes {
				changes[i] = &rasoatv1.Change{}
			}
			_, err := s.c.Push(context.Background(), &rasoatv1.PushRequest{ReplicaId: "tab-a", Changes: changes})
			return err
		}, "changes"},
		{"a pull naming more than MaxVillages villages", func() error {
			_, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: "tab-a", VillageCodes: villages(syncsvc.MaxVillages + 1)})
			return err
		}, "village_codes"},
		{"a snapshot naming more than MaxVillages villages", func() error {
			_, err := s.snapshotAll(&rasoatv1.SnapshotRequest{ReplicaId: "tab-a", VillageCodes: villages(syncsvc.MaxVillages + 1)})
			return err
		}, "village_codes"},
		{"a snapshot naming more than MaxSnapshotEntities entities", func() error {
			_, err := s.snapshotAll(&rasoatv1.SnapshotRequest{ReplicaId: "tab-a", EntityIds: ids(syncsvc.MaxSnapshotEntities + 1)})
			return err
		}, "entity_ids"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.stored(t)
			err := tc.call()
			_, vs := refusal(t, err, codes.InvalidArgument, rasoatv1.ErrorReason_TOO_LARGE)
			violation(t, vs, tc.field, rasoatv1.ErrorReason_TOO_LARGE)
			msg := strings.ToLower(status.Convert(err).Message())
			for _, sqlText := range []string{"sql", "select", "variable", "internal"} {
				if strings.Contains(msg, sqlText) {
					t.Errorf("message %q holds %q", msg, sqlText)
				}
			}
			s.untouched(t, before, "a refused request")
		})
	}
	t.Run("a request at the limit is answered", func(t *testing.T) {
		if resp, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: "tab-a", VillageCodes: villages(syncsvc.MaxVillages)}); err != nil || len(resp) != 1 || len(resp[0].Changes) != len(hh) {
			t.Errorf("pull naming MaxVillages villages: %v", err)
		}
		if resp, err := s.snapshotAll(&rasoatv1.SnapshotRequest{ReplicaId: "tab-a", VillageCodes: villages(syncsvc.MaxVillages)}); err != nil || len(resp) != 1 || len(resp[0].Entities) != 3 {
			t.Errorf("snapshot naming MaxVillages villages: %v", err)
		}
		if resp, err := s.snapshotAll(&rasoatv1.SnapshotRequest{ReplicaId: "tab-a", EntityIds: ids(syncsvc.MaxSnapshotEntities)}); err != nil || len(resp) != 1 || len(resp[0].Entities) != 1 {
			t.Errorf("snapshot naming MaxSnapshotEntities entities: %v", err)
		}
	})
}

// rawCodec sends the bytes it is given as the request, unchecked, and
// takes responses as bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*p = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// callRaw sends body as the request of method and returns the call's
// error once every response is read.
func callRaw(conn *grpc.ClientConn, method string, stream bool, body []byte) error {
	ctx := context.Background()
	codec := grpc.ForceCodecV2(rawCodec{})
	if !stream {
		var resp []byte
		return conn.Invoke(ctx, method, body, &resp, codec)
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method, codec)
	if err != nil {
		return err
	}
	if err := s.SendMsg(body); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for {
		var m []byte
		if err := s.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// TestHoleMalformedBytesAreMalformedRequest: bytes that are not a message
// of the request's type are InvalidArgument with MALFORMED_REQUEST, on
// every method, and touch nothing.
func TestHoleMalformedBytesAreMalformedRequest(t *testing.T) {
	s := newServer(t)
	s.push(t, "tab-a", storetest.Must(storetest.New("tab-a", "001").Household(1))...)
	garbage := []struct {
		name string
		body []byte
	}{
		{"a truncated tag", []byte{0xff, 0xff, 0xff}},
		{"a length past the end", []byte{0x0a, 0x10, 'a', 'b'}},
		{"a string that is not UTF-8", []byte{0x0a, 0x02, 0xff, 0xfe}},
		{"an end-group tag without its group", []byte{0x0c}},
	}
	for _, m := range []struct {
		method string
		stream bool
		msg    proto.Message
	}{
		{rasoatv1.SyncService_Push_FullMethodName, false, &rasoatv1.PushRequest{}},
		{rasoatv1.SyncService_Pull_FullMethodName, true, &rasoatv1.PullRequest{}},
		{rasoatv1.SyncService_Snapshot_FullMethodName, true, &rasoatv1.SnapshotRequest{}},
	} {
		cases := garbage
		if !m.stream {
			// A change whose own bytes are malformed, inside a valid request.
			cases = append(slices.Clone(cases), struct {
				name string
				body []byte
			}{"a change with a truncated tag", []byte{0x0a, 0x05, 't', 'a', 'b', '-', 'a', 0x12, 0x02, 0xff, 0xff}})
		}
		for _, g := range cases {
			t.Run(m.method+"/"+g.name, func(t *testing.T) {
				if err := proto.Unmarshal(g.body, m.msg); err == nil {
					t.Fatalf("test bug: %x is a valid %T", g.body, m.msg)
				}
				before := s.stored(t)
				err := callRaw(s.conn, m.method, m.stream, g.body)
				refusal(t, err, codes.InvalidArgument, rasoatv1.ErrorReason_MALFORMED_REQUEST)
				s.untouched(t, before, "a malformed request")
			})
		}
	}
}

// ---------------------------------------------------------------------------
// Hole 6: members in the wrong village.

// TestHoleMembersBelongToTheirHouseholdsVillage: a member or review is
// written in its household's village, to a household the server holds (or
// that comes before it in the same batch).
func TestHoleMembersBelongToTheirHouseholdsVillage(t *testing.T) {
	s := newServer(t)
	hh := storetest.Must(storetest.New("tab-a", "001").Household(1))
	s.push(t, "tab-a", hh...)
	var stored *rasoatv1.Change // the member
	for _, c := range hh {
		if c.Kind == rasoatv1.EntityKind_ENTITY_KIND_MEMBER {
			stored = c
			break
		}
	}
	householdFields := len(storetest.New("x", "004").Household(0)) // the changes enrolling a household
	w := newWriter("tab-b")
	elsewhere := func(c *rasoatv1.Change) *rasoatv1.Change { c.VillageCode = "002"; return c }
	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			batch func() []*rasoatv1.Change
			field string
		}{
			{"a member in another village than its household's", func() []*rasoatv1.Change {
				return []*rasoatv1.Change{w.edit(hh[1], `"AREA_URBAN"`), elsewhere(w.member(hh[0], "fullName", `"Lò Thị Dung"`))}
			}, "changes[1].village_code"},
			{"a review in another village than its household's", func() []*rasoatv1.Change {
				return []*rasoatv1.Change{elsewhere(w.review(hh[0], "status", `"draft"`))}
			}, "changes[0].village_code"},
			{"a member of a household the server does not hold", func() []*rasoatv1.Change {
				m := w.member(hh[0], "fullName", `"Lò Thị Dung"`)
				m.HouseholdId = uuid.Must(uuid.NewV7()).String()
				return []*rasoatv1.Change{m}
			}, "changes[0].household_id"},
			{"a review of a household the server does not hold", func() []*rasoatv1.Change {
				r := w.review(hh[0], "status", `"draft"`)
				r.HouseholdId = uuid.Must(uuid.NewV7()).String()
				return []*rasoatv1.Change{w.edit(hh[1], `"AREA_URBAN"`), r}
			}, "changes[1].household_id"},
			{"a member whose household is a member", func() []*rasoatv1.Change {
				m := w.member(hh[0], "fullName", `"Lò Thị Dung"`)
				m.HouseholdId = stored.EntityId
				return []*rasoatv1.Change{m}
			}, "changes[0].household_id"},
			{"a member before its household in the batch", func() []*rasoatv1.Change {
				h := storetest.Must(storetest.New("tab-c", "003").Household(1))
				var members, household []*rasoatv1.Change
				for _, c := range h {
					if c.Kind == rasoatv1.EntityKind_ENTITY_KIND_MEMBER {
						members = append(members, c)
					} else {
						household = append(household, c)
					}
				}
				return append(members, household...)
			}, "changes[0].household_id"},
			{"a member in another village than its household earlier in the batch", func() []*rasoatv1.Change {
				h := storetest.Must(storetest.New("tab-d", "004").Household(0))
				return append(h, elsewhere(w.member(h[0], "fullName", `"Lò Thị Dung"`)))
			}, fmt.Sprintf("changes[%d].village_code", householdFields)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, vs := s.refusedPush(t, "tab-b", codes.InvalidArgument, rasoatv1.ErrorReason_ENTITY_MISMATCH, tc.batch()...)
				violation(t, vs, tc.field, rasoatv1.ErrorReason_ENTITY_MISMATCH)
			})
		}
	})
	t.Run("accepted", func(t *testing.T) {
		fresh := storetest.Must(storetest.New("tab-e", "005").Household(2))
		if got := s.push(t, "tab-e", fresh...); got.Accepted != uint32(len(fresh)) {
			t.Fatalf("members after their household in one batch: %v, want all %d accepted", got, len(fresh))
		}
		m, r := w.member(hh[0], "fullName", `"Lò Thị Dung"`), w.review(hh[0], "status", `"draft"`)
		if got := s.push(t, "tab-b", m, r); got.Accepted != 2 {
			t.Fatalf("a member and a review in their stored household's village: %v, want 2 accepted", got)
		}
	})
}

// ---------------------------------------------------------------------------
// Hole 7: cost out of proportion.

// TestHoleCostInProportionToTheBatch: a push of two changes naming seqs 1
// and 2^63-1 of a replica with tens of thousands of stored changes costs
// about what a normal push of two changes costs, not a read of every stored
// change between.
//
// It compares times measured in the same run rather than an absolute
// time: a machine, its disk (each push waits for an fsync) and -race each
// change the absolute cost many times over, but they change both pushes
// alike, while the hole made the sparse push cost in proportion to the
// stored log (about 100× a normal push here). To show the test would see
// the hole, it also times the read the hole made (every stored change of
// the replica between the two seqs) and requires it to be far over the
// allowed ratio.
func TestHoleCostInProportionToTheBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 55,000 changes: about 15 s under -race")
	}
	const maxRatio = 20
	s := newServer(t)
	g := storetest.New("tab-a", "001")
	var first *rasoatv1.Change
	// Set up through the store itself, in big pushes: pushing 55,000
	// changes through the service's checks would only make the test slower.
	n, err := g.Commune(700, 4, func(batch []*rasoatv1.Change) error {
		if first == nil {
			first = batch[0]
		}
		_, err := s.db.Push(context.Background(), store.Sender{Replica: "tab-a"}, batch)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq != 1 {
		t.Fatalf("the first change has seq %d", first.Seq)
	}
	w := newWriter("tab-a")
	w.seq = uint64(n)
	timed := func(changes ...*rasoatv1.Change) (*rasoatv1.PushResponse, time.Duration) {
		start := time.Now()
		res := s.push(t, "tab-a", changes...)
		return res, time.Since(start)
	}
	const runs = 5
	normal, sparse := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for range runs {
		// A normal push: the replica's next two changes.
		res, d := timed(w.household("001", "headName", `"Vàng A Páo"`), w.household("001", "headName", `"Vàng A Pá"`))
		if res.Accepted != 2 {
			t.Fatalf("normal push = %v", res)
		}
		normal = min(normal, d)
	}
	for k := range runs {
		// The sparse one: seq 1 again (a duplicate), and a new change up
		// to 2^63-1 (its seqs growing with its stamps, as an origin's
		// must: a seq below a stored one stamped after it is refused).
		far := w.household("001", "headName", `"Vàng A Chứ"`)
		far.Seq = math.MaxInt64 - uint64(runs-1-k)
		res, d := timed(first, far)
		if res.Accepted != 1 || res.Duplicates != 1 || res.ReplicaHighSeq != far.Seq {
			t.Fatalf("sparse push = %v, want 1 accepted, 1 duplicate, replica_high_seq %d", res, far.Seq)
		}
		sparse = min(sparse, d)
	}
	hole := holeRead(t, s.path, "tab-a")
	t.Logf("%d stored: normal push %v, sparse push %v (%.1f×), the hole's read %v (%.0f×)",
		n, normal, sparse, float64(sparse)/float64(normal), hole, float64(hole)/float64(normal))
	if hole < 2*maxRatio*normal {
		t.Fatalf("the read the hole made takes %v, under %d× a normal push (%v): the log is too small to tell", hole, 2*maxRatio, normal)
	}
	if sparse > maxRatio*normal {
		t.Fatalf("a push of seqs 1 and 2^63-1 takes %v, over %d× a normal push of two changes (%v)", sparse, maxRatio, normal)
	}
}

// holeRead times what the hole did for a push naming seqs 1 and 2^63-1 of
// origin: read every stored change of origin between, into a map (here
// every change of the log, which is origin's but for a few).
func holeRead(t *testing.T, path, origin string) time.Duration {
	start := time.Now()
	m := map[uint64]*rasoatv1.Change{}
	err := sqlite.ReadLog(t.Context(), path, func(_ uint64, c *rasoatv1.Change) error {
		if c.GetStamp().GetReplicaId() == origin {
			m[c.GetSeq()] = c
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// ---------------------------------------------------------------------------
// Hole 8: one value, one form.

// TestHoleOneValueOneForm: a value is stored only in its canonical form;
// any other form of it is refused naming changes[i].value, with the form to
// send when there is one, and that form is accepted.
func TestHoleOneValueOneForm(t *testing.T) {
	s := newServer(t)
	hh := storetest.Must(storetest.New("tab-a", "001").Household(0))
	s.push(t, "tab-a", hh...)
	w := newWriter("tab-b")
	rv := w.review(hh[0], "status", `"draft"`)
	s.push(t, "tab-b", rv)
	const name = "Hoàng Văn Thắng"
	if norm.NFD.String(name) == name {
		t.Fatal("test bug: the name has no decomposed form")
	}
	for _, tc := range []struct {
		name      string
		of        *rasoatv1.Change // the entity written
		field     string
		value     string
		canonical string // "" when the value has no canonical form
	}{
		{"an enum as its number", hh[0], "area", `1`, `"AREA_RURAL"`},
		{"enums in a list as their numbers", hh[0], "information.infoDevices", `[1,4]`, `["INFO_DEVICE_TV","INFO_DEVICE_SMARTPHONE"]`},
		{"a name with padding spaces", hh[0], "headName", `"  ` + name + ` "`, `"` + name + `"`},
		{"a name in decomposed Unicode (NFD)", hh[0], "headName", `"` + norm.NFD.String(name) + `"`, `"` + name + `"`},
		{"a number with a trailing zero", hh[0], "housing.floorAreaM2", `36.50`, `36.5`},
		{"JSON with spaces", hh[0], "policyFlags", `[ "POLICY_FLAG_SOCIAL_PROTECTION" ]`, `["POLICY_FLAG_SOCIAL_PROTECTION"]`},
		{"a review status with padding spaces", rv, "status", `" submitted"`, `"submitted"`},
		{"a review comment that is not UTF-8", rv, "comment", "\"Nhà dột \xff\xfe\"", ""},
		{"a review comment holding a NUL", rv, "comment", `"Nhà dột\u0000"`, ""},
		{"a review comment holding a raw NUL", rv, "comment", "\"Nhà dột\x00\"", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok := w.write(hh[0], "address", `"Bản Nà Pàn"`)
			bad := w.write(tc.of, tc.field, tc.value)
			_, vs := s.refusedPush(t, "tab-b", codes.InvalidArgument, rasoatv1.ErrorReason_INVALID_FIELD, ok, bad)
			v := violation(t, vs, "changes[1].value", rasoatv1.ErrorReason_INVALID_FIELD)
			if tc.canonical == "" {
				return
			}
			if !strings.Contains(v.Desc, "send "+tc.canonical) {
				t.Fatalf("description %q does not say to send %s", v.Desc, tc.canonical)
			}
			good := clone(bad)
			good.Value = []byte(tc.canonical)
			if got := s.push(t, "tab-b", ok, good); got.Accepted != 2 {
				t.Fatalf("the canonical form %s: %v, want accepted", tc.canonical, got)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Hole 9: errors a program can branch on.

// TestHoleErrorsCarryReasons: each failure a replica must act on carries
// its own reason: a cursor past the log's end, a cursor of another log or
// with another log's check, a change stamped too far ahead (with the index
// of the first one). A Pull's error does not speak of a push.
func TestHoleErrorsCarryReasons(t *testing.T) {
	s := newServer(t)
	g := storetest.New("tab-a", "001")
	s.push(t, "tab-a", storetest.Must(g.Household(1))...)
	resp, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: "tab-b"})
	if err != nil {
		t.Fatal(err)
	}
	end := resp[len(resp)-1]
	other := newServer(t)
	otherResp, err := other.pullAll(&rasoatv1.PullRequest{ReplicaId: "tab-b"})
	if err != nil {
		t.Fatal(err)
	}
	otherLog := otherResp[0].LogId

	t.Run("pull", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			req    *rasoatv1.PullRequest
			reason rasoatv1.ErrorReason
		}{
			{"a cursor past the log's end is CURSOR_AHEAD", &rasoatv1.PullRequest{ReplicaId: "tab-b", Cursor: end.Cursor + 10, LogId: end.LogId}, rasoatv1.ErrorReason_CURSOR_AHEAD},
			{"a cursor of another log is LOG_CHANGED", &rasoatv1.PullRequest{ReplicaId: "tab-b", Cursor: end.Cursor, LogId: otherLog, CursorCheck: end.CursorCheck}, rasoatv1.ErrorReason_LOG_CHANGED},
			{"a cursor with a wrong check is LOG_CHANGED", &rasoatv1.PullRequest{ReplicaId: "tab-b", Cursor: end.Cursor, LogId: end.LogId, CursorCheck: end.CursorCheck ^ 1}, rasoatv1.ErrorReason_LOG_CHANGED},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := s.stored(t)
				_, err := s.pullAll(tc.req)
				refusal(t, err, codes.FailedPrecondition, tc.reason)
				if msg := strings.ToLower(status.Convert(err).Message()); strings.Contains(msg, "push") {
					t.Errorf("a pull's error says %q", msg)
				}
				s.untouched(t, before, "a refused pull")
			})
		}
		// The cursor with its log and check still pulls.
		got, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: "tab-b", Cursor: end.Cursor, LogId: end.LogId, CursorCheck: end.CursorCheck})
		if err != nil || len(got) != 1 || len(got[0].Changes) != 0 || !got[0].Done {
			t.Fatalf("pull at the log's end with its log and check = %v, %v; want one empty done response", got, err)
		}
	})

	t.Run("a change stamped too far ahead is CLOCK_AHEAD with its index", func(t *testing.T) {
		next := storetest.Must(g.Household(0))
		ahead := uint64(hlc.At(time.Now().Add(48*time.Hour), 0))
		next[2].Stamp.Hlc = ahead
		next[4].Stamp.Hlc = ahead
		meta, vs := s.refusedPush(t, "tab-a", codes.InvalidArgument, rasoatv1.ErrorReason_CLOCK_AHEAD, next...)
		if meta["index"] != "2" {
			t.Errorf("metadata index = %q, want 2 (all: %v)", meta["index"], meta)
		}
		violation(t, vs, "changes[2].stamp.hlc", rasoatv1.ErrorReason_CLOCK_AHEAD)
		violation(t, vs, "changes[4].stamp.hlc", rasoatv1.ErrorReason_CLOCK_AHEAD)
	})
}

// ---------------------------------------------------------------------------
// Hole 10: a cursor without a log.

// copyStore copies a closed store file (and its WAL files, if any) from src
// to dst, replacing dst's.
func copyStore(t *testing.T, src, dst string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(dst + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		b, err := os.ReadFile(src + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHoleCursorNamesItsLog: every store's log has its own id, which every
// Pull and Snapshot response carries; and a cursor's check tells a log
// restored from a backup and written past the cursor by other changes from
// the log that made the cursor, so the replica is told (LOG_CHANGED)
// instead of silently missing the changes between.
func TestHoleCursorNamesItsLog(t *testing.T) {
	t.Run("two stores have two log ids", func(t *testing.T) {
		dir := t.TempDir()
		logIDs := func(s *holeServer) (pull, snap string) {
			pr, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: "tab-b", BatchSize: 5})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range pr {
				if r.LogId != pr[0].LogId {
					t.Fatalf("pull responses carry log ids %s and %s", pr[0].LogId, r.LogId)
				}
			}
			sr, err := s.snapshotAll(&rasoatv1.SnapshotRequest{ReplicaId: "tab-b"})
			if err != nil {
				t.Fatal(err)
			}
			return pr[0].LogId, sr[0].LogId
		}
		var ids [2]string
		for i := range ids {
			s := startServer(t, filepath.Join(dir, fmt.Sprintf("s%d.db", i)))
			s.push(t, "tab-a", storetest.Must(storetest.New("tab-a", "001").Household(1))...)
			pull, snap := logIDs(s)
			if pull == "" || pull != snap {
				t.Fatalf("server %d: pull's log id %q, snapshot's %q: want one non-empty id", i, pull, snap)
			}
			ids[i] = pull
			s.stop()
			// The id is the file's: the same after a restart.
			s = startServer(t, filepath.Join(dir, fmt.Sprintf("s%d.db", i)))
			if again, _ := logIDs(s); again != ids[i] {
				t.Fatalf("server %d: log id %s after a restart, %s before", i, again, ids[i])
			}
			s.stop()
		}
		if ids[0] == ids[1] {
			t.Fatalf("two stores share the log id %s", ids[0])
		}
	})

	t.Run("a backup restored and written past the cursor is LOG_CHANGED", func(t *testing.T) {
		dir := t.TempDir()
		path, backup := filepath.Join(dir, "rasoat.db"), filepath.Join(dir, "backup.db")
		g := storetest.New("tab-a", "001")
		s := startServer(t, path)
		s.push(t, "tab-a", storetest.Must(g.Household(1))...)
		atBackup, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: "tab-t"})
		if err != nil {
			t.Fatal(err)
		}
		early := atBackup[len(atBackup)-1]
		s.stop()
		copyStore(t, path, backup)

		// The original goes on; a tablet pulls all of it.
		s = startServer(t, path)
		s.push(t, "tab-a", storetest.Must(g.Household(2))...)
		tablet, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: "tab-t", Cursor: early.Cursor, LogId: early.LogId, CursorCheck: early.CursorCheck})
		if err != nil {
			t.Fatal(err)
		}
		cur := tablet[len(tablet)-1]
		s.stop()

		// The backup is restored: its log ends before the tablet's cursor.
		copyStore(t, backup, path)
		s = startServer(t, path)
		req := &rasoatv1.PullRequest{ReplicaId: "tab-t", Cursor: cur.Cursor, LogId: cur.LogId, CursorCheck: cur.CursorCheck}
		_, err = s.pullAll(req)
		refusal(t, err, codes.FailedPrecondition, rasoatv1.ErrorReason_CURSOR_AHEAD)

		// Other changes take the restored log past the tablet's cursor.
		hb := storetest.New("tab-b", "001")
		for {
			res := s.push(t, "tab-b", storetest.Must(hb.Household(1))...)
			if res.ServerSeq > cur.Cursor {
				break
			}
		}
		before := s.stored(t)
		_, err = s.pullAll(req)
		refusal(t, err, codes.FailedPrecondition, rasoatv1.ErrorReason_LOG_CHANGED)
		s.untouched(t, before, "a refused pull")

		// A cursor from before the backup still counts in the restored log,
		// and a fresh snapshot recovers the tablet.
		resp, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: "tab-t", Cursor: early.Cursor, LogId: early.LogId, CursorCheck: early.CursorCheck})
		if err != nil {
			t.Fatalf("pull from before the backup: %v", err)
		}
		for _, r := range resp {
			for _, c := range r.Changes {
				if c.Stamp.ReplicaId != "tab-b" {
					t.Fatalf("after the backup's end the restored log holds a change of %s", c.Stamp.ReplicaId)
				}
			}
		}
		snap, err := s.snapshotAll(&rasoatv1.SnapshotRequest{ReplicaId: "tab-t"})
		if err != nil {
			t.Fatal(err)
		}
		last := snap[len(snap)-1]
		if _, err := s.pullAll(&rasoatv1.PullRequest{ReplicaId: "tab-t", Cursor: last.Cursor, LogId: last.LogId, CursorCheck: last.CursorCheck}); err != nil {
			t.Fatalf("pull from a fresh snapshot's cursor: %v", err)
		}
	})
}
