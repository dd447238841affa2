package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

func TestResolveIDTakesAUniquePrefix(t *testing.T) {
	ctx := context.Background()
	c := tablet(t)
	h := fullHousehold(1)
	h.Id = "0190f0c2-0000-7000-8000-0000000000a1"
	h.Members[0].Id = "0190f0c2-0000-7000-8000-0000000000b1"
	if _, err := c.CreateHousehold(ctx, "001", h); err != nil {
		t.Fatal(err)
	}
	h = fullHousehold(0)
	h.Id = "0190f0c2-0000-7000-8000-0000000000a2"
	if _, err := c.CreateHousehold(ctx, "001", h); err != nil {
		t.Fatal(err)
	}
	for i := range MaxIDCandidates + 2 {
		h := fullHousehold(0)
		h.Id = fmt.Sprintf("0190f0c3-0000-7000-8000-0000000000%02d", i)
		if _, err := c.CreateHousehold(ctx, "001", h); err != nil {
			t.Fatal(err)
		}
	}
	household := []rasoatv1.EntityKind{rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD}
	tests := []struct {
		name   string
		typed  string
		kinds  []rasoatv1.EntityKind
		want   string
		is     error  // the reason a caller branches on
		errHas string // in the message
		listed int    // candidates an ambiguous prefix lists
		more   bool
	}{
		{"a whole id is taken as it is, without a lookup", "0190f0c2-0000-7000-8000-0000000000ff", nil, "", nil, "", 0, false},
		{"a unique prefix names the one entity", "0190f0c2-0000-7000-8000-0000000000b", nil, "0190f0c2-0000-7000-8000-0000000000b1", nil, "", 0, false},
		{"a prefix may be typed in capitals", "0190F0C2-0000-7000-8000-0000000000B", nil, "0190f0c2-0000-7000-8000-0000000000b1", nil, "", 0, false},
		{"a prefix unique among households is enough where a household is wanted", "0190f0c2-0000-7000-8000-0000000000a1", household, "0190f0c2-0000-7000-8000-0000000000a1", nil, "", 0, false},
		{"a prefix of several ids lists them", "0190f0c2", nil, "", ErrAmbiguous, `id prefix "0190f0c2" matches more than one entity: 0190f0c2-0000-7000-8000-0000000000a1 (household), 0190f0c2-0000-7000-8000-0000000000a2 (household), 0190f0c2-0000-7000-8000-0000000000b1 (member); type more`, 3, false},
		{"the kinds wanted narrow the candidates", "0190f0c2-0000-7000-8000-0000000000", household, "", ErrAmbiguous, "a2 (household); type more", 2, false},
		{"the candidates listed are bounded", "0190f0c3", nil, "", ErrAmbiguous, "and more; type more of the id", MaxIDCandidates, true},
		{"a prefix of no id is not found, saying so", "0190f0c4", nil, "", ErrNotFound, `no entity id in this file begins with "0190f0c4"`, 0, false},
		{"a member's prefix is not a household", "0190f0c2-0000-7000-8000-0000000000b", household, "", ErrNotFound, "no household id", 0, false},
		{"a prefix under four characters is refused", "019", nil, "", entity.ErrInvalid, "at least 4 characters", 0, false},
		{"a prefix with other characters is refused", "0190%", nil, "", entity.ErrInvalid, "only hexadecimal digits", 0, false},
		{"text as long as an id that is none is refused", strings.Repeat("0", 40), nil, "", entity.ErrInvalid, "not an id", 0, false},
	}
	tests[0].want = tests[0].typed
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.ResolveID(ctx, tt.typed, tt.kinds...)
			if tt.is == nil {
				if err != nil || got != tt.want {
					t.Fatalf("ResolveID(%q) = %q, %v; want %q", tt.typed, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.is) || !strings.Contains(fmt.Sprint(err), tt.errHas) {
				t.Fatalf("ResolveID(%q): %v; want %v saying %q", tt.typed, err, tt.is, tt.errHas)
			}
			var ae *AmbiguousError
			if errors.As(err, &ae) && (len(ae.Candidates) != tt.listed || ae.More != tt.more) {
				t.Errorf("%d candidates (more %v), want %d (more %v)", len(ae.Candidates), ae.More, tt.listed, tt.more)
			}
		})
	}
}
