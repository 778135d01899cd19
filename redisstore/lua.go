package redisstore

import (
	"context"
	"embed"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Lua scripts. Each script is one file, lua/<name>.lua, whose comment header
// documents its KEYS, ARGV and reply; this file registers every one of them
// (register) and is the only place that builds a *redis.Script. Rules every
// script follows:
//
//   - All checks (lease epoch, existence, commit id, de-dup) come before the
//     first write: a Lua runtime error does not roll back earlier writes.
//   - All keys are passed in KEYS and share one hash tag (see keys.go); the
//     status index keys are KEYS[n] .. status and, in the commit and
//     fire-timers scripts, the per-instance timer index keys are
//     KEYS[n] .. instance id.
//   - Times that scripts compare (lease expiry, worker liveness) come from the
//     server's TIME, one clock for all workers. Timer due times come from the
//     caller (FireDueTimers' now).
//   - Values are passed as flat ARGV strings (sections of "count, items...")
//     rather than one JSON argument: history events are already JSON, and
//     flat ARGV avoids escaping them a second time and cjson's 14-digit
//     number formatting.
//   - unpack() is chunked (Redis' Lua has a C stack limit of ~8000 values).
//   - The scripts must run on real Redis 7 and on miniredis (gopher-lua).

// luaFiles holds the scripts and the prelude.
//
//go:embed lua/*.lua
var luaFiles embed.FS

// preludeFile is the file in lua/ that is prepended to every script (shared
// helpers: terminal, chunked, now_ms, fieldOr, idem_check, idem_record,
// dedup_track, dedup_retire, reindex, digidx); it is not a script itself.
const preludeFile = "prelude.lua"

// luaPrelude is the text of lua/prelude.lua.
var luaPrelude = readLua(preludeFile)

// luaScript is one registered script: its name (the file lua/<name>.lua),
// its source (scriptSource of that file) and the script built from it.
type luaScript struct {
	name   string
	src    string
	script *redis.Script
}

// scripts is the registry: every script of the store, each exactly once, in
// registration order. preloadScripts loads what it lists; TestScriptRegistry
// checks that it matches the files in lua/.
var scripts []luaScript

// The scripts. The contract of each (KEYS, ARGV, reply) is the comment header
// of its file.
var (
	// scriptFindFunction looks up the app that registers a function and its
	// app record (lua/find_function.lua).
	scriptFindFunction = register("find_function")
	// scriptCreate creates an instance and enqueues its start message
	// (lua/create.lua).
	scriptCreate = register("create")
	// scriptSend enqueues a message for an existing, non-terminal instance
	// (lua/send.lua).
	scriptSend = register("send")
	// scriptDeliver delivers one outbox message on the target partition
	// (lua/deliver.lua).
	scriptDeliver = register("deliver")
	// scriptCommit applies one orchestration step (lua/commit.lua).
	scriptCommit = register("commit")
	// scriptAckControl acks and deletes control messages, fenced by epoch
	// (lua/ack_control.lua).
	scriptAckControl = register("ack_control")
	// scriptOutboxDel deletes delivered outbox entries, fenced by epoch
	// (lua/outbox_del.lua).
	scriptOutboxDel = register("outbox_del")
	// scriptCheckEpoch checks a partition lease's epoch
	// (lua/check_epoch.lua).
	scriptCheckEpoch = register("check_epoch")
	// scriptFireTimers moves due timers into the control stream
	// (lua/fire_timers.lua).
	scriptFireTimers = register("fire_timers")
	// scriptCompleteActivity posts an activity result and retires the item
	// (lua/complete_activity.lua).
	scriptCompleteActivity = register("complete_activity")
	// scriptAcquireLease takes or renews a partition lease
	// (lua/acquire_lease.lua).
	scriptAcquireLease = register("acquire_lease")
	// scriptRenewLease extends a lease held by owner at epoch
	// (lua/renew_lease.lua).
	scriptRenewLease = register("renew_lease")
	// scriptReleaseLease frees a lease held by owner at epoch and makes that
	// epoch stale (lua/release_lease.lua).
	scriptReleaseLease = register("release_lease")
	// scriptHeartbeat records a live worker and returns all live workers
	// (lua/heartbeat.lua).
	scriptHeartbeat = register("heartbeat")
	// scriptTouchActivity resets a held activity item's idle time
	// (lua/touch_activity.lua).
	scriptTouchActivity = register("touch_activity")
	// scriptReclaim takes over the pending entries of dead workers'
	// consumers and removes the empty ones (lua/reclaim.lua).
	scriptReclaim = register("reclaim")
	// scriptPutModule stores a module and points an app at it
	// (lua/put_module.lua).
	scriptPutModule = register("put_module")
	// scriptDeadLetter parks an undecodable stream entry in the partition's
	// dead-letter stream (lua/dead_letter.lua).
	scriptDeadLetter = register("dead_letter")
	// scriptRewind enqueues a rewind message for a Failed instance
	// (lua/rewind.lua).
	scriptRewind = register("rewind")
	// scriptIndexRange reads several index sorted sets of one partition at
	// one instant (lua/index_range.lua).
	scriptIndexRange = register("index_range")
	// scriptPurge purges instances of one partition (lua/purge.lua).
	scriptPurge = register("purge")
	// scriptDeadLetterActivity dead-letters an activity item that is still
	// pending and posts its failure result (lua/dead_letter_activity.lua).
	scriptDeadLetterActivity = register("dead_letter_activity")
	// scriptQuarantineControl parks control messages that could not be
	// processed as dead letters, fenced by epoch
	// (lua/quarantine_control.lua).
	scriptQuarantineControl = register("quarantine_control")
	// scriptRequeueControl moves a control dead letter back to its
	// partition's control stream (lua/requeue_control.lua).
	scriptRequeueControl = register("requeue_control")
	// scriptRemoveApp removes an app record and its function mappings, and
	// optionally its unused module (lua/remove_app.lua).
	scriptRemoveApp = register("remove_app")
	// scriptRemoveModule removes a module no app points at
	// (lua/remove_module.lua).
	scriptRemoveModule = register("remove_module")
)

// register builds the script of lua/<name>.lua (scriptSource) and adds it to
// the registry. It panics when the file is missing or name is already
// registered: both are programming errors, caught at package initialization.
func register(name string) *redis.Script {
	if name+".lua" == preludeFile {
		panic("redisstore: the Lua prelude is not a script")
	}
	for _, sc := range scripts {
		if sc.name == name {
			panic("redisstore: Lua script " + name + " registered twice")
		}
	}
	src := scriptSource(readLua(name + ".lua"))
	s := redis.NewScript(src)
	scripts = append(scripts, luaScript{name: name, src: src, script: s})
	return s
}

// readLua returns the text of the embedded file lua/<file>, panicking when
// there is none.
func readLua(file string) string {
	b, err := luaFiles.ReadFile("lua/" + file)
	if err != nil {
		panic("redisstore: no embedded Lua file: " + err.Error())
	}
	return string(b)
}

// scriptSource returns the source of the script whose file holds body: the
// prelude followed by body, with $GROUP (the consumer group, keys.go: group)
// and $GRACE (dedupGrace in ms) substituted in both.
func scriptSource(body string) string {
	return strings.NewReplacer("$GROUP", group, "$GRACE", strconv.FormatInt(dedupGrace.Milliseconds(), 10)).Replace(luaPrelude + body)
}

// preloadScripts loads every registered script (SCRIPT LOAD; on every master
// of a cluster) so that the first pipelined EVALSHA does not cost a NOSCRIPT
// round trip. Failures are ignored: Script.Run and runPipelined re-run a
// NOSCRIPT call with EVAL.
func preloadScripts(ctx context.Context, c redis.Scripter) {
	for _, sc := range scripts {
		_ = sc.script.Load(ctx, c).Err()
	}
}

// isNoScript reports whether err is a NOSCRIPT error reply.
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
