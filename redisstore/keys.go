package redisstore

// Key layout. Every Redis key this package reads or writes is named in this
// file; the Lua scripts receive them as KEYS (the exceptions: the runtime
// status index keys are built in Lua as KEYS[idx prefix] .. status, because
// the old status is only known inside the script, and the fire-timers and
// commit scripts build timer index keys as KEYS[tm prefix] .. instance id,
// because the owner of a fired timer is only known inside the script; the
// scripts that retire an instance's dedup markers build them as
// KEYS[dedup prefix] .. message id from the members of its dm: set, and the
// deliver script builds the dm: set of its target from the prefix of the
// instance key — each prefix carries the partition's hash tag, so a derived
// key is in the same slot).
//
// All keys start with "dw:". Hub-level keys carry the hash tag {<hub>}, keys
// of partition p carry {<hub>:<p>}. A script only ever touches the keys of one
// tag, so every script is single-slot and runs unchanged on Redis Cluster.
//
// Hub-level ({H} = {<hub>}):
//
//	dw:{H}:meta            hash   partitions (fixed at creation), created (unix ms)
//	dw:{H}:workers         zset   worker id -> expiry (unix ms, Redis TIME): the
//	                              workers that own partitions (assignment)
//	dw:{H}:alive           zset   worker id -> expiry: every running worker,
//	                              activity-only ones too (a consumer not in it
//	                              is dead: its pending entries are reclaimed)
//	dw:{H}:mod:<digest>    string module bytes, written once (content-addressed)
//	dw:{H}:apps            hash   app name -> AppRecord JSON
//	dw:{H}:modset:<digest> string host.AppSettings JSON of that module
//	dw:{H}:funcs           hash   function name -> app name
//	dw:{H}:modules         zset   digest -> time first stored (unix ms), every stored module
//
// Partition p ({P} = {<hub>:<p>}):
//
//	dw:{P}:lease           hash   owner, epoch (fencing token), exp (unix ms, Redis TIME)
//	dw:{P}:ctl             stream control messages, consumer group "dw", field m = message
//	dw:{P}:act             stream activity work items, consumer group "dw", field a = item
//	dw:{P}:timers          zset   member = encoded control message, score = fire time
//	                              (unix ms, rounded up so a timer never fires early)
//	dw:{P}:outbox          stream messages for other partitions, field o = envelope
//	dw:{P}:dead            stream dead letters: entries that could not be decoded,
//	                              fields src (stream), id, field, raw, reason; and
//	                              activity items given up after too many deliveries,
//	                              the same fields plus kind=activity, i (instance),
//	                              x (execution), t (task id), n (activity), in
//	                              (input), dl (deliveries)
//	dw:{P}:dedup:<msgid>   string delivered message id marker, PX = Options.DedupTTL
//	dw:{P}:dm:<id>         zset   the message ids whose dedup markers were set for
//	                              messages delivered to instance <id>, scored by
//	                              delivery time (unix ms, Redis TIME); PX =
//	                              Options.DedupTTL, renewed on each add, and
//	                              members older than that are dropped on each add
//	                              (their markers have expired). Kept by the
//	                              deliver, send and rewind scripts (deliver
//	                              builds it as the prefix of KEYS[instance] ..
//	                              "dm:" .. id); read by purge and by a create
//	                              that replaces a terminal instance (below)
//	dw:{P}:idem:<h>        string an applied client operation's idempotency record,
//	                              "<fingerprint>\n<operation>\n<result>", PX =
//	                              host.Idempotency.TTL (the client's: 24 h,
//	                              host.IdempotencyTTL, for a caller's key; 10
//	                              minutes for one it generated); <h> is the hex
//	                              SHA-256 of len(id) ":" id key, so the record
//	                              is scoped to the target instance <id> and lives
//	                              in its slot. It is not removed by purge: a
//	                              retried purge (or any operation) within the
//	                              TTL must still find it
//	dw:{P}:done            pub/sub channel (a shard channel on a cluster): the ids
//	                              of instances that became terminal (notify.go)
//	dw:{P}:idx:created     zset   instance id -> created time (unix ms)
//	dw:{P}:idx:st:<Status> zset   instance id -> created time, one per runtime status
//	dw:{P}:idx:d:<digest>  set    ids of the non-terminal (Pending, Running, Suspended,
//	                              ContinuedAsNew) instances on module <digest>;
//	                              kept by the create, deliver, commit and purge
//	                              scripts (built in Lua as KEYS[n] .. digest)
//	dw:{P}:i:<id>          hash   instance state (fields below)
//	dw:{P}:h:<id>          list   history, one abi.EncodeEvent JSON per element
//	dw:{P}:tm:<id>         set    the members of dw:{P}:timers whose message is for
//	                              instance <id> (added by Commit, removed when the
//	                              timer fires or the instance is purged), so a purge
//	                              finds an instance's timers without scanning
//
// Dedup markers and purge. A marker makes a redelivered outbox message (the
// sender's worker died between delivering and deleting its outbox entry, and
// the next owner delivers it again) a no-op: without it a redelivered
// sub-orchestration start would re-create a finished child, and an event
// would be fed twice. Markers used to outlive their instance by DedupTTL
// (7 days), so an orchestrator that keeps starting sub-orchestrations and
// purging them filled Redis with them. Purge (and a create that replaces a
// terminal instance, which discards that generation just as purge does) now
// retires the instance's markers through dw:{P}:dm:<id>: markers set more
// than dedupGrace (10 minutes, at most DedupTTL) ago are deleted at once;
// younger ones are kept but expire within what is left of the grace. The
// trade-off: a redelivery can only come within seconds of the delivery (a
// lease TTL, default 10 s, plus a delivery round), so the grace keeps the
// protection where it matters while bounding what a purged instance leaves
// to at most 10 minutes of its deliveries. A redelivery of a message older
// than the grace after its target was purged would be applied again (a
// start re-creates the instance); that needs an outbox entry undelivered for
// 10 minutes, i.e. a partition without an owner for that long, and the
// purge of its target in that time.
//
// Instance hash fields: n name, x execution id, s status, in input, out
// output, cs custom status, f failure (FailureDetails JSON or ""), c created
// (unix ns), u updated (unix ns), app, d digest, pi parent instance id, pt
// parent task id, hl history length, lc last applied commit id, dp nesting
// depth (sub-orchestrations only).
//
// Why user-supplied instance ids (and message ids, digests, app names) are
// safe inside key names: they are always the LAST component of a key and
// always come after the hash tag. Redis Cluster hashes the text between the
// first "{" and the first "}" after it; that is always our tag, because the
// hub name is validated to letters and digits and the partition is a number,
// so a "{" or "}" in an id can neither start nor end the tag and cannot move
// the key to another slot. Each key kind has a distinct fixed prefix ending in
// ":" before the id, so two different ids (or two kinds) never produce the
// same key. Ids are never used in SCAN/KEYS patterns; only the validated hub
// name is (see hubPattern).

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/durablewasm/durablewasm/abi"
)

