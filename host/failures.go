package host

// MaxNestingDepth is how deep sub-orchestrations may nest. Scheduling one
// deeper fails that sub-orchestration task with LimitExceeded [DW2004]
// instead of creating it.
const MaxNestingDepth = 64

// MigrateEventName is the name of the GenericEvent that asks the worker
// owning an instance to move it to another module digest (the message's
// input is the JSON string of the digest), and of the GenericEvent recorded
// in history when it did (input {"from":…,"to":…}).
const MigrateEventName = "durablewasm.migrate"
