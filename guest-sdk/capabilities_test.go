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
