package redisstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/host"
)

// Module administration: listing stored modules, counting the instances on a
// digest (from the per-partition digest index dw:{hub:p}:idx:d:<digest>, kept
// by the create, deliver, commit and purge scripts), and removing apps and
// modules.
//
// Instances of hubs written before the digest index existed are not in it
// until their next commit; a module stored before dw:{hub}:modules existed is
// listed through the apps that point at it.

// ListModules returns every stored module, sorted by digest: the digests in
// dw:{hub}:modules, plus those apps point at (modules stored by older
// versions), with their sizes. A digest whose bytes are gone is left out.
func (s *Store) ListModules(ctx context.Context) ([]host.StoredModule, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.hk.modules(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list modules: %w", err)
	}
	stored := map[string]time.Time{}
	for _, z := range zs {
		d, _ := z.Member.(string)
		stored[d] = time.UnixMilli(int64(z.Score)).UTC()
	}
	apps, err := s.ListApps(ctx)
	if err != nil {
		return nil, fmt.Errorf("list modules: %w", err)
	}
	for _, a := range apps {
		if _, ok := stored[a.Digest]; !ok {
			stored[a.Digest] = time.Time{}
		}
	}
	digests := make([]string, 0, len(stored))
	for d := range stored {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	pipe := s.rdb.Pipeline()
	lens := make([]*redis.IntCmd, len(digests))
	for i, d := range digests {
		lens[i] = pipe.StrLen(ctx, s.hk.module(d))
	}
	if len(digests) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("list modules: %w", err)
		}
	}
	out := make([]host.StoredModule, 0, len(digests))
	for i, d := range digests {
		if n := lens[i].Val(); n > 0 {
			out = append(out, host.StoredModule{Digest: d, Size: n, StoredAt: stored[d]})
		}
	}
	return out, nil
}

// CountDigestInstances sums the digest index over all partitions (one
// SCARD per partition, pipelined).
func (s *Store) CountDigestInstances(ctx context.Context, digest string) (int64, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(s.parts))
	for p, k := range s.parts {
		cmds[p] = pipe.SCard(ctx, k.idxDigest(digest))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("count instances on module %s: %w", digest, err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// DigestInstances reads the digest index of every partition (pipelined)
// and returns up to max ids, sorted.
func (s *Store) DigestInstances(ctx context.Context, digest string, max int) ([]string, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(s.parts))
	for p, k := range s.parts {
		cmds[p] = pipe.SMembers(ctx, k.idxDigest(digest))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list instances on module %s: %w", digest, err)
	}
	var ids []string
	for _, c := range cmds {
		ids = append(ids, c.Val()...)
	}
	sort.Strings(ids)
	if max > 0 && len(ids) > max {
		ids = ids[:max]
	}
	return ids, nil
}

// RemoveApp removes app's record and function mappings in one script, if it
// still points at digest; with dropModule also the module's bytes, settings
// and listing when no other app points at digest.
func (s *Store) RemoveApp(ctx context.Context, app, digest string, dropModule bool) (bool, error) {
	drop := "0"
	if dropModule {
		drop = "1"
	}
	res, err := scriptRemoveApp.Run(ctx, s.rdb, []string{s.hk.apps(), s.hk.funcs(), s.hk.module(digest), s.hk.moduleSettings(digest), s.hk.modules()},
		app, digest, drop).StringSlice()
	if err != nil {
		return false, fmt.Errorf("remove app %s: %w", app, err)
	}
	switch {
	case len(res) >= 1 && res[0] == "notfound":
		return false, fmt.Errorf("remove app %s: %w", app, host.ErrModuleNotFound)
	case len(res) == 2 && res[0] == "changed":
		return false, fmt.Errorf("remove app %s: %w: it was redeployed meanwhile and now points at %s, not %s", app, host.ErrModuleInUse, res[1], digest)
	case len(res) == 2 && res[0] == "ok":
		return res[1] == "1", nil
	}
	return false, fmt.Errorf("remove app %s: unexpected reply %q", app, res)
}

// RemoveModule removes a module's bytes, settings and listing in one script
// that first checks that no app points at it.
func (s *Store) RemoveModule(ctx context.Context, digest string) error {
	res, err := scriptRemoveModule.Run(ctx, s.rdb, []string{s.hk.apps(), s.hk.module(digest), s.hk.moduleSettings(digest), s.hk.modules()}, digest).StringSlice()
	if err != nil {
		return fmt.Errorf("remove module %s: %w", digest, err)
	}
	switch {
	case len(res) == 2 && res[0] == "inuse":
		return fmt.Errorf("remove module %s: %w: app %s points at it", digest, host.ErrModuleInUse, res[1])
	case len(res) == 1 && res[0] == "notfound":
		return fmt.Errorf("remove module %s: %w", digest, host.ErrModuleNotFound)
	case len(res) == 1 && res[0] == "ok":
		return nil
	}
	return fmt.Errorf("remove module %s: unexpected reply %q", digest, res)
}
