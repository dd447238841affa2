package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rasoat/rasoat/server/adminsvc"
)

// TestAdminListsReadEveryPage: a commune with more villages than one page
// of the server's lists is listed whole, each village once.
func TestAdminListsReadEveryPage(t *testing.T) {
	s := startAuthServer(t, nil)
	c := setUpCommune(t, s)
	var b strings.Builder
	b.WriteString("code,name,level,kind,parent\n20,Lạng Sơn,province,tỉnh,\n06517,Quan Sơn,commune,xã,20\n")
	n := adminsvc.DefaultPage + 20
	for i := range n {
		fmt.Fprintf(&b, "06517-x%04d,Tổ %d,village,tổ dân phố,06517\n", i, i)
	}
	file := filepath.Join(t.TempDir(), "many.csv")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok(t, "admin", "units", "import", file, "--db", c.admin)
	out := c.ok(t, "admin", "units", "list", "--csv", "--db", c.admin)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	seen := map[string]int{}
	for _, l := range lines[1:] {
		code, _, _ := strings.Cut(l, ",")
		seen[code]++
	}
	for i := range n {
		if code := fmt.Sprintf("06517-x%04d", i); seen[code] != 1 {
			t.Fatalf("village %s listed %d times", code, seen[code])
		}
	}
	if len(seen) != len(lines)-1 {
		t.Errorf("%d lines for %d distinct units", len(lines)-1, len(seen))
	}
}
