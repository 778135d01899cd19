package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
)

var _ host.IdempotentStore = (*Store)(nil)

// CreateInstance creates st and enqueues start on its partition's control
// stream, in one script. An existing terminal instance is replaced: its
// state and history are deleted and its dedup markers retired (see keys.go;
// messages and timers still queued for it carry its old execution id and
// are dropped by the worker). A non-terminal instance makes it fail with
// host.ErrInstanceExists and write nothing. Calling it again with the same
// non-empty st.ExecutionID after it succeeded (a retry) succeeds without
// writing.
func (s *Store) CreateInstance(ctx context.Context, st host.InstanceState, start host.ControlMessage) error {
	_, err := s.createInstance(ctx, st, start, nil)
	return err
}

// CreateInstanceOnce implements host.IdempotentStore: CreateInstance that
// records idem with st.InstanceID in the same script. A replay returns the
// execution id the first call created.
func (s *Store) CreateInstanceOnce(ctx context.Context, st host.InstanceState, start host.ControlMessage, idem host.Idempotency) (host.Replay, error) {
	if err := checkIdem("create instance", idem); err != nil {
		return host.Replay{}, err
	}
	return s.createInstance(ctx, st, start, &idem)
}

func (s *Store) createInstance(ctx context.Context, st host.InstanceState, start host.ControlMessage, idem *host.Idempotency) (host.Replay, error) {
	id := st.InstanceID
	if err := checkID("create instance", id); err != nil {
		return host.Replay{}, err
	}
	if st.Status == "" {
		st.Status = abi.StatusPending
	}
	if start.InstanceID == "" {
		start.InstanceID = id
	}
	_, k := s.partition(id)
	st.HistoryLength = 0
	args := []interface{}{id, st.ExecutionID, string(st.Status), createdScore(st.CreatedAt), encodeMsg(&start)}
	args = append(args, toStrings(stateFields(&st, true))...)
	fp, op, ittl, ikey := idemArgs(k, id, idem)
	args = append(args, ms(s.opts.DedupTTL), fp, op, ittl)
	res, err := scriptCreate.Run(ctx, s.rdb,
		[]string{k.instance(id), k.history(id), k.ctl(), k.idxCreated(), k.idxStatusPrefix(), k.idxDigestPrefix(),
			k.dedupSet(id), k.dedupPrefix(), ikey}, args...).Text()
	if err != nil {
		return host.Replay{}, fmt.Errorf("create instance %s: %w", id, err)
	}
	if r, ok, err := idemReply("create instance", id, idem, res); ok {
		return r, err
	}
	if res == "exists" {
		return host.Replay{}, fmt.Errorf("create instance %s: %w (it is not in a terminal state; terminate or purge it first)", id, host.ErrInstanceExists)
	}
	return host.Replay{ExecutionID: st.ExecutionID}, nil
}

// checkIdem refuses an Idempotency without a key or fingerprint.
func checkIdem(op string, idem host.Idempotency) error {
	if idem.Key == "" || idem.Fingerprint == "" {
		return fmt.Errorf("%s: the idempotency key and fingerprint must not be empty (key %q, fingerprint %q)", op, idem.Key, idem.Fingerprint)
	}
	return nil
}

// idemArgs returns the script arguments of idem (fingerprint, operation,
// ttl ms) and its record key; for nil, an empty fingerprint (no key) and a
// placeholder record key in the same slot, which the script never touches.
func idemArgs(k partKeys, id string, idem *host.Idempotency) (fp, op, ttl, key string) {
	if idem == nil {
		return "", "", "0", k.idem(id, "")
	}
	t := idem.TTL
	if t <= 0 {
		t = host.IdempotencyTTL
	}
	return idem.Fingerprint, idem.Operation, ms(t), k.idem(id, idem.Key)
}

// idemReply decodes an idem_check reply of a script (see lua/prelude.lua):
// ok is false when res is not one. A replay is returned as Replayed (with
// the recorded execution id, for a create); a key recorded for another
// operation as host.ErrIdempotencyKeyReused.
func idemReply(op, id string, idem *host.Idempotency, res string) (r host.Replay, ok bool, err error) {
	kind, rest, found := strings.Cut(res, "\n")
	if !found || idem == nil {
		return r, false, nil
	}
	switch kind {
	case "replay":
		return host.Replay{Replayed: true, ExecutionID: rest}, true, nil
	case "reused":
		return r, true, fmt.Errorf("%s %s: %w: key %q was first used for %s on this instance, with other arguments than this %s (reuse a key only to retry the very same operation; a new operation needs a new key)",
			op, id, host.ErrIdempotencyKeyReused, idem.Key, rest, idem.Operation)
	}
	return r, false, nil
}

