package flows_test

import (
	"testing"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/guest-sdk/durabletest"
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
