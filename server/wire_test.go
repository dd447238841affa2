package server

import (
	"fmt"
	"testing"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/rpcerr"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/scoring"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestGuardScanAsTheDescriptorsSay: the guard's plans (built once per
// message type, skipping messages with nothing to count) refuse exactly
// what a walk of the descriptors, field by field, refuses, naming the same
// field.
func TestGuardScanAsTheDescriptorsSay(t *testing.T) {
	household := func(members int) *rasoatv1.Household {
		h := &rasoatv1.Household{Id: "h", HeadName: "Lò Văn Páo", PolicyFlags: []rasoatv1.PolicyFlag{1, 2},
			WaterSanitation: &rasoatv1.WaterSanitation{}, Information: &rasoatv1.Information{InfoDevices: []rasoatv1.InfoDevice{1}}}
		for i := range members {
			h.Members = append(h.Members, &rasoatv1.Member{Id: fmt.Sprint(i), FullName: "Vi Thị Mai"})
		}
		return h
	}
	batch := func(n, members int) *rasoatv1.AssessStreamRequest {
		r := &rasoatv1.AssessStreamRequest{}
		for range n {
			r.Households = append(r.Households, household(members))
		}
		return r
	}
	manyFlags := household(1)
	manyFlags.PolicyFlags = make([]rasoatv1.PolicyFlag, defaultRepeatedLimit+1) // packed
	manyDevices := household(1)
	manyDevices.Information.InfoDevices = make([]rasoatv1.InfoDevice, defaultRepeatedLimit)
	push := func(base int) *rasoatv1.PushRequest {
		c := &rasoatv1.Change{EntityId: "e", Stamp: &rasoatv1.Stamp{Hlc: 9, ReplicaId: "r"}}
		for range base {
			c.Base = append(c.Base, &rasoatv1.Stamp{Hlc: 1, ReplicaId: "r"})
		}
		return &rasoatv1.PushRequest{ReplicaId: "r", Changes: []*rasoatv1.Change{c, c}}
	}
	cases := []struct {
		name string
		m    proto.Message
		want string // the field refused, "" for none
	}{
		{"a batch", batch(3, 4), ""},
		{"a full batch", batch(scoring.MaxBatch, 0), ""},
		{"a batch too many", batch(scoring.MaxBatch+1, 0), "households"},
		{"members at the guard's bound", batch(1, 10*survey.MaxMembers), ""},
		{"members over it", batch(2, 10*survey.MaxMembers+1), "households[0].members"},
		{"too many messages", batch(160, 950), "households[157].members[377]"},
		{"packed flags over the bound", &rasoatv1.AssessRequest{Household: manyFlags}, "household.policy_flags"},
		{"devices at the bound", &rasoatv1.AssessRequest{Household: manyDevices}, ""},
		{"a base at its bound", push(entity.MaxBase), ""},
		{"a base over it", push(entity.MaxBase + 1), "changes[0].base"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			md := tc.m.ProtoReflect().Descriptor()
			got := (&guard{}).scan(b, planFor(md))
			want := (&guard{}).scanByDescriptor(b, md)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("plan: %v; descriptors: %v", got, want)
			}
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("refused %v, want accepted", got)
			case tc.want != "" && (got == nil || got.Field != tc.want || got.Reason != rasoatv1.ErrorReason_TOO_LARGE):
				t.Fatalf("refused %v, want %s TOO_LARGE", got, tc.want)
			}
			// Every prefix: malformed bytes are left to protobuf alike.
			for _, cut := range []int{1, 7, len(b) / 3, len(b) - 1} {
				if cut <= 0 || cut >= len(b) {
					continue
				}
				got := (&guard{}).scan(b[:cut], planFor(md))
				want := (&guard{}).scanByDescriptor(b[:cut], md)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("cut at %d: plan: %v; descriptors: %v", cut, got, want)
				}
			}
		})
	}
}

// scanByDescriptor is the guard's walk as it was before plans: every field
// looked up in the descriptor, every message walked.
func (g *guard) scanByDescriptor(b []byte, md protoreflect.MessageDescriptor) *rpcerr.Violation {
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
		fd := md.Fields().ByNumber(num)
		if fd == nil || !fd.IsList() && fd.Kind() != protoreflect.MessageKind {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil
			}
			b = b[n:]
			continue
		}
		count := 1
		if typ == protowire.BytesType && fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.StringKind && fd.Kind() != protoreflect.BytesKind {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil
			}
			count = packedCount(v, fd.Kind())
		}
		total := 0
		if fd.IsList() {
			total = counts.add(num, count)
			limit, ok := repeatedLimits[fd.FullName()]
			if !ok {
				limit = defaultRepeatedLimit
			}
			if total > limit {
				return &rpcerr.Violation{Field: g.at(string(fd.Name())), Desc: fmt.Sprintf("more than %d values, over the limit", limit), Reason: rasoatv1.ErrorReason_TOO_LARGE}
			}
		}
		if fd.Kind() == protoreflect.MessageKind && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil
			}
			g.path = append(g.path, step{string(fd.Name()), total - 1})
			viol := g.scanByDescriptor(v, fd.Message())
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
