package seal

import (
	"testing"

	"github.com/rasoat/rasoat/internal/entity"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// TestAnAcknowledgementIsNotAnAnswer: an officer's acknowledgement of a
// quality flag, written after the village meeting sealed the answers,
// leaves the seal as it was; an answer does not.
func TestAnAcknowledgementIsNotAnAnswer(t *testing.T) {
	const hh, rv = "0190f0c2-5555-7000-8000-0000000000a1", "0190f0c2-5555-7000-8000-0000000000f1"
	var seq uint64
	write := func(s *entity.State, kind rasoatv1.EntityKind, id, household, field, value string) {
		t.Helper()
		seq++
		if _, err := s.Apply(&rasoatv1.Change{EntityId: id, Kind: kind, HouseholdId: household, VillageCode: "06517-01", Field: field,
			Value: []byte(value), Stamp: &rasoatv1.Stamp{Hlc: seq << 16, ReplicaId: "tab"}, Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	h, r := &entity.State{}, &entity.State{}
	write(h, rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, hh, "", "headName", `"Lò Văn Páo"`)
	write(r, rasoatv1.EntityKind_ENTITY_KIND_REVIEW, rv, hh, "reviewDate", `"2025-10-05"`)
	before := Household([]*entity.State{h, r}, rv)
	write(r, rasoatv1.EntityKind_ENTITY_KIND_REVIEW, rv, hh, "ack.AREA_HALVED", `"nhà xây lại sau lũ"`)
	if got := Household([]*entity.State{h, r}, rv); got != before {
		t.Errorf("an acknowledgement changed the seal: %s → %s", before, got)
	}
	write(h, rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, hh, "", "headName", `"Lò Văn Pao"`)
	if got := Household([]*entity.State{h, r}, rv); got == before {
		t.Error("an answer left the seal as it was")
	}
}
