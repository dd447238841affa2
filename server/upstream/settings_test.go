package upstream_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rasoat/rasoat/internal/pgtest"
	"github.com/rasoat/rasoat/server/store/postgres"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"github.com/rasoat/rasoat/server/upstream"
)

// The link keeps its state in the settings of either engine: both must
// read back what was put, delete what was deleted, and list a prefix in
// key order in pages.
func TestSettingsOnBothEngines(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		checkSettings(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(ctx, pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		checkSettings(t, st)
	})
}

func checkSettings(t *testing.T, st upstream.Store) {
	ctx := context.Background()
	if _, ok, err := st.Setting(ctx, "upstream.push"); err != nil || ok {
		t.Fatalf("unset key: ok %v, err %v", ok, err)
	}
	set := map[string]string{"a.1": "x", "a.2": "y", "a.3": "z", "b": "w", "a": "top"}
	if err := st.PutSettings(ctx, set, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.PutSettings(ctx, map[string]string{"a.1": "x2"}, []string{"a.3"}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := st.Setting(ctx, "a.1"); err != nil || !ok || v != "x2" {
		t.Fatalf("a.1 = %q %v %v, want x2", v, ok, err)
	}
	var keys []string
	n, err := st.Settings(ctx, "a.", "", 1, func(k, _ string) error { keys = append(keys, k); return nil })
	if err != nil || n != 2 || len(keys) != 1 || keys[0] != "a.1" {
		t.Fatalf("first page: %v total %d err %v", keys, n, err)
	}
	if _, err := st.Settings(ctx, "a.", keys[0], 10, func(k, _ string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[1] != "a.2" {
		t.Fatalf("pages: %v, want a.1 a.2", keys)
	}
}
