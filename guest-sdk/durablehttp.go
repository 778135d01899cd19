package durable

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/abi"
)

// DurableHTTPRequest is an HTTP request an orchestration makes through the
// host with CallHTTP.
type DurableHTTPRequest struct {
	// Method defaults to GET.
	Method string
	// URL must be absolute (http or https) and its host in the module's
	// allowlist (durablewasm deploy --allow-http HOST).
	URL    string
	Header map[string]string
	Body   []byte
	// DisableAsyncPattern turns off the 202 polling of Durable Functions'
	// asynchronous HTTP pattern (on by default, as there): while the
	// response is 202 Accepted with a Location header, CallHTTP waits on a
	// durable timer (the response's Retry-After seconds, else
	// PollInterval) and then GETs the Location, with the same headers.
	DisableAsyncPattern bool
	// PollInterval is the wait between polls when a 202 response has no
	// Retry-After (default 5 s).
	PollInterval time.Duration
	// Timeout, when positive, bounds the whole call, polls included: a
	// 202 still pending after it fails the call.
	Timeout time.Duration
}

// CallHTTP performs req through the host, durably, as Durable Functions'
// CallHttpAsync: the host makes the request natively (no activity of the
// module runs), with the module's HTTP allowlist, timeout and payload
// limit, and the request and response are recorded in history, so a replay
// returns the same response without a new request. Any status is a
// response; the error is a *TaskFailedError (type "HTTPError") when the
// request was refused, timed out or failed on the network, or a plain error
// when req is invalid or the polling timed out. It blocks the orchestration
// like Await.
func (c *OrchestrationContext) CallHTTP(req DurableHTTPRequest) (*HTTPResponse, error) {
	if req.Method == "" {
		req.Method = "GET"
	}
	interval := req.PollInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	var deadline time.Time
	if req.Timeout > 0 {
		deadline = c.CurrentUTCDateTime().Add(req.Timeout)
	}
	r := abi.HTTPRequest{Method: req.Method, URL: req.URL, Header: req.Header, Body: req.Body}
	for {
		var out abi.HTTPResponse
		if err := c.CallActivity(abi.ActivityHTTP, r).Await(&out); err != nil {
			return nil, err
		}
		resp := &HTTPResponse{Status: out.Status, Header: out.Header, Body: out.Body}
		location := headerValue(out.Header, "Location")
		if req.DisableAsyncPattern || out.Status != 202 || location == "" {
			return resp, nil
		}
		wait := interval
		if s, err := strconv.Atoi(headerValue(out.Header, "Retry-After")); err == nil && s >= 0 {
			wait = time.Duration(s) * time.Second
		}
		next := c.CurrentUTCDateTime().Add(wait)
		if !deadline.IsZero() && next.After(deadline) {
			return nil, fmt.Errorf("durable http %s %s: still 202 Accepted (polling %s) after the timeout of %s", req.Method, req.URL, location, req.Timeout)
		}
		if err := c.CreateTimer(next).Await(nil); err != nil {
			return nil, err
		}
		r = abi.HTTPRequest{Method: "GET", URL: location, Header: req.Header}
	}
}

// headerValue returns the value of header name in h, whatever its case.
func headerValue(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
