package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
)

// purgeBatch is how many instances of one partition PurgeInstances selects
// and purges per round trip (one script per partition, all partitions
// pipelined).
const purgeBatch = 500

// purgeItem is one instance handed to scriptPurge.
type purgeItem struct {
	id      string
	score   string // created index score it was selected at; "" = not checked
	created string // exact created ns it must still have; "" = not checked
}

// purgeCall builds the purge script call of items, all in partition p. idem,
// when not nil, is recorded with the only item.
func (s *Store) purgeCall(p int, force bool, allowed []abi.RuntimeStatus, items []purgeItem, idem *host.Idempotency) scriptCall {
	k := s.parts[p]
	keys := make([]string, 0, 6+4*len(items))
	keys = append(keys, k.idxCreated(), k.idxStatusPrefix(), k.timers(), k.idxDigestPrefix(), k.dedupPrefix())
	f := "0"
	if force {
		f = "1"
	}
	args := make([]interface{}, 0, 7+len(allowed)+3*len(items))
	args = append(args, f, ms(s.opts.DedupTTL))
	if idem != nil && len(items) == 1 {
		fp, op, ttl, key := idemArgs(k, items[0].id, idem)
		keys = append(keys, key)
		args = append(args, 3, fp, op, ttl)
	} else {
		args = append(args, 0)
	}
	args = append(args, len(allowed))
	for _, st := range allowed {
		args = append(args, string(st))
	}
	for _, it := range items {
		keys = append(keys, k.instance(it.id), k.history(it.id), k.timerIndex(it.id), k.dedupSet(it.id))
		args = append(args, it.id, it.score, it.created)
	}
	return scriptCall{script: scriptPurge, keys: keys, args: args}
}

// PurgeInstance removes an instance and everything it owns — its state
// hash, history, created and status index entries, its pending timers
// (found through its timer index, dw:{hub:p}:tm:<id>, without scanning the
// partition's timer set) and the dedup markers of the messages delivered to
// it (through dw:{hub:p}:dm:<id>; the youngest are kept for a grace period,
// see keys.go) — in one script on the instance's partition, which checks
// before it writes: host.ErrInstanceNotFound if it does not exist,
// host.ErrNotFinished (naming the status) if it is Pending, Running,
// Suspended or ContinuedAsNew and force is false. Messages already queued
// for it in the control and activity streams are left; workers drop
// messages for unknown instances.
func (s *Store) PurgeInstance(ctx context.Context, instanceID string, force bool) error {
	_, err := s.purgeInstance(ctx, instanceID, force, nil)
	return err
}

// PurgeInstanceOnce implements host.IdempotentStore: PurgeInstance that
// records idem with instanceID in the same script. The record is not part
// of what the instance owns: it survives the purge, so that a retry finds it.
func (s *Store) PurgeInstanceOnce(ctx context.Context, instanceID string, force bool, idem host.Idempotency) (host.Replay, error) {
	if err := checkIdem("purge instance", idem); err != nil {
		return host.Replay{}, err
	}
	return s.purgeInstance(ctx, instanceID, force, &idem)
}

func (s *Store) purgeInstance(ctx context.Context, instanceID string, force bool, idem *host.Idempotency) (host.Replay, error) {
	const op = "purge instance"
	if err := checkID(op, instanceID); err != nil {
		return host.Replay{}, err
	}
	p, _ := s.partition(instanceID)
	call := s.purgeCall(p, force, nil, []purgeItem{{id: instanceID}}, idem)
	res, err := call.script.Run(ctx, s.rdb, call.keys, call.args...).StringSlice()
	if err != nil {
		return host.Replay{}, fmt.Errorf("%s %s: %w", op, instanceID, err)
	}
	if len(res) != 1 {
		return host.Replay{}, fmt.Errorf("%s %s: unexpected reply %q", op, instanceID, res)
	}
	if r, ok, err := idemReply(op, instanceID, idem, res[0]); ok {
		return r, err
	}
	switch res[0] {
	case "deleted":
		return host.Replay{}, nil
	case "notfound":
		return host.Replay{}, fmt.Errorf("%s %s: %w", op, instanceID, host.ErrInstanceNotFound)
	default:
		return host.Replay{}, fmt.Errorf("%s %s: %w: it is %s (terminate it first, or purge with force)", op, instanceID, host.ErrNotFinished, res[0])
	}
}

