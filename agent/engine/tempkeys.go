// Temporary keys: the names big keys are built under (in the key's hash slot:
// hashTag, slot, crc16), how they are told apart, and the sweep of those an
// interrupted restore left.

package engine

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// tempName returns a name for building key that hashes to key's cluster slot
// and is recognisable as redback's.
func tempName(key []byte) []byte {
	suffix := tempSuffix
	if tag := hashTag(key); tag != nil {
		// The tag decides the slot; appending after it keeps the slot.
		return append(append([]byte(nil), key...), suffix...)
	}
	// No tag: the whole key is hashed. "{key}suffix" has the tag "key" when
	// key holds no '}'.
	if len(key) > 0 && !strings.ContainsRune(string(key), '}') {
		t := make([]byte, 0, len(key)+len(suffix)+2)
		t = append(t, '{')
		t = append(t, key...)
		t = append(t, '}')
		return append(t, suffix...)
	}
	// Rare: a key with '}' and no valid tag. Search a suffix with the slot.
	want := slot(key)
	for i := 0; ; i++ {
		t := append(append([]byte(nil), key...), suffix+"-"+strconv.Itoa(i)...)
		if hashTag(t) == nil && slot(t) == want {
			return t
		}
	}
}

// hashTag returns the hash tag of key ({...}), or nil.
func hashTag(key []byte) []byte {
	s := strings.IndexByte(string(key), '{')
	if s < 0 {
		return nil
	}
	e := strings.IndexByte(string(key[s+1:]), '}')
	if e <= 0 {
		return nil
	}
	return key[s+1 : s+1+e]
}

// slot returns the Redis Cluster hash slot of key.
func slot(key []byte) uint16 {
	if tag := hashTag(key); tag != nil {
		key = tag
	}
	return crc16(key) % 16384
}

func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// tempSuffix marks the keys a restore builds big keys under (tempName).
const tempSuffix = ":redback-restore-tmp"

// tempSafetyTTL is the TTL every flush of a big key's writes gives its
// temporary key, so that a killed restore leaves nothing for ever.
const tempSafetyTTL = time.Hour

// tempStaleAfter: a temporary key not written for this long belongs to a
// restore that is gone (a live one refreshes tempSafetyTTL at every flush).
const tempStaleAfter = 15 * time.Minute

// isTempKey reports whether key is one a restore builds under: it ends in
// tempSuffix, or tempSuffix and "-N" (see tempName).
func isTempKey(key []byte) bool {
	i := bytes.LastIndex(key, []byte(tempSuffix))
	if i < 0 {
		return false
	}
	rest := key[i+len(tempSuffix):]
	if len(rest) == 0 {
		return true
	}
	if rest[0] != '-' || len(rest) == 1 {
		return false
	}
	for _, c := range rest[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// sweepTemp deletes the temporary keys that killed restores left in one
// database: those named by tempName whose safety TTL shows no write for
// tempStaleAfter. It returns how many it deleted; errors only end the sweep
// (debris is not worth failing a restore for).
func sweepTemp(ctx context.Context, cl redis.UniversalClient) int {
	if cc, ok := cl.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		n := 0
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			k := sweepTemp(ctx, c)
			mu.Lock()
			n += k
			mu.Unlock()
			return nil
		})
		return n
	}
	n := 0
	var cursor uint64
	for {
		keys, next, err := cl.Scan(ctx, cursor, "*"+tempSuffix+"*", 1000).Result()
		if err != nil {
			return n
		}
		if len(keys) > 0 {
			pipe := cl.Pipeline()
			ttls := make([]*redis.DurationCmd, len(keys))
			for i, k := range keys {
				ttls[i] = pipe.PTTL(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return n
			}
			for i, k := range keys {
				d := ttls[i].Val()
				if isTempKey([]byte(k)) && d > 0 && d <= tempSafetyTTL-tempStaleAfter {
					if cl.Del(ctx, k).Val() == 1 {
						n++
					}
				}
			}
		}
		cursor = next
		if cursor == 0 {
			return n
		}
	}
}
