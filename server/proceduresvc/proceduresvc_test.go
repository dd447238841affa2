package proceduresvc_test

import (
	"path/filepath"
	"testing"

	"github.com/rasoat/rasoat/internal/authtest"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/server/proceduresvc"
	"github.com/rasoat/rasoat/server/store/sqlite"
	"google.golang.org/protobuf/proto"
)

// A commune server holds what its province has in force (UpstreamKey,
// written by the upstream link) under its own settings: the province's
// periods reach the villages with the province named as their setter, and
// the commune's own plan stands over the province's copy of it.
func TestEffectiveLayersTheProvinceUnderTheCommune(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, _, err := st.PutUnits(ctx, authtest.Units(2), authtest.Commune); err != nil {
		t.Fatal(err)
	}
	put := func(key string, s *rasoatv1.ProcedureSettings) {
		b, err := proto.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutSettings(ctx, map[string]string{key: string(b)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put(proceduresvc.UpstreamKey(authtest.Commune), &rasoatv1.ProcedureSettings{MeetingsBy: "2025-10-20", Periods: []*rasoatv1.ProcedurePeriod{
		{Id: "posting", Days: 10, WorkingDays: true, Source: "QĐ tỉnh", SetBy: authtest.Province},
		{Id: "recheck", Days: 15, Source: "QĐ tỉnh", SetBy: authtest.Province},
	}})
	tree, err := proceduresvc.TreeOf(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	eff, err := proceduresvc.Effective(ctx, st, tree, authtest.Village(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(eff.GetPeriods()) != 2 || eff.GetPeriods()[0].GetSetBy() != authtest.Province || eff.GetMeetingsBy() != "2025-10-20" {
		t.Fatalf("in force at a village, from the province's copy alone: %v", eff)
	}
	put(proceduresvc.Key(authtest.Commune), &rasoatv1.ProcedureSettings{MeetingsBy: "2025-10-30"})
	eff, err = proceduresvc.Effective(ctx, st, tree, authtest.Village(1))
	if err != nil {
		t.Fatal(err)
	}
	if eff.GetMeetingsBy() != "2025-10-30" || len(eff.GetPeriods()) != 2 {
		t.Fatalf("the commune's own plan over the province's copy: %v", eff)
	}
}
