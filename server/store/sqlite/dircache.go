package sqlite

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rasoat/rasoat/server/directory"
)

// dirCache keeps what every call reads from the directory — the device and
// person behind a token, the villages under a person's units — so that an
// authenticated push costs a map lookup rather than seven queries. Every
// directory write of this store empties it (after its commit), so a
// revocation or a reassignment takes effect on the next call; entries also
// expire after dirCacheTTL, for the writes another process makes to the
// file (rasoatd bootstrap).
type dirCache struct {
	mu       sync.Mutex
	tokens   map[string]cachedDevice
	villages map[string]cachedVillages
}

type cachedDevice struct {
	dev    directory.Device
	person directory.Person
	at     time.Time
}

type cachedVillages struct {
	codes []string
	at    time.Time
}

const (
	// dirCacheTTL bounds how long a write by another process goes unseen.
	dirCacheTTL = 5 * time.Second
	// dirCacheMax bounds the entries of each map: a commune has hundreds of
	// devices, a province thousands; past it the map starts over.
	dirCacheMax = 10_000
)

func (c *dirCache) clear() {
	c.mu.Lock()
	c.tokens, c.villages = nil, nil
	c.mu.Unlock()
}

func (c *dirCache) device(tokenID string, now time.Time) (cachedDevice, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tokens[tokenID]
	return e, ok && now.Sub(e.at) < dirCacheTTL
}

// touch moves the last-seen time of deviceID's cached entries.
func (c *dirCache) touch(deviceID string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.tokens {
		if e.dev.ID == deviceID {
			e.dev.LastSeen = t
			c.tokens[id] = e
		}
	}
}

func (c *dirCache) putDevice(tokenID string, e cachedDevice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil || len(c.tokens) >= dirCacheMax {
		c.tokens = map[string]cachedDevice{}
	}
	c.tokens[tokenID] = e
}

func villagesKey(codes []string) string {
	s := slices.Clone(codes)
	slices.Sort(s)
	return strings.Join(s, "\x00")
}

func (c *dirCache) villagesOf(key string, now time.Time) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.villages[key]
	return e.codes, ok && now.Sub(e.at) < dirCacheTTL
}

func (c *dirCache) putVillages(key string, codes []string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.villages == nil || len(c.villages) >= dirCacheMax {
		c.villages = map[string]cachedVillages{}
	}
	c.villages[key] = cachedVillages{codes: codes, at: at}
}
