package auth

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestCodesReadAsTyped(t *testing.T) {
	c := NewCode()
	id, hash, err := ParseCode(c.Text)
	if err != nil || id != c.ID || !bytes.Equal(hash, c.Hash) {
		t.Fatalf("ParseCode(%q) = %q, %v", c.Text, id, err)
	}
	for _, tc := range []struct {
		name, typed, want string
	}{
		{"case and dashes do not matter", "k7q2-m4xp-9rtc", "K7Q2M4XP9RTC"},
		{"spaces for dashes", "K7Q2 M4XP 9RTC", "K7Q2M4XP9RTC"},
		{"no separators", "K7Q2M4XP9RTC", "K7Q2M4XP9RTC"},
		{"I and L read as 1, O as 0", "K7Q2-M4XP-ILOC", "K7Q2M4XP110C"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, hash, err := ParseCode(tc.typed)
			if err != nil || id != tc.want[:4] || !bytes.Equal(hash, Hash(tc.want[4:])) {
				t.Errorf("ParseCode(%q) = %q, %v; want id %s", tc.typed, id, err, tc.want[:4])
			}
		})
	}
	for _, bad := range []string{"", "K7Q2-M4XP", "K7Q2-M4XP-9RTC-1", "K7Q2-M4XP-9RTU", "K7Q2_M4XP_9RTC", string(make([]byte, 100))} {
		if _, _, err := ParseCode(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseCode(%q) = %v; want ErrMalformed", bad, err)
		}
	}
}

func TestTokensCarryTheirIDAndOnlyTheSecretIsHashed(t *testing.T) {
	a, b := NewToken(), NewToken()
	if a.Text == b.Text || a.ID == b.ID {
		t.Fatal("two tokens alike")
	}
	id, hash, err := ParseToken(a.Text)
	if err != nil || id != a.ID || !bytes.Equal(hash, a.Hash) {
		t.Fatalf("ParseToken = %q, %v", id, err)
	}
	for _, bad := range []string{"", a.ID, "rst1_" + a.ID, "rst1_." + a.ID, "rst0_" + a.Text[5:], a.Text + string(make([]byte, 128))} {
		if _, _, err := ParseToken(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseToken(%q) = %v; want ErrMalformed", bad, err)
		}
	}
}

func TestLimiterAllowsBurstThenPaces(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLimiter(time.Minute, 3)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if _, blocked := l.Blocked("10.0.0.1"); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail("10.0.0.1")
	}
	wait, blocked := l.Blocked("10.0.0.1")
	if !blocked || wait <= 0 || wait > time.Minute {
		t.Fatalf("after the burst: blocked %v, wait %v; want blocked up to a minute", blocked, wait)
	}
	if _, blocked := l.Blocked("10.0.0.2"); blocked {
		t.Error("another address is blocked")
	}
	now = now.Add(time.Minute)
	if _, blocked := l.Blocked("10.0.0.1"); blocked {
		t.Error("still blocked a minute later")
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	l := NewLimiter(time.Minute, 3)
	for i := range maxAddrs + 10 {
		l.Fail(string(rune(i)))
	}
	if n := len(l.addrs); n > maxAddrs {
		t.Errorf("%d addresses tracked; want at most %d", n, maxAddrs)
	}
}

func TestMethodsWithoutARuleAreClosed(t *testing.T) {
	for _, tc := range []struct {
		method string
		open   bool
		known  bool
	}{
		{"/grpc.health.v1.Health/Check", true, true},
		{"/rasoat.v1.EnrolService/Enrol", true, true},
		{"/rasoat.v1.EnrolService/WhoAmI", false, true},
		{"/rasoat.v1.SyncService/Push", false, true},
		{"/rasoat.v1.AdminService/RevokeDevice", false, true},
		{"/rasoat.v1.ReportService/Report", false, true},
		{"/rasoat.v1.ExportService/Export", false, false}, // a service with no rule yet
		{"/rasoat.v1.EnrolService/Other", false, false},
	} {
		roles, needs := rolesFor(tc.method)
		if needs == tc.open || Known(tc.method) != tc.known || (tc.open && roles != nil) {
			t.Errorf("%s: roles %v, needs token %v, known %v", tc.method, roles, needs, Known(tc.method))
		}
	}
}
