package survey

import (
	"strings"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/proto"
)

// TestEveryRuleNamesTheFactsItDecidesOn: the double-count guard below can
// only see facts a rule declares.
func TestEveryRuleNamesTheFactsItDecidesOn(t *testing.T) {
	for name, r := range rules {
		if len(r.facts) == 0 {
			t.Errorf("rule %s declares no facts", name)
		}
	}
}

// TestNoStandardCountsAFactTwice: in every built-in standard, no two
// indicators decide on the same answer, so the deprivation count a
// classification rests on counts each missing thing once.
func TestNoStandardCountsAFactTwice(t *testing.T) {
	for _, s := range Builtin().Standards() {
		by := map[string]string{}
		for _, ind := range s.Indicators() {
			for _, f := range rules[ind.Rule].facts {
				if other, ok := by[f]; ok {
					t.Errorf("%s: %s and %s both decide on %s", s.ID, other, ind.ID, f)
				}
				by[f] = ind.ID
			}
		}
	}
}

// TestAStandardThatCountsAFactTwiceIsRefused: a province file that adds a
// second indicator on the same answer (here "internet" as a copy of the
// telecom indicator, which already covers internet) is refused on load.
func TestAStandardThatCountsAFactTwiceIsRefused(t *testing.T) {
	src, err := BuiltinJSON("2021-2025")
	if err != nil {
		t.Fatal(err)
	}
	const telecom = `"rule": "telecom", "params": {}}`
	edited := strings.Replace(string(src), telecom, telecom+`,
      {"id": "INTERNET", "name": "Tiếp cận internet", "rule": "telecom", "params": {}}`, 1)
	if edited == string(src) {
		t.Fatal("telecom indicator not found in the built-in standard")
	}
	_, err = LoadStandard(strings.NewReader(edited))
	if err == nil || !strings.Contains(err.Error(), `"INTERNET" decides on information.usesTelecom as "TELECOM" does`) {
		t.Fatalf("err = %v, want the double count named", err)
	}
}

// TestDeprivationCountIsDistinctIndicators: for households deprived in
// every combination of the answers the tests vary, the count equals the
// number of distinct deprived indicators, and score B follows it.
func TestDeprivationCountIsDistinctIndicators(t *testing.T) {
	for _, s := range Builtin().Standards() {
		for mask := range 1 << 6 {
			h := sampleHousehold(3)
			h.ReviewDate = map[string]string{"2016-2020": "2019-10-15", "2021-2025": "2025-10-20", "2026-2030": "2026-10-20"}[s.ID]
			h.Information.UsesDigitalServices = proto.Bool(mask&1 == 0)
			h.Environment = &rasoatv1.Environment{WasteTreatment: rasoatv1.WasteTreatment_WASTE_TREATMENT_COLLECTED}
			if mask&1 != 0 {
				h.Environment.WasteTreatment = rasoatv1.WasteTreatment_WASTE_TREATMENT_NONE
			}
			if mask&2 != 0 {
				h.Information.UsesTelecom = proto.Bool(false)
			}
			if mask&4 != 0 {
				h.Information.InfoDevices = nil
			}
			if mask&8 != 0 {
				h.WaterSanitation.Latrine = rasoatv1.Latrine_LATRINE_NONE
			}
			if mask&16 != 0 {
				h.Housing.FloorAreaM2 = proto.Float64(10)
			}
			if mask&32 != 0 {
				h.Members[0].HasHealthInsurance = proto.Bool(false)
			}
			a, err := s.Assess(h)
			if err != nil {
				t.Fatalf("%s mask %b: %v", s.ID, mask, err)
			}
			ids := a.Deprived()
			distinct := map[string]bool{}
			for _, id := range ids {
				distinct[id] = true
			}
			if a.Deprivations != len(distinct) || len(ids) != len(distinct) || a.ScoreB != 10*len(distinct) {
				t.Errorf("%s mask %b: %d deprivations, score B %d, ids %v", s.ID, mask, a.Deprivations, a.ScoreB, ids)
			}
		}
	}
}
