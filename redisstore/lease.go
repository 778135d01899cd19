package redisstore

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Leases and worker liveness are compared against the Redis server's clock
// (TIME inside the scripts), so workers with skewed clocks agree, and expiry
// never depends on Redis key TTLs (miniredis only moves TTLs on FastForward).

// AcquireLease takes partition p for owner if it is free or expired, or
// renews it if owner already holds it (an expired lease nobody took is still
// owner's, at the same epoch). The epoch increases on every change of owner,
// including a release. It returns the current epoch and whether owner holds
// the lease.
func (s *Store) AcquireLease(ctx context.Context, p int, owner string, ttl time.Duration) (int64, bool, error) {
	if err := s.checkPartition("acquire lease", p); err != nil {
		return 0, false, err
	}
	if owner == "" {
		return 0, false, fmt.Errorf("acquire lease of partition %d: owner is empty", p)
	}
	res, err := scriptAcquireLease.Run(ctx, s.rdb, []string{s.parts[p].lease()}, owner, ms(ttl)).Int64Slice()
	if err != nil {
		return 0, false, fmt.Errorf("acquire lease of partition %d for %s: %w", p, owner, err)
	}
	return res[0], res[1] == 1, nil
}

// RenewLease extends owner's lease of p at epoch by ttl from now. It returns
// false (and changes nothing) if the lease is held by someone else or at
// another epoch.
func (s *Store) RenewLease(ctx context.Context, p int, owner string, epoch int64, ttl time.Duration) (bool, error) {
	if err := s.checkPartition("renew lease", p); err != nil {
		return false, err
	}
	n, err := scriptRenewLease.Run(ctx, s.rdb, []string{s.parts[p].lease()}, owner, strconv.FormatInt(epoch, 10), ms(ttl)).Int64()
	if err != nil {
		return false, fmt.Errorf("renew lease of partition %d for %s: %w", p, owner, err)
	}
	return n == 1, nil
}

// ReleaseLease frees p if owner holds it at epoch (else does nothing). The
// epoch is increased, so commits at the released epoch are refused.
func (s *Store) ReleaseLease(ctx context.Context, p int, owner string, epoch int64) error {
	if err := s.checkPartition("release lease", p); err != nil {
		return err
	}
	if err := scriptReleaseLease.Run(ctx, s.rdb, []string{s.parts[p].lease()}, owner, strconv.FormatInt(epoch, 10)).Err(); err != nil {
		return fmt.Errorf("release lease of partition %d for %s: %w", p, owner, err)
	}
	return nil
}

// Heartbeat records worker as alive for ttl (by the server clock), drops
// workers whose ttl has passed, and returns the live worker ids sorted.
func (s *Store) Heartbeat(ctx context.Context, worker string, ttl time.Duration) ([]string, error) {
	if worker == "" {
		return nil, fmt.Errorf("heartbeat: worker id is empty")
	}
	ids, err := scriptHeartbeat.Run(ctx, s.rdb, []string{s.hk.workers()}, worker, ms(ttl)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("heartbeat of worker %s: %w", worker, err)
	}
	sort.Strings(ids)
	return ids, nil
}

// LeaveWorkers removes worker from the live set and from the alive set.
func (s *Store) LeaveWorkers(ctx context.Context, worker string) error {
	if err := s.rdb.ZRem(ctx, s.hk.workers(), worker).Err(); err != nil {
		return fmt.Errorf("remove worker %s: %w", worker, err)
	}
	if err := s.rdb.ZRem(ctx, s.hk.alive(), worker).Err(); err != nil {
		return fmt.Errorf("remove worker %s: %w", worker, err)
	}
	return nil
}

// Alive records worker, whatever it runs, as alive for ttl (by the server
// clock), drops workers whose ttl has passed, and returns the live worker
// ids sorted. A stream consumer not among them is dead
// (ReclaimActivities).
func (s *Store) Alive(ctx context.Context, worker string, ttl time.Duration) ([]string, error) {
	if worker == "" {
		return nil, fmt.Errorf("alive: worker id is empty")
	}
	ids, err := scriptHeartbeat.Run(ctx, s.rdb, []string{s.hk.alive()}, worker, ms(ttl)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("alive: worker %s: %w", worker, err)
	}
	sort.Strings(ids)
	return ids, nil
}
