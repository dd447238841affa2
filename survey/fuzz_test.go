package survey_test

import (
	"errors"
	"os"
	"testing"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"github.com/rasoat/rasoat/survey"
	"google.golang.org/protobuf/encoding/protojson"
)

// FuzzAssessJSON: whatever bytes arrive as a household, decoding and
// assessment never panic, and every decoded household is either classified
// consistently or rejected with violations that name a field.
func FuzzAssessJSON(f *testing.F) {
	if b, err := os.ReadFile("testdata/household-example.json"); err == nil {
		f.Add(b)
	}
	for std := range reviewDates {
		b, err := protojson.Marshal(base(std))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"area":"AREA_URBAN","reviewDate":"2025-02-29","members":[{}],"income":{"scoreA":3}}`))
	f.Add([]byte(`{"members":[{"birthDate":"0001-01-01","removed":"REMOVAL_DIED"}],"housing":{"floorAreaM2":"NaN"}}`))
	f.Add([]byte(`{"area":"AREA_RURAL","reviewDate":"2025-10-20","members":[{"fullName":"A","sex":5,"birthDate":"1990-01-01","hasHealthInsurance":true,"employment":"EMPLOYMENT_UNEMPLOYED"}],"income":{"monthlyPerCapitaVnd":"1"}}`))
	// Sections left out entirely (nil messages) must be refused, not crash.
	f.Add([]byte(`{"area":"AREA_RURAL","reviewDate":"2025-10-20","members":[{"fullName":"A","sex":"SEX_MALE","birthDate":"1990-01-01","hasHealthInsurance":true,"employment":"EMPLOYMENT_SELF_EMPLOYED","highestEducation":"EDUCATION_LEVEL_PRIMARY"}],"income":{"monthlyPerCapitaVnd":"1"}}`))

	stds := survey.Builtin().Standards()
	f.Fuzz(func(t *testing.T, data []byte) {
		var h rasoatv1.Household
		if err := protojson.Unmarshal(data, &h); err != nil {
			return // rejected by the decoder, which names the field
		}
		for _, s := range stds {
			a, err := s.Assess(&h)
			if err != nil {
				var ve *survey.ValidationError
				if !errors.As(err, &ve) || len(ve.Violations) == 0 {
					t.Fatalf("%s: error without violations: %v", s.ID, err)
				}
				for _, v := range ve.Violations {
					if v.Field == "" || v.Description == "" {
						t.Fatalf("%s: violation without field or description: %+v", s.ID, v)
					}
				}
				continue
			}
			if a.Classification < rasoatv1.Classification_CLASSIFICATION_POOR || a.Classification > rasoatv1.Classification_CLASSIFICATION_NOT_POOR {
				t.Fatalf("%s: classification %v", s.ID, a.Classification)
			}
			if len(a.Deprived()) != a.Deprivations || a.Members == 0 {
				t.Fatalf("%s: %d deprived ids for %d deprivations, %d members", s.ID, len(a.Deprived()), a.Deprivations, a.Members)
			}
			for _, r := range a.Indicators {
				if len(r.Reasons) == 0 {
					t.Fatalf("%s: indicator %s has no reason", s.ID, r.Indicator.ID)
				}
			}
			_ = a.Proto(&h) // renders every reason
		}
	})
}
