package durable_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	durable "github.com/durablewasm/durablewasm/guest-sdk"
	"github.com/durablewasm/durablewasm/guest-sdk/durabletest"
)

type orchFn = func(ctx *durable.OrchestrationContext) (any, error)

// run registers fn as "O" in a fresh Env (after setup) and runs it.
func run(t *testing.T, fn orchFn, setup func(env *durabletest.Env)) *durabletest.Result {
	t.Helper()
	env := durabletest.New()
	env.RegisterOrchestrator("O", fn)
	if setup != nil {
		setup(env)
	}
	return env.Run("O", nil)
}

func wantOutput(t *testing.T, res *durabletest.Result, want string) {
	t.Helper()
	if res.Status != abi.StatusCompleted {
		t.Fatalf("status %s, failure %v", res.Status, res.Failure)
	}
	if string(res.Output) != want {
		t.Fatalf("output %s, want %s", res.Output, want)
	}
}

func failingUntil(n int) func(json.RawMessage) (any, error) {
	calls := 0
	return func(json.RawMessage) (any, error) {
		calls++
		if calls < n {
			return nil, fmt.Errorf("attempt %d failed", calls)
		}
		return calls, nil
	}
}

func timerOffsets(res *durabletest.Result) []time.Duration {
	var out []time.Duration
	for _, c := range res.CallsOf(durabletest.CallTimer) {
		out = append(out, c.FireAt.Sub(c.At))
	}
	return out
}

func TestRetryBackoff(t *testing.T) {
	for _, tc := range []struct {
		name      string
		policy    durable.RetryPolicy
		succeedAt int
		wantOut   string // "" means failure
		attempts  int
		waits     []time.Duration
	}{
		{"exponential", durable.RetryPolicy{MaxAttempts: 5, FirstRetryInterval: time.Second, BackoffCoefficient: 2}, 4, "4", 4,
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{"capped", durable.RetryPolicy{MaxAttempts: 5, FirstRetryInterval: time.Second, BackoffCoefficient: 3, MaxRetryInterval: 5 * time.Second}, 5, "5", 5,
			[]time.Duration{time.Second, 3 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"constant by default", durable.RetryPolicy{MaxAttempts: 3, FirstRetryInterval: time.Minute}, 3, "3", 3,
			[]time.Duration{time.Minute, time.Minute}},
		{"exhausted", durable.RetryPolicy{MaxAttempts: 3, FirstRetryInterval: time.Second, BackoffCoefficient: 2}, 10, "", 3,
			[]time.Duration{time.Second, 2 * time.Second}},
		{"no retry", durable.RetryPolicy{}, 2, "", 1, nil},
		{"handle stops", durable.RetryPolicy{MaxAttempts: 5, FirstRetryInterval: time.Second, Handle: func(err error) bool {
			return !strings.Contains(err.Error(), "attempt 2")
		}}, 10, "", 2, []time.Duration{time.Second}},
		{"retry timeout", durable.RetryPolicy{MaxAttempts: 10, FirstRetryInterval: time.Second, BackoffCoefficient: 2, RetryTimeout: 10 * time.Second}, 10, "", 4,
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
				var n int
				err := ctx.CallActivity("A", "in", durable.WithRetry(tc.policy)).Await(&n)
				return n, err
			}, func(env *durabletest.Env) { env.OnActivity("A", failingUntil(tc.succeedAt)) })
			if tc.wantOut != "" {
				wantOutput(t, res, tc.wantOut)
			} else {
				if res.Status != abi.StatusFailed || res.Failure.Inner == nil || res.Failure.Inner.Type != "ActivityError" {
					t.Fatalf("status %s failure %+v", res.Status, res.Failure)
				}
				if want := fmt.Sprintf("attempt %d failed", tc.attempts); res.Failure.Inner.Message != want {
					t.Fatalf("last failure %q, want %q", res.Failure.Inner.Message, want)
				}
			}
			if n := len(res.CallsOf(durabletest.CallActivity)); n != tc.attempts {
				t.Fatalf("%d attempts, want %d", n, tc.attempts)
			}
			if got := timerOffsets(res); !reflect.DeepEqual(got, tc.waits) {
				t.Fatalf("retry waits %v, want %v", got, tc.waits)
			}
		})
	}
}

