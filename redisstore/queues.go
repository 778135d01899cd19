package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/host"
)

// blockArg converts a ReadControl/ReadActivities block duration to go-redis'
// convention: go-redis sends BLOCK 0 (wait forever) for 0, so "do not block"
// is a negative value (BLOCK omitted); positive durations are at least 1 ms.
func blockArg(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	if d < time.Millisecond {
		return time.Millisecond
	}
	return d
}

// validStreamID reports whether id looks like a stream entry id ("ms-seq" or
// "ms"). Ids are checked in Go because a malformed id makes XACK fail inside a
// script after earlier writes.
func validStreamID(id string) bool {
	if id == "" {
		return false
	}
	dash := false
	for i, c := range id {
		switch {
		case c >= '0' && c <= '9':
		case c == '-' && !dash && i > 0 && i < len(id)-1:
			dash = true
		default:
			return false
		}
	}
	return true
}

func checkIDs(op string, ids []string) error {
	for _, id := range ids {
		if !validStreamID(id) {
			return fmt.Errorf("%s: %q is not a stream entry id", op, id)
		}
	}
	return nil
}

// readGroup runs XREADGROUP on one stream, re-creating the group once if it
// is missing (e.g. after the stream was deleted).
func (s *Store) readGroup(ctx context.Context, p int, stream, consumer, start string, count int, block time.Duration) ([]redis.XMessage, error) {
	args := &redis.XReadGroupArgs{Group: group, Consumer: consumer, Streams: []string{stream, start}, Count: int64(count), Block: block}
	for attempt := 0; ; attempt++ {
		res, err := s.rdb.XReadGroup(ctx, args).Result()
		if isNil(err) {
			return nil, nil
		}
		if isNoGroup(err) && attempt == 0 {
			if err := s.ensureGroups(ctx, p); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(res) == 0 {
			return nil, nil
		}
		return res[0].Messages, nil
	}
}

// deadLetter moves an undecodable entry to the partition's dead-letter stream.
func (s *Store) deadLetter(ctx context.Context, p int, stream string, m redis.XMessage, field string, reason error, acked bool) error {
	raw, _ := m.Values[field].(string)
	ack := "0"
	if acked {
		ack = "1"
	}
	return scriptDeadLetter.Run(ctx, s.rdb, []string{stream, s.parts[p].dead()}, m.ID, field, raw, reason.Error(), ack).Err()
}

// decodeControl decodes control stream entries. Entries whose content was
// deleted (nil values) are acked; undecodable ones are dead-lettered; neither
// is returned.
func (s *Store) decodeControl(ctx context.Context, p int, msgs []redis.XMessage) ([]host.ControlMessage, error) {
	return decodeEntries(ctx, s, p, s.parts[p].ctl(), fieldMsg, "control", msgs, decodeMsg)
}

// decodeEntries decodes stream entries whose payload is in field. An entry
// whose message was deleted (nil values) is acknowledged and skipped; one
// that does not decode is moved to the partition's dead-letter stream.
func decodeEntries[T any](ctx context.Context, s *Store, p int, stream, field, kind string, msgs []redis.XMessage, decode func(id, raw string) (T, error)) ([]T, error) {
	out := make([]T, 0, len(msgs))
	for _, m := range msgs {
		if m.Values == nil {
			if err := s.rdb.XAck(ctx, stream, group, m.ID).Err(); err != nil {
				return nil, err
			}
			continue
		}
		var v T
		raw, ok := m.Values[field].(string)
		err := fmt.Errorf("%s entry %s has no %q field", kind, m.ID, field)
		if ok {
			v, err = decode(m.ID, raw)
		}
		if err != nil {
			if derr := s.deadLetter(ctx, p, stream, m, field, err, true); derr != nil {
				return nil, derr
			}
			continue
		}
		out = append(out, v)
	}
	return out, nil
}

// ReadControl returns up to max new messages of partition p for consumer
// (XREADGROUP ">"), blocking up to block when there are none (0: do not
// block). The messages stay pending for consumer until a Commit or AckControl
// acknowledges them. An entry that cannot be decoded is moved to the
// partition's dead-letter stream (dw:{hub:p}:dead) instead of being returned.
func (s *Store) ReadControl(ctx context.Context, p int, consumer string, max int, block time.Duration) ([]host.ControlMessage, error) {
	if err := s.checkPartition("read control", p); err != nil {
		return nil, err
	}
	msgs, err := s.readGroup(ctx, p, s.parts[p].ctl(), consumer, ">", max, blockArg(block))
	if err != nil {
		return nil, fmt.Errorf("read control of partition %d: %w", p, err)
	}
	out, err := s.decodeControl(ctx, p, msgs)
	if err != nil {
		return nil, fmt.Errorf("read control of partition %d: %w", p, err)
	}
	return out, nil
}

// ClaimControl moves every pending message of partition p (whoever it was
// delivered to) to consumer with XAUTOCLAIM (min idle 0), then returns all of
// consumer's pending messages, in stream order.
func (s *Store) ClaimControl(ctx context.Context, p int, consumer string) ([]host.ControlMessage, error) {
	if err := s.checkPartition("claim control", p); err != nil {
		return nil, err
	}
	stream := s.parts[p].ctl()
	start := "0-0"
	for attempt := 0; ; {
		_, next, err := s.rdb.XAutoClaimJustID(ctx, &redis.XAutoClaimArgs{
			Stream: stream, Group: group, Consumer: consumer, MinIdle: 0, Start: start, Count: 1000,
		}).Result()
		if isNoGroup(err) && attempt == 0 {
			attempt++
			if err := s.ensureGroups(ctx, p); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil && !isNil(err) {
			return nil, fmt.Errorf("claim control of partition %d: %w", p, err)
		}
		if next == "" || next == "0-0" {
			break
		}
		start = next
	}
	var all []host.ControlMessage
	after := "0"
	for {
		msgs, err := s.readGroup(ctx, p, stream, consumer, after, 1000, -1)
		if err != nil {
			return nil, fmt.Errorf("claim control of partition %d: %w", p, err)
		}
		if len(msgs) == 0 {
			break
		}
		after = msgs[len(msgs)-1].ID
		dec, err := s.decodeControl(ctx, p, msgs)
		if err != nil {
			return nil, fmt.Errorf("claim control of partition %d: %w", p, err)
		}
		all = append(all, dec...)
	}
	return all, nil
}

// AckControl acknowledges and deletes control messages of partition p that
// were consumed without a commit. It is fenced like Commit: a stale epoch
// returns host.ErrStaleEpoch and acks nothing.
func (s *Store) AckControl(ctx context.Context, p int, epoch int64, ids []string) error {
	if err := s.checkPartition("ack control", p); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	if err := checkIDs(fmt.Sprintf("ack control of partition %d", p), ids); err != nil {
		return err
	}
	k := s.parts[p]
	args := append([]interface{}{strconv.FormatInt(epoch, 10)}, toStrings(ids)...)
	res, err := scriptAckControl.Run(ctx, s.rdb, []string{k.lease(), k.ctl()}, args...).Text()
	if err != nil {
		return fmt.Errorf("ack control of partition %d: %w", p, err)
	}
	if res == "stale" {
		return fmt.Errorf("ack control of partition %d at epoch %d: %w", p, epoch, host.ErrStaleEpoch)
	}
	return nil
}

// commitCall validates c and builds its script call.
func (s *Store) commitCall(c *host.Commit) (scriptCall, error) {
	id := c.State.InstanceID
	if id == "" {
		return scriptCall{}, fmt.Errorf("commit: state has no instance id")
	}
	if err := s.checkPartition("commit "+id, c.Partition); err != nil {
		return scriptCall{}, err
	}
	if p := host.PartitionFor(id, s.n); p != c.Partition {
		return scriptCall{}, fmt.Errorf("commit %s: instance belongs to partition %d, not %d", id, p, c.Partition)
	}
	if err := checkIDs("commit "+id, c.Acks); err != nil {
		return scriptCall{}, err
	}
	k := s.parts[c.Partition]
	st := c.State
	reset := "0"
	if c.ResetHistory {
		reset = "1"
	}
	fields := stateFields(&st, false)
	args := make([]interface{}, 0, 16+len(fields)+len(c.NewEvents)+len(c.Acks)+len(c.Activities)+2*len(c.Timers)+len(c.Local)+len(c.Outbox))
	args = append(args, strconv.FormatInt(c.Epoch, 10), c.CommitID, id, string(st.Status), createdScore(st.CreatedAt), reset, c.ExpectFresh, s.publish())
	args = append(args, len(fields))
	args = append(args, toStrings(fields)...)
	args = append(args, len(c.NewEvents))
	for i := range c.NewEvents {
		args = append(args, encodeEventString(&c.NewEvents[i]))
	}
	args = append(args, len(c.Acks))
	args = append(args, toStrings(c.Acks)...)
	args = append(args, len(c.Activities))
	for i := range c.Activities {
		a := c.Activities[i]
		if a.InstanceID == "" {
			a.InstanceID = id
		}
		args = append(args, encodeItem(&a))
	}
	args = append(args, 3*len(c.Timers))
	for i := range c.Timers {
		m := c.Timers[i].Message
		if m.InstanceID == "" {
			m.InstanceID = id
		}
		args = append(args, fireScore(c.Timers[i].FireAt), encodeMsg(&m), timerOwner(m.InstanceID))
	}
	args = append(args, len(c.Local))
	for i := range c.Local {
		m := c.Local[i]
		if m.InstanceID == "" {
			m.InstanceID = id
		}
		args = append(args, encodeMsg(&m))
	}
	args = append(args, len(c.Outbox))
	for i := range c.Outbox {
		o := &c.Outbox[i]
		if o.Message.MessageID == "" {
			return scriptCall{}, fmt.Errorf("commit %s: outbox message %d for %s has no MessageID (needed to de-duplicate delivery)", id, i, o.Message.InstanceID)
		}
		if o.Message.InstanceID == "" {
			return scriptCall{}, fmt.Errorf("commit %s: outbox message %d has no target instance id", id, i)
		}
		args = append(args, encodeOutbox(o))
	}
	keys := []string{k.lease(), k.instance(id), k.history(id), k.ctl(), k.act(), k.timers(), k.outbox(), k.idxCreated(), k.idxStatusPrefix(), k.timerIndexPrefix(), k.idxDigestPrefix(), k.done()}
	return scriptCall{script: scriptCommit, keys: keys, args: args}, nil
}

// Commit applies commits, each atomically by one script, pipelined in one
// round trip. Each commit first checks the partition's lease epoch (stale:
// wrapped host.ErrStaleEpoch, nothing written) and its CommitID (equal to the
// instance's last applied commit id: success, nothing written). Then it
// appends NewEvents (replacing the history with ResetHistory), writes State
// (HistoryLength is set to the stored history's length), updates the
// created/status indexes, XACKs and XDELs Acks, and adds Activities, Timers,
// Local messages and Outbox entries (each timer is also recorded in its
// instance's timer index, dw:{hub:p}:tm:<id>). A partition that was never leased has
// epoch 0. Commit does not require the instance to exist (it writes State
// whole). The result has one error per commit; the
// error return is for a failed round trip (then the outcome of each commit is
// unknown, and retrying with the same CommitIDs is safe).
func (s *Store) Commit(ctx context.Context, commits []host.Commit) ([]error, error) {
	errs := make([]error, len(commits))
	calls := make([]scriptCall, 0, len(commits))
	idx := make([]int, 0, len(commits))
	for i := range commits {
		call, err := s.commitCall(&commits[i])
		if err != nil {
			errs[i] = err
			continue
		}
		calls = append(calls, call)
		idx = append(idx, i)
	}
	if len(calls) == 0 {
		return errs, nil
	}
	cmds, err := s.runPipelined(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("commit %d steps: %w", len(calls), err)
	}
	for j, cmd := range cmds {
		i := idx[j]
		c := &commits[i]
		res, err := cmd.Text()
		verb, cid, _ := strings.Cut(res, " ")
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("commit %s: %w", c.State.InstanceID, err)
		case cid != c.CommitID:
			// Never counted as applied: a reply that is not this commit's
			// (a connection whose replies got out of step) proves nothing.
			errs[i] = fmt.Errorf("commit %s: the reply %q is not for commit %q; not counted as applied", c.State.InstanceID, res, c.CommitID)
		case verb == "ok" || verb == "dup":
		case verb == "stale":
			errs[i] = fmt.Errorf("commit %s (partition %d, epoch %d): %w", c.State.InstanceID, c.Partition, c.Epoch, host.ErrStaleEpoch)
		case verb == "changed":
			errs[i] = fmt.Errorf("commit %s: %w", c.State.InstanceID, host.ErrStateChanged)
		default:
			errs[i] = fmt.Errorf("commit %s: unexpected reply %q", c.State.InstanceID, res)
		}
	}
	return errs, nil
}

// DeliverOutbox delivers partition p's outbox entries to their target
// partitions and deletes them from the outbox. Each delivery is one script on
// the target partition's slot that skips a message whose MessageID was
// delivered before (de-dup marker, kept Options.DedupTTL) and, for a Create
// message, creates the instance like CreateInstance — or drops the message if
// a non-terminal instance with that id exists. The outbox deletion is a
// second script, fenced by epoch; a crash in between redelivers, and the
// de-dup marker drops the copy. It returns how many messages were newly
// enqueued on target control streams. A stale epoch returns
// host.ErrStaleEpoch (checked before delivering and again when deleting).
func (s *Store) DeliverOutbox(ctx context.Context, p int, epoch int64) (int, error) {
	if err := s.checkPartition("deliver outbox", p); err != nil {
		return 0, err
	}
	k := s.parts[p]
	ep := strconv.FormatInt(epoch, 10)
	res, err := scriptCheckEpoch.Run(ctx, s.rdb, []string{k.lease()}, ep).Text()
	if err != nil {
		return 0, fmt.Errorf("deliver outbox of partition %d: %w", p, err)
	}
	if res == "stale" {
		return 0, fmt.Errorf("deliver outbox of partition %d at epoch %d: %w", p, epoch, host.ErrStaleEpoch)
	}
	delivered := 0
	for round := 0; round < 16; round++ {
		entries, err := s.rdb.XRangeN(ctx, k.outbox(), "-", "+", int64(s.opts.OutboxBatch)).Result()
		if err != nil {
			return delivered, fmt.Errorf("deliver outbox of partition %d: %w", p, err)
		}
		if len(entries) == 0 {
			break
		}
		n, err := s.deliverEntries(ctx, p, ep, entries)
		delivered += n
		if err != nil {
			return delivered, fmt.Errorf("deliver outbox of partition %d: %w", p, err)
		}
		if len(entries) < s.opts.OutboxBatch {
			break
		}
	}
	return delivered, nil
}

// deliverEntries delivers entries (pipelined) and then deletes them from p's
// outbox.
func (s *Store) deliverEntries(ctx context.Context, p int, ep string, entries []redis.XMessage) (int, error) {
	k := s.parts[p]
	calls := make([]scriptCall, 0, len(entries))
	var ids []string
	for _, e := range entries {
		call, err := s.deliverCall(e)
		if err != nil {
			if derr := s.deadLetter(ctx, p, k.outbox(), e, fieldOutbox, err, false); derr != nil {
				return 0, derr
			}
			continue
		}
		calls = append(calls, call)
		ids = append(ids, e.ID)
	}
	if len(calls) == 0 {
		return 0, nil
	}
	cmds, err := s.runPipelined(ctx, calls)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, c := range cmds {
		res, err := c.Text()
		if err != nil {
			return n, fmt.Errorf("deliver outbox entry %s: %w", ids[i], err)
		}
		if res == "ok" {
			n++
		}
	}
	args := append([]interface{}{ep}, toStrings(ids)...)
	res, err := scriptOutboxDel.Run(ctx, s.rdb, []string{k.lease(), k.outbox()}, args...).Text()
	if err != nil {
		return n, err
	}
	if res == "stale" {
		return n, fmt.Errorf("delete delivered entries at epoch %s: %w", ep, host.ErrStaleEpoch)
	}
	return n, nil
}

// deliverCall builds the delivery script call of one outbox entry.
func (s *Store) deliverCall(e redis.XMessage) (scriptCall, error) {
	raw, ok := e.Values[fieldOutbox].(string)
	if !ok {
		return scriptCall{}, fmt.Errorf("outbox entry %s has no %q field", e.ID, fieldOutbox)
	}
	var w wireOutbox
	if err := json.Unmarshal([]byte(raw), &w); err != nil {
		return scriptCall{}, fmt.Errorf("decode outbox entry %s: %w", e.ID, err)
	}
	msg, err := decodeMsg(e.ID, w.M)
	if err != nil {
		return scriptCall{}, err
	}
	id := msg.InstanceID
	// The target partition is recomputed from the id: the instance's keys
	// live there whatever the sender believed.
	_, tk := s.partition(id)
	create := "0"
	var st wireState
	if len(w.C) > 0 {
		if err := json.Unmarshal(w.C, &st); err != nil {
			return scriptCall{}, fmt.Errorf("decode outbox entry %s: create state: %w", e.ID, err)
		}
		create = "1"
	}
	args := []interface{}{w.M, msg.MessageID, ms(s.opts.DedupTTL), create, id, st.S, st.C}
	args = append(args, toStrings(st.F)...)
	keys := []string{tk.dedup(msg.MessageID), tk.ctl(), tk.instance(id), tk.history(id), tk.idxCreated(), tk.idxStatusPrefix(), tk.idxDigestPrefix()}
	return scriptCall{script: scriptDeliver, keys: keys, args: args}, nil
}

// FireDueTimers moves up to max timers of partition p whose fire time is at
// or before now into its control stream, in one script fenced by epoch. A
// timer never fires early (scores are fire times rounded up to the
// millisecond and compared with now rounded down) and fires once (it is
// removed in the same script). It returns how many it moved and the fire time
// (ms precision) of the earliest remaining timer, zero if none.
func (s *Store) FireDueTimers(ctx context.Context, p int, epoch int64, now time.Time, max int) (int, time.Time, error) {
	if err := s.checkPartition("fire timers", p); err != nil {
		return 0, time.Time{}, err
	}
	if max <= 0 {
		max = 1000
	}
	k := s.parts[p]
	vals, err := scriptFireTimers.Run(ctx, s.rdb, []string{k.lease(), k.timers(), k.ctl(), k.timerIndexPrefix()},
		strconv.FormatInt(epoch, 10), strconv.FormatInt(now.UnixMilli(), 10), max).Slice()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("fire timers of partition %d: %w", p, err)
	}
	n, _ := vals[0].(int64)
	if n < 0 {
		return 0, time.Time{}, fmt.Errorf("fire timers of partition %d at epoch %d: %w", p, epoch, host.ErrStaleEpoch)
	}
	var next time.Time
	if sc, _ := vals[1].(string); sc != "" {
		next = scoreTime(sc)
	}
	return int(n), next, nil
}

