// Package redisstore implements client.Store on Redis through a go-redis
// UniversalClient: a single node, Sentinel, or Redis Cluster (every script
// touches the keys of one hash tag only; see keys.go for the layout). It also
// provides the embedded mode (miniredis served on a loopback port).
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/host"
)

// Defaults for Options fields left zero.
const (
	DefaultPartitions = 16
	MaxPartitions     = 256
	DefaultDedupTTL   = 7 * 24 * time.Hour
	DefaultPoolSize   = 128
	// ClusterStateReloadInterval is how often a Redis Cluster client
	// re-reads the slot map, so that a failover is noticed within it.
	ClusterStateReloadInterval = 2 * time.Second
	minPoolSize                = 64
	defaultOutboxScan          = 256
)

// Options configure a Store. The zero value selects every default.
type Options struct {
	// Partitions is the partition count used when the hub is created
	// (1..256, default 16). For an existing hub it is ignored: the stored
	// count wins (see Store.Partitions).
	Partitions int
	// DedupTTL is how long the id of a delivered cross-partition message is
	// remembered to drop a redelivery (default 7 days). Correctness only
	// needs it to outlive outbox redelivery, which happens within seconds.
	DedupTTL time.Duration
	// PoolSize is the connection pool size Open gives the client (default
	// 128, at least 64: workers block in XREADGROUP per partition). New does
	// not change the pool of a client it is given.
	PoolSize int
	// OutboxBatch is how many outbox entries DeliverOutbox reads per round
	// trip (default 256).
	OutboxBatch int
}

func (o Options) withDefaults() (Options, error) {
	if o.Partitions == 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Partitions < 1 || o.Partitions > MaxPartitions {
		return o, fmt.Errorf("partition count %d is out of range: accepted is 1..%d (default %d)", o.Partitions, MaxPartitions, DefaultPartitions)
	}
	if o.DedupTTL <= 0 {
		o.DedupTTL = DefaultDedupTTL
	}
	if o.PoolSize <= 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.PoolSize < minPoolSize {
		o.PoolSize = minPoolSize
	}
	if o.OutboxBatch <= 0 {
		o.OutboxBatch = defaultOutboxScan
	}
	return o, nil
}

// newStore checks hub and opts and returns the store's shell: no Redis call
// yet, no partitions.
func newStore(client redis.UniversalClient, hub string, opts Options) (*Store, error) {
	if err := ValidateHubName(hub); err != nil {
		return nil, err
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("task hub %s: %w", hub, err)
	}
	return &Store{rdb: client, hub: hub, opts: o, hk: newHubKeys(hub)}, nil
}

// Store is the Redis implementation of client.Store. It is safe for concurrent
// use. Create it with New or Open.
type Store struct {
	rdb   redis.UniversalClient
	hub   string
	n     int
	opts  Options
	hk    hubKeys
	parts []partKeys
	owned bool // Close closes rdb
	watch watches
}

// ValidateHubName checks a task hub name by the Durable Functions rule: 3 to
// 45 characters, starting with a letter, letters and digits only. The error
// says what is wrong and what is accepted.
func ValidateHubName(hub string) error {
	const rule = "a task hub name must be 3-45 characters, start with a letter, and contain only letters and digits"
	if len(hub) < 3 || len(hub) > 45 {
		return fmt.Errorf("invalid task hub name %q: it has %d characters; %s", hub, len(hub), rule)
	}
	for i, r := range hub {
		isLetter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		isDigit := r >= '0' && r <= '9'
		if i == 0 && !isLetter {
			return fmt.Errorf("invalid task hub name %q: it starts with %q; %s", hub, r, rule)
		}
		if !isLetter && !isDigit {
			return fmt.Errorf("invalid task hub name %q: %q at position %d is not a letter or digit; %s", hub, r, i+1, rule)
		}
	}
	return nil
}