// GetInstance returns an instance's state, or host.ErrInstanceNotFound.
func (s *Store) GetInstance(ctx context.Context, instanceID string) (*host.InstanceState, error) {
	_, k := s.partition(instanceID)
	h, err := s.rdb.HGetAll(ctx, k.instance(instanceID)).Result()
	if err != nil {
		return nil, fmt.Errorf("get instance %s: %w", instanceID, err)
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("get instance %s: %w", instanceID, host.ErrInstanceNotFound)
	}
	st, err := parseState(instanceID, h)
	if err != nil {
		return nil, fmt.Errorf("get instance %s: %w", instanceID, err)
	}
	return st, nil
}

// GetHistory returns the instance's current-generation history in order, or
// host.ErrInstanceNotFound.
func (s *Store) GetHistory(ctx context.Context, instanceID string) ([]abi.HistoryEvent, error) {
	_, h, err := s.load(ctx, "get history", instanceID)
	return h, err
}

// LoadInstance returns an instance's state and current-generation history,
// read atomically (one MULTI on the instance's slot), or
// host.ErrInstanceNotFound.
func (s *Store) LoadInstance(ctx context.Context, instanceID string) (*host.InstanceState, []abi.HistoryEvent, error) {
	return s.load(ctx, "load instance", instanceID)
}

func (s *Store) load(ctx context.Context, op, id string) (*host.InstanceState, []abi.HistoryEvent, error) {
	_, k := s.partition(id)
	var hc *redis.MapStringStringCmd
	var lc *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		hc = p.HGetAll(ctx, k.instance(id))
		lc = p.LRange(ctx, k.history(id), 0, -1)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", op, id, err)
	}
	return decodeLoaded(op, id, hc, lc)
}

// LoadInstances implements client.Store: one MULTI/EXEC per partition (ids
// of one partition share its hash slot).
func (s *Store) LoadInstances(ctx context.Context, ids []string) ([]host.LoadedInstance, error) {
	out := make([]host.LoadedInstance, len(ids))
	byPart := map[int][]int{}
	for i, id := range ids {
		if err := checkID("load instance", id); err != nil {
			out[i].Err = err
			continue
		}
		p, _ := s.partition(id)
		byPart[p] = append(byPart[p], i)
	}
	for _, idx := range byPart {
		hcs := make([]*redis.MapStringStringCmd, len(idx))
		lcs := make([]*redis.StringSliceCmd, len(idx))
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range idx {
				_, k := s.partition(ids[i])
				hcs[j] = p.HGetAll(ctx, k.instance(ids[i]))
				lcs[j] = p.LRange(ctx, k.history(ids[i]), 0, -1)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("load %d instances: %w", len(idx), err)
		}
		for j, i := range idx {
			out[i].State, out[i].History, out[i].Err = decodeLoaded("load instance", ids[i], hcs[j], lcs[j])
		}
	}
	return out, nil
}

func decodeLoaded(op, id string, hc *redis.MapStringStringCmd, lc *redis.StringSliceCmd) (*host.InstanceState, []abi.HistoryEvent, error) {
	if len(hc.Val()) == 0 {
		return nil, nil, fmt.Errorf("%s %s: %w", op, id, host.ErrInstanceNotFound)
	}
	st, err := parseState(id, hc.Val())
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", op, id, err)
	}
	raw := lc.Val()
	hist := make([]abi.HistoryEvent, len(raw))
	for i, r := range raw {
		if hist[i], err = abi.DecodeEvent([]byte(r)); err != nil {
			return nil, nil, fmt.Errorf("%s %s: history event %d: %w", op, id, i, err)
		}
	}
	return st, hist, nil
}

// SendToInstance enqueues msg on the control stream of msg.InstanceID's
// partition if the instance exists and is not terminal; otherwise it returns
// host.ErrInstanceNotFound or host.ErrInstanceFinished and writes nothing.
// When msg.MessageID is set, a second send of the same id (within
// Options.DedupTTL) succeeds without enqueuing again.
func (s *Store) SendToInstance(ctx context.Context, msg host.ControlMessage) error {
	_, err := s.sendToInstance(ctx, msg, nil)
	return err
}

