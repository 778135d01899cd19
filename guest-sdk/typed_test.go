package durable_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	durable "github.com/durablewasm/durablewasm/guest-sdk"
	"github.com/durablewasm/durablewasm/guest-sdk/durabletest"
)

type order struct {
	ID    string  `json:"id"`
	Total float64 `json:"total"`
}

type receipt struct {
	OrderID string   `json:"orderId"`
	Lines   []string `json:"lines"`
}

// TestTypedAPI uses the generic helpers: typed registration, Input, Await,
// CallActivity, CallSubOrchestrator, WaitForExternalEvent and WhenAll as a
// method.
func TestTypedAPI(t *testing.T) {
	env := durabletest.New()
	env.RegisterOrchestrator("Order", durable.Orchestrator(func(ctx *durable.OrchestrationContext, o order) (receipt, error) {
		charged, err := durable.CallActivity[string](ctx, "Charge", o)
		if err != nil {
			return receipt{}, err
		}
		var tasks []durable.Task
		for _, item := range []string{"a", "b"} {
			tasks = append(tasks, ctx.CallActivity("Ship", item))
		}
		shipped, err := durable.Await[[]string](ctx.WhenAll(tasks...))
		if err != nil {
			return receipt{}, err
		}
		note, err := durable.CallSubOrchestrator[string](ctx, "Note", o.ID)
		if err != nil {
			return receipt{}, err
		}
		approver, err := durable.WaitForExternalEvent[string](ctx, "Approved")
		if err != nil {
			return receipt{}, err
		}
		_, err = durable.WaitForExternalEventWithTimeout[string](ctx, "Never", time.Minute)
		if !errors.Is(err, durable.ErrTimeout) {
			return receipt{}, fmt.Errorf("want a timeout, got %v", err)
		}
		return receipt{OrderID: o.ID, Lines: append(append([]string{charged}, shipped...), note, approver)}, nil
	}))
	env.RegisterOrchestrator("Note", durable.Orchestrator(func(ctx *durable.OrchestrationContext, id string) (string, error) {
		return "note for " + id, nil
	}))
	env.RegisterActivity("Charge", durable.Activity(func(ctx *durable.ActivityContext, o order) (string, error) {
		return fmt.Sprintf("charged %s %.2f", o.ID, o.Total), nil
	}))
	env.RegisterActivity("Ship", durable.Activity(func(ctx *durable.ActivityContext, item string) (string, error) {
		in, err := durable.Input[string](ctx)
		return "shipped " + in, err
	}))
	env.RaiseEventAfter(time.Minute, "Approved", "ann")
	res := env.Run("Order", order{ID: "o1", Total: 12.5})
	wantOutput(t, res, `{"orderId":"o1","lines":["charged o1 12.50","shipped a","shipped b","note for o1","ann"]}`)
}

// TestTypedAwaitFailure returns the zero value and the error.
func TestTypedAwaitFailure(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		n, err := durable.CallActivity[int](ctx, "Fails", nil)
		var tf *durable.TaskFailedError
		return []any{n, errors.As(err, &tf), durable.ErrorType(err)}, nil
	}, func(env *durabletest.Env) {
		env.OnActivity("Fails", func(json.RawMessage) (any, error) { return nil, errors.New("no") })
	})
	wantOutput(t, res, `[0,true,"ActivityError"]`)
}

// TestTypedActivityBadInput: an input that does not decode fails the
// activity as non-retryable.
func TestTypedActivityBadInput(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		_, err := durable.CallActivity[int](ctx, "Double", "not a number",
			durable.WithRetry(durable.RetryPolicy{MaxAttempts: 3, FirstRetryInterval: time.Second}))
		return durable.IsNonRetryable(err), nil
	}, func(env *durabletest.Env) {
		env.RegisterActivity("Double", durable.Activity(func(ctx *durable.ActivityContext, n int) (int, error) { return 2 * n, nil }))
	})
	wantOutput(t, res, `true`)
	if n := len(res.CallsOf(durabletest.CallActivity)); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
}

type declined struct {
	Code   string `json:"code"`
	Amount int    `json:"amount"`
}

