package store

import (
	"fmt"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
	"google.golang.org/protobuf/proto"
)

// PullRow is one change a store's pull read: its position and payload
// (rasoatv1.Change, deterministic proto encoding).
type PullRow struct {
	Pos     Position
	Payload []byte
}

// MergePull merges two runs of rows, each in server order, keeping the
// first n: a pull over more villages than one statement takes reads each
// group's first n rows and merges them, so no read sorts the rest of the
// log.
func MergePull(a, b []PullRow, n int) []PullRow {
	if len(a) == 0 {
		return b[:min(len(b), n)]
	}
	out := make([]PullRow, 0, min(len(a)+len(b), n))
	i, j := 0, 0
	for len(out) < n && (i < len(a) || j < len(b)) {
		if j == len(b) || i < len(a) && a[i].Pos.Seq < b[j].Pos.Seq {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	return out
}

// MaxPullLimit bounds the limit an engine's Pull takes, far above any
// batch a caller asks for (the service bounds its own), so that the one
// row more it reads to tell whether more follow, and the runs around the
// cursor the SQLite store reads, stay in range: a limit of math.MaxInt
// gives the whole log, as "no limit" would.
const MaxPullLimit = 1 << 30

// EmitPull decodes the first limit rows and calls fn with each, in order;
// it returns the last position passed to fn (from if none) and whether
// more rows follow (rows holds more than limit).
func EmitPull(rows []PullRow, from Position, limit int, fn func(*rasoatv1.Change, Position) error) (Position, bool, error) {
	next := from
	for k, r := range rows {
		if k == limit {
			return next, true, nil
		}
		c := &rasoatv1.Change{}
		if err := proto.Unmarshal(r.Payload, c); err != nil {
			return next, false, fmt.Errorf("pull: change %d: %w", r.Pos.Seq, err)
		}
		if err := fn(c, r.Pos); err != nil {
			return next, false, err
		}
		next = r.Pos
	}
	return next, false, nil
}
