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
	in := &inspection{s: s, k: s.parts[p], snap: &PartitionSnapshot{Partition: p}}
	for _, read := range []func(context.Context) error{
		in.readLease, in.readInstances, in.readControl, in.readActivities,
		in.readTimers, in.readOutbox, in.readDeadLetters,
	} {
		if err := read(ctx); err != nil {
			return nil, err
		}
	}
	return in.snap, nil
}

// inspection is one InspectPartition: the partition's keys and the
// snapshot it fills in. Each read method fills in one part of the snapshot
// and fails with an error from wrap.
type inspection struct {
	s    *Store
	k    partKeys
	snap *PartitionSnapshot
}

// wrap names the partition and what was being read in err.
func (in *inspection) wrap(what string, err error) error {
	return fmt.Errorf("inspect partition %d: %s: %w", in.snap.Partition, what, err)
}

// undecodable records an entry of key that does not decode.
func (in *inspection) undecodable(key, id string, err error) {
	in.snap.Undecodable = append(in.snap.Undecodable, fmt.Sprintf("%s %s: %v", key, id, err))
}

// readLease reads the lease's owner, epoch and expiry.
func (in *inspection) readLease(ctx context.Context) error {
	lease, err := in.s.rdb.HGetAll(ctx, in.k.lease()).Result()
	if err != nil {
		return in.wrap("lease", err)
	}
	in.snap.LeaseOwner = lease["owner"]
	in.snap.LeaseEpoch, _ = strconv.ParseInt(lease["epoch"], 10, 64)
	if ms, err := strconv.ParseInt(lease["exp"], 10, 64); err == nil {
		in.snap.LeaseExpires = time.UnixMilli(ms).UTC()
	}
	return nil
}

// readInstances reads the ids of the created-time index.
func (in *inspection) readInstances(ctx context.Context) error {
	var err error
	if in.snap.Instances, err = in.s.rdb.ZRange(ctx, in.k.idxCreated(), 0, -1).Result(); err != nil {
		return in.wrap("instances", err)
	}
	return nil
}

// readControl reads the control stream's entries and pending entries list.
func (in *inspection) readControl(ctx context.Context) error {
	ctl, err := in.s.rangeAll(ctx, in.k.ctl())
	if err != nil {
		return in.wrap("control stream", err)
	}
	for _, m := range ctl {
		raw, _ := m.Values[fieldMsg].(string)
		cm, err := decodeMsg(m.ID, raw)
		if err != nil {
			in.undecodable(in.k.ctl(), m.ID, err)
			continue
		}
		in.snap.Control = append(in.snap.Control, cm)
	}
	if in.snap.ControlPending, err = in.s.pendingAll(ctx, in.k.ctl()); err != nil {
		return in.wrap("control pending", err)
	}
	return nil
}

// readActivities reads the activity stream's entries and pending entries
// list.
func (in *inspection) readActivities(ctx context.Context) error {
	act, err := in.s.rangeAll(ctx, in.k.act())
	if err != nil {
		return in.wrap("activity stream", err)
	}
	for _, m := range act {
		raw, _ := m.Values[fieldItem].(string)
		it, err := decodeItem(in.snap.Partition, m.ID, raw)
		if err != nil {
			in.undecodable(in.k.act(), m.ID, err)
			continue
		}
		in.snap.Activities = append(in.snap.Activities, it)
	}
	if in.snap.ActivityPending, err = in.s.pendingAll(ctx, in.k.act()); err != nil {
		return in.wrap("activity pending", err)
	}
	return nil
}

// readTimers reads the timer set.
func (in *inspection) readTimers(ctx context.Context) error {
	timers, err := in.s.rdb.ZRangeWithScores(ctx, in.k.timers(), 0, -1).Result()
	if err != nil {
		return in.wrap("timers", err)
	}
	for _, z := range timers {
		raw, _ := z.Member.(string)
		cm, err := decodeMsg("", raw)
		if err != nil {
			in.snap.Undecodable = append(in.snap.Undecodable, fmt.Sprintf("%s member: %v", in.k.timers(), err))
			continue
		}
		in.snap.Timers = append(in.snap.Timers, host.TimerItem{FireAt: time.UnixMilli(int64(z.Score)).UTC(), Message: cm})
	}
	return nil
}

// readOutbox reads the outbox stream, each message with its target
// partition.
func (in *inspection) readOutbox(ctx context.Context) error {
	out, err := in.s.rangeAll(ctx, in.k.outbox())
	if err != nil {
		return in.wrap("outbox", err)
	}
	for _, m := range out {
		raw, _ := m.Values[fieldOutbox].(string)
		var w wireOutbox
		if err := json.Unmarshal([]byte(raw), &w); err != nil {
			in.undecodable(in.k.outbox(), m.ID, err)
			continue
		}
		cm, err := decodeMsg(m.ID, w.M)
		if err != nil {
			in.undecodable(in.k.outbox(), m.ID, err)
			continue
		}
		in.snap.Outbox = append(in.snap.Outbox, host.OutboxMessage{Partition: host.PartitionFor(cm.InstanceID, in.s.n), Message: cm})
	}
	return nil
}

// readDeadLetters reads the length of the dead-letter stream (0 when it
// does not exist).
func (in *inspection) readDeadLetters(ctx context.Context) error {
	var err error
	if in.snap.DeadLetters, err = in.s.rdb.XLen(ctx, in.k.dead()).Result(); err != nil && !isNil(err) {
		return in.wrap("dead letters", err)
	}
	return nil
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
