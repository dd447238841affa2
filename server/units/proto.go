package units

import rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"

var levels = map[rasoatv1.UnitLevel]Level{
	rasoatv1.UnitLevel_UNIT_LEVEL_PROVINCE: Province,
	rasoatv1.UnitLevel_UNIT_LEVEL_COMMUNE:  Commune,
	rasoatv1.UnitLevel_UNIT_LEVEL_VILLAGE:  Village,
}

// Of and Proto convert between the contract's Unit and this package's.
func Of(u *rasoatv1.Unit) Unit {
	return Unit{Code: u.GetCode(), Name: u.GetName(), Level: levels[u.GetLevel()], Kind: u.GetKind(), Parent: u.GetParentCode()}
}

func Proto(u Unit) *rasoatv1.Unit {
	out := &rasoatv1.Unit{Code: u.Code, Name: u.Name, Kind: u.Kind, ParentCode: u.Parent}
	for l, name := range levels {
		if name == u.Level {
			out.Level = l
		}
	}
	return out
}

// KnownLevel reports whether l is a level this package has.
func KnownLevel(l rasoatv1.UnitLevel) bool {
	_, ok := levels[l]
	return ok
}

// FromProto builds the tree of units a store holds (checked when they were
// put, so New takes them).
func FromProto(us []*rasoatv1.Unit) (*Tree, error) {
	all := make([]Unit, len(us))
	for i, u := range us {
		all[i] = Of(u)
	}
	return New(all)
}

// Within reports whether code is one of codes or under one of them.
func (t *Tree) Within(code string, codes []string) bool {
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	for _, a := range t.Ancestors(code) {
		for _, c := range codes {
			if c == a.Code {
				return true
			}
		}
	}
	return false
}