func TestRetrySubOrchestrator(t *testing.T) {
	env := durabletest.New()
	attempts := 0
	env.RegisterOrchestrator("Child", func(ctx *durable.OrchestrationContext) (any, error) {
		attempts++
		if attempts < 2 {
			return nil, errors.New("child failed")
		}
		return ctx.InstanceID(), nil
	})
	env.RegisterOrchestrator("O", func(ctx *durable.OrchestrationContext) (any, error) {
		var id string
		err := ctx.CallSubOrchestrator("Child", nil, durable.WithInstanceID("kid"),
			durable.WithRetry(durable.RetryPolicy{MaxAttempts: 3, FirstRetryInterval: time.Second})).Await(&id)
		return id, err
	})
	res := env.Run("O", nil)
	wantOutput(t, res, `"kid"`)
	if n := len(res.CallsOf(durabletest.CallSubOrchestration)); n != 2 {
		t.Fatalf("%d sub-orchestration calls", n)
	}
}

func TestTaskFailedError(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		err := ctx.CallActivity("A", nil).Await(nil)
		var tf *durable.TaskFailedError
		if !errors.As(err, &tf) {
			return nil, fmt.Errorf("not a TaskFailedError: %v", err)
		}
		return map[string]any{"kind": tf.Kind, "name": tf.Name, "type": tf.Details.Type, "msg": tf.Details.Message,
			"hasMsg": strings.Contains(tf.Error(), "bad input")}, nil
	}, func(env *durabletest.Env) {
		env.OnActivity("A", func(json.RawMessage) (any, error) { return nil, errors.New("bad input") })
	})
	wantOutput(t, res, `{"hasMsg":true,"kind":"activity","msg":"bad input","name":"A","type":"ActivityError"}`)
}

func TestUnknownActivityFails(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		return nil, ctx.CallActivity("Missing", nil).Await(nil)
	}, nil)
	if res.Status != abi.StatusFailed || res.Failure.Inner == nil || res.Failure.Inner.Type != "ActivityNotFound" {
		t.Fatalf("status %s failure %+v", res.Status, res.Failure)
	}
}

func TestWhenAll(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		var tasks []durable.Task
		for i := 0; i < 5; i++ {
			tasks = append(tasks, ctx.CallActivity("Square", i))
		}
		var nums []int
		if err := ctx.WhenAll(tasks...).Await(&nums); err != nil {
			return nil, err
		}
		var raw []json.RawMessage
		if err := ctx.WhenAll(tasks[:2]...).Await(&raw); err != nil {
			return nil, err
		}
		var none []int
		if err := ctx.WhenAll().Await(&none); err != nil {
			return nil, err
		}
		return []any{nums, raw, len(none)}, nil
	}, func(env *durabletest.Env) {
		env.OnActivity("Square", func(in json.RawMessage) (any, error) {
			var n int
			json.Unmarshal(in, &n)
			return n * n, nil
		})
	})
	wantOutput(t, res, `[[0,1,4,9,16],[0,1],0]`)
}

func TestWhenAllFirstFailureInTaskOrder(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		a := ctx.CallActivity("A", "slow-fail")
		b := ctx.CallActivity("A", "fast-fail")
		c := ctx.CallActivity("A", "ok")
		err := ctx.WhenAll(a, b, c).Await(nil)
		var tf *durable.TaskFailedError
		if !errors.As(err, &tf) {
			return nil, fmt.Errorf("got %v", err)
		}
		// all tasks completed before WhenAll returned
		var s string
		if err := c.Await(&s); err != nil {
			return nil, err
		}
		return tf.Details.Message + "/" + s, nil
	}, func(env *durabletest.Env) {
		env.OnActivity("A", func(in json.RawMessage) (any, error) {
			var s string
			json.Unmarshal(in, &s)
			if strings.HasSuffix(s, "fail") {
				return nil, errors.New(s)
			}
			return s, nil
		})
	})
	wantOutput(t, res, `"slow-fail/ok"`)
}