// TestApplicationErrors: an activity's ApplicationError becomes the
// failure's type and details; an orchestrator's becomes the
// orchestration's.
func TestApplicationErrors(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		err := ctx.CallActivity("Pay", nil).Await(nil)
		var tf *durable.TaskFailedError
		if !errors.As(err, &tf) {
			return nil, fmt.Errorf("want a TaskFailedError, got %v", err)
		}
		var d declined
		if err := tf.DecodeDetails(&d); err != nil {
			return nil, err
		}
		if tf.Type() != "PaymentDeclined" || !durable.IsErrorType(err, "Other", "PaymentDeclined") || d.Code != "insufficient" || d.Amount != 42 {
			return nil, fmt.Errorf("type %q details %+v", tf.Type(), d)
		}
		if durable.IsNonRetryable(err) {
			return nil, errors.New("not marked non-retryable")
		}
		return nil, fmt.Errorf("order failed: %w", &durable.ApplicationError{
			Type: "OrderFailed", Message: "payment declined", Details: map[string]int{"amount": d.Amount}, Cause: err,
		})
	}, func(env *durabletest.Env) {
		env.OnActivity("Pay", func(json.RawMessage) (any, error) {
			return nil, fmt.Errorf("charge: %w", &durable.ApplicationError{Type: "PaymentDeclined", Message: "card declined", Details: declined{"insufficient", 42}})
		})
	})
	f := res.Failure
	if res.Status != abi.StatusFailed || f.Type != "OrderFailed" || f.Message != "order failed: payment declined" ||
		string(f.Details) != `{"amount":42}` || f.Inner == nil || f.Inner.Type != "PaymentDeclined" || f.NonRetryable {
		t.Fatalf("status %s failure %+v", res.Status, f)
	}
	if f.Inner.Message != "charge: card declined" || string(f.Inner.Details) != `{"code":"insufficient","amount":42}` {
		t.Fatalf("inner %+v", f.Inner)
	}
}

func TestApplicationErrorText(t *testing.T) {
	cause := errors.New("cause")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&durable.ApplicationError{Type: "T", Message: "m"}, "m"},
		{&durable.ApplicationError{Type: "T"}, "T"},
		{&durable.ApplicationError{Cause: cause}, "cause"},
		{&durable.ApplicationError{}, "application error"},
		{durable.NonRetryableError(cause), "cause"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%#v: %q, want %q", tc.err, got, tc.want)
		}
	}
	if !errors.Is(durable.NonRetryableError(cause), cause) || durable.NonRetryableError(nil) != nil {
		t.Fatal("NonRetryableError must wrap its error and keep nil")
	}
	wrapped := durable.NonRetryableError(fmt.Errorf("x: %w", durable.NewApplicationError("T", "m", 1)))
	if durable.ErrorType(wrapped) != "T" || !durable.IsNonRetryable(wrapped) || wrapped.Error() != "x: m" {
		t.Fatalf("%v: type %q", wrapped, durable.ErrorType(wrapped))
	}
	if durable.ErrorType(errors.New("plain")) != "" || durable.IsNonRetryable(errors.New("plain")) {
		t.Fatal("a plain error has no type and is retryable")
	}
}

// TestApplicationErrorBadDetails: details that cannot be encoded become a
// string saying so.
func TestApplicationErrorBadDetails(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		return nil, durable.NewApplicationError("T", "m", math.Inf(1))
	}, nil)
	if res.Failure == nil || res.Failure.Type != "T" || len(res.Failure.Details) == 0 || res.Failure.Details[0] != '"' {
		t.Fatalf("failure %+v", res.Failure)
	}
}

