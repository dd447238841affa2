// Package seal computes the seal of a decided household: a digest of its
// answers as the commune chair decided them, recorded in the decision
// (workflow.Decision.Seal), so that anyone holding the data later — the
// commune, the province, a tablet — can check that the household is the
// one that was decided, and see that it changed since if it did.
package seal

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/quality"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// Household returns the seal of a household for its review reviewID:
// SHA-256 over the household and its members, and the review's own
// fields but its status, comment and acknowledgements of quality flags
// (ack.CODE, internal/quality: an officer's reading of the answers, not
// an answer, written after the meeting agreed), each entity in id order with its
// kind and the current value of every field in path order. Other reviews
// of the household (earlier rounds) are left out, and so is what the
// workflow itself writes. The result (poor, near-poor, …) is computed from
// exactly these answers and the review's date and round, so it is sealed
// with them.
func Household(states []*entity.State, reviewID string) string {
	sorted := slices.Clone(states)
	slices.SortFunc(sorted, func(a, b *entity.State) int { return strings.Compare(a.ID, b.ID) })
	h := sha256.New()
	var b []byte
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, s := range sorted {
		if s.Kind == rasoatv1.EntityKind_ENTITY_KIND_REVIEW && s.ID != reviewID {
			continue
		}
		b = b[:0]
		str(s.ID)
		b = binary.AppendUvarint(b, uint64(s.Kind))
		paths := slices.DeleteFunc(s.Paths(), func(p string) bool {
			_, ok := s.Field(p).Winner()
			return !ok || s.Kind == rasoatv1.EntityKind_ENTITY_KIND_REVIEW && (p == "status" || p == "comment" || strings.HasPrefix(p, quality.AckPrefix))
		})
		// The count makes the encoding unambiguous: an entity's last field
		// cannot be read as the next entity's id.
		b = binary.AppendUvarint(b, uint64(len(paths)))
		for _, p := range paths {
			w, _ := s.Field(p).Winner()
			str(p)
			str(string(w.Value))
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
