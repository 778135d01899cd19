package flows

import (
	"fmt"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

// Counter is an eternal orchestration holding a count (its input, 0 when
// absent). Each generation publishes the count as custom status, waits for
// one "operation" event ("incr", "decr", "reset" or "end"), applies it and
// continues as new with the new count, keeping events that arrived
// meanwhile. On "end" it completes with the final count. An unknown
// operation is logged and ignored.
func Counter(ctx *durable.OrchestrationContext) (any, error) {
	var count int
	if err := ctx.GetInput(&count); err != nil {
		return nil, err
	}
	if err := ctx.SetCustomStatus(count); err != nil {
		return nil, err
	}
	var op string
	if err := ctx.WaitForExternalEvent("operation").Await(&op); err != nil {
		return nil, err
	}
	switch op {
	case "incr":
		count++
	case "decr":
		count--
	case "reset":
		count = 0
	case "end":
		return count, nil
	default:
		ctx.Logger().Warn(fmt.Sprintf("unknown operation %q ignored", op))
	}
	if err := ctx.SetCustomStatus(count); err != nil {
		return nil, err
	}
	return nil, ctx.ContinueAsNew(count, durable.WithKeepUnprocessedEvents())
}
