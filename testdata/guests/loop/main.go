// Command loop is a benchmark guest: orchestrator "Loop" calls activity
// "Echo" n times in sequence (n is its input) and returns n; "Wait" waits for
// one event "go" and returns its data.
package main

import durable "github.com/durablewasm/durablewasm/guest-sdk"

func init() {
	durable.RegisterOrchestrator("Loop", func(ctx *durable.OrchestrationContext) (any, error) {
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			if err := ctx.CallActivity("Echo", i).Await(nil); err != nil {
				return nil, err
			}
		}
		return n, nil
	})
	durable.RegisterOrchestrator("Wait", func(ctx *durable.OrchestrationContext) (any, error) {
		var v any
		err := ctx.WaitForExternalEvent("go").Await(&v)
		return v, err
	})
	durable.RegisterActivity("Echo", func(ctx *durable.ActivityContext) (any, error) {
		var v any
		err := ctx.GetInput(&v)
		return v, err
	})
}

func main() {}
