// Command hostile is a test guest whose orchestrators misbehave in every way
// the host must contain: "Spin" loops forever, "Block" blocks outside the
// SDK's await, "Panic" panics, "Grow" allocates until memory runs out.
// "Fine" completes normally (with activity "Echo"), to show that the worker
// keeps serving everything else. "BadOutput", "BadInput" and
// "BadActivityResult" hand the host text that is not JSON as an output, an
// activity input and an activity result.
package main

import (
	"encoding/json"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

var sink [][]byte

func init() {
	durable.RegisterOrchestrator("Spin", func(ctx *durable.OrchestrationContext) (any, error) {
		n := 0
		for {
			n++
		}
	})
	durable.RegisterOrchestrator("Block", func(ctx *durable.OrchestrationContext) (any, error) {
		select {}
	})
	durable.RegisterOrchestrator("Panic", func(ctx *durable.OrchestrationContext) (any, error) {
		var m map[string]int
		m["boom"] = 1 // nil map write
		return nil, nil
	})
	durable.RegisterOrchestrator("Grow", func(ctx *durable.OrchestrationContext) (any, error) {
		for {
			sink = append(sink, make([]byte, 16<<20))
		}
	})
	durable.RegisterOrchestrator("Fine", func(ctx *durable.OrchestrationContext) (any, error) {
		var s string
		err := ctx.CallActivity("Echo", "ok").Await(&s)
		return s, err
	})
	durable.RegisterOrchestrator("BadOutput", func(ctx *durable.OrchestrationContext) (any, error) {
		return json.RawMessage(`{"unterminated`), nil
	})
	durable.RegisterOrchestrator("BadInput", func(ctx *durable.OrchestrationContext) (any, error) {
		return nil, ctx.CallActivity("Echo", json.RawMessage(`not json`)).Await(nil)
	})
	durable.RegisterOrchestrator("BadActivityResult", func(ctx *durable.OrchestrationContext) (any, error) {
		return nil, ctx.CallActivity("BadResult", nil).Await(nil)
	})
	durable.RegisterActivity("BadResult", func(ctx *durable.ActivityContext) (any, error) {
		return json.RawMessage(`{1: 2}`), nil
	})
	durable.RegisterActivity("Echo", func(ctx *durable.ActivityContext) (any, error) {
		var v any
		err := ctx.GetInput(&v)
		return v, err
	})
}

func main() {}
