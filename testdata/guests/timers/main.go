// Command timers is a test guest for the timer reliability tests:
//
//   - "SleepUntil" (input: unix ms) waits on a durable timer for that
//     absolute time, then returns what activity "RealNow" returns: the real
//     clock (unix ms) of the activity's worker after the timer fired, so a
//     test can tell whether the timer fired before its time.
package main

import (
	"time"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

func init() {
	durable.RegisterOrchestrator("SleepUntil", func(ctx *durable.OrchestrationContext) (any, error) {
		var at int64
		if err := ctx.GetInput(&at); err != nil {
			return nil, err
		}
		if err := ctx.CreateTimer(time.UnixMilli(at)).Await(nil); err != nil {
			return nil, err
		}
		var now int64
		if err := ctx.CallActivity("RealNow", nil).Await(&now); err != nil {
			return nil, err
		}
		return now, nil
	})
	durable.RegisterActivity("RealNow", func(ctx *durable.ActivityContext) (any, error) {
		return time.Now().UnixMilli(), nil
	})
}

func main() {}
