package flows_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/guest-sdk/durabletest"
	"github.com/durablewasm/durablewasm/samples/flows"
)

func newEnv() *durabletest.Env {
	env := durabletest.New()
	flows.Register(env)
	return env
}

func mustComplete(t *testing.T, res *durabletest.Result, v any) {
	t.Helper()
	if res.Status != abi.StatusCompleted {
		t.Fatalf("status %s, failure %v", res.Status, res.Failure)
	}
	if err := res.Decode(v); err != nil {
		t.Fatalf("decode output %s: %v", res.Output, err)
	}
}

func TestHelloSequence(t *testing.T) {
	res := newEnv().Run("E1_HelloSequence", nil)
	if res.Status != abi.StatusCompleted {
		t.Fatalf("status %s: %v", res.Status, res.Failure)
	}
	if got, want := string(res.Output), `["Hello Tokyo!","Hello Seattle!","Hello London!"]`; got != want {
		t.Fatalf("output %s, want %s", got, want)
	}
	var inputs []string
	for _, c := range res.CallsOf(durabletest.CallActivity) {
		if c.Name != "E1_SayHello" {
			t.Errorf("unexpected activity %s", c.Name)
		}
		inputs = append(inputs, string(c.Input))
	}
	if want := []string{`"Tokyo"`, `"Seattle"`, `"London"`}; !reflect.DeepEqual(inputs, want) {
		t.Fatalf("activity inputs %v, want %v", inputs, want)
	}
}

func TestHelloSequenceActivityFailure(t *testing.T) {
	env := newEnv()
	env.OnActivity("E1_SayHello", func(in json.RawMessage) (any, error) {
		if string(in) == `"Seattle"` {
			return nil, errors.New("rain")
		}
		return "ok", nil
	})
	res := env.Run("E1_HelloSequence", nil)
	if res.Status != abi.StatusFailed {
		t.Fatalf("status %s", res.Status)
	}
	if res.Failure.Inner == nil || res.Failure.Inner.Message != "rain" || res.Failure.Inner.Type != "ActivityError" {
		t.Fatalf("failure %+v inner %+v", res.Failure, res.Failure.Inner)
	}
	if n := len(res.CallsOf(durabletest.CallActivity)); n != 2 {
		t.Fatalf("%d activity calls, want 2 (stop at the failure)", n)
	}
}

func TestHelloWorld(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input any
		want  string
	}{
		{"named", "Ada", "Hello Ada!"},
		{"default", nil, "Hello World!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out string
			mustComplete(t, newEnv().Run("HelloWorld", tc.input), &out)
			if out != tc.want {
				t.Fatalf("got %q, want %q", out, tc.want)
			}
		})
	}
}

func TestBackupSiteContent(t *testing.T) {
	dir := "/site/wwwroot"
	var total int64
	res := newEnv().Run("E2_BackupSiteContent", dir)
	mustComplete(t, res, &total)
	files := flows.FileList(dir)
	var want int64
	for _, f := range files {
		want += flows.FileSize(f)
	}
	if total != want {
		t.Fatalf("total %d, want %d", total, want)
	}
	copies := 0
	for _, c := range res.CallsOf(durabletest.CallActivity) {
		if c.Name == "E2_CopyFileToBlob" {
			copies++
		}
	}
	if copies != len(files) || len(files) < 3 {
		t.Fatalf("%d copies of %d files", copies, len(files))
	}
	// all copies were scheduled before any was awaited (fan-out): they
	// all happened at the same fake time in one step.
	if !reflect.DeepEqual(flows.FileList(dir), files) {
		t.Fatal("file list is not deterministic")
	}
}

func TestBackupSiteContentCopyFails(t *testing.T) {
	env := newEnv()
	env.OnActivity("E2_CopyFileToBlob", func(in json.RawMessage) (any, error) {
		var p string
		json.Unmarshal(in, &p)
		if p == "/d/file-01.dat" {
			return nil, errors.New("disk full")
		}
		return 10, nil
	})
	res := env.Run("E2_BackupSiteContent", "/d")
	if res.Status != abi.StatusFailed || res.Failure.Inner == nil || res.Failure.Inner.Message != "disk full" {
		t.Fatalf("status %s failure %+v", res.Status, res.Failure)
	}
}