func TestWhenAnyWinnerIsFirstResolved(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		now := ctx.CurrentUTCDateTime()
		late := ctx.CreateTimer(now.Add(time.Hour))
		ev := ctx.WaitForExternalEvent("E")
		early := ctx.CreateTimer(now.Add(time.Minute))
		w, err := ctx.WhenAny(late, ev, early)
		if err != nil {
			return nil, err
		}
		first := map[durable.Task]string{late: "late", ev: "event", early: "early"}[w]
		w2, _ := ctx.WhenAny(late, ev)
		second := map[durable.Task]string{late: "late", ev: "event"}[w2]
		var data string
		if err := ev.Await(&data); err != nil {
			return nil, err
		}
		if _, err := ctx.WhenAny(); err == nil {
			return nil, errors.New("WhenAny() without tasks must fail")
		}
		return []string{first, second, data, ctx.CurrentUTCDateTime().Sub(now).String()}, nil
	}, func(env *durabletest.Env) { env.RaiseEventAfter(30*time.Minute, "E", "x") })
	wantOutput(t, res, `["early","event","x","30m0s"]`)
}

func TestWhenAnyWithCompositeTasks(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		retried := ctx.CallActivity("Flaky", nil, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 3, FirstRetryInterval: 10 * time.Minute}))
		wait := ctx.WaitForExternalEventWithTimeout("E", time.Hour)
		w, err := ctx.WhenAny(wait, retried)
		if err != nil {
			return nil, err
		}
		if w != retried {
			return nil, errors.New("the retried activity should win at +20m")
		}
		var n int
		if err := retried.Await(&n); err != nil {
			return nil, err
		}
		// the wait then times out at +1h
		err = wait.Await(nil)
		return []any{n, errors.Is(err, durable.ErrTimeout), ctx.CurrentUTCDateTime().Format("15:04")}, nil
	}, func(env *durabletest.Env) { env.OnActivity("Flaky", failingUntil(3)) })
	wantOutput(t, res, `[3,true,"01:00"]`)
	if n := len(res.CallsOf(durabletest.CallCancel)); n != 1 {
		t.Fatalf("%d cancels, want 1", n)
	}
}

