package redisstore

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/host"
)

// Dead letters: each partition's dw:{hub:p}:dead stream holds the entries the
// store or the workers gave up on. Undecodable stream entries are parked by
// deadLetter (queues.go); activity items delivered too many times by
// DeadLetterActivity. The fields are listed in keys.go.

// DeadLetterActivity posts result, records the dead letter and acks and
// deletes the item, in one script that first checks the item is still
// pending (a no-op otherwise: another worker finished it).
func (s *Store) DeadLetterActivity(ctx context.Context, item host.ActivityItem, reason string, result host.ControlMessage) error {
	if err := s.checkPartition("dead-letter activity", item.Partition); err != nil {
		return err
	}
	if !validStreamID(item.ID) {
		return fmt.Errorf("dead-letter activity %s of %s: item id is not a stream entry id", item.ID, item.InstanceID)
	}
	if result.InstanceID == "" {
		result.InstanceID = item.InstanceID
	}
	k := s.parts[item.Partition]
	err := scriptDeadLetterActivity.Run(ctx, s.rdb, []string{k.act(), k.ctl(), k.dead()},
		item.ID, encodeMsg(&result), encodeItem(&item), reason, item.InstanceID, item.ExecutionID,
		strconv.FormatInt(int64(item.TaskID), 10), item.Name, item.Input, strconv.FormatInt(item.Deliveries, 10)).Err()
	if err != nil {
		return fmt.Errorf("dead-letter activity %s (%s task %d) of %s: %w", item.ID, item.Name, item.TaskID, item.InstanceID, err)
	}
	return nil
}

// ListDeadLetters reads the dead-letter streams of all partitions (one
// XRANGE each, pipelined) and returns up to max (<= 0: 1000) entries,
// oldest first.
func (s *Store) ListDeadLetters(ctx context.Context, max int) ([]host.DeadLetter, error) {
	if max <= 0 {
		max = 1000
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(s.parts))
	for p, k := range s.parts {
		cmds[p] = pipe.XRangeN(ctx, k.dead(), "-", "+", int64(max))
	}
	if _, err := pipe.Exec(ctx); err != nil && !isNil(err) {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	var out []host.DeadLetter
	for p, c := range cmds {
		for _, m := range c.Val() {
			out = append(out, parseDeadLetter(p, m))
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Partition < out[j].Partition
	})
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}

// parseDeadLetter decodes one dead-letter entry; for an undecodable entry of
// the activity or control stream the item or message is decoded from raw
// when possible.
func parseDeadLetter(p int, m redis.XMessage) host.DeadLetter {
	str := func(f string) string { v, _ := m.Values[f].(string); return v }
	d := host.DeadLetter{Partition: p, ID: m.ID, Time: streamIDTime(m.ID), Kind: str("kind"), Reason: str("reason"),
		Source: str("src"), EntryID: str("id"), Raw: str("raw"),
		InstanceID: str("i"), ExecutionID: str("x"), Activity: str("n"), Input: str("in")}
	if d.Kind == "" {
		d.Kind = host.DeadLetterUndecodable
	}
	if t, err := strconv.ParseInt(str("t"), 10, 32); err == nil {
		d.TaskID = int32(t)
	}
	d.Deliveries, _ = strconv.ParseInt(str("dl"), 10, 64)
	if d.Kind == host.DeadLetterControl {
		if msg, err := decodeMsg(d.EntryID, d.Raw); err == nil {
			d.ExecutionID, d.Event = msg.ExecutionID, string(msg.Event.Type)
		}
	}
	return d
}

// streamIDTime is the time part of a stream entry id ("<ms>-<seq>").
func streamIDTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// DeleteDeadLetter removes entry id of partition p's dead-letter stream.
func (s *Store) DeleteDeadLetter(ctx context.Context, p int, id string) error {
	if err := s.checkPartition("delete dead letter", p); err != nil {
		return err
	}
	if !validStreamID(id) {
		return fmt.Errorf("delete dead letter %d/%s: %w (ids look like 1700000000000-0)", p, id, host.ErrDeadLetterNotFound)
	}
	n, err := s.rdb.XDel(ctx, s.parts[p].dead(), id).Result()
	if err != nil {
		return fmt.Errorf("delete dead letter %d/%s: %w", p, id, err)
	}
	if n == 0 {
		return fmt.Errorf("delete dead letter %d/%s: %w", p, id, host.ErrDeadLetterNotFound)
	}
	return nil
}

// QuarantineControl parks msgs (control messages of partition p that could
// not be processed) in the partition's dead-letter stream as kind "control"
// with reason, and acks and deletes them, in one script fenced by epoch
// (host.ErrStaleEpoch, nothing written, when the lease moved on). The raw
// stored message is kept byte for byte. It returns the dead letters' ids, ""
// for a message that was no longer in the stream.
func (s *Store) QuarantineControl(ctx context.Context, p int, epoch int64, msgs []host.ControlMessage, reason string) ([]string, error) {
	if err := s.checkPartition("quarantine control", p); err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	args := []interface{}{strconv.FormatInt(epoch, 10), reason}
	for _, m := range msgs {
		if !validStreamID(m.ID) {
			return nil, fmt.Errorf("quarantine control of partition %d: %q is not a stream entry id", p, m.ID)
		}
		args = append(args, m.ID, m.InstanceID)
	}
	k := s.parts[p]
	res, err := scriptQuarantineControl.Run(ctx, s.rdb, []string{k.lease(), k.ctl(), k.dead()}, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("quarantine control of partition %d: %w", p, err)
	}
	if len(res) == 0 || res[0] != "ok" {
		return nil, fmt.Errorf("quarantine control of partition %d at epoch %d: %w", p, epoch, host.ErrStaleEpoch)
	}
	return res[1:], nil
}

// RequeueDeadLetter puts the control message of dead letter id of partition
// p back on the partition's control stream and removes the dead letter, in
// one script. host.ErrDeadLetterNotFound if there is no such dead letter;
// host.ErrInvalidInput if it is not a control message (activity dead letters
// are replayed by rewinding their instance).
func (s *Store) RequeueDeadLetter(ctx context.Context, p int, id string) error {
	if err := s.checkPartition("requeue dead letter", p); err != nil {
		return err
	}
	if !validStreamID(id) {
		return fmt.Errorf("requeue dead letter %d/%s: %w (ids look like 1700000000000-0)", p, id, host.ErrDeadLetterNotFound)
	}
	k := s.parts[p]
	res, err := scriptRequeueControl.Run(ctx, s.rdb, []string{k.dead(), k.ctl()}, id).Text()
	switch {
	case err != nil:
		return fmt.Errorf("requeue dead letter %d/%s: %w", p, id, err)
	case res == "notfound":
		return fmt.Errorf("requeue dead letter %d/%s: %w", p, id, host.ErrDeadLetterNotFound)
	case strings.HasPrefix(res, "kind:"):
		return fmt.Errorf("requeue dead letter %d/%s: %w: it is a dead letter of kind %q; only control messages can be put back on their stream",
			p, id, host.ErrInvalidInput, strings.TrimPrefix(res, "kind:"))
	}
	return nil
}
