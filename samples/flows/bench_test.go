package flows_test

import (
	"testing"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/guest-sdk/durabletest"
	"github.com/durablewasm/durablewasm/samples/flows/benchwork"
)

func TestHello5(t *testing.T) {
	res := newEnv().Run("Hello5", map[string]string{"k": "v"})
	var out map[string]string
	mustComplete(t, res, &out)
	if out["k"] != "v" {
		t.Fatalf("output %s, want the input", res.Output)
	}
	calls := res.CallsOf(durabletest.CallActivity)
	if len(calls) != 5 {
		t.Fatalf("%d activity calls, want 5", len(calls))
	}
	for _, c := range calls {
		if c.Name != "Bench_Echo" || string(c.Input) != `{"k":"v"}` {
			t.Errorf("call %s(%s)", c.Name, c.Input)
		}
	}
}

func TestHello5NilInput(t *testing.T) {
	res := newEnv().Run("Hello5", nil)
	if string(res.Output) != "null" {
		t.Fatalf("status %s output %s, want null", res.Status, res.Output)
	}
}

func TestFanOut(t *testing.T) {
	res := newEnv().Run("FanOut", 100)
	var sum int
	mustComplete(t, res, &sum)
	if sum != 99*100/2 {
		t.Fatalf("sum %d", sum)
	}
	if n := len(res.CallsOf(durabletest.CallActivity)); n != 100 {
		t.Fatalf("%d activity calls, want 100", n)
	}
}

func TestWaitOne(t *testing.T) {
	env := newEnv()
	env.RaiseEventWhenWaiting("go", "payload")
	res := env.Run("WaitOne", nil)
	var s string
	mustComplete(t, res, &s)
	if s != "payload" {
		t.Fatalf("output %q", s)
	}
}

func TestWaitOneWithoutEvent(t *testing.T) {
	if res := newEnv().Run("WaitOne", nil); res.Status != abi.StatusRunning {
		t.Fatalf("status %s, want Running (waiting)", res.Status)
	}
}

func TestSteps(t *testing.T) {
	res := newEnv().Run("Steps", 50)
	var n int
	mustComplete(t, res, &n)
	if n != 50 || len(res.CallsOf(durabletest.CallActivity)) != 50 {
		t.Fatalf("output %d, %d calls", n, len(res.CallsOf(durabletest.CallActivity)))
	}
}

func TestStepsWait(t *testing.T) {
	env := newEnv()
	env.RaiseEventWhenWaiting("go", nil)
	res := env.Run("StepsWait", 20)
	var n int
	mustComplete(t, res, &n)
	if n != 21 || len(res.CallsOf(durabletest.CallActivity)) != 21 {
		t.Fatalf("output %d, %d calls", n, len(res.CallsOf(durabletest.CallActivity)))
	}
	if string(res.CustomStatus) != `"waiting"` {
		t.Fatalf("custom status %s", res.CustomStatus)
	}
}

func TestHello5IO(t *testing.T) {
	env := newEnv()
	var urls []string
	env.HTTP = func(req abi.HTTPRequest) abi.HTTPResponse {
		urls = append(urls, req.Method+" "+req.URL)
		return abi.HTTPResponse{Status: 200, Body: []byte("ok")}
	}
	res := env.Run("Hello5IO", "http://127.0.0.1:1/x")
	var total int
	mustComplete(t, res, &total)
	if total != 10 || len(urls) != 5 || urls[0] != "GET http://127.0.0.1:1/x" {
		t.Fatalf("total %d, requests %v", total, urls)
	}
}

func TestHello5IOStatus(t *testing.T) {
	env := newEnv()
	env.HTTP = func(req abi.HTTPRequest) abi.HTTPResponse { return abi.HTTPResponse{Status: 503} }
	if res := env.Run("Hello5IO", "http://127.0.0.1:1/x"); res.Status != abi.StatusFailed {
		t.Fatalf("status %s, want Failed", res.Status)
	}
}

func TestHello5CPU(t *testing.T) {
	res := newEnv().Run("Hello5CPU", 3)
	var out uint64
	mustComplete(t, res, &out)
	if out != benchwork.Compute(3) || len(res.CallsOf(durabletest.CallActivity)) != 5 {
		t.Fatalf("output %d (want %d), %d calls", out, benchwork.Compute(3), len(res.CallsOf(durabletest.CallActivity)))
	}
}
