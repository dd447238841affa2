package server

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/access"
	"github.com/rasoat/rasoat/server/adminsvc"
	"github.com/rasoat/rasoat/server/directory"
	"github.com/rasoat/rasoat/server/scoring"
	"github.com/rasoat/rasoat/server/syncsvc"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A request is checked twice: its counts on the wire, before it is
// decoded, and everything else at the door of its service. The first check
// is here because decoding is where a hostile request costs the most: an
// empty Change is 2 bytes on the wire and about 200 in memory, so 16 MB of
// them decode into gigabytes before a service could count them. The guard
// reads the bytes once (no allocation), counts every repeated field against
// its bound and the decoded objects against a budget, and only then lets
// protobuf decode.
//
// gRPC turns any error of a codec into Internal with the codec's text; a
// refused request must be InvalidArgument with the field it names. So the
// codec does not fail: it leaves the message empty and marks it with the
// refusal (an unknown field of a number no message of ours uses), and an
// interceptor turns the mark into the status.

// repeatedLimits bounds each repeated field of the contract's requests, by
// full name. A repeated field not listed takes defaultRepeatedLimit.
var repeatedLimits = map[protoreflect.FullName]int{
	"rasoat.v1.PushRequest.changes":            syncsvc.MaxPushBatch,
	"rasoat.v1.Change.base":                    entity.MaxBase,
	"rasoat.v1.PullRequest.village_codes":      syncsvc.MaxVillages,
	"rasoat.v1.SnapshotRequest.village_codes":  syncsvc.MaxVillages,
	"rasoat.v1.SnapshotRequest.entity_ids":     syncsvc.MaxSnapshotEntities,
	"rasoat.v1.AssessStreamRequest.households": scoring.MaxBatch,
	"rasoat.v1.Household.members":              10 * survey.MaxMembers,
	"rasoat.v1.PushRequest.lineage":            access.MaxLineage,
	// The admin's bulk requests: a province's units file, a commune's or a
	// province's people; each refused whole past its bound by the service
	// too, with the field named.
	"rasoat.v1.PutUnitsRequest.units":          adminsvc.MaxUnitsPerRequest,
	"rasoat.v1.PutPeopleRequest.people":        directory.MaxPeoplePerRequest,
	"rasoat.v1.Person.unit_codes":              directory.MaxUnitsPerPerson,
	"rasoat.v1.EnrolRequest.prior_replica_ids": directory.MaxPriorReplicas,
}

const (
	// defaultRepeatedLimit bounds any other repeated field of a request
	// (a household's policy flags, its information devices). Household
	// lists are bounded ten times looser here than by the survey
	// (survey.MaxMembers, survey.MaxListLen): within that, scoring refuses
	// the one household and assesses the rest of its batch; past it, the
	// request is an attack, refused whole before it is decoded.
	defaultRepeatedLimit = 10 * survey.MaxListLen
	// maxObjects bounds the messages one request decodes into. A full
	// AssessStream batch (scoring.MaxBatch households of about ten
	// messages each) or Push (MaxPushBatch changes with a stamp and a base
	// each) fits; 150,000 decoded messages are about 30 MB, so four
	// maximal hostile requests at once stay well inside the server's
	// memory.
	maxObjects = 150_000
	// markField is the field number of the refusal mark: the largest a
	// message may have, used by none of ours.
	markField protowire.Number = protowire.MaxValidNumber
)

// guardCodec is gRPC's proto codec with the guard in front of Unmarshal
// for messages of package rasoat.v1.
type guardCodec struct{ base encoding.CodecV2 }

func newGuardCodec() guardCodec { return guardCodec{base: encoding.GetCodecV2("proto")} }

