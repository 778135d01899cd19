package flows

import (
	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

// HelloSequence (E1_HelloSequence) calls E1_SayHello for three cities in
// sequence and returns the greetings:
// ["Hello Tokyo!","Hello Seattle!","Hello London!"].
func HelloSequence(ctx *durable.OrchestrationContext) (any, error) {
	var outputs []string
	for _, city := range []string{"Tokyo", "Seattle", "London"} {
		var s string
		if err := ctx.CallActivity("E1_SayHello", city).Await(&s); err != nil {
			return nil, err
		}
		outputs = append(outputs, s)
	}
	return outputs, nil
}

// SayHello (activities E1_SayHello and SayHello) greets its input:
// "Hello <name>!".
func SayHello(ctx *durable.ActivityContext) (any, error) {
	var name string
	if err := ctx.GetInput(&name); err != nil {
		return nil, err
	}
	ctx.Logger().Info("saying hello", "name", name)
	return "Hello " + name + "!", nil
}

// HelloWorld greets its input (a JSON string; "World" when absent) with the
// SayHello activity and returns "Hello <input>!".
func HelloWorld(ctx *durable.OrchestrationContext) (any, error) {
	name := "World"
	if err := ctx.GetInput(&name); err != nil {
		return nil, err
	}
	var s string
	err := ctx.CallActivity("SayHello", name).Await(&s)
	return s, err
}

// SubOrchestrationResult is the output of E5_SubOrchestration.
type SubOrchestrationResult struct {
	Sequence []string `json:"sequence"`
	Hello    string   `json:"hello"`
}

// SubOrchestration (E5_SubOrchestration) runs E1_HelloSequence and
// HelloWorld (greeting its input, "World" when absent) as sub-orchestrations
// in parallel and returns both outputs.
func SubOrchestration(ctx *durable.OrchestrationContext) (any, error) {
	name := "World"
	if err := ctx.GetInput(&name); err != nil {
		return nil, err
	}
	seq := ctx.CallSubOrchestrator("E1_HelloSequence", nil)
	hello := ctx.CallSubOrchestrator("HelloWorld", name, durable.WithInstanceID(ctx.InstanceID()+":hello"))
	var out SubOrchestrationResult
	if err := seq.Await(&out.Sequence); err != nil {
		return nil, err
	}
	if err := hello.Await(&out.Hello); err != nil {
		return nil, err
	}
	return out, nil
}
