package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"strings"
)

// Tokens and codes are an id, by which the server finds the record, and a
// secret, of which it keeps only the SHA-256 and compares it in constant
// time. A plain hash, not a slow password hash, is right for both: a
// token's secret has 256 random bits, nothing to guess; a code's 40 bits
// live for days at most, allow CodeAttempts tries and are useless once
// redeemed.

// tokenPrefix marks a rasoat device token, so that one pasted into a log or
// a chat can be recognised (and secret scanners can match it).
const tokenPrefix = "rst1_"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Token is a new device token: its id, its secret's hash, and the whole
// token the device keeps.
type Token struct {
	ID   string
	Hash []byte
	Text string
}

// NewToken makes a random token.
func NewToken() Token {
	id := strings.ToLower(b32.EncodeToString(randomBytes(10)))
	secret := strings.ToLower(b32.EncodeToString(randomBytes(32)))
	return Token{ID: id, Hash: Hash(secret), Text: tokenPrefix + id + "." + secret}
}

// ErrMalformed is a token or code that cannot be one of ours.
var ErrMalformed = errors.New("malformed")

// ParseToken splits a token into its id and its secret's hash.
func ParseToken(s string) (id string, hash []byte, err error) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok || len(s) > 128 {
		return "", nil, ErrMalformed
	}
	id, secret, ok := strings.Cut(rest, ".")
	if !ok || id == "" || secret == "" {
		return "", nil, ErrMalformed
	}
	return id, Hash(secret), nil
}

// constantTimeEqual compares two hashes without leaking where they differ.
func constantTimeEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// Hash is the SHA-256 of a secret.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or
// copied by hand has no look-alikes; decoding maps them back.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Code lengths: a 4-character id (about a million codes alive at once)
// and an 8-character secret (40 bits), shown as XXXX-XXXX-XXXX.
const (
	codeIDLen     = 4
	codeSecretLen = 8
)

// Code is a new enrolment code.
type Code struct {
	ID   string
	Hash []byte
	Text string // as shown: "K7Q2-M4XP-9RTC"
}

// NewCode makes a random enrolment code.
func NewCode() Code {
	b := randomBytes(codeIDLen + codeSecretLen)
	raw := make([]byte, len(b))
	for i, x := range b {
		raw[i] = crockford[x&31]
	}
	s := string(raw)
	id, secret := s[:codeIDLen], s[codeIDLen:]
	return Code{ID: id, Hash: Hash(secret), Text: id + "-" + secret[:4] + "-" + secret[4:]}
}

// ParseCode reads a code as a person typed it: any case, with or without
// dashes and spaces, I and L read as 1, O as 0.
func ParseCode(s string) (id string, hash []byte, err error) {
	if len(s) > 64 {
		return "", nil, ErrMalformed
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-' || r == ' ':
			continue
		case r == 'I' || r == 'L':
			r = '1'
		case r == 'O':
			r = '0'
		case !strings.ContainsRune(crockford, r):
			return "", nil, ErrMalformed
		}
		b.WriteRune(r)
	}
	c := b.String()
	if len(c) != codeIDLen+codeSecretLen {
		return "", nil, ErrMalformed
	}
	return c[:codeIDLen], Hash(c[codeIDLen:]), nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return b
}
