// Package directory holds who may use a server: administrative units,
// people with their roles and units, enrolment codes, and enrolled devices
// with their tokens and replica ids — the records, their bounds and the
// errors a store of them returns. server/store/sqlite stores them beside
// the change log, so that a push and the receipt saying who sent it commit
// together.
package directory

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	rasoatv1 "github.com/rasoat/rasoat/proto/rasoat/v1"
)

// Errors a directory store returns (wrapped).
var (
	// ErrNotFound: no such unit, person, device or code.
	ErrNotFound = errors.New("not found")
	// ErrCodeInvalid: the code is unknown, expired, used or out of
	// attempts. One error for all four, so that a guesser learns nothing.
	ErrCodeInvalid = errors.New("enrolment code is not valid")
	// ErrReplicaTaken: a replica id offered at enrolment is bound to
	// another device.
	ErrReplicaTaken = errors.New("replica id is bound to another device")
)

// Bounds on what an admin stores, checked at the door (AdminService).
const (
	// MaxPersonIDLen: a handle an admin types ("nguyen-thi-hoa").
	MaxPersonIDLen = 64
	// MaxNameLen bounds a person's, unit's or device's name in bytes: the
	// longest Vietnamese full names and unit names are under 100 bytes.
	MaxNameLen = 200
	// MaxUnitsPerPerson: a collaborator covers a few villages, an officer
	// one commune; 64 leaves room for a collaborator of a large ward.
	MaxUnitsPerPerson = 64
	// MaxPeoplePerRequest: a commune has a few dozen users, a province a
	// few thousand; one bulk import of a province's file fits.
	MaxPeoplePerRequest = 10_000
	// MaxPriorReplicas bounds the replica ids one enrolment carries: a
	// tablet moves to a new one per enrolment and per restored copy.
	MaxPriorReplicas = 64
	// DefaultCodeTTL and MaxCodeTTL: a code is handed over within days.
	DefaultCodeTTL = 72 * time.Hour
	MaxCodeTTL     = 30 * 24 * time.Hour
	// CodeAttempts is how many wrong secrets a code survives: enough for
	// typos, too few to guess 40 bits.
	CodeAttempts = 5
)

// Person is someone who may use the server.
type Person struct {
	ID       string
	Name     string
	Roles    []rasoatv1.Role
	Units    []string // unit codes their roles act in
	Disabled bool
}

// Has reports whether p holds role r.
func (p *Person) Has(r rasoatv1.Role) bool { return slices.Contains(p.Roles, r) }

// Device is an enrolled device. TokenHash is the SHA-256 of the token's
// secret; the token itself is never stored.
type Device struct {
	ID         string
	PersonID   string
	Name       string
	TokenID    string
	TokenHash  []byte
	Replica    string   // the replica it writes under now
	Replicas   []string // every replica bound to it, Replica first
	EnrolledAt time.Time
	RevokedAt  time.Time // zero while the token is valid
	LastSeen   time.Time
}

// Revoked reports whether the device's token was revoked.
func (d *Device) Revoked() bool { return !d.RevokedAt.IsZero() }

// Code is an issued enrolment code: its id is the code's first group, the
// hash that of the rest.
type Code struct {
	ID        string
	Hash      []byte
	PersonID  string
	ExpiresAt time.Time
	Attempts  int // wrong secrets still allowed
}

// Enrolment is what a store records when a code is redeemed.
type Enrolment struct {
	CodeID     string
	CodeHash   []byte // the hash of the secret offered, checked by the store in the same transaction
	DeviceID   string // new device id, or the previous one when PreviousTokenID proves it
	DeviceName string
	// PreviousTokenID and PreviousTokenHash name the device's former token
	// (valid or revoked); a match keeps the device and its replicas.
	PreviousTokenID   string
	PreviousTokenHash []byte
	TokenID           string
	TokenHash         []byte
	Replica           string
	PriorReplicas     []string
	At                time.Time
}

// Enrolled is what a redeemed code gave.
type Enrolled struct {
	Person  Person
	Device  Device
	Unbound []string // prior replicas held by another device
}

var personIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// ValidPersonID checks a person id: 1 to MaxPersonIDLen of [a-z0-9._-],
// starting with a letter or digit.
func ValidPersonID(id string) error {
	switch {
	case id == "":
		return errors.New("is empty")
	case len(id) > MaxPersonIDLen:
		return fmt.Errorf("is %d bytes, over the limit of %d", len(id), MaxPersonIDLen)
	case !personIDRe.MatchString(id):
		return errors.New("must be lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// ValidName checks a display name: not empty, valid UTF-8, at most
// MaxNameLen bytes, no control characters.
func ValidName(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > MaxNameLen:
		return fmt.Errorf("is %d bytes, over the limit of %d", len(s), MaxNameLen)
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("holds a control character")
		}
	}
	return nil
}
