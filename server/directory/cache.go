package directory

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// dirCache keeps what every call reads from the directory — the device and
// person behind a token, the villages under a person's units — so that an
// authenticated push costs a map lookup rather than seven queries. Every
// directory write of this store empties it (after its commit), so a
// revocation or a reassignment takes effect on the next call; entries also
// expire after CacheTTL, for the writes another process makes to the
// file (rasoatd bootstrap).
type Cache struct {
	mu       sync.Mutex
	tokens   map[string]CachedDevice
	villages map[string]cachedVillages
}

// CachedDevice is a token's device and person as read at At.
type CachedDevice struct {
	Dev    Device
	Person Person
	At     time.Time
}

type cachedVillages struct {
	codes []string
	at    time.Time
}

const (
	// CacheTTL bounds how long a write by another process goes unseen.
	CacheTTL = 5 * time.Second
	// cacheMax bounds the entries of each map: a commune has hundreds of
	// devices, a province thousands; past it the map starts over.
	cacheMax = 10_000
)

// Clear empties the cache: after every directory write.
func (c *Cache) Clear() {
	c.mu.Lock()
	c.tokens, c.villages = nil, nil
	c.mu.Unlock()
}

// Device returns the cached entry of tokenID, if fresh at now.
func (c *Cache) Device(tokenID string, now time.Time) (CachedDevice, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tokens[tokenID]
	return e, ok && now.Sub(e.At) < CacheTTL
}

// Touch moves the last-seen time of deviceID's cached entries.
func (c *Cache) Touch(deviceID string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.tokens {
		if e.Dev.ID == deviceID {
			e.Dev.LastSeen = t
			c.tokens[id] = e
		}
	}
}

// PutDevice caches tokenID's entry.
func (c *Cache) PutDevice(tokenID string, e CachedDevice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil || len(c.tokens) >= cacheMax {
		c.tokens = map[string]CachedDevice{}
	}
	c.tokens[tokenID] = e
}

// VillagesKey is the cache key of a set of unit codes.
func VillagesKey(codes []string) string {
	s := slices.Clone(codes)
	slices.Sort(s)
	return strings.Join(s, "\x00")
}

// VillagesOf returns the cached villages under key, if fresh at now.
func (c *Cache) VillagesOf(key string, now time.Time) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.villages[key]
	return e.codes, ok && now.Sub(e.at) < CacheTTL
}

// PutVillages caches the villages under key.
func (c *Cache) PutVillages(key string, codes []string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.villages == nil || len(c.villages) >= cacheMax {
		c.villages = map[string]cachedVillages{}
	}
	c.villages[key] = cachedVillages{codes: codes, at: at}
}