func (c guardCodec) Name() string                           { return c.base.Name() }
func (c guardCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c guardCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok || m.ProtoReflect().Descriptor().ParentFile().Package() != "rasoat.v1" {
		return c.base.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	g := guard{}
	if v := g.scan(b, planFor(m.ProtoReflect().Descriptor())); v != nil {
		mark(m, *v)
		return nil
	}
	if err := (proto.UnmarshalOptions{RecursionLimit: 32}).Unmarshal(b, m); err != nil {
		proto.Reset(m)
		mark(m, rpcerr.Violation{Field: "", Desc: "not a valid " + string(m.ProtoReflect().Descriptor().FullName()) + ": " + err.Error(), Reason: rasoatv1.ErrorReason_MALFORMED_REQUEST})
	}
	return nil
}

// guard counts what a request would decode into.
type guard struct {
	objects int
	path    []step // where scan is, to name a field only when refusing
}

type step struct {
	name  string
	index int // -1 for a singular field
}

// at names the field being scanned, plus name: "changes[3].base".
func (g *guard) at(name string) string {
	var b strings.Builder
	for _, s := range g.path {
		b.WriteString(s.name)
		if s.index >= 0 {
			fmt.Fprintf(&b, "[%d]", s.index)
		}
		b.WriteByte('.')
	}
	b.WriteString(name)
	return strings.TrimSuffix(b.String(), ".")
}

// scan walks one message's wire bytes and returns the first violation of a
// bound, or nil. Malformed bytes are left to protobuf to refuse.
func (g *guard) scan(b []byte, p *wirePlan) *rpcerr.Violation {
	if g.objects++; g.objects > maxObjects {
		return &rpcerr.Violation{Field: g.at(""), Desc: fmt.Sprintf("the request holds more than %d messages: split it", maxObjects), Reason: rasoatv1.ErrorReason_TOO_LARGE}
	}
	var counts fieldCounts
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		f := p.field(num)
		if f == nil {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil
			}
			b = b[n:]
			continue
		}
		count := 1
		if typ == protowire.BytesType && f.scalar {
			// A packed list: count its values.
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil
			}
			count = packedCount(v, f.kind)
		}
		total := 0
		if f.list {
			if total = counts.add(num, count); total > f.limit {
				return &rpcerr.Violation{Field: g.at(f.name), Desc: fmt.Sprintf("more than %d values, over the limit", f.limit), Reason: rasoatv1.ErrorReason_TOO_LARGE}
			}
		}
		if f.msg != nil && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil
			}
			if f.msg.leaf && g.objects < maxObjects {
				// Nothing in it to count but itself (a member: most of
				// a household's bytes).
				g.objects++
				b = b[n:]
				continue
			}
			g.path = append(g.path, step{f.name, total - 1}) // total is 0 for a singular field
			viol := g.scan(v, f.msg)
			g.path = g.path[:len(g.path)-1]
			if viol != nil {
				return viol
			}
			b = b[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return nil
		}
		b = b[n:]
	}
	return nil
}

// wirePlan is what scan needs of one message type, worked out once from
// its descriptor: looking each field up in the descriptor (a map) and its
// limit by full name (a string hash) cost as much as the rest of the scan.
type wirePlan struct {
	byNum []*fieldPlan                    // by field number, for numbers under len(byNum)
	more  map[protowire.Number]*fieldPlan // the others (none in our contract)
	leaf  bool                            // no list and no message field: nothing to scan
}

// fieldPlan is one field scan looks into: a list it counts, or a message
// it walks. Other fields are nil in the plan and skipped.
type fieldPlan struct {
	name   string
	list   bool
	limit  int               // for a list
	kind   protoreflect.Kind // for a packed list
	scalar bool              // a list of scalars, which may come packed
	msg    *wirePlan         // for a message field (singular or list)
}

func (p *wirePlan) field(num protowire.Number) *fieldPlan {
	if num >= 0 && int(num) < len(p.byNum) {
		return p.byNum[num]
	}
	return p.more[num]
}

// plans holds the plan of every message type a request was scanned as.
var plans sync.Map // protoreflect.FullName → *wirePlan

// planFor returns md's plan, building it (and its fields' messages') on
// first use.
func planFor(md protoreflect.MessageDescriptor) *wirePlan {
	if p, ok := plans.Load(md.FullName()); ok {
		return p.(*wirePlan)
	}
	p := buildPlan(md, map[protoreflect.FullName]*wirePlan{})
	got, _ := plans.LoadOrStore(md.FullName(), p)
	return got.(*wirePlan)
}

