// Command hostileinit is a test guest for hostile instantiation and for
// activity slots. The tests patch the mode marker below in the built module
// (same length), which makes modules with different digests and behaviour
// from one build:
//
//   - "normal": behaves;
//   - "initsp": its package initialisation (_initialize) loops forever;
//   - "actspi": it loops in _initialize when the wall clock is past 2000,
//     which it is in activity instances and at deploy, never in orchestration
//     instances (their clock is the step's, zero at instantiation);
//   - any other 6 letters: like "normal", a module with another digest.
//
// Orchestrators CallNoop, CallSpin and CallSleep call the activities Noop
// (returns "ok"), Spin (logs "activity spinning", then loops forever) and Sleep (logs
// "sleeping", then sleeps for an hour) and return "ok" or "failed: " and the
// activity's error; orchestrator SpinStep logs "orchestrator spinning", then loops
// forever.
package main

import (
	"time"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

// mode is the marker the tests patch: "dw-mode:" and six letters.
var mode = [14]byte{'d', 'w', '-', 'm', 'o', 'd', 'e', ':', 'n', 'o', 'r', 'm', 'a', 'l'}

var sink int

func spin() {
	for {
		sink++
	}
}

func call(name string) func(ctx *durable.OrchestrationContext) (any, error) {
	return func(ctx *durable.OrchestrationContext) (any, error) {
		var s string
		if err := ctx.CallActivity(name, nil).Await(&s); err != nil {
			return "failed: " + err.Error(), nil
		}
		return s, nil
	}
}

func init() {
	switch string(mode[8:]) {
	case "initsp":
		spin()
	case "actspi":
		if time.Now().Year() > 2000 {
			spin()
		}
	}
	durable.RegisterOrchestrator("CallNoop", call("Noop"))
	durable.RegisterOrchestrator("CallSpin", call("Spin"))
	durable.RegisterOrchestrator("CallSleep", call("Sleep"))
	durable.RegisterOrchestrator("SpinStep", func(ctx *durable.OrchestrationContext) (any, error) {
		ctx.Logger().Info("orchestrator spinning")
		spin()
		return nil, nil
	})
	durable.RegisterActivity("Noop", func(ctx *durable.ActivityContext) (any, error) {
		return "ok", nil
	})
	durable.RegisterActivity("Spin", func(ctx *durable.ActivityContext) (any, error) {
		ctx.Logger().Info("activity spinning")
		spin()
		return nil, nil
	})
	durable.RegisterActivity("Sleep", func(ctx *durable.ActivityContext) (any, error) {
		ctx.Logger().Info("sleeping")
		time.Sleep(time.Hour)
		return "ok", nil
	})
}

func main() {}
