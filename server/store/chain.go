package store

import (
	"crypto/sha256"
	"encoding/binary"
)

// NextChain is the log's running digest after appending the change
// (origin, seq) to a log whose digest was prev: the first 8 bytes of
// SHA-256(prev, origin, seq). A cursor carries the digest at its position,
// so a pull from a log whose changes up to that position are not the same
// (a server restored from a backup and written past the cursor since, by
// other changes) is told apart from the log that made the cursor. SHA-256,
// not a cheaper hash, so that no pusher can steer a log into the digest
// of another.
func NextChain(prev uint64, origin string, seq uint64) uint64 {
	var buf [8 + 8 + 8 + 64]byte
	b := binary.BigEndian.AppendUint64(buf[:0], prev)
	b = binary.BigEndian.AppendUint64(b, uint64(len(origin)))
	b = append(b, origin...)
	b = binary.BigEndian.AppendUint64(b, seq)
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8])
}