// New returns a Store for task hub hub on client. It validates the hub name,
// creates the hub (with opts.Partitions partitions) if it does not exist or
// reads its fixed partition count if it does, and creates the consumer groups.
// The caller keeps ownership of client (Close does not close it).
func New(ctx context.Context, client redis.UniversalClient, hub string, opts Options) (*Store, error) {
	s, err := newStore(client, hub, opts)
	if err != nil {
		return nil, err
	}
	o := s.opts
	meta := s.hk.meta()
	pipe := client.TxPipeline()
	pipe.HSetNX(ctx, meta, "partitions", o.Partitions)
	pipe.HSetNX(ctx, meta, "created", time.Now().UnixMilli())
	get := pipe.HGet(ctx, meta, "partitions")
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("task hub %s: create metadata: %w", hub, err)
	}
	n, err := strconv.Atoi(get.Val())
	if err != nil || n < 1 || n > MaxPartitions {
		return nil, fmt.Errorf("task hub %s: stored partition count %q in %s is invalid", hub, get.Val(), meta)
	}
	s.n = n
	s.parts = make([]partKeys, n)
	for p := range s.parts {
		s.parts[p] = newPartKeys(hub, p)
	}
	if err := s.ensureGroups(ctx, -1); err != nil {
		return nil, err
	}
	preloadScripts(ctx, client)
	return s, nil
}

// ensureGroups creates the consumer groups of partition p (all when p < 0).
func (s *Store) ensureGroups(ctx context.Context, p int) error {
	pipe := s.rdb.Pipeline()
	var cmds []*redis.StatusCmd
	for i, k := range s.parts {
		if p >= 0 && i != p {
			continue
		}
		cmds = append(cmds, pipe.XGroupCreateMkStream(ctx, k.ctl(), group, "0"))
		cmds = append(cmds, pipe.XGroupCreateMkStream(ctx, k.act(), group, "0"))
	}
	_, _ = pipe.Exec(ctx)
	for _, c := range cmds {
		if err := c.Err(); err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return fmt.Errorf("task hub %s: create consumer group on %s: %w", s.hub, c.Args()[2], err)
		}
	}
	return nil
}

func isNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

// Partitions returns the hub's fixed partition count.
func (s *Store) Partitions() int { return s.n }

// Hub returns the task hub name.
func (s *Store) Hub() string { return s.hub }

// Client returns the underlying client.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Close ends the Store's finish-notification subscriptions (one connection
// per partition a wait was made on) and closes the client if the Store
// created it (Open); a client passed to New is left open.
func (s *Store) Close() error {
	s.closeWatches()
	if s.owned {
		return s.rdb.Close()
	}
	return nil
}

// partition returns the partition of an instance id, and its keys.
func (s *Store) partition(id string) (int, partKeys) {
	p := host.PartitionFor(id, s.n)
	return p, s.parts[p]
}

func (s *Store) checkPartition(op string, p int) error {
	if p < 0 || p >= s.n {
		return fmt.Errorf("%s: partition %d out of range 0..%d", op, p, s.n-1)
	}
	return nil
}

func checkID(op, id string) error {
	if id == "" {
		return fmt.Errorf("%s: instance id is empty", op)
	}
	return nil
}

// scriptCall is one script invocation queued for a pipeline.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []interface{}
}

// runPipelined runs calls in one round trip (EVALSHA) and re-runs any that
// the server did not have cached with EVAL. A NOSCRIPT reply means the script
// did not run, so a re-run cannot apply twice. The error return is for the
// round trip; per-call errors are in the returned commands.
func (s *Store) runPipelined(ctx context.Context, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	if len(calls) == 1 {
		c := calls[0]
		cmds[0] = c.script.Run(ctx, s.rdb, c.keys, c.args...)
		return cmds, roundTripErr(cmds[0].Err())
	}
	pipe := s.rdb.Pipeline()
	for i, c := range calls {
		cmds[i] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, err := pipe.Exec(ctx)
	if err != nil {
		for _, c := range cmds {
			if e := c.Err(); e != nil && roundTripErr(e) != nil {
				return nil, e
			}
		}
	}
	for i, c := range calls {
		if isNoScript(cmds[i].Err()) {
			cmds[i] = c.script.Eval(ctx, s.rdb, c.keys, c.args...)
			if err := roundTripErr(cmds[i].Err()); err != nil {
				return nil, err
			}
		}
	}
	return cmds, nil
}

// roundTripErr returns err if it is not a Redis error reply (i.e. the
// connection or context failed), else nil.
func roundTripErr(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	var re redis.Error
	if errors.As(err, &re) {
		return nil
	}
	return err
}

func toStrings(vals []string) []interface{} {
	out := make([]interface{}, len(vals))
	for i, v := range vals {
		out[i] = v
	}
	return out
}