func TestWaitWithTimeout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration
		want  string
	}{
		{"event first", 5 * time.Minute, `["in time",""]`},
		{"timeout", 2 * time.Hour, `["timed out","late"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
				var s string
				err := ctx.WaitForExternalEventWithTimeout("E", time.Hour).Await(&s)
				switch {
				case errors.Is(err, durable.ErrTimeout):
					// the withdrawn wait did not consume the late event
					var late string
					if err := ctx.WaitForExternalEvent("E").Await(&late); err != nil {
						return nil, err
					}
					return []string{"timed out", late}, nil
				case err != nil:
					return nil, err
				}
				return []string{s, ""}, nil
			}, func(env *durabletest.Env) {
				data := "in time"
				if tc.after > time.Hour {
					data = "late"
				}
				env.RaiseEventAfter(tc.after, "E", data)
			})
			wantOutput(t, res, tc.want)
		})
	}
}

func TestContinueAsNew(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprint("keep=", keep), func(t *testing.T) {
			res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
				var n int
				ctx.GetInput(&n)
				if n == 0 {
					// consumes one of the two buffered events
					ctx.WaitForExternalEvent("E").Await(nil)
					var opts []durable.ContinueAsNewOption
					if keep {
						opts = append(opts, durable.WithKeepUnprocessedEvents())
					}
					ctx.ContinueAsNew(n+1, opts...)
					return "ignored", errors.New("ignored too")
				}
				var s string
				err := ctx.WaitForExternalEventWithTimeout("E", time.Minute).Await(&s)
				if errors.Is(err, durable.ErrTimeout) {
					return "no event", nil
				}
				return s, err
			}, func(env *durabletest.Env) {
				env.RaiseEvent("E", "first")
				env.RaiseEvent("E", "second")
			})
			want := `"no event"`
			if keep {
				want = `"second"`
			}
			wantOutput(t, res, want)
			if res.Generations != 2 || string(res.Input) != "1" {
				t.Fatalf("generations %d input %s", res.Generations, res.Input)
			}
		})
	}
}

func TestPanicsBecomeFailures(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		ctx.CreateTimer(ctx.CurrentUTCDateTime().Add(time.Second)).Await(nil)
		var m map[string]int
		m["x"] = 1 // nil map write
		return nil, nil
	}, nil)
	if res.Status != abi.StatusFailed || res.Failure.Type != "Panic" || !strings.Contains(res.Failure.Message, "nil map") ||
		!strings.Contains(res.Failure.Stack, "sdk_test.go") {
		t.Fatalf("failure %+v", res.Failure)
	}

	res = run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		return nil, ctx.CallActivity("P", nil).Await(nil)
	}, func(env *durabletest.Env) {
		env.RegisterActivity("P", func(*durable.ActivityContext) (any, error) { panic("activity boom") })
	})
	if res.Status != abi.StatusFailed || res.Failure.Inner == nil || res.Failure.Inner.Type != "Panic" ||
		res.Failure.Inner.Message != "panic: activity boom" {
		t.Fatalf("failure %+v", res.Failure)
	}
}

func TestGoexitDetected(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		runtime.Goexit()
		return nil, nil
	}, nil)
	if res.Status != abi.StatusFailed || res.Failure.Message != "orchestrator exited without returning (runtime.Goexit?)" {
		t.Fatalf("failure %+v", res.Failure)
	}
	res = run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		return nil, ctx.CallActivity("G", nil).Await(nil)
	}, func(env *durabletest.Env) {
		env.RegisterActivity("G", func(*durable.ActivityContext) (any, error) { runtime.Goexit(); return nil, nil })
	})
	if res.Status != abi.StatusFailed || res.Failure.Inner == nil || !strings.Contains(res.Failure.Inner.Message, "Goexit") {
		t.Fatalf("failure %+v", res.Failure)
	}
}

func TestStuckDetected(t *testing.T) {
	global := durable.StepDeadline
	release := make(chan struct{})
	defer close(release)
	t0 := time.Now()
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		ctx.CreateTimer(ctx.CurrentUTCDateTime()).Await(nil)
		<-release // blocks outside Await
		ctx.SetCustomStatus("must not reach the host")
		return "must not complete", nil
	}, func(env *durabletest.Env) { env.StepDeadline = 50 * time.Millisecond })
	if res.Status != abi.StatusFailed || res.Failure.Type != "Stuck" {
		t.Fatalf("status %s failure %+v", res.Status, res.Failure)
	}
	// The Env's deadline, not the package's (2s), was used, and the
	// package's was left alone.
	if d := time.Since(t0); d >= global {
		t.Fatalf("stuck detected after %v, Env.StepDeadline is 50ms", d)
	}
	if durable.StepDeadline != global {
		t.Fatalf("durable.StepDeadline changed to %v", durable.StepDeadline)
	}
}

func TestHostErrorStopsOrchestration(t *testing.T) {
	for _, code := range []int32{abi.ErrNondeterminism, abi.ErrLimit} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			deferRan := false
			res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
				defer func() {
					deferRan = true
					ctx.Logger().Info("in defer")   // no-op
					ctx.SetCustomStatus("in defer") // no-op
					ctx.CallActivity("B", nil)      // no-op
					if r := recover(); r != nil {   // a user recover does not resurrect it
						panic(r)
					}
				}()
				ctx.CallActivity("A", 1).Await(nil)
				ctx.CallActivity("B", 2).Await(nil)
				return "unreachable", nil
			}, func(env *durabletest.Env) {
				env.OnActivity("A", func(json.RawMessage) (any, error) { return nil, nil })
				env.HostError = func(c durabletest.HostCall) int32 {
					if c.Func == abi.ImportScheduleActivity && c.Name == "B" {
						return code
					}
					return 0
				}
			})
			if !deferRan || res.Status != abi.StatusFailed || res.CustomStatus != nil || len(res.Logs) != 0 {
				t.Fatalf("defer=%v status %s custom %s logs %v", deferRan, res.Status, res.CustomStatus, res.Logs)
			}
			if want := map[int32]string{abi.ErrNondeterminism: "Nondeterminism", abi.ErrLimit: "Limit"}[code]; res.Failure.Type != want {
				t.Fatalf("failure %+v", res.Failure)
			}
		})
	}
}

func TestDropUnwindsWaitingOrchestration(t *testing.T) {
	unwound := false
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		defer func() { unwound = true }()
		return nil, ctx.WaitForExternalEvent("never").Await(nil)
	}, nil)
	if res.Status != abi.StatusRunning || !unwound {
		t.Fatalf("status %s unwound %v", res.Status, unwound)
	}
}

func TestContextBasics(t *testing.T) {
	env := durabletest.New()
	env.InstanceID = "abc"
	env.StartTime = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	env.RegisterOrchestrator("O", func(ctx *durable.OrchestrationContext) (any, error) {
		var in struct{ N int }
		if err := ctx.GetInput(&in); err != nil {
			return nil, err
		}
		g1, g2 := ctx.NewGUID(), ctx.NewGUID()
		ctx.SetCustomStatus(map[string]int{"n": in.N})
		ctx.Logger().Info("hello", "k", "v w", "odd")
		ctx.SendEvent("other", "ping", 42)
		var act string
		if err := ctx.CallActivity("Who", nil).Await(&act); err != nil {
			return nil, err
		}
		return map[string]any{"id": ctx.InstanceID(), "name": ctx.Name(), "n": in.N, "now": ctx.CurrentUTCDateTime(),
			"guids": len(g1) == 36 && g1 != g2 && g1[14] == '5', "replaying": ctx.IsReplaying(), "act": act}, nil
	})
	env.RegisterActivity("Who", func(ctx *durable.ActivityContext) (any, error) {
		var in any
		ctx.GetInput(&in)
		ctx.Logger().Debug("who")
		return fmt.Sprintf("%s/%s/%d/%v", ctx.InstanceID(), ctx.Name(), ctx.TaskID(), in), nil
	})
	res := env.Run("O", map[string]int{"N": 7})
	wantOutput(t, res, `{"act":"abc/Who/0/\u003cnil\u003e","guids":true,"id":"abc","n":7,"name":"O","now":"2030-05-06T07:08:09Z","replaying":false}`)
	if string(res.CustomStatus) != `{"n":7}` {
		t.Fatalf("custom status %s", res.CustomStatus)
	}
	wantLogs := []durabletest.Log{{Level: abi.LogInfo, Message: `hello k="v w" odd=!MISSING`}, {Level: abi.LogDebug, Message: "who", Activity: "Who"}}
	if !reflect.DeepEqual(res.Logs, wantLogs) {
		t.Fatalf("logs %+v", res.Logs)
	}
	if s := res.CallsOf(durabletest.CallSendEvent); len(s) != 1 || s[0].InstanceID != "other" || string(s[0].Input) != "42" {
		t.Fatalf("send calls %+v", s)
	}
	// the same run again gives the same GUIDs (deterministic)
	if res2 := env.Run("O", map[string]int{"N": 7}); string(res2.Output) != string(res.Output) {
		t.Fatalf("second run differs: %s", res2.Output)
	}
}

func TestBadInputAndOutput(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		t1 := ctx.CallActivity("A", make(chan int)) // cannot be encoded
		err := t1.Await(nil)
		if err == nil || !strings.Contains(err.Error(), "encode input of activity A") {
			return nil, fmt.Errorf("got %v", err)
		}
		return func() {}, nil // cannot be encoded either
	}, nil)
	if res.Status != abi.StatusFailed || !strings.Contains(res.Failure.Message, "encode orchestrator output") {
		t.Fatalf("failure %+v", res.Failure)
	}
}

func TestRegistry(t *testing.T) {
	r := durable.NewRegistry()
	r.RegisterActivity("b", func(*durable.ActivityContext) (any, error) { return nil, nil })
	r.RegisterOrchestrator("b", func(*durable.OrchestrationContext) (any, error) { return nil, nil })
	r.RegisterOrchestrator("a", func(*durable.OrchestrationContext) (any, error) { return nil, nil })
	want := []durable.Function{{Kind: abi.KindOrchestrator, Name: "a"}, {Kind: abi.KindOrchestrator, Name: "b"}, {Kind: abi.KindActivity, Name: "b"}}
	if got := r.Functions(); !reflect.DeepEqual(got, want) {
		t.Fatalf("functions %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate registration did not panic")
		}
	}()
	r.RegisterOrchestrator("a", func(*durable.OrchestrationContext) (any, error) { return nil, nil })
}

// TestRawMessagePassesThrough checks the json.RawMessage fast path: raw
// payloads reach activities and come back byte for byte, and an invalid
// RawMessage — an output, an activity input, an activity result — fails
// with InvalidJSON (DW2005), as the host checks every payload.
func TestRawMessagePassesThrough(t *testing.T) {
	const payload = `{"b": [1, 2.50, "x"], "a": null}`
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		var out json.RawMessage
		if err := ctx.CallActivity("Echo", json.RawMessage(payload)).Await(&out); err != nil {
			return nil, err
		}
		return out, nil
	}, func(env *durabletest.Env) {
		env.RegisterActivity("Echo", func(ctx *durable.ActivityContext) (any, error) {
			var v json.RawMessage
			if err := ctx.GetInput(&v); err != nil {
				return nil, err
			}
			if string(v) != payload {
				return nil, fmt.Errorf("activity got %s", v)
			}
			return v, nil
		})
	})
	wantOutput(t, res, payload)

	res = run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		return json.RawMessage(`{"unterminated`), nil
	}, nil)
	if res.Status != abi.StatusFailed || res.Failure.Code != "DW2005" || !strings.Contains(res.Failure.Message, "orchestrator output is not valid JSON") {
		t.Fatalf("invalid RawMessage output: status %s failure %+v", res.Status, res.Failure)
	}

	res = run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		err := ctx.CallActivity("Echo", json.RawMessage(`nope`)).Await(nil)
		return fmt.Sprintf("the orchestrator ran on after: %v", err), nil
	}, nil)
	if res.Status != abi.StatusFailed || res.Failure.Type != "InvalidJSON" || !strings.Contains(res.Failure.Message, "input of activity Echo is not valid JSON") {
		t.Fatalf("invalid RawMessage activity input: status %s failure %+v", res.Status, res.Failure)
	}

	res = run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		err := ctx.CallActivity("Bad", nil).Await(nil)
		var tf *durable.TaskFailedError
		if !errors.As(err, &tf) || tf.Details == nil || tf.Details.Type != "InvalidJSON" {
			return nil, fmt.Errorf("want an InvalidJSON task failure, got %v", err)
		}
		return "caught", nil
	}, func(env *durabletest.Env) {
		env.RegisterActivity("Bad", func(ctx *durable.ActivityContext) (any, error) {
			return json.RawMessage(`{"a":}`), nil
		})
	})
	wantOutput(t, res, `"caught"`)
}

// TestRunsLeaveNoGoroutines: each Env.Run gets a new runtime; when it ends,
// the runtime's idle coroutines (pooled orchestration runners, the activity
// runner) and its watchdog must end too, or table-driven and fuzz tests
// would pile up goroutines.
func TestRunsLeaveNoGoroutines(t *testing.T) {
	fn := func(ctx *durable.OrchestrationContext) (any, error) {
		var s string
		err := ctx.CallActivity("A", "x").Await(&s)
		return s, err
	}
	setup := func(env *durabletest.Env) {
		env.OnActivity("A", func(in json.RawMessage) (any, error) { return "a", nil })
	}
	run(t, fn, setup) // warm whatever the runtime starts once per process
	before := runtime.NumGoroutine()
	for i := 0; i < 200; i++ {
		res := run(t, fn, setup)
		wantOutput(t, res, `"a"`)
	}
	// The watchdog goroutines end within a tick of Close.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+10 {
		t.Fatalf("%d goroutines after 200 runs, %d before", n, before)
	}
}
