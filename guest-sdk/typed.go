package durable

import "time"

// Await waits for t and returns its result decoded into a T (see
// Task.Await):
//
//	greeting, err := durable.Await[string](ctx.CallActivity("SayHello", "Tokyo"))
//	all, err := durable.Await[[]string](ctx.WhenAll(tasks...))
//
// On failure it returns the zero T (or what was decoded) and the error.
func Await[T any](t Task) (T, error) {
	var v T
	err := t.Await(&v)
	return v, err
}

// CallActivity schedules the activity name with input, waits for it and
// returns its result decoded into a T: Await[T](ctx.CallActivity(name,
// input, opts...)). Use the method OrchestrationContext.CallActivity to get
// the task instead, for fan-out (WhenAll) or races (WhenAny).
func CallActivity[T any](ctx *OrchestrationContext, name string, input any, opts ...CallOption) (T, error) {
	return Await[T](ctx.CallActivity(name, input, opts...))
}

// CallSubOrchestrator starts the orchestrator name as a sub-orchestration,
// waits for it and returns its output decoded into a T:
// Await[T](ctx.CallSubOrchestrator(name, input, opts...)).
func CallSubOrchestrator[T any](ctx *OrchestrationContext, name string, input any, opts ...CallOption) (T, error) {
	return Await[T](ctx.CallSubOrchestrator(name, input, opts...))
}

// WaitForExternalEvent waits for the next external event called name and
// returns its data decoded into a T: Await[T](ctx.WaitForExternalEvent(name)).
func WaitForExternalEvent[T any](ctx *OrchestrationContext, name string) (T, error) {
	return Await[T](ctx.WaitForExternalEvent(name))
}

// WaitForExternalEventWithTimeout is WaitForExternalEvent raced against a
// durable timer (see the method of the same name): after timeout it returns
// an error for which errors.Is(err, ErrTimeout) holds.
func WaitForExternalEventWithTimeout[T any](ctx *OrchestrationContext, name string, timeout time.Duration) (T, error) {
	return Await[T](ctx.WaitForExternalEventWithTimeout(name, timeout))
}

// InputGetter is implemented by OrchestrationContext and ActivityContext.
type InputGetter interface {
	GetInput(v any) error
}

// Input returns the input of an orchestration or activity decoded into a T
// (the zero T when there is no input).
func Input[T any](ctx InputGetter) (T, error) {
	var v T
	err := ctx.GetInput(&v)
	return v, err
}

// Orchestrator adapts a typed orchestrator to the signature Register
// functions take: the input is decoded into an In (a decoding error fails
// the orchestration) and the Out returned is the output.
//
//	durable.RegisterOrchestrator("Order", durable.Orchestrator(func(ctx *durable.OrchestrationContext, o Order) (Receipt, error) { ... }))
func Orchestrator[In, Out any](fn func(ctx *OrchestrationContext, input In) (Out, error)) func(*OrchestrationContext) (any, error) {
	return func(ctx *OrchestrationContext) (any, error) {
		in, err := Input[In](ctx)
		if err != nil {
			return nil, err
		}
		return fn(ctx, in)
	}
}

// Activity adapts a typed activity to the signature Register functions
// take: the input is decoded into an In (a decoding error fails the
// activity, non-retryable) and the Out returned is the result.
//
//	durable.RegisterActivity("SayHello", durable.Activity(func(ctx *durable.ActivityContext, name string) (string, error) {
//		return "Hello " + name + "!", nil
//	}))
func Activity[In, Out any](fn func(ctx *ActivityContext, input In) (Out, error)) func(*ActivityContext) (any, error) {
	return func(ctx *ActivityContext) (any, error) {
		in, err := Input[In](ctx)
		if err != nil {
			return nil, NonRetryableError(err)
		}
		return fn(ctx, in)
	}
}