// TestNonRetryable: retry policies stop at a failure marked non-retryable
// or of a type listed in NonRetryableErrorTypes, and the Handle predicate
// can match on types.
func TestNonRetryable(t *testing.T) {
	policy := durable.RetryPolicy{MaxAttempts: 5, FirstRetryInterval: time.Second}
	for _, tc := range []struct {
		name     string
		err      func(attempt int) error
		policy   durable.RetryPolicy
		attempts int
	}{
		{"marker", func(int) error { return durable.NonRetryableError(errors.New("bad request")) }, policy, 1},
		{"marker on an application error", func(int) error {
			return &durable.ApplicationError{Type: "Invalid", Message: "bad", NonRetryable: true}
		}, policy, 1},
		{"marker after retries", func(n int) error {
			if n < 3 {
				return errors.New("transient")
			}
			return durable.NonRetryableError(errors.New("permanent"))
		}, policy, 3},
		{"listed type", func(int) error { return durable.NewApplicationError("Invalid", "bad", nil) },
			durable.RetryPolicy{MaxAttempts: 5, FirstRetryInterval: time.Second, NonRetryableErrorTypes: []string{"Invalid"}}, 1},
		{"other type", func(int) error { return durable.NewApplicationError("Busy", "later", nil) },
			durable.RetryPolicy{MaxAttempts: 5, FirstRetryInterval: time.Second, NonRetryableErrorTypes: []string{"Invalid"}}, 5},
		{"handle on type", func(n int) error {
			if n < 2 {
				return durable.NewApplicationError("Busy", "later", nil)
			}
			return durable.NewApplicationError("Gone", "gone", nil)
		}, durable.RetryPolicy{MaxAttempts: 5, FirstRetryInterval: time.Second, Handle: func(err error) bool {
			return durable.IsErrorType(err, "Busy")
		}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
				return durable.CallActivity[int](ctx, "A", nil, durable.WithRetry(tc.policy))
			}, func(env *durabletest.Env) {
				env.RegisterActivity("A", func(ctx *durable.ActivityContext) (any, error) {
					calls++
					return nil, tc.err(calls)
				})
			})
			if res.Status != abi.StatusFailed || calls != tc.attempts {
				t.Fatalf("status %s after %d attempts, want Failed after %d", res.Status, calls, tc.attempts)
			}
		})
	}
}

// TestNonRetryableSubOrchestrator: the marker travels from a
// sub-orchestrator too.
func TestNonRetryableSubOrchestrator(t *testing.T) {
	starts := 0
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		err := ctx.CallSubOrchestrator("Child", nil, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 4, FirstRetryInterval: time.Second})).Await(nil)
		return []any{durable.ErrorType(err), durable.IsNonRetryable(err)}, nil
	}, func(env *durabletest.Env) {
		env.RegisterOrchestrator("Child", func(ctx *durable.OrchestrationContext) (any, error) {
			if !ctx.IsReplaying() {
				starts++
			}
			return nil, &durable.ApplicationError{Type: "Rejected", Message: "no", NonRetryable: true}
		})
	})
	wantOutput(t, res, `["Rejected",true]`)
	if n := len(res.CallsOf(durabletest.CallSubOrchestration)); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
}

// TestTimeoutCancelsTimer: when the event wins, the timer is canceled.
func TestTimeoutCancelsTimer(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		return durable.WaitForExternalEventWithTimeout[string](ctx, "E", time.Hour)
	}, func(env *durabletest.Env) { env.RaiseEventAfter(time.Minute, "E", "hi") })
	wantOutput(t, res, `"hi"`)
	timers, cancels := res.CallsOf(durabletest.CallTimer), res.CallsOf(durabletest.CallCancel)
	if len(timers) != 1 || len(cancels) != 1 || cancels[0].TaskID != timers[0].TaskID {
		t.Fatalf("timers %+v, cancels %+v", timers, cancels)
	}
}

// TestCancel cancels tasks of every kind before they complete.
func TestCancel(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		wait := ctx.WaitForExternalEvent("E")
		timer := ctx.CreateTimer(ctx.CurrentUTCDateTime().Add(time.Hour))
		act := ctx.CallActivity("Slow", nil)
		retried := ctx.CallActivity("Flaky", nil, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 3, FirstRetryInterval: time.Hour}))
		timed := ctx.WaitForExternalEventWithTimeout("F", time.Hour)
		all := ctx.WhenAll(ctx.CreateTimer(ctx.CurrentUTCDateTime().Add(time.Hour)), ctx.WaitForExternalEvent("G"))
		done := ctx.CallActivity("Fast", nil)
		if err := done.Await(nil); err != nil { // the first Flaky attempt fails meanwhile
			return nil, err
		}
		ctx.Cancel(wait, timer, act, retried, timed, all, done, nil)
		var out []bool
		for _, task := range []durable.Task{wait, timer, act, retried, timed, all} {
			out = append(out, errors.Is(task.Await(nil), durable.ErrCanceled))
		}
		out = append(out, done.Await(nil) == nil)
		// The canceled wait consumed nothing: a new one gets the event.
		s, err := durable.WaitForExternalEvent[string](ctx, "E")
		return []any{out, s}, err
	}, func(env *durabletest.Env) {
		env.OnActivity("Slow", func(json.RawMessage) (any, error) { return 1, nil })
		env.OnActivity("Fast", func(json.RawMessage) (any, error) { return 1, nil })
		env.OnActivity("Flaky", failingUntil(3))
		env.RaiseEventAfter(2*time.Hour, "E", "late")
	})
	wantOutput(t, res, `[[true,true,true,true,true,true,true],"late"]`)
	if n := len(res.CallsOf(durabletest.CallActivity)); n != 3 { // Slow, Flaky (one attempt), Fast
		t.Fatalf("%d activity calls, want 3: %+v", n, res.Calls)
	}
	if n := len(res.CallsOf(durabletest.CallCancel)); n < 6 {
		t.Fatalf("%d cancels, want at least 6: %+v", n, res.Calls)
	}
}

