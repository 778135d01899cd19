package abi

// Failure types (FailureDetails.Type) the host gives. Clients and retry
// handlers match on them; their meaning never changes. Guests choose their
// own types for the failures they report.
const (
	// FailureGuestError: the guest returned an error, panicked or broke the
	// ABI (e.g. an activity that returned without reporting a result).
	FailureGuestError = "GuestError"
	// FailureHTTP: a durable HTTP request (ActivityHTTP) was refused (the
	// module's allowlist), timed out or failed on the network.
	FailureHTTP = "HTTPError"
	// FailureGuestTrap: the guest trapped, ran past its deadline or its
	// memory limit, or failed to instantiate (code DW2002).
	FailureGuestTrap = "GuestTrap"
	// FailureStuck: the orchestrator blocked outside the SDK's await
	// (code DW2001).
	FailureStuck = "Stuck"
	// FailureLimitExceeded: a payload, history or nesting limit was hit
	// (code DW2004).
	FailureLimitExceeded = "LimitExceeded"
	// FailureInvalidJSON: a payload the guest passed is not valid JSON
	// (code DW2005).
	FailureInvalidJSON = "InvalidJSON"
	// FailureNondeterminism: the orchestrator's calls no longer match its
	// history (codes DW1001–DW1003).
	FailureNondeterminism = "Nondeterminism"
	// FailureUnknownOrchestrator: the module registers no orchestrator of
	// that name (code DW2003).
	FailureUnknownOrchestrator = "UnknownOrchestrator"
	// FailureUnknownActivity: the module registers no activity of that name.
	FailureUnknownActivity = "UnknownActivity"
	// FailurePoisonMessage: an activity was delivered too many times without
	// completing and was dead-lettered.
	FailurePoisonMessage = "PoisonMessage"
	// FailureQuarantined: a message for the instance could not be processed
	// and was quarantined (code DW3001).
	FailureQuarantined = "Quarantined"
	// FailureSubOrchestrationMissing: a rewound instance's sub-orchestration
	// no longer exists (purged).
	FailureSubOrchestrationMissing = "SubOrchestrationMissing"
	// FailureSubOrchestrationPrefix + a runtime status ("Terminated") is the
	// type of a sub-orchestration that ended without completing and without
	// failure details of its own.
	FailureSubOrchestrationPrefix = "SubOrchestration"
)
