// Command slow is a test guest for dead letters: activity "Nap" sleeps for
// its input (milliseconds) and returns "rested"; orchestrator "Slow" calls it
// and returns its result (failing when it fails), "SlowCatch" calls it and
// returns "caught" when it fails.
package main

import (
	"time"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

func init() {
	durable.RegisterOrchestrator("Slow", func(ctx *durable.OrchestrationContext) (any, error) {
		var ms int
		if err := ctx.GetInput(&ms); err != nil {
			return nil, err
		}
		var out string
		err := ctx.CallActivity("Nap", ms).Await(&out)
		return out, err
	})
	durable.RegisterOrchestrator("SlowCatch", func(ctx *durable.OrchestrationContext) (any, error) {
		var ms int
		if err := ctx.GetInput(&ms); err != nil {
			return nil, err
		}
		var out string
		if err := ctx.CallActivity("Nap", ms).Await(&out); err != nil {
			return "caught", nil
		}
		return out, nil
	})
	durable.RegisterActivity("Nap", func(ctx *durable.ActivityContext) (any, error) {
		var ms int
		if err := ctx.GetInput(&ms); err != nil {
			return nil, err
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return "rested", nil
	})
}

func main() {}