// TestWhenAnyWithCanceledTask: a canceled task is done and can win.
func TestWhenAnyWithCanceledTask(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		a, b := ctx.WaitForExternalEvent("A"), ctx.WaitForExternalEvent("B")
		ctx.Cancel(b)
		w, err := ctx.WhenAny(a, b)
		if err != nil {
			return nil, err
		}
		return w == b, nil
	}, nil)
	wantOutput(t, res, `true`)
}

// TestDeprecatedPackageFunctions: WhenAll and WhenAny still work as package
// functions.
func TestDeprecatedPackageFunctions(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		a, b := ctx.CallActivity("A", 1), ctx.CallActivity("A", 2)
		w, err := durable.WhenAny(ctx, a, b)
		if err != nil {
			return nil, err
		}
		all, err := durable.Await[[]int](durable.WhenAll(ctx, a, b))
		return []any{w == a, all}, err
	}, func(env *durabletest.Env) {
		env.OnActivity("A", func(in json.RawMessage) (any, error) { return in, nil })
	})
	wantOutput(t, res, `[true,[1,2]]`)
	if _, err := durable.WhenAny(nil); err == nil {
		t.Fatal("WhenAny of nothing must fail")
	}
}

// TestEncodingErrorsAreReturned: SetCustomStatus, SendEvent and
// ContinueAsNew return encoding errors instead of panicking.
func TestEncodingErrorsAreReturned(t *testing.T) {
	bad := make(chan int)
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		e1 := ctx.SetCustomStatus(bad)
		e2 := ctx.SendEvent("other", "E", bad)
		e3 := ctx.ContinueAsNew(bad)
		if e1 == nil || e2 == nil || e3 == nil {
			return nil, fmt.Errorf("errors %v %v %v", e1, e2, e3)
		}
		if err := ctx.SetCustomStatus("fine"); err != nil {
			return nil, err
		}
		return "handled", nil
	}, nil)
	// The orchestrator returned after a failed ContinueAsNew without an
	// error of its own: it fails with the ContinueAsNew error.
	if res.Status != abi.StatusFailed || res.Failure.Type != "OrchestratorError" || string(res.CustomStatus) != `"fine"` {
		t.Fatalf("status %s failure %+v custom status %s", res.Status, res.Failure, res.CustomStatus)
	}
	if n := len(res.CallsOf(durabletest.CallSendEvent)) + len(res.CallsOf(durabletest.CallContinueAsNew)); n != 0 {
		t.Fatalf("%d calls made with unencodable data", n)
	}
}

// TestContinueAsNewErrorReturned: the error returned by a failed
// ContinueAsNew fails the orchestration when returned, and a later
// successful ContinueAsNew continues as usual.
func TestContinueAsNewErrorReturned(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		if n < 2 {
			if err := ctx.ContinueAsNew(make(chan int)); err == nil {
				return nil, errors.New("want an encoding error")
			}
			return nil, ctx.ContinueAsNew(n + 1)
		}
		return n, nil
	}, nil)
	wantOutput(t, res, `2`)
	if res.Generations != 3 {
		t.Fatalf("%d generations, want 3", res.Generations)
	}
}

// TestHostRefusalsAreReturned: host error codes of SetCustomStatus and
// SendEvent come back as *HostError.
func TestHostRefusalsAreReturned(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		var he1, he2 *durable.HostError
		e1, e2 := ctx.SetCustomStatus("x"), ctx.SendEvent("other", "E", 1)
		return []bool{errors.As(e1, &he1), errors.As(e2, &he2)}, nil
	}, func(env *durabletest.Env) {
		env.HostError = func(c durabletest.HostCall) int32 {
			if c.Func == abi.ImportSetCustomStatus || c.Func == abi.ImportSendEvent {
				return abi.ErrBadArgument
			}
			return 0
		}
	})
	wantOutput(t, res, `[true,true]`)
}