// PurgeInstances removes up to max instances matching q (max <= 0: no
// limit); q.PageSize and q.ContinuationToken are ignored. Without force only
// terminal instances (Completed, Failed, Canceled, Terminated) among the
// requested statuses are purged, and the matching unfinished ones are
// counted in Skipped; with force every requested status is purged (all when
// q.Statuses is empty).
//
// It reads the same indexes as QueryInstances (never the whole hub: the cost
// is proportional to the instances in the requested statuses and created
// range) and purges in rounds: per round, up to 500 instances per partition,
// one script per partition, all partitions pipelined in one round trip. The
// script re-checks each instance (exists, still matches, finished unless
// force) before deleting it, and what it owns (dedup markers included), as
// PurgeInstance does. progress, if not nil, is
// called after each round with the running totals. Purged instances leave
// the indexes, so calling it again after an interruption continues where it
// stopped.
func (s *Store) PurgeInstances(ctx context.Context, q host.InstanceQuery, force bool, max int, progress func(host.PurgeResult)) (host.PurgeResult, error) {
	const op = "purge instances"
	var res host.PurgeResult
	f, err := newFilter(q)
	if err != nil {
		return res, fmt.Errorf("%s: %w", op, err)
	}
	requested := f.statuses
	if len(requested) == 0 {
		requested = abi.AllStatuses
	}
	var purgeable, refused []abi.RuntimeStatus
	for _, st := range requested {
		if force || st.Terminal() {
			purgeable = append(purgeable, st)
		} else {
			refused = append(refused, st)
		}
	}
	if len(refused) > 0 {
		if res.Skipped, err = s.countMatching(ctx, f, refused); err != nil {
			return res, fmt.Errorf("%s: count unfinished instances: %w", op, err)
		}
	}
	if len(purgeable) == 0 {
		return res, nil
	}
	// The script re-checks the status only when the query names statuses;
	// a forced purge of everything reads idx:created and allows any.
	keyStatuses, allowed := purgeable, purgeable
	if force && len(f.statuses) == 0 {
		keyStatuses, allowed = nil, nil
	}
	srcs := s.newSources(f, keyStatuses, cursor{}, false, purgeBatch, f.prefix != "")
	for max <= 0 || res.Deleted < max {
		if _, err := s.readSources(ctx, srcs); err != nil {
			return res, fmt.Errorf("%s: %w", op, err)
		}
		room := -1
		if max > 0 {
			room = max - res.Deleted
		}
		batches := make([][]idxEntry, len(srcs))
		total, pending := 0, false
		for i, ps := range srcs {
			for len(ps.buf) > 0 && len(batches[i]) < purgeBatch && room != 0 {
				e := ps.buf[0]
				ps.buf = ps.buf[1:]
				if strings.HasPrefix(e.id, f.prefix) {
					batches[i] = append(batches[i], e)
					total++
					room--
				}
			}
			pending = pending || !ps.done || len(ps.buf) > 0
		}
		if total > 0 {
			if err := s.purgeRound(ctx, f, force, allowed, batches, &res); err != nil {
				return res, fmt.Errorf("%s: %w", op, err)
			}
			if progress != nil {
				progress(res)
			}
		}
		if !pending {
			break
		}
	}
	return res, nil
}

// purgeRound purges one batch per partition, pipelined.
func (s *Store) purgeRound(ctx context.Context, f *filter, force bool, allowed []abi.RuntimeStatus, batches [][]idxEntry, res *host.PurgeResult) error {
	var all []idxEntry
	for _, b := range batches {
		all = append(all, b...)
	}
	created, err := s.exactCreated(ctx, f, all)
	if err != nil {
		return err
	}
	var calls []scriptCall
	j := 0
	for p, b := range batches {
		items := make([]purgeItem, 0, len(b))
		for _, e := range b {
			c, check := created[j]
			j++
			if check && c == "" {
				continue // outside the exact created-time bounds, or gone
			}
			items = append(items, purgeItem{id: e.id, score: strconv.FormatInt(e.score, 10), created: c})
		}
		if len(items) > 0 {
			calls = append(calls, s.purgeCall(p, force, allowed, items, nil))
		}
	}
	if len(calls) == 0 {
		return nil
	}
	cmds, err := s.runPipelined(ctx, calls)
	if err != nil {
		return err
	}
	for _, cmd := range cmds {
		out, err := cmd.StringSlice()
		if err != nil {
			return err
		}
		for _, r := range out {
			switch r {
			case "deleted":
				res.Deleted++
			case "notfound", "gone":
			default:
				res.Skipped++
			}
		}
	}
	return nil
}

// exactCreated checks the exact created time of the entries that sit in a
// boundary millisecond of f (one pipelined HGET each). The result maps the
// index of each checked entry to its created ns, or to "" when it is outside
// the bounds or gone.
func (s *Store) exactCreated(ctx context.Context, f *filter, entries []idxEntry) (map[int]string, error) {
	out := map[int]string{}
	pipe := s.rdb.Pipeline()
	cmds := map[int]*redis.StringCmd{}
	for i, e := range entries {
		if f.needsExact(e.score) {
			cmds[i] = pipe.HGet(ctx, s.parts[e.part].instance(e.id), hCreated)
		}
	}
	if len(cmds) == 0 {
		return out, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !isNil(err) {
		return nil, err
	}
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil && !isNil(err) {
			return nil, err
		}
		if v != "" && f.inRange(parseNS(v)) {
			out[i] = v
		} else {
			out[i] = ""
		}
	}
	return out, nil
}

