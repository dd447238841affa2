package merge

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/rasoat/rasoat/internal/hlc"
)

// The compact encoding writes a field against a replica table and a base HLC
// shared by all the fields of one entity (internal/entity). A replica id is
// a 36-byte UUID and a stamp nearly 10 bytes, and one or two replicas wrote
// almost every field of an entity, so sharing them halves an entity's state:
// what a first sync transfers and a tablet writes.
//
//	len(Seen); per entry: index of Replica in table, HLC − base
//	len(Heads); per head: HLC − previous HLC (base for the first),
//	  index of Replica in table, Seq, len(Value), Value
//
// Like the standalone encoding it accepts only the canonical form of a state
// Apply can reach.

// AddReplicas calls add with every replica f mentions.
func (f *Field) AddReplicas(add func(string)) {
	for i := range f.Seen {
		add(f.Seen[i].Replica)
	}
	for i := range f.Heads {
		add(f.Heads[i].Stamp.Replica)
	}
}

// MinHLC is the smallest HLC f mentions, 0 if none.
func (f *Field) MinHLC() hlc.Timestamp {
	var m hlc.Timestamp
	for i := range f.Seen {
		if m == 0 || f.Seen[i].HLC < m {
			m = f.Seen[i].HLC
		}
	}
	if len(f.Heads) > 0 && (m == 0 || f.Heads[0].Stamp.HLC < m) {
		m = f.Heads[0].Stamp.HLC
	}
	return m
}

// AppendCompact appends f with its replicas as indexes into table (sorted,
// distinct, holding each of them) and its HLCs as offsets from base (at most
// each of them).
func (f Field) AppendCompact(b []byte, table []string, base hlc.Timestamp) ([]byte, error) {
	index := func(r string) (int, error) {
		k, ok := slices.BinarySearch(table, r)
		if !ok {
			return 0, fmt.Errorf("encode field: replica %q not in the table", r)
		}
		return k, nil
	}
	b = binary.AppendUvarint(b, uint64(len(f.Seen)))
	for i, s := range f.Seen {
		if s.Replica == "" || s.HLC == 0 || s.HLC < base || i > 0 && f.Seen[i-1].Replica >= s.Replica {
			return nil, fmt.Errorf("encode field: seen entry %d (%s) empty, out of order or under the base", i, s)
		}
		k, err := index(s.Replica)
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(k))
		b = binary.AppendUvarint(b, uint64(s.HLC-base))
	}
	b = binary.AppendUvarint(b, uint64(len(f.Heads)))
	prev := base
	for i := range f.Heads {
		h := &f.Heads[i]
		if h.Stamp.HLC == 0 || h.Stamp.Replica == "" || h.Stamp.HLC < prev || i > 0 && compareHeads(&f.Heads[i-1], h) >= 0 {
			return nil, fmt.Errorf("encode field: head %d (%s) empty, out of order or under the base", i, h.Stamp)
		}
		if f.covers(h.Stamp) {
			return nil, fmt.Errorf("encode field: head %d (%s) is covered", i, h.Stamp)
		}
		k, err := index(h.Stamp.Replica)
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(h.Stamp.HLC-prev))
		b = binary.AppendUvarint(b, uint64(k))
		b = binary.AppendUvarint(b, h.Seq)
		b = appendBytes(b, h.Value)
		prev = h.Stamp.HLC
	}
	return b, nil
}

// DecodeCompact reads one field written by AppendCompact from the start of
// data and returns it with the number of bytes read. Values alias data.
func DecodeCompact(data []byte, table []string, base hlc.Timestamp) (Field, int, error) {
	d := decoder{buf: data}
	var g Field
	replica := func() string {
		k := d.uvarint()
		if d.err == nil && k >= uint64(len(table)) {
			d.fail()
		}
		if d.err != nil {
			return ""
		}
		return table[k]
	}
	offset := func(from hlc.Timestamp) hlc.Timestamp {
		v := d.uvarint()
		if d.err == nil && v > math.MaxUint64-uint64(from) {
			d.fail()
		}
		return from + hlc.Timestamp(v)
	}
	// A Seen entry takes at least 2 bytes and a head 4, so a corrupt count
	// cannot make a huge allocation.
	if n := d.count(2); n > 0 {
		g.Seen = make([]Stamp, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			s := Stamp{Replica: replica()}
			s.HLC = offset(base)
			if s.HLC == 0 || i > 0 && g.Seen[i-1].Replica >= s.Replica {
				d.fail()
			}
			g.Seen = append(g.Seen, s)
		}
	}
	if n := d.count(4); n > 0 {
		g.Heads = make([]Head, 0, n)
		prev := base
		for i := 0; i < n && d.err == nil; i++ {
			var h Head
			h.Stamp.HLC = offset(prev)
			h.Stamp.Replica = replica()
			h.Seq = d.uvarint()
			if v := d.bytes(d.uvarint()); len(v) > 0 {
				h.Value = v
			}
			if h.Stamp.HLC == 0 || i > 0 && compareHeads(&g.Heads[i-1], &h) >= 0 || g.covers(h.Stamp) {
				d.fail() // zero, out of canonical order, or covered
			}
			g.Heads = append(g.Heads, h)
			prev = h.Stamp.HLC
		}
	}
	if d.err != nil {
		return Field{}, 0, fmt.Errorf("decode field: %w", d.err)
	}
	return g, d.off, nil
}

