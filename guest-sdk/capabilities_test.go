package durable_test

import (
	"strings"
	"testing"

	"github.com/durablewasm/durablewasm/abi"
	durable "github.com/durablewasm/durablewasm/guest-sdk"
	"github.com/durablewasm/durablewasm/guest-sdk/durabletest"
)

// TestActivityConfigAndHTTP runs an activity that reads configuration and
// makes HTTP requests through durabletest's fake host.
func TestActivityConfigAndHTTP(t *testing.T) {
	res := run(t, func(ctx *durable.OrchestrationContext) (any, error) {
		var out string
		err := ctx.CallActivity("A", nil).Await(&out)
		return out, err
	}, func(env *durabletest.Env) {
		env.Config = map[string]string{"k": strings.Repeat("v", 1000)}
		env.HTTP = func(r abi.HTTPRequest) abi.HTTPResponse {
			if r.URL != "https://api.example.com/x" {
				return abi.HTTPResponse{Error: "not allowed"}
			}
			return abi.HTTPResponse{Status: 201, Body: []byte(strings.Repeat("b", 5000))}
		}
		env.RegisterActivity("A", func(ctx *durable.ActivityContext) (any, error) {
			v, ok := ctx.Config("k")
			_, missing := ctx.Config("nope")
			resp, err := ctx.HTTPGet("https://api.example.com/x")
			if err != nil {
				return nil, err
			}
			_, refused := ctx.HTTPGet("https://other.example.com/")
			if !ok || len(v) != 1000 || missing || resp.Status != 201 || len(resp.Body) != 5000 || refused == nil || !strings.Contains(refused.Error(), "not allowed") {
				return "wrong", nil
			}
			return "right", nil
		})
	})
	wantOutput(t, res, `"right"`)
}

// TestRandIsReplaySafe checks that ctx.Rand draws the same numbers in two
// runs of the same instance and different ones for another instance.
func TestRandIsReplaySafe(t *testing.T) {
	draw := func(id string) string {
		env := durabletest.New()
		env.InstanceID = id
		env.RegisterOrchestrator("O", func(ctx *durable.OrchestrationContext) (any, error) {
			r := ctx.Rand()
			return []uint64{r.Uint64(), r.Uint64()}, nil
		})
		res := env.Run("O", nil)
		return string(res.Output)
	}
	if a, b := draw("x"), draw("x"); a != b || a == "" {
		t.Fatalf("two runs of x drew %s and %s", a, b)
	}
	if draw("x") == draw("y") {
		t.Fatal("instances x and y drew the same numbers")
	}
}
