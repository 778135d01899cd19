package redisstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// CheckDurability reads the configuration of the Redis server (every master
// of a cluster) and returns one warning per setting that can lose durable
// state; nil when all is well:
//
//   - maxmemory-policy other than noeviction: Redis may evict keys (history,
//     queues, leases) under memory pressure, silently losing instances;
//   - appendonly no: no AOF, so everything written since the last RDB
//     snapshot is lost when Redis stops;
//   - appendfsync no (with AOF): the kernel decides when to flush, so a crash
//     of the machine can lose tens of seconds of acknowledged writes.
//
// A server that refuses CONFIG GET (managed services often rename it) gets a
// warning that says the settings could not be checked. The embedded Redis of
// `durablewasm up` (IsEmbedded) gets the single line EmbeddedDurability
// instead: it keeps everything in memory, so the settings do not apply. The
// check never fails the caller: it only reports.
func (s *Store) CheckDurability(ctx context.Context) []string {
	var mu sync.Mutex
	var warns []string
	check := func(ctx context.Context, c *redis.Client) error {
		w := durabilityWarnings(ctx, c)
		mu.Lock()
		warns = append(warns, w...)
		mu.Unlock()
		return nil
	}
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		if err := c.ForEachMaster(ctx, check); err != nil {
			warns = append(warns, fmt.Sprintf("cannot check the durability settings of the cluster's masters: %v", err))
		}
	case *redis.Client:
		if IsEmbedded(ctx, c) {
			return []string{EmbeddedDurability}
		}
		_ = check(ctx, c)
	default:
		warns = append(warns, fmt.Sprintf("cannot check the durability settings of a %T client", s.rdb))
	}
	sort.Strings(warns)
	return warns
}

// EmbeddedDurability is what CheckDurability reports for the embedded Redis.
const EmbeddedDurability = "embedded Redis (in memory): durability settings do not apply; data is lost when `durablewasm up` stops"

func durabilityWarnings(ctx context.Context, c *redis.Client) []string {
	addr := c.Options().Addr
	cfg := map[string]string{}
	for _, key := range []string{"maxmemory-policy", "appendonly", "appendfsync"} {
		res, err := c.ConfigGet(ctx, key).Result()
		if err != nil {
			return []string{fmt.Sprintf("redis %s: cannot read its durability settings (CONFIG GET %s: %v); make sure it runs with appendonly yes and maxmemory-policy noeviction", addr, key, err)}
		}
		for k, v := range res {
			cfg[strings.ToLower(k)] = strings.ToLower(v)
		}
	}
	var warns []string
	if p, ok := cfg["maxmemory-policy"]; ok && p != "noeviction" {
		warns = append(warns, fmt.Sprintf("redis %s: maxmemory-policy is %s: Redis may evict durablewasm's keys under memory pressure and silently lose instances; set maxmemory-policy noeviction", addr, p))
	}
	if a, ok := cfg["appendonly"]; ok && a != "yes" {
		warns = append(warns, fmt.Sprintf("redis %s: appendonly is %s: everything written since the last snapshot is lost if Redis stops; set appendonly yes (appendfsync everysec loses at most about a second of writes on a crash, always loses none)", addr, a))
	} else if f := cfg["appendfsync"]; ok && f == "no" {
		warns = append(warns, fmt.Sprintf("redis %s: appendfsync is no: a machine crash can lose many seconds of acknowledged writes; use appendfsync everysec or always", addr))
	}
	return warns
}
