package redisstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// DeleteHub deletes every key of the task hub — metadata, instances,
// histories, indexes, timers and timer indexes, control, activity, outbox and
// dead-letter streams (their consumer groups live in the stream keys and go
// with them), de-dup markers, leases, workers, modules and apps — and
// returns how many keys it deleted. It scans with the hub's own key patterns
// (the validated hub name, never an instance id) on every master of a
// cluster, and unlinks one key per command, so there is never a cross-slot
// command. The scan visits the whole keyspace of each node (SCAN MATCH), so
// its cost follows the database size, not just the hub's. Workers of the hub
// must be stopped first; the Store must not be used afterwards (create a new
// one with New to recreate the hub). The metadata key goes last, so a
// deletion that was interrupted leaves a hub that OpenExisting still finds
// and that DeleteHub, run again, finishes.
func (s *Store) DeleteHub(ctx context.Context) (int64, error) {
	var n atomic.Int64
	meta := s.hk.meta()
	del := func(ctx context.Context, c *redis.Client) error {
		for _, pat := range hubPattern(s.hub) {
			it := c.Scan(ctx, 0, pat, 1000).Iterator()
			var batch []string
			flush := func() error {
				if len(batch) == 0 {
					return nil
				}
				// One key per UNLINK: keys of different slots cannot share a
				// command on a cluster node.
				pipe := c.Pipeline()
				for _, k := range batch {
					pipe.Unlink(ctx, k)
				}
				cmds, err := pipe.Exec(ctx)
				if err != nil {
					return err
				}
				for _, cmd := range cmds {
					n.Add(cmd.(*redis.IntCmd).Val())
				}
				batch = batch[:0]
				return nil
			}
			for it.Next(ctx) {
				if it.Val() == meta {
					continue
				}
				batch = append(batch, it.Val())
				if len(batch) >= 500 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if err := it.Err(); err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, del)
	case *redis.Client:
		err = del(ctx, c)
	default:
		err = fmt.Errorf("unsupported client type %T", s.rdb)
	}
	if err == nil {
		var m int64
		if m, err = s.rdb.Unlink(ctx, meta).Result(); err == nil {
			n.Add(m)
		}
	}
	if err != nil {
		return n.Load(), fmt.Errorf("delete task hub %s: %w", s.hub, err)
	}
	return n.Load(), nil
}

// ListHubs returns the names of the task hubs in the Redis of client,
// sorted: every hub whose metadata key (dw:{<hub>}:meta) exists. It scans
// the keyspace (SCAN MATCH, on every master of a Redis Cluster), so its cost
// follows the size of the database; it is meant for error messages and
// tools, not for hot paths. Keys that do not name a valid hub are ignored.
func ListHubs(ctx context.Context, client redis.UniversalClient) ([]string, error) {
	var mu sync.Mutex
	seen := map[string]bool{}
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, "dw:{*}:meta", 1000).Iterator()
		for it.Next(ctx) {
			k := it.Val()
			name := strings.TrimSuffix(strings.TrimPrefix(k, "dw:{"), "}:meta")
			if name == k || ValidateHubName(name) != nil || newHubKeys(name).meta() != k {
				continue
			}
			mu.Lock()
			seen[name] = true
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	switch c := client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		err = fmt.Errorf("unsupported client type %T", client)
	}
	if err != nil {
		return nil, fmt.Errorf("list task hubs: %w", err)
	}
	hubs := make([]string, 0, len(seen))
	for h := range seen {
		hubs = append(hubs, h)
	}
	sort.Strings(hubs)
	return hubs, nil
}
