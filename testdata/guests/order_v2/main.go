// Command order_v2 is order_v1 with the two activity calls swapped:
// "Ordered" calls "Step" with "B", waits for event "go", then calls "Step"
// with "A". Replaying a v1 history on it must fail with a nondeterminism
// error.
package main

import durable "github.com/durablewasm/durablewasm/guest-sdk"

func init() {
	durable.RegisterOrchestrator("Ordered", func(ctx *durable.OrchestrationContext) (any, error) {
		var a, b string
		if err := ctx.CallActivity("Step", "B").Await(&b); err != nil {
			return nil, err
		}
		if err := ctx.WaitForExternalEvent("go").Await(nil); err != nil {
			return nil, err
		}
		if err := ctx.CallActivity("Step", "A").Await(&a); err != nil {
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