// dedupGrace is how long a purged instance's dedup markers are kept (at most
// Options.DedupTTL): see "Dedup markers and purge" above.
const dedupGrace = 10 * time.Minute

// group is the consumer group name of the control and activity streams.
const group = "dw"

// Stream entry field names.
const (
	fieldMsg    = "m" // control stream: encoded ControlMessage
	fieldItem   = "a" // activity stream: encoded ActivityItem
	fieldOutbox = "o" // outbox stream: encoded outbox envelope
)

type hubKeys struct {
	prefix string // "dw:{H}:"
}

func newHubKeys(hub string) hubKeys { return hubKeys{prefix: "dw:{" + hub + "}:"} }

func (h hubKeys) meta() string                { return h.prefix + "meta" }
func (h hubKeys) workers() string             { return h.prefix + "workers" }
func (h hubKeys) alive() string               { return h.prefix + "alive" }
func (h hubKeys) module(digest string) string { return h.prefix + "mod:" + digest }
func (h hubKeys) apps() string                { return h.prefix + "apps" }
func (h hubKeys) funcs() string               { return h.prefix + "funcs" }
func (h hubKeys) modules() string             { return h.prefix + "modules" }
func (h hubKeys) moduleSettings(digest string) string {
	return h.prefix + "modset:" + digest
}

// partKeys names the keys of one partition.
type partKeys struct {
	prefix string // "dw:{H:p}:"
}

func newPartKeys(hub string, p int) partKeys {
	return partKeys{prefix: "dw:{" + hub + ":" + strconv.Itoa(p) + "}:"}
}

func (k partKeys) lease() string                 { return k.prefix + "lease" }
func (k partKeys) ctl() string                   { return k.prefix + "ctl" }
func (k partKeys) act() string                   { return k.prefix + "act" }
func (k partKeys) timers() string                { return k.prefix + "timers" }
func (k partKeys) outbox() string                { return k.prefix + "outbox" }
func (k partKeys) done() string                  { return k.prefix + "done" }
func (k partKeys) dead() string                  { return k.prefix + "dead" }
func (k partKeys) dedup(messageID string) string { return k.prefix + "dedup:" + messageID }
func (k partKeys) idxCreated() string            { return k.prefix + "idx:created" }

// dedupPrefix is the prefix of the dedup marker keys; scripts append the
// message id.
func (k partKeys) dedupPrefix() string { return k.prefix + "dedup:" }

// dedupSet is the set of the dedup markers of messages delivered to
// instance id.
func (k partKeys) dedupSet(id string) string { return k.prefix + "dm:" + id }

// idem is the idempotency record of key for operations on instance id. The
// length prefix keeps (id, key) pairs apart ("a:" + "b" vs "a" + ":b"); the
// hash keeps the key name short whatever the key.
func (k partKeys) idem(id, key string) string {
	h := sha256.Sum256([]byte(strconv.Itoa(len(id)) + ":" + id + key))
	return k.prefix + "idem:" + hex.EncodeToString(h[:])
}

// idxStatusPrefix is the prefix of the per-status index keys; scripts append
// the status name.
func (k partKeys) idxStatusPrefix() string { return k.prefix + "idx:st:" }

// idxDigestPrefix is the prefix of the per-digest index keys; scripts
// append the digest.
func (k partKeys) idxDigestPrefix() string { return k.prefix + "idx:d:" }

// idxDigest is the digest index of digest.
func (k partKeys) idxDigest(digest string) string { return k.idxDigestPrefix() + digest }

// idxStatus is the index of instances in status s.
func (k partKeys) idxStatus(s abi.RuntimeStatus) string { return k.idxStatusPrefix() + string(s) }
func (k partKeys) instance(id string) string            { return k.prefix + "i:" + id }
func (k partKeys) history(id string) string             { return k.prefix + "h:" + id }

// timerIndexPrefix is the prefix of the per-instance timer index keys;
// scripts append the owner id (see timerOwner).
func (k partKeys) timerIndexPrefix() string { return k.prefix + "tm:" }

// timerIndex is the timer index of instance id.
func (k partKeys) timerIndex(id string) string { return k.timerIndexPrefix() + timerOwner(id) }

// hubPattern is a SCAN pattern matching every key of the hub (hub-level and
// all partitions). It is safe because hub names are letters and digits only.
func hubPattern(hub string) []string {
	return []string{"dw:{" + hub + "}:*", "dw:{" + hub + ":*"}
}
