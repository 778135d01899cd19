package flows

import (
	"encoding/json"
	"fmt"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
	"github.com/durablewasm/durablewasm/samples/flows/benchwork"
)

// registerBench registers the benchmark orchestrators and their activities
// (bench/ runs them against go-workflows). Hello5, FanOut, WaitOne, Steps
// and StepsWait do no work of their own so that a run measures the engine;
// Hello5IO and Hello5CPU measure it with activities that wait on I/O or
// compute.
func registerBench(r durable.Registrar) {
	r.RegisterOrchestrator("Hello5", Hello5)
	r.RegisterOrchestrator("FanOut", FanOut)
	r.RegisterOrchestrator("WaitOne", WaitOne)
	r.RegisterOrchestrator("Steps", Steps)
	r.RegisterOrchestrator("StepsWait", StepsWait)
	r.RegisterOrchestrator("Hello5IO", Hello5IO)
	r.RegisterOrchestrator("Hello5CPU", Hello5CPU)
	r.RegisterActivity("Bench_Echo", Echo)
	r.RegisterActivity("Bench_HTTPGet", HTTPGet)
	r.RegisterActivity("Bench_Compute", Compute)
}

// Hello5 calls Bench_Echo five times in sequence, each time with the
// previous result (the first time with its input), and returns the last
// result: its input, unchanged.
func Hello5(ctx *durable.OrchestrationContext) (any, error) {
	var v json.RawMessage
	if err := ctx.GetInput(&v); err != nil {
		return nil, err
	}
	for i := 0; i < 5; i++ {
		var out json.RawMessage
		if err := ctx.CallActivity("Bench_Echo", v).Await(&out); err != nil {
			return nil, err
		}
		v = out
	}
	return v, nil
}

// FanOut (input n) calls Bench_Echo n times in parallel with inputs 0..n-1,
// waits for all of them and returns the sum of the results.
func FanOut(ctx *durable.OrchestrationContext) (any, error) {
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, err
	}
	tasks := make([]durable.Task, n)
	for i := range tasks {
		tasks[i] = ctx.CallActivity("Bench_Echo", i)
	}
	var results []int
	if err := ctx.WhenAll(tasks...).Await(&results); err != nil {
		return nil, err
	}
	sum := 0
	for _, r := range results {
		sum += r
	}
	return sum, nil
}

// WaitOne waits for the external event "go" and returns its data.
func WaitOne(ctx *durable.OrchestrationContext) (any, error) {
	var v json.RawMessage
	if err := ctx.WaitForExternalEvent("go").Await(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// Steps (input n) calls Bench_Echo n times in sequence (inputs 0..n-1), so
// its history grows by two events a step, and returns n.
func Steps(ctx *durable.OrchestrationContext) (any, error) {
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, err
	}
	if err := steps(ctx, n); err != nil {
		return nil, err
	}
	return n, nil
}

// StepsWait (input n) runs Steps' n calls, sets its custom status to
// "waiting", waits for the event "go", then calls Bench_Echo once more and
// returns n+1. It parks an orchestration with a long history so that the
// cost of rebuilding it (a cold replay) can be timed.
func StepsWait(ctx *durable.OrchestrationContext) (any, error) {
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, err
	}
	if err := steps(ctx, n); err != nil {
		return nil, err
	}
	if err := ctx.SetCustomStatus("waiting"); err != nil {
		return nil, err
	}
	if err := ctx.WaitForExternalEvent("go").Await(nil); err != nil {
		return nil, err
	}
	var out int
	if err := ctx.CallActivity("Bench_Echo", n).Await(&out); err != nil {
		return nil, err
	}
	return out + 1, nil
}

func steps(ctx *durable.OrchestrationContext, n int) error {
	for i := 0; i < n; i++ {
		var out int
		if err := ctx.CallActivity("Bench_Echo", i).Await(&out); err != nil {
			return err
		}
	}
	return nil
}

// Echo (activity Bench_Echo) returns its input.
func Echo(ctx *durable.ActivityContext) (any, error) {
	var v json.RawMessage
	if err := ctx.GetInput(&v); err != nil {
		return nil, err
	}
	if v == nil {
		v = json.RawMessage("null")
	}
	return v, nil
}

// HTTPResult is what Bench_HTTPGet returns: the response's status and body
// length.
type HTTPResult struct {
	Status int `json:"status"`
	Length int `json:"length"`
}

// Hello5IO (input: a URL) calls Bench_HTTPGet five times in sequence with
// the URL and returns the total body length. It fails if a response's
// status is not 200.
func Hello5IO(ctx *durable.OrchestrationContext) (any, error) {
	var url string
	if err := ctx.GetInput(&url); err != nil {
		return nil, err
	}
	total := 0
	for i := 0; i < 5; i++ {
		var r HTTPResult
		if err := ctx.CallActivity("Bench_HTTPGet", url).Await(&r); err != nil {
			return nil, err
		}
		if r.Status != 200 {
			return nil, fmt.Errorf("GET %s: status %d", url, r.Status)
		}
		total += r.Length
	}
	return total, nil
}

// HTTPGet (activity Bench_HTTPGet, input: a URL) makes a GET of the URL
// through the host (the module's HTTP allowlist must include its host) and
// returns the status and body length.
func HTTPGet(ctx *durable.ActivityContext) (any, error) {
	var url string
	if err := ctx.GetInput(&url); err != nil {
		return nil, err
	}
	resp, err := ctx.HTTPGet(url)
	if err != nil {
		return nil, err
	}
	return HTTPResult{Status: resp.Status, Length: len(resp.Body)}, nil
}

// Hello5CPU (input: iterations, benchwork.Iterations in bench/) calls
// Bench_Compute five times in sequence with its input and returns the last
// result.
func Hello5CPU(ctx *durable.OrchestrationContext) (any, error) {
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, err
	}
	var out uint64
	for i := 0; i < 5; i++ {
		if err := ctx.CallActivity("Bench_Compute", n).Await(&out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Compute (activity Bench_Compute, input: iterations) returns
// benchwork.Compute(iterations), the same Go code go-workflows' activity
// runs natively in bench/.
func Compute(ctx *durable.ActivityContext) (any, error) {
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, err
	}
	return benchwork.Compute(n), nil
}
