// Package durable is the Go guest SDK of durablewasm: it lets orchestrator and
// activity functions written in Go be compiled to WebAssembly (GOOS=wasip1,
// GOARCH=wasm, -buildmode=c-shared) and run by the durablewasm host.
//
// A guest is a main package with an empty main function whose init functions
// register the guest's functions:
//
//	func init() {
//		durable.RegisterOrchestrator("Hello", durable.Orchestrator(func(ctx *durable.OrchestrationContext, city string) (string, error) {
//			return durable.CallActivity[string](ctx, "SayHello", city)
//		}))
//		durable.RegisterActivity("SayHello", durable.Activity(func(ctx *durable.ActivityContext, name string) (string, error) {
//			return "Hello " + name + "!", nil
//		}))
//	}
//
//	func main() {}
//
// in a module of its own that requires github.com/durablewasm/durablewasm/guest-sdk
// (which requires only github.com/durablewasm/durablewasm/abi; see the
// README's "Writing orchestrations in Go"), built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o guest.wasm .
//
// # Execution model
//
// One Wasm instance multiplexes many orchestrations. Each orchestration runs
// in its own coroutine (iter.Pull); the export that starts or resumes it
// switches into the coroutine, which runs until it awaits an unresolved task
// (it parks, and stays alive between export calls) or returns. A user
// function that blocks on anything but a Task's Await (a bare select{}, a
// channel, a mutex, a sleep) is reported to the host as stuck after
// StepDeadline: the instance exits (abi.ExitStuck), the host fails that
// orchestration with type Stuck and replays the instance's others elsewhere.
//
// Activities run in coroutines too. One whose HTTP request (ActivityContext.HTTP)
// is in flight is parked: the export returns abi.StatusParked, the host makes
// the request while other activities run in the same instance, and resumes
// the activity with the response (abi/README.md, 11.1). An orchestrator calls
// HTTP endpoints without an activity through OrchestrationContext.CallHTTP,
// which the host performs and records in history (durable HTTP).
//
// # Determinism
//
// An orchestrator may be replayed from its history at any time (after a
// worker restart, an eviction or a move), and must then make the same calls
// in the same order. Use CurrentUTCDateTime and NewGUID instead of wall
// clocks and random ids, do not start goroutines, do not perform I/O, and
// do not iterate over maps to decide what to schedule. Activities have no
// such restrictions.
//
// # Typed results and errors
//
// Task.Await decodes into a value; the generic Await, CallActivity,
// CallSubOrchestrator, WaitForExternalEvent and Input return typed values.
// An activity or orchestrator fails with a typed failure by returning an
// *ApplicationError (its Type, Details and NonRetryable travel in
// FailureDetails); the caller matches the *TaskFailedError with ErrorType,
// IsErrorType or IsNonRetryable, and RetryPolicy never retries a failure
// marked non-retryable.
//
// Package durabletest runs the same orchestration code natively, without
// Wasm, against an in-process fake host with a fake clock.
package durable
