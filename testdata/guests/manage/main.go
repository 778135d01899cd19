// Command manage is a test guest for instance management:
//
//   - "Flaky" (input: unix ms) calls activity "Ok", waits on a short durable
//     timer, then calls "FailUntil", which fails until that time: the
//     instance fails, and a rewind after that time completes it.
//   - "FlakyParent" runs "Flaky" as a sub-orchestration (id "<parent>:child").
//   - "Tree" runs "Leaf" (which waits for event "go") as a sub-orchestration
//     with id "<parent>:leaf", for recursive termination.
//   - "Recurse" starts itself as a sub-orchestration without end (input: the
//     depth); it fails when the nesting limit refuses a level.
//   - "Mgmt" returns what activity "MgmtURLs" gets from
//     ActivityContext.ManagementURLs("") (or the error text).
package main

import (
	"errors"
	"time"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

func init() {
	durable.RegisterOrchestrator("Flaky", func(ctx *durable.OrchestrationContext) (any, error) {
		var until int64
		if err := ctx.GetInput(&until); err != nil {
			return nil, err
		}
		var ok string
		if err := ctx.CallActivity("Ok", "x").Await(&ok); err != nil {
			return nil, err
		}
		if err := ctx.CreateTimer(ctx.CurrentUTCDateTime().Add(10 * time.Millisecond)).Await(nil); err != nil {
			return nil, err
		}
		var res string
		if err := ctx.CallActivity("FailUntil", until).Await(&res); err != nil {
			return nil, err
		}
		return ok + "+" + res, nil
	})
	durable.RegisterOrchestrator("FlakyParent", func(ctx *durable.OrchestrationContext) (any, error) {
		var until int64
		if err := ctx.GetInput(&until); err != nil {
			return nil, err
		}
		var out string
		err := ctx.CallSubOrchestrator("Flaky", until, durable.WithInstanceID(ctx.InstanceID()+":child")).Await(&out)
		return "parent(" + out + ")", err
	})
	durable.RegisterOrchestrator("Recurse", func(ctx *durable.OrchestrationContext) (any, error) {
		var depth int
		if err := ctx.GetInput(&depth); err != nil {
			return nil, err
		}
		return nil, ctx.CallSubOrchestrator("Recurse", depth+1).Await(nil)
	})
	durable.RegisterOrchestrator("Tree", func(ctx *durable.OrchestrationContext) (any, error) {
		return nil, ctx.CallSubOrchestrator("Leaf", nil, durable.WithInstanceID(ctx.InstanceID()+":leaf")).Await(nil)
	})
	durable.RegisterOrchestrator("Leaf", func(ctx *durable.OrchestrationContext) (any, error) {
		return "leaf done", ctx.WaitForExternalEvent("go").Await(nil)
	})
	durable.RegisterOrchestrator("Mgmt", func(ctx *durable.OrchestrationContext) (any, error) {
		var out string
		err := ctx.CallActivity("MgmtURLs", nil).Await(&out)
		return out, err
	})
	durable.RegisterActivity("MgmtURLs", func(ctx *durable.ActivityContext) (any, error) {
		m, err := ctx.ManagementURLs("")
		if err != nil {
			return "error: " + err.Error(), nil
		}
		return m.ID + " " + m.StatusQueryGetURI + " " + m.RewindPostURI, nil
	})
	durable.RegisterActivity("Ok", func(ctx *durable.ActivityContext) (any, error) {
		return "ok", nil
	})
	durable.RegisterActivity("FailUntil", func(ctx *durable.ActivityContext) (any, error) {
		var until int64
		if err := ctx.GetInput(&until); err != nil {
			return nil, err
		}
		if time.Now().UnixMilli() < until {
			return nil, errors.New("not yet")
		}
		return "done", nil
	})
}

func main() {}