// CompactSummary is what ScanCompact reads of one field.
type CompactSummary struct {
	Size       int           // bytes the field takes
	Winner     hlc.Timestamp // the winner's HLC, 0 without heads
	Conflicted bool          // some head's value differs from the winner's (Field.Conflict)
	Min        hlc.Timestamp // the smallest HLC the field mentions (Field.MinHLC)
	// Used has bit k set for every table index k below 64 the field names.
	Used uint64
}

// ScanCompact reads one field written by AppendCompact from the start of
// data without building it: it accepts exactly what DecodeCompact accepts
// and says what a replica storing the encoding as it came needs to know (a
// first sync stores a server's states so, instead of decoding each one and
// encoding it again). Table indexes of 64 and over that the field names are
// passed to more, which may be nil when tableLen is at most 64. It does not
// allocate for a field of up to 4 seen entries.
func ScanCompact(data []byte, tableLen int, base hlc.Timestamp, more func(k int)) (CompactSummary, error) {
	r := scanner{buf: data}
	var sum CompactSummary
	replica := func() int {
		k := r.uvarint()
		if k >= uint64(tableLen) {
			r.bad = true
			return 0
		}
		if k < 64 {
			sum.Used |= 1 << k
		} else {
			more(int(k))
		}
		return int(k)
	}
	type seenEntry struct {
		k   int
		hlc hlc.Timestamp
	}
	var seenBuf [4]seenEntry
	seen := seenBuf[:0]
	// A Seen entry takes at least 2 bytes and a head 4, so a corrupt count
	// cannot make a huge allocation.
	n := r.uvarint()
	if n > uint64(len(data)-r.off)/2 {
		return CompactSummary{}, fmt.Errorf("decode field: %w", errCorrupt)
	}
	for i := 0; i < int(n) && !r.bad; i++ {
		k := replica()
		t := r.offset(base)
		if t == 0 || i > 0 && seen[i-1].k >= k {
			r.bad = true
		}
		seen = append(seen, seenEntry{k, t})
		if sum.Min == 0 || t < sum.Min {
			sum.Min = t
		}
	}
	n = r.uvarint()
	if r.bad || n > uint64(len(data)-r.off)/4 {
		return CompactSummary{}, fmt.Errorf("decode field: %w", errCorrupt)
	}
	// Heads are not kept: the order check needs the previous one, and the
	// field is in conflict exactly when the heads' values are not all equal
	// (if they all equal the winner's there is none; if one differs, some
	// head differs from the winner).
	var prev struct {
		hlc   hlc.Timestamp
		k     int
		seq   uint64
		value []byte
	}
	var first []byte
	prevHLC := base
	for i := 0; i < int(n) && !r.bad; i++ {
		t := r.offset(prevHLC)
		k := replica()
		seq := r.uvarint()
		value := r.bytes()
		if r.bad {
			break
		}
		if t == 0 {
			r.bad = true
		}
		if i == 0 {
			first = value
			if sum.Min == 0 || t < sum.Min {
				sum.Min = t
			}
		} else {
			c := cmp.Compare(prev.hlc, t)
			if c == 0 {
				c = cmp.Compare(prev.k, k)
			}
			if c == 0 {
				c = cmp.Compare(prev.seq, seq)
			}
			if c == 0 {
				c = bytes.Compare(prev.value, value)
			}
			if c >= 0 {
				r.bad = true // out of canonical order
			}
			if !sum.Conflicted && !bytes.Equal(first, value) {
				sum.Conflicted = true
			}
		}
		for _, s := range seen {
			if s.k == k && t <= s.hlc {
				r.bad = true // covered
			}
		}
		prev.hlc, prev.k, prev.seq, prev.value = t, k, seq, value
		prevHLC = t
		sum.Winner = t
	}
	if r.bad {
		return CompactSummary{}, fmt.Errorf("decode field: %w", errCorrupt)
	}
	sum.Size = r.off
	return sum, nil
}

// scanner reads what decoder reads, with a fast path for the one-byte
// uvarints that make up most of an encoding; once bad, every read returns
// zero.
type scanner struct {
	buf []byte
	off int
	bad bool
}

func (r *scanner) uvarint() uint64 {
	if r.off < len(r.buf) && r.buf[r.off] < 0x80 {
		v := r.buf[r.off]
		r.off++
		return uint64(v)
	}
	return r.uvarintSlow()
}

func (r *scanner) uvarintSlow() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.buf[r.off:])
	// n <= 0: truncated or overflow; a last byte of 0 after others: not minimal.
	if n <= 0 || n > 1 && r.buf[r.off+n-1] == 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

// offset reads an HLC offset from from.
func (r *scanner) offset(from hlc.Timestamp) hlc.Timestamp {
	v := r.uvarint()
	if v > math.MaxUint64-uint64(from) {
		r.bad = true
	}
	return from + hlc.Timestamp(v)
}

// bytes reads a length-prefixed byte string, capped.
func (r *scanner) bytes() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.buf)-r.off) {
		r.bad = true
		return nil
	}
	end := r.off + int(n)
	b := r.buf[r.off:end:end]
	r.off = end
	return b
}
