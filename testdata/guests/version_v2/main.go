// Command version_v2 is a test guest: orchestrator "Versioned" waits for
// event "go", then calls activity "Which" and returns "v2/" + its result
// (activity "Which" returns "v2"). version_v1 and version_v2 differ only in
// these strings, so a v1 history replays on v2: they test that instances keep
// the module they started on across a deploy, and that migrate moves them.
package main

import durable "github.com/durablewasm/durablewasm/guest-sdk"

const version = "v2"

func init() {
	durable.RegisterOrchestrator("Versioned", func(ctx *durable.OrchestrationContext) (any, error) {
		if err := ctx.WaitForExternalEvent("go").Await(nil); err != nil {
			return nil, err
		}
		var which string
		if err := ctx.CallActivity("Which", nil).Await(&which); err != nil {
			return nil, err
		}
		return version + "/" + which, nil
	})
	durable.RegisterActivity("Which", func(ctx *durable.ActivityContext) (any, error) {
		return version, nil
	})
}

func main() {}
