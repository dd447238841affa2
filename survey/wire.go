package survey

import "google.golang.org/protobuf/encoding/protowire"

// Field numbers of rasoat.v1.Assessment, IndicatorResult and Reason, for
// AppendProto.
const (
	asHouseholdID      = 1
	asStandard         = 2
	asProvisional      = 3
	asClassification   = 4
	asDeprivationCount = 5
	asDeprived         = 6
	asIncomeBasis      = 7
	asIncomePerCapita  = 8
	asScoreA           = 9
	asScoreB           = 10
	asPovertyLine      = 11
	asMiddleLine       = 12
	asIndicators       = 13
	asNotes            = 14
	asMemberCount      = 15
	asNearPovertyLine  = 16
	asMiddle           = 17
	asDeclaredIncome   = 18

	irIndicator   = 1
	irDimension   = 2
	irName        = 3
	irDeprived    = 4
	irReasons     = 5
	irProvisional = 6

	reMemberID = 1
	reText     = 2
)

// AppendProto appends to b the wire encoding of a.Proto(h), byte for byte
// what proto.Marshal makes of it, without building the message. Bulk
// scoring spends most of its time building and marshalling those messages
// (a few dozen allocations per household); this writes the same bytes with
// none. h's strings must be valid UTF-8, as a decoded message's are:
// proto.Marshal refuses an invalid one, AppendProto copies it.
func (a *Assessment) AppendProto(b []byte, h *Household) []byte {
	return a.appendProto(b, h, true)
}

// AppendProtoBasic is AppendProto for a.ProtoBasic(h).
func (a *Assessment) AppendProtoBasic(b []byte, h *Household) []byte {
	return a.appendProto(b, h, false)
}

// appendProto writes the fields in field-number order, as proto.Marshal
// does, leaving out proto3 zero values as it does.
func (a *Assessment) appendProto(b []byte, h *Household, indicators bool) []byte {
	b = appendString(b, asHouseholdID, h.GetId())
	b = appendString(b, asStandard, a.Standard.ID)
	b = appendBool(b, asProvisional, a.Provisional)
	b = appendInt(b, asClassification, int64(a.Classification))
	b = appendInt(b, asDeprivationCount, int64(int32(a.Deprivations)))
	for i := range a.Indicators {
		if a.Indicators[i].Deprived {
			b = protowire.AppendTag(b, asDeprived, protowire.BytesType)
			b = protowire.AppendString(b, a.Indicators[i].Indicator.ID)
		}
	}
	b = appendInt(b, asIncomeBasis, int64(a.IncomeBasis))
	b = appendInt(b, asIncomePerCapita, a.IncomePerCapita)
	if a.HasScoreA { // optional: present even when 0
		b = protowire.AppendTag(b, asScoreA, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(a.ScoreA)))
	}
	b = appendInt(b, asScoreB, int64(int32(a.ScoreB)))
	b = appendInt(b, asPovertyLine, a.PovertyLine)
	b = appendInt(b, asMiddleLine, a.MiddleLine)
	if indicators {
		for i := range a.Indicators {
			var start int
			b, start = beginLen(b, asIndicators)
			b = endLen(a.Indicators[i].appendProto(b, h), start)
		}
	}
	for n := range a.notes() {
		b = protowire.AppendTag(b, asNotes, protowire.BytesType)
		b = protowire.AppendString(b, n)
	}
	b = appendInt(b, asMemberCount, int64(int32(a.Members)))
	b = appendInt(b, asNearPovertyLine, a.NearPovertyLine)
	b = appendInt(b, asMiddle, int64(a.Middle))
	return appendBool(b, asDeclaredIncome, a.DeclaredIncome)
}

func (r *IndicatorResult) appendProto(b []byte, h *Household) []byte {
	if r.Indicator.wireHead != nil {
		b = append(b, r.Indicator.wireHead...)
	} else {
		b = r.Indicator.appendHead(b)
	}
	b = appendBool(b, irDeprived, r.Deprived)
	for _, why := range r.Reasons {
		var reason, text int
		b, reason = beginLen(b, irReasons)
		if why.Member >= 0 && why.Member < len(h.GetMembers()) {
			b = appendString(b, reMemberID, h.GetMembers()[why.Member].GetId())
		}
		// Never empty, so never left out as an empty proto3 string is.
		b, text = beginLen(b, reText)
		b = endLen(why.appendText(b, h), text)
		b = endLen(b, reason)
	}
	return appendBool(b, irProvisional, r.Indicator.Provisional)
}

// appendHead appends the indicator's fields of an IndicatorResult.
func (ind *Indicator) appendHead(b []byte) []byte {
	b = appendString(b, irIndicator, ind.ID)
	b = appendString(b, irDimension, ind.dimension)
	return appendString(b, irName, ind.Name)
}

// beginLen appends the tag of length-delimited field num and one byte for
// the length, and returns where the body starts; endLen writes the length
// once the body is there. The body's size is known only after it is
// written (a reason's text is rendered in place), and most bodies (a text,
// a reason, an indicator) are under 128 bytes, so the one byte is right and
// nothing moves.
func beginLen(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = append(b, 0)
	return b, len(b)
}

// endLen writes the length of the body from start to the end of b, moving
// the body up when its length takes more than the byte beginLen kept.
func endLen(b []byte, start int) []byte {
	n := uint64(len(b) - start)
	if k := protowire.SizeVarint(n); k > 1 {
		b = append(b, make([]byte, k-1)...)
		copy(b[start+k-1:], b[start:])
	}
	// Writes the varint over the kept byte(s), within b's length.
	protowire.AppendVarint(b[:start-1], n)
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return append(protowire.AppendTag(b, num, protowire.VarintType), 1)
}

// appendInt writes an int32, int64 or enum field: int32 and enums are sign
// extended, as the callers' conversions through int32 make them.
func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}
