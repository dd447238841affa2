package export

import (
	"os/exec"
	"strings"
	"testing"
)

// The tablet app embeds package client, and every megabyte of it is
// downloaded to tablets over village connections: the workbook library is
// for the command line and the server only.
func TestTheTabletLibraryDoesNotImportTheWorkbookLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/rasoat/rasoat/client").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/xuri/") || p == "github.com/rasoat/rasoat/internal/export" {
			t.Errorf("package client imports %s", p)
		}
	}
}
