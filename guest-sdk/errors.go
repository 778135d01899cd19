package durable

import (
	"encoding/json"
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
	Details *FailureDetails
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

// ErrCanceled is returned (wrapped) by Await on a task that was canceled
// with OrchestrationContext.Cancel before it completed. Test for it with
// errors.Is.
var ErrCanceled = errors.New("durable: task canceled")

// FailureDetails describes a failure as it travels between guest, host and
// clients (abi/README.md, section 8): the Details of a TaskFailedError.
type FailureDetails = abi.FailureDetails

// ApplicationError is an error with a type that an activity or orchestrator
// returns to say what went wrong in terms a caller can match: it becomes
// the failure's FailureDetails.Type (instead of "ActivityError" or
// "OrchestratorError"), with Details encoded as JSON in
// FailureDetails.Details and NonRetryable in FailureDetails.NonRetryable. It
// may be wrapped (fmt.Errorf("...: %w", appErr)); the outermost
// ApplicationError in the chain decides the type, details and marker, and
// the message is the whole error's text.
//
// In the calling orchestration the failure arrives as a *TaskFailedError:
// match it with ErrorType, IsErrorType or errors.As, and decode the details
// with (*TaskFailedError).DecodeDetails.
type ApplicationError struct {
	// Type is the failure type, e.g. "PaymentDeclined". Empty means the
	// default ("ActivityError" or "OrchestratorError").
	Type string
	// Message is the error's text.
	Message string
	// Details is encoded with json.Marshal into FailureDetails.Details; nil
	// means none. A value that cannot be encoded is replaced by a JSON
	// string describing the encoding error.
	Details any
	// NonRetryable tells retry policies (RetryPolicy) not to retry the
	// failure.
	NonRetryable bool
	// Cause is the wrapped error, if any (see Unwrap).
	Cause error
}

// NewApplicationError returns an *ApplicationError of type typ with message
// msg and details (nil for none).
func NewApplicationError(typ, msg string, details any) *ApplicationError {
	return &ApplicationError{Type: typ, Message: msg, Details: details}
}

// NonRetryableError returns err marked non-retryable: a failure that
// RetryPolicy does not retry. An *ApplicationError in err's chain keeps its
// type and details; other errors get the default type. NonRetryableError(nil)
// is nil.
func NonRetryableError(err error) error {
	if err == nil {
		return nil
	}
	var ae *ApplicationError
	if errors.As(err, &ae) {
		c := *ae
		c.NonRetryable = true
		c.Message = err.Error()
		c.Cause = err
		return &c
	}
	return &ApplicationError{Message: err.Error(), NonRetryable: true, Cause: err}
}

// Error returns Message, or Type when Message is empty, or the cause's text.
func (e *ApplicationError) Error() string {
	switch {
	case e.Message != "":
		return e.Message
	case e.Type != "":
		return e.Type
	case e.Cause != nil:
		return e.Cause.Error()
	}
	return "application error"
}

// Unwrap returns Cause.
func (e *ApplicationError) Unwrap() error { return e.Cause }

// ErrorType returns the failure type of err: the FailureDetails.Type of the
// first *TaskFailedError in its chain (the failed activity's or
// sub-orchestration's type), else the Type of the first *ApplicationError,
// else "".
func ErrorType(err error) string {
	var tf *TaskFailedError
	if errors.As(err, &tf) && tf.Details != nil {
		return tf.Details.Type
	}
	var ae *ApplicationError
	if errors.As(err, &ae) {
		return ae.Type
	}
	return ""
}

// IsErrorType reports whether ErrorType(err) is one of types.
func IsErrorType(err error, types ...string) bool {
	t := ErrorType(err)
	for _, want := range types {
		if t == want {
			return true
		}
	}
	return false
}

// IsNonRetryable reports whether err is marked non-retryable: a
// *TaskFailedError whose failure has NonRetryable set, or an
// *ApplicationError with NonRetryable.
func IsNonRetryable(err error) bool {
	var tf *TaskFailedError
	if errors.As(err, &tf) && tf.Details != nil {
		return tf.Details.NonRetryable
	}
	var ae *ApplicationError
	return errors.As(err, &ae) && ae.NonRetryable
}

// Type returns the failure type (Details.Type), e.g. "ActivityError" or the
// type of the ApplicationError the activity returned.
func (e *TaskFailedError) Type() string {
	if e.Details == nil {
		return ""
	}
	return e.Details.Type
}

// DecodeDetails decodes the JSON details of the failure (the Details of the
// ApplicationError the activity or orchestrator returned) into v. It returns
// an error when the failure has no details.
func (e *TaskFailedError) DecodeDetails(v any) error {
	if e.Details == nil || len(e.Details.Details) == 0 {
		return fmt.Errorf("%s %s failed without details", e.Kind, e.Name)
	}
	return json.Unmarshal(e.Details.Details, v)
}
