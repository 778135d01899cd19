package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/host"
)

// PendingEntry is one entry of a consumer group's pending entries list: a
// message delivered to Consumer and not yet acknowledged.
type PendingEntry struct {
	ID         string
	Consumer   string
	Idle       time.Duration
	Deliveries int64
}

// PartitionSnapshot is a raw, read-only view of one partition's queues, for
// consistency checks (`durablewasm doctor`, the fault tests' invariant
// checker). It is not atomic: it is read with several commands while workers
// may be running, so a checker must tolerate work moving between the lists
// (or stop the workers first).
type PartitionSnapshot struct {
	Partition int
	// LeaseOwner, LeaseEpoch and LeaseExpires describe the partition lease
	// ("" owner when free).
	LeaseOwner   string
	LeaseEpoch   int64
	LeaseExpires time.Time
	// Instances are the ids in the partition's created-time index.
	Instances []string
	// Control are the entries still in the control stream (delivered and
	// unacknowledged, or not yet read), in stream order; ControlPending is the
	// consumer group's pending entries list.
	Control        []host.ControlMessage
	ControlPending []PendingEntry
	// Activities are the entries still in the activity stream (running or
	// queued); ActivityPending is its pending entries list.
	Activities      []host.ActivityItem
	ActivityPending []PendingEntry
	// Timers are the partition's durable timers.
	Timers []host.TimerItem
	// Outbox are messages recorded for other partitions and not delivered
	// yet (Partition is the target).
	Outbox []host.OutboxMessage
	// DeadLetters is the length of the dead-letter stream.
	DeadLetters int64
	// Undecodable describes entries of the partition's streams and timer set
	// that do not decode.
	Undecodable []string
}

// InspectPartition reads a PartitionSnapshot of partition p. It reads every
// stream entry and timer of the partition (in pages), so its cost is the
// size of the partition's queues; it never scans the key space.
func (s *Store) InspectPartition(ctx context.Context, p int) (*PartitionSnapshot, error) {
	if err := s.checkPartition("inspect", p); err != nil {
		return nil, err
	}
	k := s.parts[p]
	snap := &PartitionSnapshot{Partition: p}
	wrap := func(what string, err error) error { return fmt.Errorf("inspect partition %d: %s: %w", p, what, err) }

	lease, err := s.rdb.HGetAll(ctx, k.lease()).Result()
	if err != nil {
		return nil, wrap("lease", err)
	}
	snap.LeaseOwner = lease["owner"]
	snap.LeaseEpoch, _ = strconv.ParseInt(lease["epoch"], 10, 64)
	if ms, err := strconv.ParseInt(lease["exp"], 10, 64); err == nil {
		snap.LeaseExpires = time.UnixMilli(ms).UTC()
	}
	if snap.Instances, err = s.rdb.ZRange(ctx, k.idxCreated(), 0, -1).Result(); err != nil {
		return nil, wrap("instances", err)
	}

	ctl, err := s.rangeAll(ctx, k.ctl())
	if err != nil {
		return nil, wrap("control stream", err)
	}
	for _, m := range ctl {
		raw, _ := m.Values[fieldMsg].(string)
		cm, err := decodeMsg(m.ID, raw)
		if err != nil {
			snap.Undecodable = append(snap.Undecodable, fmt.Sprintf("%s %s: %v", k.ctl(), m.ID, err))
			continue
		}
		snap.Control = append(snap.Control, cm)
	}
	if snap.ControlPending, err = s.pendingAll(ctx, k.ctl()); err != nil {
		return nil, wrap("control pending", err)
	}

	act, err := s.rangeAll(ctx, k.act())
	if err != nil {
		return nil, wrap("activity stream", err)
	}
	for _, m := range act {
		raw, _ := m.Values[fieldItem].(string)
		it, err := decodeItem(p, m.ID, raw)
		if err != nil {
			snap.Undecodable = append(snap.Undecodable, fmt.Sprintf("%s %s: %v", k.act(), m.ID, err))
			continue
		}
		snap.Activities = append(snap.Activities, it)
	}
	if snap.ActivityPending, err = s.pendingAll(ctx, k.act()); err != nil {
		return nil, wrap("activity pending", err)
	}

	timers, err := s.rdb.ZRangeWithScores(ctx, k.timers(), 0, -1).Result()
	if err != nil {
		return nil, wrap("timers", err)
	}
	for _, z := range timers {
		raw, _ := z.Member.(string)
		cm, err := decodeMsg("", raw)
		if err != nil {
			snap.Undecodable = append(snap.Undecodable, fmt.Sprintf("%s member: %v", k.timers(), err))
			continue
		}
		snap.Timers = append(snap.Timers, host.TimerItem{FireAt: time.UnixMilli(int64(z.Score)).UTC(), Message: cm})
	}

	out, err := s.rangeAll(ctx, k.outbox())
	if err != nil {
		return nil, wrap("outbox", err)
	}
	for _, m := range out {
		raw, _ := m.Values[fieldOutbox].(string)
		var w wireOutbox
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			snap.Undecodable = append(snap.Undecodable, fmt.Sprintf("%s %s: %v", k.outbox(), m.ID, err))
			continue
		}
		cm, err := decodeMsg(m.ID, w.M)
		if err != nil {
			snap.Undecodable = append(snap.Undecodable, fmt.Sprintf("%s %s: %v", k.outbox(), m.ID, err))
			continue
		}
		snap.Outbox = append(snap.Outbox, host.OutboxMessage{Partition: host.PartitionFor(cm.InstanceID, s.n), Message: cm})
	}
	if snap.DeadLetters, err = s.rdb.XLen(ctx, k.dead()).Result(); err != nil && !isNil(err) {
		return nil, wrap("dead letters", err)
	}
	return snap, nil
}

// rangeAll reads every entry of a stream, in pages.
func (s *Store) rangeAll(ctx context.Context, stream string) ([]redis.XMessage, error) {
	var all []redis.XMessage
	start := "-"
	for {
		page, err := s.rdb.XRangeN(ctx, stream, start, "+", 1000).Result()
		if err != nil && !isNil(err) {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all, nil
		}
		start = "(" + page[len(page)-1].ID
	}
}

// pendingAll reads a stream's whole pending entries list for the group; a
// missing stream or group has none.
func (s *Store) pendingAll(ctx context.Context, stream string) ([]PendingEntry, error) {
	var all []PendingEntry
	start := "-"
	for {
		page, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: start, End: "+", Count: 1000}).Result()
		if isNoGroup(err) || isNil(err) {
			return all, nil
		}
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			all = append(all, PendingEntry{ID: e.ID, Consumer: e.Consumer, Idle: e.Idle, Deliveries: e.RetryCount})
		}
		if len(page) < 1000 {
			return all, nil
		}
		start = "(" + page[len(page)-1].ID
	}
}
