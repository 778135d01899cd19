package host

// Failure types the host gives (abi.FailureDetails.Type). Users match on
// them; their meaning never changes.
const (
	// FailureGuestError: the guest returned an error or panicked.
	FailureGuestError = "GuestError"
	// FailureLimitExceeded: a payload, history or nesting limit was hit
	// (code replay.CodeLimit).
	FailureLimitExceeded = "LimitExceeded"
	// FailurePoisonMessage: an activity was delivered too many times
	// without completing and was dead-lettered.
	FailurePoisonMessage = "PoisonMessage"
	// FailureSubOrchestrationMissing: a rewound instance's sub-orchestration
	// no longer exists (purged).
	FailureSubOrchestrationMissing = "SubOrchestrationMissing"
	// FailureSubOrchestrationPrefix + a runtime status ("Terminated") is the
	// type of a sub-orchestration that ended without completing and without
	// failure details of its own.
	FailureSubOrchestrationPrefix = "SubOrchestration"
)

// FailureQuarantined is the failure type of an instance failed because one of
// its messages was quarantined.
const FailureQuarantined = "Quarantined"

// MaxNestingDepth is how deep sub-orchestrations may nest. Scheduling one
// deeper fails that sub-orchestration task with LimitExceeded [DW2004]
// instead of creating it.
const MaxNestingDepth = 64

// MigrateEventName is the name of the GenericEvent that asks the worker
// owning an instance to move it to another module digest (the message's
// input is the JSON string of the digest), and of the GenericEvent recorded
// in history when it did (input {"from":…,"to":…}).
const MigrateEventName = "durablewasm.migrate"