// SendToInstanceOnce implements host.IdempotentStore: SendToInstance that
// records idem with msg.InstanceID in the same script.
func (s *Store) SendToInstanceOnce(ctx context.Context, msg host.ControlMessage, idem host.Idempotency) (host.Replay, error) {
	if err := checkIdem("send to instance", idem); err != nil {
		return host.Replay{}, err
	}
	return s.sendToInstance(ctx, msg, &idem)
}

func (s *Store) sendToInstance(ctx context.Context, msg host.ControlMessage, idem *host.Idempotency) (host.Replay, error) {
	const op = "send to instance"
	id := msg.InstanceID
	if err := checkID(op, id); err != nil {
		return host.Replay{}, err
	}
	_, k := s.partition(id)
	fp, iop, ittl, ikey := idemArgs(k, id, idem)
	res, err := scriptSend.Run(ctx, s.rdb, []string{k.instance(id), k.ctl(), k.dedup(msg.MessageID), k.dedupSet(id), ikey},
		encodeMsg(&msg), msg.MessageID, ms(s.opts.DedupTTL), fp, iop, ittl).Text()
	if err != nil {
		return host.Replay{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	if r, ok, err := idemReply(op, id, idem, res); ok {
		return r, err
	}
	switch res {
	case "notfound":
		return host.Replay{}, fmt.Errorf("%s %s: %w", op, id, host.ErrInstanceNotFound)
	case "finished":
		return host.Replay{}, fmt.Errorf("%s %s: %w", op, id, host.ErrInstanceFinished)
	}
	return host.Replay{}, nil
}

// isNil reports whether err is redis.Nil (empty reply).
func isNil(err error) bool { return errors.Is(err, redis.Nil) }

// RewindInstance enqueues msg, an ExecutionRewound event, on the control
// stream of msg.InstanceID's partition if the instance is Failed (one script;
// the status is left for the worker to change). Otherwise it writes nothing
// and returns host.ErrInstanceNotFound, or host.ErrNotFailed naming the
// status. When msg.MessageID is set, a second rewind with the same id (within
// Options.DedupTTL) succeeds without enqueuing again.
func (s *Store) RewindInstance(ctx context.Context, msg host.ControlMessage) error {
	_, err := s.rewindInstance(ctx, msg, nil)
	return err
}

// RewindInstanceOnce implements host.IdempotentStore: RewindInstance that
// records idem with msg.InstanceID in the same script.
func (s *Store) RewindInstanceOnce(ctx context.Context, msg host.ControlMessage, idem host.Idempotency) (host.Replay, error) {
	if err := checkIdem("rewind instance", idem); err != nil {
		return host.Replay{}, err
	}
	return s.rewindInstance(ctx, msg, &idem)
}

func (s *Store) rewindInstance(ctx context.Context, msg host.ControlMessage, idem *host.Idempotency) (host.Replay, error) {
	const op = "rewind instance"
	id := msg.InstanceID
	if err := checkID(op, id); err != nil {
		return host.Replay{}, err
	}
	if msg.Event.Type != abi.EventExecutionRewound {
		return host.Replay{}, fmt.Errorf("%s %s: the message carries a %s event, not %s", op, id, msg.Event.Type, abi.EventExecutionRewound)
	}
	_, k := s.partition(id)
	fp, iop, ittl, ikey := idemArgs(k, id, idem)
	res, err := scriptRewind.Run(ctx, s.rdb, []string{k.instance(id), k.ctl(), k.dedup(msg.MessageID), k.dedupSet(id), ikey},
		encodeMsg(&msg), msg.MessageID, ms(s.opts.DedupTTL), fp, iop, ittl).Text()
	if err != nil {
		return host.Replay{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	if r, ok, err := idemReply(op, id, idem, res); ok {
		return r, err
	}
	switch {
	case res == "notfound":
		return host.Replay{}, fmt.Errorf("%s %s: %w", op, id, host.ErrInstanceNotFound)
	case strings.HasPrefix(res, "st:"):
		return host.Replay{}, fmt.Errorf("%s %s: %w: it is %s", op, id, host.ErrNotFailed, strings.TrimPrefix(res, "st:"))
	}
	return host.Replay{}, nil
}
