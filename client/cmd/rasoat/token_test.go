package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenOfAFileNeverEnrolledSaysSo(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tablet.db")
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"add", "--db", db, "--village", "06517-01", "../../../survey/testdata/household-example.json"}, strings.NewReader(""), &out, &errb); code != exitOK {
		t.Fatalf("add: %d %s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	code := run(t.Context(), []string{"token", "--db", db}, strings.NewReader(""), &out, &errb)
	if code != exitUsage || out.Len() != 0 || !strings.Contains(errb.String(), "not enrolled") {
		t.Errorf("token of a file never enrolled: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
