// Command order_v1 is a test guest: orchestrator "Ordered" calls activity
// "Step" with "A", waits for event "go", then calls "Step" with "B".
// order_v2 is the same orchestrator with the two calls swapped, to test that
// replaying a v1 history on v2 fails with a nondeterminism error.
package main

import durable "github.com/durablewasm/durablewasm/guest-sdk"

func init() {
	durable.RegisterOrchestrator("Ordered", func(ctx *durable.OrchestrationContext) (any, error) {
		var a, b string
		if err := ctx.CallActivity("Step", "A").Await(&a); err != nil {
			return nil, err
		}
		if err := ctx.WaitForExternalEvent("go").Await(nil); err != nil {
			return nil, err
		}
		if err := ctx.CallActivity("Step", "B").Await(&b); err != nil {
			return nil, err
		}
		return a + b, nil
	})
	durable.RegisterActivity("Step", func(ctx *durable.ActivityContext) (any, error) {
		var s string
		err := ctx.GetInput(&s)
		return s, err
	})
}

func main() {}
