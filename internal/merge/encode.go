package merge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/rasoat/rasoat/internal/hlc"
)

// Encoding, version 2; every integer is a minimal uvarint:
//
//	version (2)
//	len(Seen)
//	per Seen entry, in order: len(Replica), Replica, HLC
//	len(Heads)
//	per head, in order:
//	  HLC minus the previous head's HLC (0 for the first)
//	  k+1 if Replica is Seen[k].Replica, else 0, len(Replica), Replica
//	  Seq
//	  len(Value), Value
//
// Seen is sorted by replica and heads by stamp, so the deltas are never
// negative. The decoder accepts only what the encoder writes, and the encoder
// only a state Apply can reach (replicas and HLCs non-empty, every head
// uncovered), so equal states have one encoding and corruption is caught.
// Version 1 (a single MaxBase stamp) is not read: it encoded the old
// coverage rule.
const encodingVersion = 2

var errCorrupt = errors.New("corrupt field encoding")

// MarshalBinary encodes f; fields with the same set of applied changes
// encode byte for byte equal.
func (f Field) MarshalBinary() ([]byte, error) {
	n := 1 + 2*binary.MaxVarintLen64
	for i := range f.Seen {
		n += 2*binary.MaxVarintLen64 + len(f.Seen[i].Replica)
	}
	for i := range f.Heads {
		n += 5*binary.MaxVarintLen64 + len(f.Heads[i].Stamp.Replica) + len(f.Heads[i].Value)
	}
	return f.AppendBinary(make([]byte, 0, n))
}

// AppendBinary appends the MarshalBinary form of f to b. It fails on a state
// Apply cannot produce.
func (f Field) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, encodingVersion)
	b = binary.AppendUvarint(b, uint64(len(f.Seen)))
	for i, s := range f.Seen {
		if s.Replica == "" || s.HLC == 0 || i > 0 && f.Seen[i-1].Replica >= s.Replica {
			return nil, fmt.Errorf("encode field: seen entry %d (%s) empty or out of order", i, s)
		}
		b = appendBytes(b, s.Replica)
		b = binary.AppendUvarint(b, uint64(s.HLC))
	}
	b = binary.AppendUvarint(b, uint64(len(f.Heads)))
	var prev hlc.Timestamp
	for i := range f.Heads {
		h := &f.Heads[i]
		if h.Stamp.HLC == 0 || h.Stamp.Replica == "" || i > 0 && compareHeads(&f.Heads[i-1], h) >= 0 {
			return nil, fmt.Errorf("encode field: head %d (%s) empty or out of order", i, h.Stamp)
		}
		b = binary.AppendUvarint(b, uint64(h.Stamp.HLC-prev))
		if k, ok := f.seen(h.Stamp.Replica); ok {
			if h.Stamp.HLC <= f.Seen[k].HLC {
				return nil, fmt.Errorf("encode field: head %d (%s) is covered", i, h.Stamp)
			}
			b = binary.AppendUvarint(b, uint64(k)+1)
		} else {
			b = append(b, 0)
			b = appendBytes(b, h.Stamp.Replica)
		}
		b = binary.AppendUvarint(b, h.Seq)
		b = appendBytes(b, h.Value)
		prev = h.Stamp.HLC
	}
	return b, nil
}

func appendBytes[S string | []byte](b []byte, s S) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary decodes what MarshalBinary wrote, replacing f. On error f
// is unchanged. It copies data once; head values share that copy.
func (f *Field) UnmarshalBinary(data []byte) error {
	d := decoder{buf: append([]byte(nil), data...)}
	var g Field
	if v := d.uvarint(); v != encodingVersion && d.err == nil {
		return fmt.Errorf("decode field: unknown encoding version %d", v)
	}
	// Each Seen entry takes at least 3 bytes and each head 4, so a corrupt
	// count cannot make a huge allocation.
	if n := d.count(3); n > 0 {
		g.Seen = make([]Stamp, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			s := Stamp{Replica: d.string()}
			s.HLC = hlc.Timestamp(d.uvarint())
			if s.HLC == 0 || i > 0 && g.Seen[i-1].Replica >= s.Replica {
				d.fail()
			}
			g.Seen = append(g.Seen, s)
		}
	}
	if n := d.count(4); n > 0 {
		g.Heads = make([]Head, 0, n)
		var prev *Head
		for i := 0; i < n && d.err == nil; i++ {
			var h Head
			delta := d.uvarint()
			if prev != nil {
				if delta > math.MaxUint64-uint64(prev.Stamp.HLC) {
					d.fail()
				}
				h.Stamp.HLC = prev.Stamp.HLC
			}
			h.Stamp.HLC += hlc.Timestamp(delta)
			switch k := d.uvarint(); {
			case k == 0:
				h.Stamp.Replica = d.string()
				if _, ok := g.seen(h.Stamp.Replica); ok {
					d.fail() // the encoder would have referred to Seen
				}
			case k <= uint64(len(g.Seen)):
				s := g.Seen[k-1]
				h.Stamp.Replica = s.Replica
				if h.Stamp.HLC <= s.HLC {
					d.fail() // covered
				}
			default:
				d.fail()
			}
			h.Seq = d.uvarint()
			if v := d.bytes(d.uvarint()); len(v) > 0 {
				h.Value = v
			}
			if h.Stamp.HLC == 0 || prev != nil && compareHeads(prev, &h) >= 0 {
				d.fail() // zero, or not in canonical order
			}
			g.Heads = append(g.Heads, h)
			prev = &g.Heads[len(g.Heads)-1]
		}
	}
	if d.err == nil && d.off != len(d.buf) {
		d.fail()
	}
	if d.err != nil {
		return fmt.Errorf("decode field: %w", d.err)
	}
	*f = g
	return nil
}

type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	// n <= 0: truncated or overflow; a last byte of 0 after others: not minimal.
	if n <= 0 || n > 1 && d.buf[d.off+n-1] == 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

// count reads a count of items taking at least size bytes each, failing if
// the rest of the data cannot hold them.
func (d *decoder) count(size int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64((len(d.buf)-d.off)/size) {
		d.fail()
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

// string reads a length-prefixed non-empty string.
func (d *decoder) string() string {
	b := d.bytes(d.uvarint())
	if len(b) == 0 {
		d.fail()
	}
	return string(b)
}

// bytes returns the next n bytes, capped so appending to them cannot
// overwrite what follows.
func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)-d.off) {
		d.fail()
		return nil
	}
	end := d.off + int(n)
	b := d.buf[d.off:end:end]
	d.off = end
	return b
}
