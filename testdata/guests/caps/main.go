// Command caps is a test guest for activity capabilities: "Caps" calls
// activity "Fetch" with a URL and returns what it reports: the configuration
// value "greeting" and the body (or error) of an HTTP GET of the URL.
// "Big" returns an activity result of n bytes (its input), for the payload
// limit. "DurableHTTP" makes a durable HTTP call (CallHTTP) of its input's
// URL and returns "<status> <body>" or "error: …".
package main

import (
	"fmt"
	"strings"
	"time"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

func init() {
	durable.RegisterOrchestrator("Caps", func(ctx *durable.OrchestrationContext) (any, error) {
		var url, out string
		if err := ctx.GetInput(&url); err != nil {
			return nil, err
		}
		err := ctx.CallActivity("Fetch", url).Await(&out)
		return out, err
	})
	durable.RegisterActivity("Fetch", func(ctx *durable.ActivityContext) (any, error) {
		var url string
		if err := ctx.GetInput(&url); err != nil {
			return nil, err
		}
		greeting, ok := ctx.Config("greeting")
		if !ok {
			greeting = "<no greeting>"
		}
		resp, err := ctx.HTTPGet(url)
		if err != nil {
			return greeting + " | error: " + err.Error(), nil
		}
		return greeting + " | " + string(resp.Body), nil
	})
	durable.RegisterOrchestrator("DurableHTTP", func(ctx *durable.OrchestrationContext) (any, error) {
		var in struct {
			URL     string
			Timeout time.Duration
		}
		if err := ctx.GetInput(&in); err != nil {
			return nil, err
		}
		resp, err := ctx.CallHTTP(durable.DurableHTTPRequest{URL: in.URL, Header: map[string]string{"X-Test": "1"}, Timeout: in.Timeout})
		if err != nil {
			return "error: " + err.Error(), nil
		}
		return fmt.Sprintf("%d %s", resp.Status, resp.Body), nil
	})
	durable.RegisterOrchestrator("Big", func(ctx *durable.OrchestrationContext) (any, error) {
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		var s string
		err := ctx.CallActivity("Blob", n).Await(&s)
		return len(s), err
	})
	durable.RegisterActivity("Blob", func(ctx *durable.ActivityContext) (any, error) {
		var n int
		err := ctx.GetInput(&n)
		return strings.Repeat("x", n), err
	})
}

func main() {}