// buildPlan makes md's plan; building holds the plans under way, so that a
// message type that contains itself refers to its own plan.
func buildPlan(md protoreflect.MessageDescriptor, building map[protoreflect.FullName]*wirePlan) *wirePlan {
	if p := building[md.FullName()]; p != nil {
		return p
	}
	p := &wirePlan{}
	building[md.FullName()] = p
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !fd.IsList() && fd.Kind() != protoreflect.MessageKind {
			continue
		}
		f := &fieldPlan{name: string(fd.Name()), list: fd.IsList(), kind: fd.Kind()}
		f.scalar = fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.StringKind && fd.Kind() != protoreflect.BytesKind
		if f.list {
			limit, ok := repeatedLimits[fd.FullName()]
			if !ok {
				limit = defaultRepeatedLimit
			}
			f.limit = limit
		}
		if fd.Kind() == protoreflect.MessageKind {
			f.msg = buildPlan(fd.Message(), building)
		}
		num := fd.Number()
		if num < 256 {
			for int(num) >= len(p.byNum) {
				p.byNum = append(p.byNum, nil)
			}
			p.byNum[num] = f
			continue
		}
		if p.more == nil {
			p.more = map[protowire.Number]*fieldPlan{}
		}
		p.more[num] = f
	}
	p.leaf = len(p.byNum) == 0 && len(p.more) == 0
	return p
}

// fieldCounts counts the values of a message's repeated fields so far; a
// message of ours has a handful, so a slice beats a map.
type fieldCounts []struct {
	num   protowire.Number
	count int
}

func (c *fieldCounts) add(num protowire.Number, n int) int {
	for i := range *c {
		if (*c)[i].num == num {
			(*c)[i].count += n
			return (*c)[i].count
		}
	}
	*c = append(*c, struct {
		num   protowire.Number
		count int
	}{num, n})
	return n
}

// packedCount is the number of values in a packed list of kind k.
func packedCount(b []byte, k protoreflect.Kind) int {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return len(b) / 4
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return len(b) / 8
	}
	n := 0
	for _, c := range b {
		if c < 0x80 {
			n++ // each varint ends with a byte below 0x80
		}
	}
	return n
}

// mark records a refusal in m's unknown fields.
func mark(m proto.Message, v rpcerr.Violation) {
	var b []byte
	b = protowire.AppendTag(b, markField, protowire.BytesType)
	enc := protowire.AppendVarint(nil, uint64(v.Reason))
	enc = protowire.AppendString(enc, v.Field)
	enc = protowire.AppendString(enc, v.Desc)
	b = protowire.AppendBytes(b, enc)
	m.ProtoReflect().SetUnknown(b)
}

// marked returns the refusal mark reads from m, if any.
func marked(m any) (rpcerr.Violation, bool) {
	pm, ok := m.(proto.Message)
	if !ok {
		return rpcerr.Violation{}, false
	}
	b := pm.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return rpcerr.Violation{}, false
		}
		b = b[n:]
		if num != markField || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return rpcerr.Violation{}, false
			}
			b = b[n:]
			continue
		}
		enc, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return rpcerr.Violation{}, false
		}
		reason, n1 := protowire.ConsumeVarint(enc)
		if n1 < 0 {
			return rpcerr.Violation{}, false
		}
		field, n2 := protowire.ConsumeString(enc[n1:])
		if n2 < 0 {
			return rpcerr.Violation{}, false
		}
		desc, n3 := protowire.ConsumeString(enc[n1+n2:])
		if n3 < 0 {
			return rpcerr.Violation{}, false
		}
		return rpcerr.Violation{Field: field, Desc: desc, Reason: rasoatv1.ErrorReason(reason)}, true
	}
	return rpcerr.Violation{}, false
}

// refusal is the status for a marked request.
func refusal(v rpcerr.Violation) error {
	msg := v.Desc
	if v.Field != "" {
		msg = v.Field + ": " + v.Desc
	}
	return rpcerr.New(codes.InvalidArgument, v.Reason, msg, nil, v)
}

// guardUnary answers a marked request with its refusal.
func guardUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if v, ok := marked(req); ok {
		return nil, refusal(v)
	}
	return handler(ctx, req)
}

// guardStream answers a marked message of a stream with its refusal.
func guardStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, guardedStream{ss})
}

type guardedStream struct{ grpc.ServerStream }

func (s guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if v, ok := marked(m); ok {
		return refusal(v)
	}
	return nil
}
