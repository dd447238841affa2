package survey

import "fmt"

// Bounds on the size of a household. The scoring service takes households
// from any caller, and both its work and its answer grow with them: every
// member is checked, and a member's name comes back in each reason about
// them. Within these bounds a household's answer stays within a small
// multiple of its size; no real household comes near them.
const (
	// MaxMembers bounds the roster, removed members included. A household
	// (hộ) is the people who live and share a budget together; a roster
	// of a few dozen is already extraordinary, so 100 refuses nothing real.
	MaxMembers = 100
	// MaxTextBytes bounds every string answer (ids, names, address,
	// ethnicity, codes, dates), in bytes of UTF-8. The longest real ones,
	// a full name or an address, run to a few dozen letters; 512 bytes
	// holds 100 letters even written decomposed, a Vietnamese letter with
	// two diacritics as three code points of up to 5 bytes.
	MaxTextBytes = 512
	// MaxListLen bounds policyFlags and information.infoDevices. Each
	// holds distinct values of a short enum (2 policy flags, 5 devices);
	// 32 leaves room for values a newer contract adds, while a list of
	// bad values cannot make the violations many times the input.
	MaxListLen = 32
	// MaxViolations bounds the violations reported for one household; the
	// rest are left out. Within the bounds above a roster can still hold
	// hundreds (each bad enum of each member is one), some forty bytes
	// of answer for every two sent. A hundred is more than anyone fixes in
	// one go, as the sync service's limit for a push.
	MaxViolations = 100
)

// checkSizes reports a household beyond the bounds above, field by field,
// and returns false then: nothing else of it is looked at, so that the
// work and the violations stay small whatever was sent.
func checkSizes(h *Household, v *violations) bool {
	n := len(*v)
	text := func(field, s string) {
		if len(s) > MaxTextBytes {
			v.add(field, fmt.Sprintf("at most %d bytes, got %d", MaxTextBytes, len(s)))
		}
	}
	list := func(field string, n int) {
		if n > MaxListLen {
			v.add(field, fmt.Sprintf("at most %d values, got %d", MaxListLen, n))
		}
	}
	text("id", h.GetId())
	text("villageCode", h.GetVillageCode())
	text("headName", h.GetHeadName())
	text("address", h.GetAddress())
	text("headEthnicity", h.GetHeadEthnicity())
	text("reviewDate", h.GetReviewDate())
	list("policyFlags", len(h.GetPolicyFlags()))
	list("information.infoDevices", len(h.GetInformation().GetInfoDevices()))
	if len(h.GetMembers()) > MaxMembers {
		v.add("members", fmt.Sprintf("at most %d members (removed ones included), got %d", MaxMembers, len(h.GetMembers())))
		return false
	}
	for i, m := range h.GetMembers() {
		// Every household passes here: the paths are formatted only for
		// a member with a string too long.
		if max(len(m.GetId()), len(m.GetFullName()), len(m.GetBirthDate()), len(m.GetEthnicity())) <= MaxTextBytes {
			continue
		}
		text(fmt.Sprintf("members[%d].id", i), m.GetId())
		text(fmt.Sprintf("members[%d].fullName", i), m.GetFullName())
		text(fmt.Sprintf("members[%d].birthDate", i), m.GetBirthDate())
		text(fmt.Sprintf("members[%d].ethnicity", i), m.GetEthnicity())
	}
	return len(*v) == n
}
