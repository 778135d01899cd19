package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/httpapi"
)

// TestIdempotencyKeyHeader: requests repeated with the same Idempotency-Key
// are applied once; the same key with other data is 409; a bad key is 400.
func TestIdempotencyKeyHeader(t *testing.T) {
	base, client := startSamples(t, httpapi.Options{Keys: []string{key}})
	wh := base + "/runtime/webhooks/durabletask"
	q := "?code=" + key
	post := func(path, idemKey, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", wh+path+q, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if idemKey != "" {
			req.Header.Set("Idempotency-Key", idemKey)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	for i := 0; i < 2; i++ {
		if code, body := post("/orchestrators/Counter/c1", "start-c1", "0"); code != 202 {
			t.Fatalf("start #%d: %d %s", i+1, code, body)
		}
	}
	for i := 0; i < 3; i++ {
		if code, body := post("/instances/c1/raiseEvent/operation", "incr-once", `"incr"`); code != 202 {
			t.Fatalf("raise #%d: %d %s", i+1, code, body)
		}
	}
	if code, body := post("/instances/c1/raiseEvent/operation", "incr-once", `"decr"`); code != 409 || !strings.Contains(body, "incr-once") {
		t.Fatalf("the key with other data: %d %s", code, body)
	}
	if code, body := post("/instances/c1/raiseEvent/operation", "bad key", `"incr"`); code != 400 || !strings.Contains(body, "Idempotency-Key") {
		t.Fatalf("a bad key: %d %s", code, body)
	}
	if code, body := post("/instances/c1/raiseEvent/operation", "", `"end"`); code != 202 {
		t.Fatalf("end: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := client.WaitForCompletion(ctx, "c1", 20*time.Millisecond)
	if err != nil || st.Status != abi.StatusCompleted || st.Output != "1" {
		t.Fatalf("counter after three keyed incr and end: %+v %v (want output 1)", st, err)
	}
}