// countMatching counts the instances in statuses that match f. Without a
// prefix it uses ZCOUNT on each partition's status sets (corrected for the
// boundary milliseconds of the created range); with one it reads the ids
// from the indexes. It never loads instance hashes except in boundary
// milliseconds.
func (s *Store) countMatching(ctx context.Context, f *filter, statuses []abi.RuntimeStatus) (int, error) {
	if f.prefix == "" {
		return s.countByScore(ctx, f, statuses)
	}
	return s.countByPrefix(ctx, f, statuses)
}

// scoreEdge is the read of one index key's members in one boundary
// millisecond.
type scoreEdge struct {
	part int
	cmd  *redis.ZSliceCmd
}

// countByScore is countMatching without a prefix: one pipeline of ZCOUNTs
// over f's created range and reads of the boundary milliseconds, then the
// boundary members outside the exact bounds subtracted.
func (s *Store) countByScore(ctx context.Context, f *filter, statuses []abi.RuntimeStatus) (int, error) {
	lo, hi := f.scoreRange()
	bounds := f.boundaryMillis()
	pipe := s.rdb.Pipeline()
	var counts []*redis.IntCmd
	var edges []scoreEdge
	for p := range s.parts {
		for _, key := range s.indexKeys(p, statuses) {
			counts = append(counts, pipe.ZCount(ctx, key, lo, hi))
			for _, b := range bounds {
				sc := strconv.FormatInt(b, 10)
				edges = append(edges, scoreEdge{p, pipe.ZRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: sc, Max: sc})})
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !isNil(err) {
		return 0, err
	}
	n := 0
	for _, c := range counts {
		n += int(c.Val())
	}
	var boundary []idxEntry
	for _, e := range edges {
		for _, z := range e.cmd.Val() {
			id, _ := z.Member.(string)
			boundary = append(boundary, idxEntry{cursor: cursor{score: int64(z.Score), id: id}, part: e.part})
		}
	}
	// The boundary members were counted; subtract those outside.
	outside, err := s.countOutside(ctx, f, boundary)
	if err != nil {
		return 0, err
	}
	return n - outside, nil
}

// scoreRange returns the created-index score range of f as ZCOUNT bounds
// ("-inf" and "+inf" when unset).
func (f *filter) scoreRange() (lo, hi string) {
	lo, hi = "-inf", "+inf"
	if f.loSet {
		lo = strconv.FormatInt(f.lo, 10)
	}
	if f.hiSet {
		hi = strconv.FormatInt(f.hi, 10)
	}
	return lo, hi
}

// boundaryMillis returns the boundary milliseconds of f whose members may
// be outside the exact bounds (each once).
func (f *filter) boundaryMillis() []int64 {
	var bounds []int64
	if f.loSet && f.needsExact(f.lo) {
		bounds = append(bounds, f.lo)
	}
	if f.hiSet && !(f.loSet && f.hi == f.lo) && f.needsExact(f.hi) {
		bounds = append(bounds, f.hi)
	}
	return bounds
}

// countOutside returns how many of entries are outside f's exact created
// bounds, or gone (see exactCreated).
func (s *Store) countOutside(ctx context.Context, f *filter, entries []idxEntry) (int, error) {
	created, err := s.exactCreated(ctx, f, entries)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range created {
		if c == "" {
			n++
		}
	}
	return n, nil
}

// countByPrefix is countMatching with a prefix: it reads the ids from the
// indexes, page by page, and counts those with f's prefix that are within
// its exact created bounds.
func (s *Store) countByPrefix(ctx context.Context, f *filter, statuses []abi.RuntimeStatus) (int, error) {
	var boundary []idxEntry
	n := 0
	srcs := s.newSources(f, statuses, cursor{}, false, maxFetch, false)
	for {
		if _, err := s.readSources(ctx, srcs); err != nil {
			return 0, err
		}
		pending := false
		for _, ps := range srcs {
			for _, e := range ps.buf {
				if strings.HasPrefix(e.id, f.prefix) {
					boundary = append(boundary, e)
				}
			}
			ps.buf = nil
			pending = pending || !ps.done
		}
		outside, err := s.countOutside(ctx, f, boundary)
		if err != nil {
			return 0, err
		}
		n += len(boundary) - outside
		boundary = boundary[:0]
		if !pending {
			return n, nil
		}
	}
}