func TestBackupSiteContentNeedsInput(t *testing.T) {
	res := newEnv().Run("E2_BackupSiteContent", nil)
	if res.Status != abi.StatusFailed || res.Failure.Type != "OrchestratorError" {
		t.Fatalf("status %s failure %+v", res.Status, res.Failure)
	}
}

func TestMonitorClearsOnThirdCheck(t *testing.T) {
	env := newEnv()
	checks := 0
	env.OnActivity("E3_GetIsClear", func(json.RawMessage) (any, error) {
		checks++
		return checks == 3, nil
	})
	start := durabletest.DefaultStartTime
	res := env.Run("E3_Monitor", flows.MonitorRequest{Location: "Seattle", Phone: "555", ExpiryTime: start.Add(6 * time.Hour)})
	var out flows.MonitorResult
	mustComplete(t, res, &out)
	if !out.Alerted || out.Checks != 3 {
		t.Fatalf("result %+v", out)
	}
	if res.Generations != 3 {
		t.Fatalf("generations %d, want 3", res.Generations)
	}
	timers := res.CallsOf(durabletest.CallTimer)
	if len(timers) != 2 {
		t.Fatalf("%d timers, want 2", len(timers))
	}
	for i, tm := range timers {
		if want := start.Add(time.Duration(i+1) * flows.DefaultPollingInterval); !tm.FireAt.Equal(want) {
			t.Errorf("timer %d fires at %v, want %v", i, tm.FireAt, want)
		}
	}
	alerts := 0
	for _, c := range res.CallsOf(durabletest.CallActivity) {
		if c.Name == "E3_SendGoodWeatherAlert" {
			alerts++
			if string(c.Input) != `"555"` {
				t.Errorf("alert input %s", c.Input)
			}
		}
	}
	if alerts != 1 {
		t.Fatalf("%d alerts", alerts)
	}
}

func TestMonitorExpires(t *testing.T) {
	env := newEnv()
	start := durabletest.DefaultStartTime
	res := env.Run("E3_Monitor", flows.MonitorRequest{Location: "Seattle", ExpiryTime: start.Add(2 * time.Hour)})
	var out flows.MonitorResult
	mustComplete(t, res, &out)
	if out.Alerted || out.Checks != 4 {
		t.Fatalf("result %+v, want 4 checks and no alert", out)
	}
	if !res.End.Equal(start.Add(2 * time.Hour)) {
		t.Fatalf("ended at %v", res.End)
	}
}

func TestMonitorRealActivities(t *testing.T) {
	var out flows.MonitorResult
	mustComplete(t, newEnv().Run("E3_Monitor", flows.MonitorRequest{Location: "Phoenix", ExpiryTime: durabletest.DefaultStartTime.Add(time.Hour)}), &out)
	if !out.Alerted || out.Checks != 1 {
		t.Fatalf("result %+v", out)
	}
}

func TestSmsPhoneVerification(t *testing.T) {
	phone := "+1-425-555-0100"
	code := flows.ChallengeCode(phone)
	for _, tc := range []struct {
		name    string
		setup   func(env *durabletest.Env)
		want    bool
		waits   int
		endTime time.Duration
	}{
		{"correct first", func(env *durabletest.Env) { env.RaiseEventWhenWaiting("SmsChallengeResponse", code) }, true, 1, 0},
		{"correct third", func(env *durabletest.Env) {
			env.RaiseEventWhenWaiting("SmsChallengeResponse", 1)
			env.RaiseEventWhenWaiting("SmsChallengeResponse", 2)
			env.RaiseEventWhenWaiting("SmsChallengeResponse", code)
		}, true, 3, 0},
		{"three wrong", func(env *durabletest.Env) {
			for i := 0; i < 4; i++ {
				env.RaiseEventWhenWaiting("SmsChallengeResponse", i)
			}
		}, false, 3, 0},
		{"timeout", func(env *durabletest.Env) {}, false, 1, flows.SmsChallengeTimeout},
		{"late answer", func(env *durabletest.Env) {
			env.RaiseEventAfter(2*time.Minute, "SmsChallengeResponse", code)
		}, false, 1, flows.SmsChallengeTimeout},
		{"answer in time", func(env *durabletest.Env) {
			env.RaiseEventAfter(time.Minute, "SmsChallengeResponse", code)
		}, true, 1, time.Minute},
		{"answer before start", func(env *durabletest.Env) { env.RaiseEvent("SmsChallengeResponse", code) }, true, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv()
			tc.setup(env)
			res := env.Run("E4_SmsPhoneVerification", phone)
			var ok bool
			mustComplete(t, res, &ok)
			if ok != tc.want {
				t.Fatalf("verified=%v, want %v", ok, tc.want)
			}
			if n := len(res.CallsOf(durabletest.CallWaitEvent)); n != tc.waits {
				t.Fatalf("%d waits, want %d", n, tc.waits)
			}
			if n := len(res.CallsOf(durabletest.CallTimer)); n != 1 {
				t.Fatalf("%d timers, want 1", n)
			}
			if want := durabletest.DefaultStartTime.Add(tc.endTime); !res.End.Equal(want) {
				t.Fatalf("ended at %v, want %v", res.End, want)
			}
		})
	}
}

