// Command tinyguest is a small guest module used by the SDK's Wasm tests.
package main

import (
	"errors"
	"runtime"
	"strings"
	"time"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

func init() {
	durable.StepDeadline = 300 * time.Millisecond
	durable.RegisterActivity("Echo", func(ctx *durable.ActivityContext) (any, error) {
		var s string
		err := ctx.GetInput(&s)
		ctx.Logger().Info("echo", "s", s)
		return s, err
	})
	durable.RegisterActivity("Big", func(ctx *durable.ActivityContext) (any, error) {
		return strings.Repeat("x", 5000), nil
	})
	durable.RegisterActivity("Fail", func(ctx *durable.ActivityContext) (any, error) {
		return nil, errors.New("activity says no")
	})
	durable.RegisterOrchestrator("Seq", func(ctx *durable.OrchestrationContext) (any, error) {
		var in string
		if err := ctx.GetInput(&in); err != nil {
			return nil, err
		}
		var out []string
		for _, s := range []string{in + "-a", in + "-b", in + "-c"} {
			var r string
			if err := ctx.CallActivity("Echo", s).Await(&r); err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		var big string
		if err := ctx.CallActivity("Big", nil).Await(&big); err != nil {
			return nil, err
		}
		return map[string]any{"out": out, "big": len(big), "guid": len(ctx.NewGUID())}, nil
	})
	durable.RegisterOrchestrator("Race", func(ctx *durable.OrchestrationContext) (any, error) {
		ev := ctx.WaitForExternalEventWithTimeout("go", time.Minute)
		retried := ctx.CallActivity("Fail", nil, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 2, FirstRetryInterval: time.Second}))
		all := ctx.WhenAll(ev, retried)
		err := all.Await(nil)
		var tf *durable.TaskFailedError
		if !errors.As(err, &tf) {
			return nil, errors.New("expected a task failure")
		}
		var data string
		if err := ev.Await(&data); err != nil {
			return nil, err
		}
		ctx.SetCustomStatus("done")
		return data, nil
	})
	durable.RegisterOrchestrator("Loop", func(ctx *durable.OrchestrationContext) (any, error) {
		var n int
		ctx.GetInput(&n)
		if n < 3 {
			ctx.CreateTimer(ctx.CurrentUTCDateTime().Add(time.Second)).Await(nil)
			ctx.ContinueAsNew(n + 1)
			return nil, nil
		}
		return n, nil
	})
	durable.RegisterOrchestrator("Features", func(ctx *durable.OrchestrationContext) (any, error) {
		ctx.SendEvent("other", "ping", 1)
		var sub string
		err := ctx.CallSubOrchestrator("Seq", "x", durable.WithInstanceID("child")).Await(&sub)
		return map[string]any{"replaying": ctx.IsReplaying(), "sub": sub}, err
	})
	durable.RegisterOrchestrator("Stuck", func(ctx *durable.OrchestrationContext) (any, error) {
		select {}
	})
	durable.RegisterOrchestrator("Panic", func(ctx *durable.OrchestrationContext) (any, error) {
		ctx.CreateTimer(ctx.CurrentUTCDateTime()).Await(nil)
		panic("oops")
	})
	durable.RegisterOrchestrator("Goexit", func(ctx *durable.OrchestrationContext) (any, error) {
		runtime.Goexit()
		return nil, nil
	})
	durable.RegisterOrchestrator("Wait", func(ctx *durable.OrchestrationContext) (any, error) {
		defer ctx.Logger().Info("unwinding")
		var s string
		err := ctx.WaitForExternalEvent("never").Await(&s)
		return s, err
	})
}

func main() {}
