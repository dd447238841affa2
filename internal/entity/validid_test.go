package entity_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/entity"
)

// byUUID is ValidID's definition: what uuid.Parse accepts and String gives
// back unchanged.
func byUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// An id is valid exactly when uuid.Parse takes it and prints it back the
// same: the same answer as parsing, for the forms Parse takes and the ones
// that are near misses of the canonical one.
func TestValidIDIsTheCanonicalFormUUIDParses(t *testing.T) {
	id := uuid.Must(uuid.NewV7()).String()
	cases := []string{
		id,
		"0192f0c1-0000-7000-8000-000000000001",
		"00000000-0000-0000-0000-000000000000",
		"ffffffff-ffff-ffff-ffff-ffffffffffff",
		strings.ToUpper(id),                    // upper case: parsed, not canonical
		"urn:uuid:" + id,                       // parsed, not canonical
		"{" + id + "}",                         // parsed, not canonical
		strings.ReplaceAll(id, "-", ""),        // 32 hex: parsed, not canonical
		"",                                     // empty
		id[:35],                                // short
		id + "0",                               // long
		id[:8] + "_" + id[9:],                  // a hyphen replaced
		id[:9] + "-" + id[10:],                 // a hyphen moved
		id[:0] + "g" + id[1:],                  // not hex
		id[:35] + "G",                          // not hex, upper
		id[:12] + "\x00" + id[13:],             // NUL
		"0192f0c1-0000-7000-8000-00000000000é", // non-ASCII, 37 bytes
		"0192f0c1-0000-7000-8000-0000000000é",  // non-ASCII, 36 bytes
	}
	// Every single-byte change of a valid id, over the bytes that matter.
	for i := range len(id) {
		for _, c := range []byte{'-', '0', '9', 'a', 'f', 'A', 'F', 'g', '/', ':', '{', ' '} {
			b := []byte(id)
			b[i] = c
			cases = append(cases, string(b))
		}
	}
	for _, s := range cases {
		if got, want := entity.ValidID(s), byUUID(s); got != want {
			t.Errorf("ValidID(%q) = %v, uuid.Parse says %v", s, got, want)
		}
	}
}