// decodeActivities decodes activity entries; undecodable ones are
// dead-lettered, deleted ones acked.
func (s *Store) decodeActivities(ctx context.Context, p int, msgs []redis.XMessage) ([]host.ActivityItem, error) {
	return decodeEntries(ctx, s, p, s.parts[p].act(), fieldItem, "activity", msgs,
		func(id, raw string) (host.ActivityItem, error) { return decodeItem(p, id, raw) })
}

// ReadActivities returns up to max new activity items of partition p for
// consumer, blocking up to block when there are none (0: do not block).
// Deliveries is 1. Items stay pending until CompleteActivity.
func (s *Store) ReadActivities(ctx context.Context, p int, consumer string, max int, block time.Duration) ([]host.ActivityItem, error) {
	if err := s.checkPartition("read activities", p); err != nil {
		return nil, err
	}
	msgs, err := s.readGroup(ctx, p, s.parts[p].act(), consumer, ">", max, blockArg(block))
	if err != nil {
		return nil, fmt.Errorf("read activities of partition %d: %w", p, err)
	}
	out, err := s.decodeActivities(ctx, p, msgs)
	if err != nil {
		return nil, fmt.Errorf("read activities of partition %d: %w", p, err)
	}
	return out, nil
}

// ClaimActivities moves up to max items of partition p that have been pending
// for at least minIdle (their worker is presumed dead) to consumer
// (XAUTOCLAIM) and returns them with Deliveries set from the stream's
// delivery count (which counts this delivery).
func (s *Store) ClaimActivities(ctx context.Context, p int, consumer string, minIdle time.Duration, max int) ([]host.ActivityItem, error) {
	if err := s.checkPartition("claim activities", p); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, nil
	}
	k := s.parts[p]
	var msgs []redis.XMessage
	start := "0-0"
	for attempt := 0; len(msgs) < max; {
		got, next, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: k.act(), Group: group, Consumer: consumer, MinIdle: minIdle, Start: start, Count: int64(max - len(msgs)),
		}).Result()
		if isNoGroup(err) && attempt == 0 {
			attempt++
			if err := s.ensureGroups(ctx, p); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil && !isNil(err) {
			return nil, fmt.Errorf("claim activities of partition %d: %w", p, err)
		}
		msgs = append(msgs, got...)
		if next == "" || next == "0-0" {
			break
		}
		start = next
	}
	return s.withDeliveries(ctx, p, msgs)
}

