// Package replica holds what tablet and server agree on about replica ids
// beyond their syntax: how a replica's successor id is derived.
package replica

import (
	"strconv"

	"github.com/google/uuid"
)

// namespace names rasoat's derived replica ids (UUIDv5).
var namespace = uuid.MustParse("8f0c6a52-3a7e-5b51-9f0e-6c2d1e5a7b10")

// Successor is the replica id a file moves to from old when the server
// holds other content under old's seq from. It is derived, not random: a
// file restored twice from copies made before the move issues its changes
// again under the same id, seqs and stamps as the first time, so the
// server finds them stored already (duplicates) instead of storing one
// write twice; and the server can check that a device's new id descends
// from one bound to it (PushRequest.lineage).
func Successor(old string, from uint64) string {
	return uuid.NewSHA1(namespace, []byte(old+"#"+strconv.FormatUint(from, 10))).String()
}
