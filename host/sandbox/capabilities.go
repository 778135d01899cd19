package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/tetratelabs/wazero/api"

	"github.com/durablewasm/durablewasm/abi"
)

// This file implements the activity capabilities a module declares at
// deploy: configuration values and outbound HTTP restricted to an allowlist.
// Orchestrations get neither (their calls return abi.ErrNotInStep).

// writeResult answers a host function with the buffer protocol: the result
// length, with the bytes copied to buf when they fit.
func writeResult(m api.Module, stack []uint64, bufPtr, bufCap uint64, b []byte) {
	if uint64(len(b)) <= uint64(uint32(bufCap)) && len(b) > 0 && !m.Memory().Write(uint32(bufPtr), b) {
		stack[0] = api.EncodeI64(abi.ErrBadArgument)
		return
	}
	stack[0] = uint64(len(b))
}

func activityCall(ctx context.Context, stack []uint64) *actCall {
	c, ok := ctx.Value(callKey{}).(*actCall)
	if !ok || c.handle != uint32(stack[0]) {
		return nil
	}
	return c
}

func getConfig(ctx context.Context, m api.Module, stack []uint64) {
	c := activityCall(ctx, stack)
	if c == nil {
		stack[0] = api.EncodeI64(abi.ErrNotInStep)
		return
	}
	key, ok := read(m, stack[1], stack[2])
	if !ok {
		stack[0] = api.EncodeI64(abi.ErrBadArgument)
		return
	}
	v, found := c.settings.Config[key]
	if !found {
		stack[0] = api.EncodeI64(abi.ErrNotFound)
		return
	}
	writeResult(m, stack, stack[3], stack[4], []byte(v))
}

func httpRequest(ctx context.Context, m api.Module, stack []uint64) {
	c := activityCall(ctx, stack)
	if c == nil {
		stack[0] = api.EncodeI64(abi.ErrNotInStep)
		return
	}
	req, ok := m.Memory().Read(uint32(stack[1]), uint32(stack[2]))
	if !ok {
		stack[0] = api.EncodeI64(abi.ErrBadArgument)
		return
	}
	if c.lastHTTPReq != nil && bytes.Equal(c.lastHTTPReq, req) {
		writeResult(m, stack, stack[3], stack[4], c.lastHTTPResp)
		return
	}
	if c.async {
		// Asynchronous: start the request, and let the guest park until
		// it is answered (see activities.go).
		if c.op == nil {
			c.op = c.startHTTP(append([]byte(nil), req...))
		}
		stack[0] = api.EncodeI64(abi.ErrPending)
		return
	}
	c.lastHTTPReq = append([]byte(nil), req...)
	if !c.deadline.IsZero() {
		// The request ends with the activity's deadline at the latest
		// (the guest call's context carries none: see Instance.call).
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, c.deadline)
		defer cancel()
	}
	// A worker's shutdown ends the request at its deadline too (DoHTTP).
	c.lastHTTPResp = encodeJSON(DoHTTP(ctx, c.settings, req, c.maxPayload))
	writeResult(m, stack, stack[3], stack[4], c.lastHTTPResp)
}

// DoHTTP performs one outbound HTTP request, req being the JSON of an
// abi.HTTPRequest, for a module whose settings are st, as the http_request
// import does: only to hosts in st.HTTPAllow, within st.HTTPTimeout,
// following at most 5 redirects (each allowed too), with response bodies of
// at most maxBody bytes. It ends when ctx ends or when the guest set ctx
// carries (Set.With) is aborted. Every refusal or failure is a response
// with Error set. The worker runs orchestrations' durable HTTP calls
// (abi.ActivityHTTP) with it.
func DoHTTP(ctx context.Context, st *host.AppSettings, req []byte, maxBody int) *abi.HTTPResponse {
	if done := abortedChan(ctx); done != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return doHTTP(ctx, st, req, maxBody)
}

// startHTTP performs req in a goroutine, under c's context and deadline,
// and returns the outstanding call, whose done closes when resp is set.
// Cancelling it (a dropped activity) ends the request.
func (c *actCall) startHTTP(req []byte) *asyncOp {
	ctx, cancel := context.WithDeadline(c.ctx, c.deadline)
	op := &asyncOp{req: req, done: make(chan struct{}), cancel: cancel}
	go func() {
		op.resp = encodeJSON(doHTTP(ctx, c.settings, req, c.maxPayload))
		close(op.done)
	}()
	return op
}

// httpTransport carries every activity's and durable HTTP request. It
// keeps more idle connections per host than http.DefaultTransport's 2:
// activities often call one service many at a time, and with 2 kept, each
// of 1,000 concurrent requests to one host dialled a new connection.
var httpTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 256
	return t
}()

// hostAllowed reports whether u's host matches an allowlist entry: "host",
// "host:port" or "*.suffix" (any subdomain of suffix, any port).
func hostAllowed(allow []string, u *url.URL) bool {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, a := range allow {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case strings.HasPrefix(a, "*."):
			if strings.HasSuffix(strings.ToLower(host), a[1:]) {
				return true
			}
		case strings.Contains(a, ":"):
			if h, p, err := net.SplitHostPort(a); err == nil && strings.EqualFold(h, host) && p == port {
				return true
			}
		case strings.EqualFold(a, host):
			return true
		}
	}
	return false
}

// doHTTP performs one allowlisted request. Every refusal or failure is an
// HTTPResponse with Error set, so the guest gets a message it can show.
func doHTTP(ctx context.Context, st *host.AppSettings, raw []byte, maxBody int) *abi.HTTPResponse {
	var r abi.HTTPRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		return &abi.HTTPResponse{Error: "malformed request: " + err.Error()}
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &abi.HTTPResponse{Error: fmt.Sprintf("invalid URL %q: an absolute http:// or https:// URL is required", r.URL)}
	}
	if !hostAllowed(st.HTTPAllow, u) {
		allowed := "none (deploy with --allow-http HOST)"
		if len(st.HTTPAllow) > 0 {
			allowed = strings.Join(st.HTTPAllow, ", ")
		}
		return &abi.HTTPResponse{Error: fmt.Sprintf("host %s is not in the module's HTTP allowlist (allowed: %s)", u.Host, allowed)}
	}
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	timeout := st.HTTPTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(r.Body))
	if err != nil {
		return &abi.HTTPResponse{Error: err.Error()}
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: httpTransport, CheckRedirect: func(next *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if !hostAllowed(st.HTTPAllow, next.URL) {
			return fmt.Errorf("redirect to %s, which is not in the module's HTTP allowlist", next.URL.Host)
		}
		return nil
	}}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return &abi.HTTPResponse{Error: fmt.Sprintf("request to %s timed out after %s", u.Host, timeout)}
		}
		return &abi.HTTPResponse{Error: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(maxBody)+1))
	if err != nil {
		return &abi.HTTPResponse{Error: "reading the response: " + err.Error()}
	}
	if len(body) > maxBody {
		return &abi.HTTPResponse{Error: fmt.Sprintf("the response body is over the payload limit of %d bytes", maxBody)}
	}
	out := &abi.HTTPResponse{Status: resp.StatusCode, Header: map[string]string{}, Body: body}
	for k := range resp.Header {
		out.Header[k] = resp.Header.Get(k)
	}
	return out
}
