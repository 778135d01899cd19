package durable

import (
	"errors"
	"fmt"

	"github.com/durablewasm/durablewasm/abi"
)

const (
	kindOrchestrator = abi.KindOrchestrator
	kindActivity     = abi.KindActivity
)

// ErrTimeout is returned (wrapped) by Await on a task created by
// WaitForExternalEventWithTimeout when the timer fired before the event
// arrived. Test for it with errors.Is.
var ErrTimeout = errors.New("durable: timed out")

// TaskFailedError is returned by Await when an activity or sub-orchestration
// failed (after all retries, if any). Details is the failure reported by the
// host; it is never nil.
type TaskFailedError struct {
	// Kind is "activity" or "sub-orchestration".
	Kind string
	// Name is the activity or orchestrator name.
	Name string
	// TaskID is the host task id of the (last) attempt.
	TaskID int32
	// Details describes the failure as the failed function reported it.
	Details *abi.FailureDetails
}

// Error returns "<kind> <name> (task <id>) failed: <Type>: <Message>".
func (e *TaskFailedError) Error() string {
	return fmt.Sprintf("%s %s (task %d) failed: %s", e.Kind, e.Name, e.TaskID, e.Details.Error())
}

// HostError is the error (or panic value, for calls that cannot report one)
// produced when a host function returns an unexpected negative code, such as
// abi.ErrBadArgument. It names the host function.
type HostError struct {
	// Func is the abi.Import* name of the host function.
	Func string
	// Code is the negative abi.Err* code it returned.
	Code int64
}

// Error returns "durable: host function <func> failed with code <code> (<name>)".
func (e *HostError) Error() string {
	return fmt.Sprintf("durable: host function %s failed with code %d (%s)", e.Func, e.Code, codeName(e.Code))
}

func codeName(c int64) string {
	switch c {
	case abi.ErrNotInStep:
		return "not in step"
	case abi.ErrNondeterminism:
		return "nondeterminism"
	case abi.ErrBadArgument:
		return "bad argument"
	case abi.ErrUnknownTask:
		return "unknown task"
	case abi.ErrLimit:
		return "limit exceeded"
	case abi.ErrInvalidJSON:
		return "not valid JSON"
	}
	return "unknown code"
}

// abortSignal is the panic value used to unwind an orchestration goroutine
// that must stop at once (nondeterminism, limit, drop, stuck). It is
// recovered at the goroutine's top and never reported to the host.
type abortSignal struct{ reason string }

var (
	abortNondeterminism = &abortSignal{"nondeterminism"}
	abortLimit          = &abortSignal{"limit"}
	abortInvalidJSON    = &abortSignal{"invalid JSON"}
	abortDropped        = &abortSignal{"dropped"}
	abortDead           = &abortSignal{"dead"}
)