// withDeliveries decodes the activity items msgs of partition p, just
// claimed, with their delivery counts.
func (s *Store) withDeliveries(ctx context.Context, p int, msgs []redis.XMessage) ([]host.ActivityItem, error) {
	k := s.parts[p]
	items, err := s.decodeActivities(ctx, p, msgs)
	if err != nil || len(items) == 0 {
		return items, err
	}
	pipe := s.rdb.Pipeline()
	pend := make([]*redis.XPendingExtCmd, len(items))
	for i, it := range items {
		pend[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: k.act(), Group: group, Start: it.ID, End: it.ID, Count: 1})
	}
	if _, err := pipe.Exec(ctx); err != nil && !isNil(err) {
		return nil, fmt.Errorf("claim activities of partition %d: delivery counts: %w", p, err)
	}
	for i := range items {
		if v := pend[i].Val(); len(v) == 1 {
			items[i].Deliveries = v[0].RetryCount
		}
	}
	return items, nil
}

// ReclaimActivities moves to consumer up to max activity items of
// partition p that consumers of dead workers (not in live) had claimed, and
// removes dead consumers that hold no item from the activity and control
// streams' groups. Their delivery counts are incremented, as for
// ClaimActivities. It is how a dead worker's activities run again within
// about a liveness TTL rather than after the visibility timeout.
//
// A consumer that read or claimed within minIdle is left alone: a worker
// that has just started may not be in live yet.
func (s *Store) ReclaimActivities(ctx context.Context, p int, consumer string, live []string, minIdle time.Duration, max int) ([]host.ActivityItem, error) {
	if err := s.checkPartition("reclaim activities", p); err != nil {
		return nil, err
	}
	k := s.parts[p]
	args := append([]any{group, consumer, 0, minIdle.Milliseconds()}, toAny(live)...)
	if err := scriptReclaim.Run(ctx, s.rdb, []string{k.ctl()}, args...).Err(); err != nil && !isNil(err) {
		return nil, fmt.Errorf("reclaim control consumers of partition %d: %w", p, err)
	}
	args[2] = max
	res, err := scriptReclaim.Run(ctx, s.rdb, []string{k.act()}, args...).Slice()
	if err != nil && !isNil(err) {
		return nil, fmt.Errorf("reclaim activities of partition %d: %w", p, err)
	}
	msgs, err := scriptMessages(res)
	if err != nil {
		return nil, fmt.Errorf("reclaim activities of partition %d: %w", p, err)
	}
	return s.withDeliveries(ctx, p, msgs)
}

