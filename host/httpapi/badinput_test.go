package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/httpapi"
)

// Bad input over the real HTTP stack, on miniredis with the samples
// deployed and a worker running (issue 12): every case must get a clear 4xx
// (or Durable Functions' answer), never a 500, and must change nothing.
func TestBadInputOverHTTP(t *testing.T) {
	m := miniredis.RunT(t)
	srv, cl := startSamplesServer(t, "redis://"+m.Addr(), httpapi.Options{Keys: []string{key}})
	wh := srv.URL() + httpapi.WebhookPath
	q := "?code=" + key
	ctx := context.Background()

	// Item 5: the management URLs handed to activities work as they are
	// with auth on: they carry code= and the served hub and connection.
	t.Run("ActivityManagementURLsWorkWithAuth", func(t *testing.T) {
		if _, err := srv.ManagementPayloadJSON(".."); err == nil {
			t.Error("management URLs for the id \"..\" were built")
		}
		st, err := cl.StartNew(ctx, client.StartOptions{FunctionName: "E1_HelloSequence", InstanceID: "mgmt 1+é"})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := cl.WaitForCompletion(wctx, st.InstanceID, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		b, err := srv.ManagementPayloadJSON(st.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		var p httpapi.HTTPManagementPayload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		resp, body := call(t, "GET", p.StatusQueryGetURI, "", "")
		if resp.StatusCode != 200 || !strings.Contains(body, `"instanceId":"mgmt 1+é"`) {
			t.Fatalf("statusQueryGetUri %s: %d %s", p.StatusQueryGetURI, resp.StatusCode, body)
		}
		u, err := url.Parse(p.StatusQueryGetURI)
		if err != nil {
			t.Fatal(err)
		}
		if v := u.Query(); v.Get("code") != key || v.Get("taskHub") != "TestHub" || v.Get("connection") != httpapi.DefaultConnectionName || p.ID != st.InstanceID {
			t.Fatalf("management payload %s", b)
		}
		if resp, body := call(t, "POST", p.RestartPostURI+"&restartWithNewInstanceId=true", "", ""); resp.StatusCode != 202 {
			t.Fatalf("restartPostUri: %d %s", resp.StatusCode, body)
		}
	})

	// Item 6: an empty created-time range is Durable Functions' answer
	// (nothing matches), not a 500.
	t.Run("EmptyCreatedRange", func(t *testing.T) {
		for _, filter := range []string{"&createdTimeFrom=2030-01-01&createdTimeTo=2020-01-01",
			"&createdTimeFrom=2030-01-01&createdTimeTo=2020-01-01&runtimeStatus=Completed&top=1"} {
			resp, body := call(t, "GET", wh+"/instances"+q+filter, "", "")
			if resp.StatusCode != 200 || body != "[]" || resp.Header.Get("x-ms-continuation-token") != "" {
				t.Errorf("list %s: %d %s", filter, resp.StatusCode, body)
			}
		}
		for _, filter := range []string{"&createdTimeFrom=9999-01-01", "&createdTimeFrom=2030-01-01&createdTimeTo=2020-01-01"} {
			if resp, body := call(t, "DELETE", wh+"/instances"+q+filter, "", ""); resp.StatusCode != 404 || body != "" {
				t.Errorf("purge %s: %d %s", filter, resp.StatusCode, body)
			}
		}
	})

	// Item 8: payloads over the module's payload limit (1 MiB by default)
	// are refused with 413 naming the limit, on every route that takes
	// one, and nothing is created or sent.
	t.Run("PayloadOverLimitIs413", func(t *testing.T) {
		const limit = 1 << 20
		over := `"` + strings.Repeat("x", limit-1) + `"` // limit+1 bytes
		for _, target := range []string{wh + "/orchestrators/E1_HelloSequence/big1" + q, wh + "/orchestrators/E1_HelloSequence" + q,
			srv.URL() + "/api/orchestrators/E1_HelloSequence" + q, srv.URL() + "/orchestrators/E1_HelloSequence/wait" + q + "&timeout=1&retryInterval=1"} {
			resp, body := call(t, "POST", target, "application/json", over)
			if resp.StatusCode != 413 || !strings.Contains(body, fmt.Sprint(limit)) || !strings.HasPrefix(body, `{"Message":"Payload too large: `) {
				t.Fatalf("start %s: %d %.300s", target, resp.StatusCode, body)
			}
		}
		if _, err := cl.GetStatus(ctx, "big1"); err == nil {
			t.Fatal("an instance was created for an over-limit input")
		}
		if resp, body := call(t, "POST", wh+"/orchestrators/E1_HelloSequence/big2"+q, "application/json", over[:limit-1]+`"`); resp.StatusCode != 202 {
			t.Fatalf("input of exactly the limit: %d %s", resp.StatusCode, body)
		}
		// An event for a running counter.
		if resp, body := call(t, "POST", wh+"/orchestrators/Counter/cbig"+q, "application/json", "1"); resp.StatusCode != 202 {
			t.Fatalf("start counter: %d %s", resp.StatusCode, body)
		}
		waitStatus(t, cl, "cbig", func(st *host.InstanceState) bool { return st.Status == abi.StatusRunning && st.CustomStatus == "1" })
		send := wh + "/instances/cbig/raiseEvent/operation" + q
		resp, body := call(t, "POST", send, "application/json", over)
		if resp.StatusCode != 413 || !strings.Contains(body, fmt.Sprint(limit)) {
			t.Fatalf("event: %d %.300s", resp.StatusCode, body)
		}
		if resp, body := call(t, "POST", send, "application/json", `"incr"`); resp.StatusCode != 202 {
			t.Fatalf("event after the refused one: %d %s", resp.StatusCode, body)
		}
		waitStatus(t, cl, "cbig", func(st *host.InstanceState) bool {
			if st.Status == abi.StatusFailed {
				t.Fatalf("counter failed: %+v", st)
			}
			return st.Status == abi.StatusRunning && st.CustomStatus == "2"
		})
	})

	// Item 9: taskHub= is compared exactly, like the CLI's hub names; a hub
	// that is not served gets 400 naming the served hub, and no route
	// creates anything for it.
	t.Run("TaskHubIsCaseSensitive", func(t *testing.T) {
		for _, hub := range []string{"testhub", "TESTHUB", "OtherHub"} {
			for _, c := range []struct{ method, path string }{{"GET", "/instances"}, {"GET", "/instances/big2"},
				{"GET", "/instances/big2/managementPayload"}, {"DELETE", "/instances/big2"}, {"POST", "/instances/cbig/terminate"}} {
				resp, body := call(t, c.method, wh+c.path+q+"&taskHub="+hub, "", "")
				if resp.StatusCode != 400 || !strings.Contains(body, `\"TestHub\"`) || !strings.Contains(body, hub) {
					t.Fatalf("%s %s with taskHub=%s: %d %s", c.method, c.path, hub, resp.StatusCode, body)
				}
				if strings.EqualFold(hub, "TestHub") && !strings.Contains(body, "case-sensitive") {
					t.Fatalf("taskHub=%s: %s", hub, body)
				}
			}
		}
		for _, k := range m.Keys() {
			if strings.Contains(strings.ToLower(k), "otherhub") || strings.Contains(k, "testhub") || strings.Contains(k, "TESTHUB") {
				t.Fatalf("key %q created for a hub that is not served", k)
			}
		}
		if resp, body := call(t, "GET", wh+"/instances/big2"+q+"&taskHub=TestHub", "", ""); resp.StatusCode != 200 && resp.StatusCode != 202 {
			t.Fatalf("taskHub=TestHub: %d %s", resp.StatusCode, body)
		}
	})

	// Item 10: a changed continuation token is refused with 400.
	t.Run("TamperedContinuationTokenIs400", func(t *testing.T) {
		list := func(token string) (*http.Response, string) {
			t.Helper()
			req, _ := http.NewRequest("GET", wh+"/instances"+q+"&top=1", nil)
			req.Header.Set("x-ms-continuation-token", token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
			return resp, b.String()
		}
		resp, _ := list("")
		tok := resp.Header.Get("x-ms-continuation-token")
		if resp.StatusCode != 200 || tok == "" {
			t.Fatalf("first page: %d %q", resp.StatusCode, tok)
		}
		if resp, body := list(tok); resp.StatusCode != 200 {
			t.Fatalf("issued token: %d %s", resp.StatusCode, body)
		}
		for i := range tok {
			c := byte('A')
			if tok[i] == 'A' {
				c = 'B'
			}
			bad := tok[:i] + string(c) + tok[i+1:]
			if resp, body := list(bad); resp.StatusCode != 400 || !strings.Contains(body, "x-ms-continuation-token") {
				t.Fatalf("token %q changed at %d: %d %s", bad, i, resp.StatusCode, body)
			}
		}
	})

	// Item 10: ids that host.ValidateInstanceID refuses get 400 with its
	// message on every instance route, also when the router sees them
	// percent-decoded or as literal dot segments (Go's client, unlike curl
	// and browsers, sends "/.." as is).
	t.Run("InvalidInstanceIDsAre400", func(t *testing.T) {
		for _, id := range []string{"..", ".", "%2e%2e", "%2E", ".%2e", "%ff", "a%01b", "%40e", strings.Repeat("x", 257)} {
			for _, c := range []struct{ method, path string }{{"GET", ""}, {"DELETE", ""}, {"GET", "/managementPayload"},
				{"POST", "/terminate"}, {"POST", "/suspend"}, {"POST", "/resume"}, {"POST", "/rewind"}, {"POST", "/restart"},
				{"POST", "/raiseEvent/E"}} {
				target := wh + "/instances/" + id + c.path + q
				resp, body := call(t, c.method, target, "application/json", "1")
				if resp.StatusCode != 400 || !strings.Contains(body, "invalid instance id") {
					t.Fatalf("%s %s: %d %s", c.method, target, resp.StatusCode, body)
				}
			}
			target := wh + "/orchestrators/E1_HelloSequence/" + id + q
			if resp, body := call(t, "POST", target, "", ""); resp.StatusCode != 400 || !strings.Contains(body, "invalid instance id") {
				t.Fatalf("start %s: %d %s", target, resp.StatusCode, body)
			}
		}
	})
}

// TestBodyOverLimitRefusedBeforeRead sends, on a real connection, headers
// announcing a body over MaxBodyBytes and no body: the 413 must come at
// once, without the server waiting for (reading) the body.
func TestBodyOverLimitRefusedBeforeRead(t *testing.T) {
	srv, err := httpapi.New(client.New(nil, nil), httpapi.Options{Addr: "127.0.0.1:0", Keys: []string{key}, MaxBodyBytes: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The deadline only ends a failing test; the server's own read timeout
	// is 30 s.
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST %s/orchestrators/E1_HelloSequence?code=%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n", httpapi.WebhookPath, key)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response before the body was sent: %v", err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	if resp.StatusCode != 413 || !strings.Contains(b.String(), "limit of 16 bytes") {
		t.Fatalf("%d %s", resp.StatusCode, b.String())
	}
}

// waitStatus polls id until ok or 30 s.
func waitStatus(t *testing.T, c *client.Client, id string, ok func(*host.InstanceState) bool) *host.InstanceState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := c.GetStatus(context.Background(), id)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v %v", id, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
