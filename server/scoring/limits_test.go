package scoring_test

import (
	"fmt"
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/proto"
)

// withMembers is the example household with n members.
func withMembers(t *testing.T, n int) *rasoatv1.Household {
	h := example(t)
	for i := len(h.Members); i < n; i++ {
		m := proto.Clone(h.Members[0]).(*rasoatv1.Member)
		m.Id, m.Relation = fmt.Sprintf("m-%d", i), rasoatv1.Relation_RELATION_SIBLING
		h.Members = append(h.Members, m)
	}
	return h
}

// TestRequestSizesAreBounded: a request past a bound is refused with
// google.rpc.BadRequest naming the field. Past a household's bounds
// (members, strings, lists: survey.MaxMembers and the others) only that
// household is refused; past a batch's (households, standard) the stream
// ends.
func TestRequestSizesAreBounded(t *testing.T) {
	c := newClient(t)
	long := strings.Repeat("x", survey.MaxTextBytes+1)
	tooMany := withMembers(t, survey.MaxMembers+1)
	longName := example(t)
	longName.Members[1].FullName = long
	for name, tc := range map[string]struct {
		req   *rasoatv1.AssessRequest
		field string
	}{
		"standard":  {&rasoatv1.AssessRequest{Household: example(t), Standard: long}, "standard"},
		"members":   {&rasoatv1.AssessRequest{Household: tooMany}, "members"},
		"full name": {&rasoatv1.AssessRequest{Household: longName}, "members[1].fullName"},
	} {
		_, err := c.Assess(ctxT(t), tc.req)
		if _, ok := badRequest(t, err)[tc.field]; !ok {
			t.Errorf("Assess, %s: %v does not name %s", name, err, tc.field)
		}
	}
	if _, err := c.Assess(ctxT(t), &rasoatv1.AssessRequest{Household: withMembers(t, survey.MaxMembers)}); err != nil {
		t.Errorf("Assess, %d members: %v", survey.MaxMembers, err)
	}

	stream, err := c.AssessStream(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rasoatv1.AssessStreamRequest{Households: []*rasoatv1.Household{tooMany, example(t), longName}}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	r := res.GetResults()
	if len(r) != 3 || r[1].GetAssessment() == nil {
		t.Fatalf("results %v: want 3, the second assessed", r)
	}
	for i, want := range map[int]string{0: "members", 2: "members[1].fullName"} {
		if got := violationFields(r[i]); len(got) != 1 || got[0] != want {
			t.Errorf("result %d: violations %v, want [%s]", i, got, want)
		}
	}
	if err := stream.Send(&rasoatv1.AssessStreamRequest{Standard: long, Households: []*rasoatv1.Household{example(t)}}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if _, ok := badRequest(t, err)["standard"]; !ok {
		t.Fatalf("%v does not name standard", err)
	}
}

// TestAnswerGrowsWithTheRequest: whatever a household holds within the
// bounds, its result is at most a fixed size (an assessment of a small
// household, or survey.MaxViolations short violations) plus a few times its
// own: nothing the caller sends is repeated without bound (an unknown
// standard id is quoted once per household, so it too is bounded). The
// worst case known is a roster of uninsured, stunted children out of
// school, each named in several reasons: about 4.1 times.
func TestAnswerGrowsWithTheRequest(t *testing.T) {
	long := func(c byte) string { return strings.Repeat(string(c), survey.MaxTextBytes) }
	children := example(t)
	children.Members = nil
	for i := range survey.MaxMembers {
		children.Members = append(children.Members, &rasoatv1.Member{
			Id: fmt.Sprintf("%03d", i) + long('i')[3:], FullName: long('n'), Sex: rasoatv1.Sex_SEX_MALE, BirthDate: "2012-01-01",
			HasHealthInsurance: proto.Bool(false), InSchool: proto.Bool(false), IllUntreated: true, ChildStunted: true, ChildUnderweight: true,
			Ethnicity: long('e'),
		})
	}
	badEnums := example(t)
	for range survey.MaxMembers - len(badEnums.Members) {
		badEnums.Members = append(badEnums.Members, &rasoatv1.Member{Sex: 99, Relation: 99, HighestEducation: 99, SchoolLevel: 99, Employment: 99})
	}
	c := newClient(t)
	for name, req := range map[string]*rasoatv1.AssessStreamRequest{
		"children":         {Households: []*rasoatv1.Household{children}},
		"bad enums":        {Households: []*rasoatv1.Household{badEnums}},
		"empty households": {Households: make([]*rasoatv1.Household, 100)},
		"unknown standard": {Households: []*rasoatv1.Household{example(t), {}}, Standard: long('s')},
	} {
		for i := range req.Households {
			if req.Households[i] == nil {
				req.Households[i] = new(rasoatv1.Household)
			}
		}
		stream, err := c.AssessStream(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		res, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if name == "children" && res.GetResults()[0].GetAssessment() == nil {
			t.Fatalf("children: %v, want an assessment", res.GetResults()[0].GetViolations())
		}
		if n := len(violationFields(res.GetResults()[0])); name == "bad enums" && n != survey.MaxViolations {
			t.Fatalf("bad enums: %d violations, want survey.MaxViolations", n)
		}
		for i, r := range res.GetResults() {
			in, out := proto.Size(req.Households[i]), proto.Size(r)
			if out > 8<<10+5*in {
				t.Errorf("%s, household %d: %d bytes in, %d out", name, i, in, out)
			}
		}
	}
}