// scriptMessages converts the stream entries a script returned (as XCLAIM
// or XRANGE return them) to messages.
func scriptMessages(res []any) ([]redis.XMessage, error) {
	msgs := make([]redis.XMessage, 0, len(res))
	for _, e := range res {
		pair, ok := e.([]any)
		if !ok || len(pair) != 2 {
			return nil, fmt.Errorf("unexpected stream entry %v", e)
		}
		id, _ := pair[0].(string)
		fields, _ := pair[1].([]any)
		m := redis.XMessage{ID: id, Values: make(map[string]any, len(fields)/2)}
		for i := 0; i+1 < len(fields); i += 2 {
			name, _ := fields[i].(string)
			m.Values[name] = fields[i+1]
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// toAny converts ss for a script's arguments.
func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// TouchActivity resets the idle time of item, which consumer holds, so that
// no other worker claims it after the visibility timeout while it runs
// (XCLAIM JUSTID to its holder: the delivery count is unchanged). It is the
// heartbeat of a long activity; it does nothing when consumer no longer
// holds the item.
func (s *Store) TouchActivity(ctx context.Context, item host.ActivityItem, consumer string) error {
	if err := s.checkPartition("touch activity", item.Partition); err != nil {
		return err
	}
	if !validStreamID(item.ID) {
		return fmt.Errorf("touch activity %s of %s: item id is not a stream entry id", item.ID, item.InstanceID)
	}
	// Only while consumer holds it, checked in the same script: claiming it
	// blindly would take it back from a worker that reclaimed it.
	if err := scriptTouchActivity.Run(ctx, s.rdb, []string{s.parts[item.Partition].act()}, group, consumer, item.ID).Err(); err != nil {
		return fmt.Errorf("touch activity %s (%s task %d) of %s: %w", item.ID, item.Name, item.TaskID, item.InstanceID, err)
	}
	return nil
}

// CompleteActivity posts result to the control stream of item's partition and
// acks and deletes the item, in one script — if the item is still pending.
// Otherwise (another worker completed it) it does nothing and returns nil.
func (s *Store) CompleteActivity(ctx context.Context, item host.ActivityItem, result host.ControlMessage) error {
	return s.CompleteActivities(ctx, []host.ActivityItem{item}, []host.ControlMessage{result})[0]
}

// CompleteActivities is CompleteActivity for several items (results[i] is
// items[i]'s), pipelined in one round trip; each completes atomically on
// its own. It returns one error per item.
func (s *Store) CompleteActivities(ctx context.Context, items []host.ActivityItem, results []host.ControlMessage) []error {
	errs := make([]error, len(items))
	calls := make([]scriptCall, 0, len(items))
	idx := make([]int, 0, len(items))
	for i, item := range items {
		if err := s.checkPartition("complete activity", item.Partition); err != nil {
			errs[i] = err
			continue
		}
		if !validStreamID(item.ID) {
			errs[i] = fmt.Errorf("complete activity %s of %s: item id is not a stream entry id", item.ID, item.InstanceID)
			continue
		}
		result := results[i]
		if result.InstanceID == "" {
			result.InstanceID = item.InstanceID
		}
		k := s.parts[item.Partition]
		calls = append(calls, scriptCall{script: scriptCompleteActivity, keys: []string{k.act(), k.ctl()}, args: []any{item.ID, encodeMsg(&result)}})
		idx = append(idx, i)
	}
	if len(calls) == 0 {
		return errs
	}
	cmds, err := s.runPipelined(ctx, calls)
	for n, i := range idx {
		item := items[i]
		e := err
		if e == nil {
			e = cmds[n].Err()
			if isNil(e) {
				e = nil
			}
		}
		if e != nil {
			errs[i] = fmt.Errorf("complete activity %s (%s task %d) of %s: %w", item.ID, item.Name, item.TaskID, item.InstanceID, e)
		}
	}
	return errs
}
