// Package storetest makes realistic change sets for the store's and the
// sync service's tests and benchmarks: new households with every field of
// the contract filled, as a tablet enrolling them would push.
package storetest

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rasoat/rasoat/internal/entity"
	"github.com/rasoat/rasoat/internal/hlc"
	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// values holds a valid value for each field path; a path of the contract
// missing here is left out of generated households.
var values = map[string]string{
	"address":                         `"Thôn Nà Pàn, xã Quang Thành"`,
	"area":                            `"AREA_RURAL"`,
	"environment.wasteTreatment":      `"WASTE_TREATMENT_TREATED_ON_SITE"`,
	"headEthnicity":                   `"Tày"`,
	"headName":                        `"Hoàng Văn Thắng"`,
	"housing.floorAreaM2":             `36.5`,
	"housing.frameDurable":            `true`,
	"housing.roofDurable":             `false`,
	"housing.wallDurable":             `true`,
	"income":                          `{"annual":{"wagesVnd":"24000000","farmingVnd":"18500000","forestryVnd":"0","fisheryVnd":"0","businessVnd":"0","pensionsAllowancesVnd":"0","otherVnd":"0"}}`,
	"information.hearsLoudspeaker":    `true`,
	"information.infoDevices":         `["INFO_DEVICE_TV","INFO_DEVICE_SMARTPHONE"]`,
	"information.usesDigitalServices": `false`,
	"information.usesTelecom":         `true`,
	"policyFlags":                     `["POLICY_FLAG_SOCIAL_PROTECTION"]`,
	"reviewDate":                      `"2025-11-15"`,
	"waterSanitation.latrine":         `"LATRINE_DOUBLE_VAULT"`,
	"waterSanitation.waterSource":     `"WATER_SOURCE_PROTECTED_SPRING"`,
	// Member.
	"fullName":           `"Hoàng Thị Mai"`,
	"sex":                `"SEX_FEMALE"`,
	"birthDate":          `"2012-04-09"`,
	"relation":           `"RELATION_CHILD"`,
	"ethnicity":          `"Tày"`,
	"highestEducation":   `"EDUCATION_LEVEL_PRIMARY"`,
	"inSchool":           `true`,
	"schoolLevel":        `"SCHOOL_LEVEL_LOWER_SECONDARY"`,
	"hasHealthInsurance": `true`,
	"employment":         `"EMPLOYMENT_NOT_IN_LABOUR_FORCE"`,
	"disabilitySevere":   `false`,
	"childStunted":       `false`,
	"childUnderweight":   `false`,
	"illUntreated":       `false`,
	"removed":            `"REMOVAL_UNSPECIFIED"`,
}

// Gen writes changes as one replica would: increasing sequence numbers
// and HLC stamps.
type Gen struct {
	Replica string
	Village string
	seq     uint64
	clock   *hlc.Clock
}

// New returns a generator for replica in village, stamping from now.
func New(replica, village string) *Gen {
	return &Gen{Replica: replica, Village: village, clock: hlc.New(nil)}
}

// Household returns the changes enrolling a new household with members
// members, every field filled: its own entity first, then each member's.
func (g *Gen) Household(members int) []*rasoatv1.Change {
	hh := uuid.Must(uuid.NewV7()).String()
	var out []*rasoatv1.Change
	out = g.entity(out, rasoatv1.EntityKind_ENTITY_KIND_HOUSEHOLD, hh, "")
	for range members {
		out = g.entity(out, rasoatv1.EntityKind_ENTITY_KIND_MEMBER, uuid.Must(uuid.NewV7()).String(), hh)
	}
	return out
}

func (g *Gen) entity(out []*rasoatv1.Change, kind rasoatv1.EntityKind, id, hh string) []*rasoatv1.Change {
	for _, p := range entity.Paths(kind) {
		v, ok := values[p]
		if !ok {
			continue
		}
		g.seq++
		out = append(out, &rasoatv1.Change{
			EntityId: id, Kind: kind, HouseholdId: hh, VillageCode: g.Village,
			Field: p, Value: []byte(v),
			Stamp: &rasoatv1.Stamp{Hlc: uint64(g.clock.Now()), ReplicaId: g.Replica},
			Seq:   g.seq,
		})
	}
	return out
}

// Edit returns a change overwriting c's field with value, based on c.
func (g *Gen) Edit(c *rasoatv1.Change, value string) *rasoatv1.Change {
	g.clock.Restore(hlc.Timestamp(c.Stamp.Hlc)) // the author has seen c
	g.seq++
	return &rasoatv1.Change{
		EntityId: c.EntityId, Kind: c.Kind, HouseholdId: c.HouseholdId, VillageCode: c.VillageCode,
		Field: c.Field, Value: []byte(value),
		Stamp: &rasoatv1.Stamp{Hlc: uint64(g.clock.Now()), ReplicaId: g.Replica},
		Seq:   g.seq,
		Base:  []*rasoatv1.Stamp{c.Stamp},
	}
}

// Must fails with the first invalid change: a generator bug.
func Must(changes []*rasoatv1.Change) []*rasoatv1.Change {
	for i, c := range changes {
		if err := entity.Validate(c); err != nil {
			panic(fmt.Sprintf("storetest: changes[%d]: %v", i, err))
		}
	}
	return changes
}

// Since is a helper for benchmarks: the rate per second of n events in d.
func Since(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// Commune is the benchmarks' commune: households households of members
// members each, every field filled, handed to push in batches of about
// 5,000 changes as tablets enrolling them would push. It returns the
// number of changes.
func (g *Gen) Commune(households, members int, push func([]*rasoatv1.Change) error) (int, error) {
	var batch []*rasoatv1.Change
	total := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := push(batch); err != nil {
			return err
		}
		total += len(batch)
		batch = batch[:0]
		return nil
	}
	for range households {
		batch = append(batch, g.Household(members)...)
		if len(batch) >= 5000 {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	return total, flush()
}

// HeapPeak samples the heap in use every 2 ms until stop is called, and
// returns the greatest sample: a benchmark's peak memory.
func HeapPeak() (stop func() uint64) {
	var (
		peak uint64
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	wg.Go(func() {
		var m runtime.MemStats
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}
