package main

import (
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestQualityListAndAck: a household scored from another date than its
// round's is listed with STALE_REVIEW_DATE for the officer; the officer
// acknowledges it with a comment offline, syncs, and the list shows it
// acknowledged. The collaborator may not list, and an acknowledgement
// needs its comment.
func TestQualityListAndAck(t *testing.T) {
	s := startAuthServer(t, nil)
	c := setUpCommune(t, s)
	hoa := c.tablet(t, "hoa", "collaborator", "06517-01")
	officer := c.tablet(t, "binh", "commune_officer", "06517")

	hh := add(t, hoa, "06517-01")
	ok(t, "", "review", "start", "--db", hoa, "--date", "2025-10-20", hh)
	ok(t, "", "set", "--db", hoa, hh, "reviewDate", `"2025-09-01"`) // the household is scored from another day
	c.ok(t, "sync", "--db", hoa)
	c.ok(t, "sync", "--db", officer)

	out := c.ok(t, "quality", "list", "--unit", "06517", "--db", officer)
	for _, want := range []string{"SỐ HỘ CÓ CỜ", "06517-01", hh, "STALE_REVIEW_DATE", "chưa", "2025-09-01"} {
		if !strings.Contains(out, want) {
			t.Errorf("quality list printed no %q:\n%s", want, out)
		}
	}
	if _, stderr, code := c.run(t, "quality", "list", "--unit", "06517-01", "--db", hoa); code == exitOK || !strings.Contains(stderr, "ROLE_DENIED") && !strings.Contains(stderr, "role") {
		t.Errorf("a collaborator's list: exit %d, %s; want refused for the role", code, stderr)
	}

	if _, stderr, code := rasoat(t, "", "quality", "ack", "--db", officer, hh, "STALE_REVIEW_DATE"); code != exitUsage || !strings.Contains(stderr, "--comment is required") {
		t.Errorf("an ack without --comment: exit %d, %s", code, stderr)
	}
	if _, stderr, code := rasoat(t, "", "quality", "ack", "--db", officer, "--comment", "x", hh, "NOT_A_RULE"); code != exitInvalid || !strings.Contains(stderr, "not a quality check's code") {
		t.Errorf("an ack of an unknown code: exit %d, %s", code, stderr)
	}
	rv := strings.TrimSpace(ok(t, "", "quality", "ack", "--db", officer, "--comment", "Ngày rà soát của hộ nhập trước khi mở đợt; điểm không đổi", hh[:8], "stale_review_date"))
	if rv == "" {
		t.Fatal("quality ack printed no review id")
	}
	c.ok(t, "sync", "--db", officer)

	var res rasoatv1.FlagsResponse
	if err := protojson.Unmarshal([]byte(c.ok(t, "quality", "list", "--unit", "06517", "--json", "--db", officer)), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.GetHouseholds()) != 1 || len(res.GetHouseholds()[0].GetFlags()) != 1 {
		t.Fatalf("after the ack: %v", &res)
	}
	f := res.GetHouseholds()[0].GetFlags()[0]
	if f.GetCode() != "STALE_REVIEW_DATE" || !f.GetAcknowledged() || !strings.Contains(f.GetComment(), "điểm không đổi") {
		t.Errorf("the flag after the ack: %v", f)
	}
	if res.GetByVillage()[0].GetUnacknowledged() != 0 {
		t.Errorf("counts after the ack: %v", res.GetByVillage())
	}
	var open rasoatv1.FlagsResponse
	if err := protojson.Unmarshal([]byte(c.ok(t, "quality", "list", "--unit", "06517", "--open", "--json", "--db", officer)), &open); err != nil {
		t.Fatal(err)
	}
	if len(open.GetHouseholds()) != 0 {
		t.Errorf("--open lists an acknowledged flag: %v", &open)
	}
}