func TestCounter(t *testing.T) {
	env := newEnv()
	for _, op := range []string{"incr", "incr", "incr", "decr", "bogus", "incr"} {
		env.RaiseEventWhenWaiting("operation", op)
	}
	env.RaiseEventWhenWaiting("operation", "end")
	res := env.Run("Counter", nil)
	var n int
	mustComplete(t, res, &n)
	if n != 3 {
		t.Fatalf("count %d, want 3", n)
	}
	if res.Generations != 7 {
		t.Fatalf("generations %d, want 7", res.Generations)
	}
	if string(res.CustomStatus) != "3" {
		t.Fatalf("custom status %s", res.CustomStatus)
	}
	if len(res.Logs) != 1 || res.Logs[0].Level != abi.LogWarn {
		t.Fatalf("logs %+v", res.Logs)
	}
}

// Events raised before the start are buffered; each generation consumes one
// and keeps the rest (WithKeepUnprocessedEvents).
func TestCounterKeepsUnprocessedEvents(t *testing.T) {
	env := newEnv()
	for _, op := range []string{"incr", "incr", "reset", "incr", "end", "incr"} {
		env.RaiseEvent("operation", op)
	}
	res := env.Run("Counter", 10)
	var n int
	mustComplete(t, res, &n)
	if n != 1 || res.Generations != 5 {
		t.Fatalf("count %d after %d generations, want 1 after 5", n, res.Generations)
	}
	cans := res.CallsOf(durabletest.CallContinueAsNew)
	var inputs []string
	for _, c := range cans {
		inputs = append(inputs, string(c.Input))
	}
	if want := []string{"11", "12", "0", "1"}; !reflect.DeepEqual(inputs, want) {
		t.Fatalf("continue-as-new inputs %v, want %v", inputs, want)
	}
}

func TestCounterWaitsForever(t *testing.T) {
	res := newEnv().Run("Counter", 5)
	if res.Status != abi.StatusRunning || string(res.CustomStatus) != "5" {
		t.Fatalf("status %s custom %s", res.Status, res.CustomStatus)
	}
}

func TestSubOrchestration(t *testing.T) {
	env := newEnv()
	env.InstanceID = "parent"
	res := env.Run("E5_SubOrchestration", "Ada")
	var out flows.SubOrchestrationResult
	mustComplete(t, res, &out)
	want := flows.SubOrchestrationResult{Sequence: []string{"Hello Tokyo!", "Hello Seattle!", "Hello London!"}, Hello: "Hello Ada!"}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %+v, want %+v", out, want)
	}
	subs := res.CallsOf(durabletest.CallSubOrchestration)
	if len(subs) != 2 || subs[1].InstanceID != "parent:hello" || subs[0].InstanceID == "" {
		t.Fatalf("sub calls %+v", subs)
	}
	if c := res.Children["parent:hello"]; c == nil || c.Status != abi.StatusCompleted || string(c.Output) != `"Hello Ada!"` {
		t.Fatalf("child %+v", c)
	}
}

func TestSubOrchestrationFailure(t *testing.T) {
	env := newEnv()
	env.OnActivity("SayHello", func(json.RawMessage) (any, error) { panic("boom") })
	res := env.Run("E5_SubOrchestration", nil)
	if res.Status != abi.StatusFailed {
		t.Fatalf("status %s", res.Status)
	}
	// parent failure <- sub-orchestration failure <- activity panic
	inner := res.Failure.Inner
	if inner == nil || inner.Inner == nil || inner.Inner.Type != "Panic" {
		t.Fatalf("failure chain %+v / %+v", res.Failure, inner)
	}
}
