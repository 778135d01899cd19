// Package gosdk_test tests the Go guest SDK from the root module: it runs
// the SDK compiled to Wasm (guest-sdk/testdata/tinyguest under wazero), and
// the tests of the abi and guest-sdk modules. These live here because
// guest-sdk is a module of its own that depends on nothing but package abi
// (no wazero).
package gosdk_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/durablewasm/durablewasm/abi"
)

// These tests build guest-sdk/testdata/tinyguest for wasip1 and run it under wazero
// with a minimal scripted host, proving that the real exports and imports
// work: goroutines parked across export calls, multiplexing, the buffer
// protocol, stuck detection, drop and nondeterminism handling.

var (
	tinyOnce sync.Once
	tinyWasm []byte
	tinyErr  error
)

func buildTinyGuest(t *testing.T) []byte {
	t.Helper()
	tinyOnce.Do(func() {
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		dir, err := os.MkdirTemp("", "tinyguest")
		if err != nil {
			tinyErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "tiny.wasm")
		cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", out, "./testdata/tinyguest")
		cmd.Dir = filepath.Join("..", "..", "guest-sdk") // in the guest-sdk module
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			tinyErr = fmt.Errorf("build tiny guest: %v\n%s", err, msg)
			return
		}
		tinyWasm, tinyErr = os.ReadFile(out)
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyWasm
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

type sig struct{ params, results []api.ValueType }

// wantExports and wantImports are the signatures documented in package abi.
var wantExports = map[string]sig{
	abi.ExportABIVersion:         {nil, []api.ValueType{i32}},
	abi.ExportAlloc:              {[]api.ValueType{i32}, []api.ValueType{i32}},
	abi.ExportListFunctions:      {nil, []api.ValueType{i32}},
	abi.ExportOrchestratorStart:  {[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
	abi.ExportOrchestratorResume: {[]api.ValueType{i32}, []api.ValueType{i32}},
	abi.ExportOrchestratorDrop:   {[]api.ValueType{i32}, []api.ValueType{i32}},
	abi.ExportActivityRun:        {[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
	abi.ExportActivityResume:     {[]api.ValueType{i32}, []api.ValueType{i32}},
	abi.ExportActivityDrop:       {[]api.ValueType{i32}, []api.ValueType{i32}},
	"_initialize":                {nil, nil},
}

var wantImports = map[string]sig{
	abi.ImportRegister:                {[]api.ValueType{i32, i32, i32}, nil},
	abi.ImportScheduleActivity:        {[]api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}},
	abi.ImportScheduleSubOrchestrator: {[]api.ValueType{i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}},
	abi.ImportCreateTimer:             {[]api.ValueType{i32, i64}, []api.ValueType{i32}},
	abi.ImportWaitEvent:               {[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
	abi.ImportCancelTask:              {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	abi.ImportSendEvent:               {[]api.ValueType{i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}},
	abi.ImportPoll:                    {[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
	abi.ImportTaskResult:              {[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}},
	abi.ImportNow:                     {[]api.ValueType{i32}, []api.ValueType{i64}},
	abi.ImportNewGUID:                 {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	abi.ImportIsReplaying:             {[]api.ValueType{i32}, []api.ValueType{i32}},
	abi.ImportSetCustomStatus:         {[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
	abi.ImportContinueAsNew:           {[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}},
	abi.ImportComplete:                {[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}},
	abi.ImportLog:                     {[]api.ValueType{i32, i32, i32, i32}, nil},
}

func TestWasmExportsAndImports(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	cm, err := r.CompileModule(ctx, buildTinyGuest(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]sig{}
	for name, d := range cm.ExportedFunctions() {
		got[name] = sig{d.ParamTypes(), d.ResultTypes()}
	}
	if !reflect.DeepEqual(normalize(got), normalize(wantExports)) {
		t.Errorf("exports:\n got %v\nwant %v", normalize(got), normalize(wantExports))
	}
	got = map[string]sig{}
	for _, d := range cm.ImportedFunctions() {
		mod, name, _ := d.Import()
		if mod == abi.HostModule {
			got[name] = sig{d.ParamTypes(), d.ResultTypes()}
		} else if mod != wasi_snapshot_preview1.ModuleName {
			t.Errorf("unexpected import module %q (%s)", mod, name)
		}
	}
	if !reflect.DeepEqual(normalize(got), normalize(wantImports)) {
		t.Errorf("imports:\n got %v\nwant %v", normalize(got), normalize(wantImports))
	}
}

func normalize(m map[string]sig) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s%v->%v", k, v.params, v.results))
	}
	sort.Strings(out)
	return out
}

// --- a minimal scripted host ---

type wTask struct {
	kind, name string
	input      []byte
	resolved   bool
	canceled   bool
	seq        uint64
	result     int64
	payload    []byte
}

type wOrch struct {
	name       string
	tasks      []*wTask
	done       bool
	status     int32
	payload    []byte
	continued  []byte
	custom     string
	gens       int
	failOnCall int // inject ErrNondeterminism at this schedule_activity (1-based)
	schedules  int
}

type wHost struct {
	t       *testing.T
	ctx     context.Context
	mod     api.Module
	orchs   map[uint32]*wOrch
	actDone map[uint32][]byte
	actStat map[uint32]int32
	seq     uint64
	reg     []string
	logs    []string
	calls   []string // host calls by handle, "h:func"
	nextAct uint32
}

func newWasmHost(t *testing.T) *wHost {
	t.Helper()
	ctx := context.Background()
	w := &wHost{t: t, ctx: ctx, orchs: map[uint32]*wOrch{}, actDone: map[uint32][]byte{}, actStat: map[uint32]int32{}, nextAct: 10000}
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	b := r.NewHostModuleBuilder(abi.HostModule)
	fn := func(name string, f any) { b.NewFunctionBuilder().WithFunc(f).Export(name) }
	read := func(m api.Module, p, n uint32) []byte {
		v, ok := m.Memory().Read(p, n)
		if !ok {
			t.Errorf("read out of range %d+%d", p, n)
		}
		return append([]byte(nil), v...)
	}
	newTask := func(h uint32, fn string, tk *wTask) int32 {
		w.calls = append(w.calls, fmt.Sprintf("%d:%s", h, fn))
		o := w.orchs[h]
		if o == nil || o.done {
			t.Errorf("%s from handle %d that is not running", fn, h)
			return abi.ErrNotInStep
		}
		o.tasks = append(o.tasks, tk)
		return int32(len(o.tasks) - 1)
	}
	fn(abi.ImportRegister, func(ctx context.Context, m api.Module, kind, p, n uint32) {
		w.reg = append(w.reg, fmt.Sprintf("%d:%s", kind, read(m, p, n)))
	})
	fn(abi.ImportScheduleActivity, func(ctx context.Context, m api.Module, h, np, nn, ip, in uint32) int32 {
		if o := w.orchs[h]; o != nil {
			o.schedules++
			if o.schedules == o.failOnCall {
				w.calls = append(w.calls, fmt.Sprintf("%d:nondeterminism", h))
				o.done = true
				return abi.ErrNondeterminism
			}
		}
		return newTask(h, abi.ImportScheduleActivity, &wTask{kind: "activity", name: string(read(m, np, nn)), input: read(m, ip, in)})
	})
	fn(abi.ImportScheduleSubOrchestrator, func(ctx context.Context, m api.Module, h, np, nn, idp, idn, ip, in uint32) int32 {
		return newTask(h, abi.ImportScheduleSubOrchestrator, &wTask{kind: "sub", name: string(read(m, np, nn))})
	})
	fn(abi.ImportCreateTimer, func(ctx context.Context, m api.Module, h uint32, at int64) int32 {
		return newTask(h, abi.ImportCreateTimer, &wTask{kind: "timer"})
	})
	fn(abi.ImportWaitEvent, func(ctx context.Context, m api.Module, h, np, nn uint32) int32 {
		return newTask(h, abi.ImportWaitEvent, &wTask{kind: "event", name: string(read(m, np, nn))})
	})
	fn(abi.ImportCancelTask, func(ctx context.Context, m api.Module, h, task uint32) int32 {
		w.calls = append(w.calls, fmt.Sprintf("%d:%s", h, abi.ImportCancelTask))
		w.orchs[h].tasks[task].canceled = true
		return 0
	})
	fn(abi.ImportSendEvent, func(ctx context.Context, m api.Module, h, a, b, c, d, e, f uint32) int32 { return 0 })
	fn(abi.ImportPoll, func(ctx context.Context, m api.Module, h, p, n uint32) int32 {
		w.calls = append(w.calls, fmt.Sprintf("%d:%s", h, abi.ImportPoll))
		raw := read(m, p, 4*n)
		best, bestSeq := int32(-1), uint64(0)
		for i := uint32(0); i < n; i++ {
			tk := w.orchs[h].tasks[binary.LittleEndian.Uint32(raw[4*i:])]
			if tk.resolved && (best < 0 || tk.seq < bestSeq) {
				best, bestSeq = int32(i), tk.seq
			}
		}
		return best
	})
	fn(abi.ImportTaskResult, func(ctx context.Context, m api.Module, h, task, p, c uint32) int64 {
		tk := w.orchs[h].tasks[task]
		if uint32(len(tk.payload)) <= c {
			m.Memory().Write(p, tk.payload)
		}
		return tk.result<<32 | int64(len(tk.payload))
	})
	fn(abi.ImportNow, func(ctx context.Context, m api.Module, h uint32) int64 {
		return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	})
	fn(abi.ImportNewGUID, func(ctx context.Context, m api.Module, h, p uint32) int32 {
		m.Memory().Write(p, []byte("00000000-0000-5000-8000-000000000000"))
		return 36
	})
	fn(abi.ImportIsReplaying, func(ctx context.Context, m api.Module, h uint32) int32 { return 0 })
	fn(abi.ImportSetCustomStatus, func(ctx context.Context, m api.Module, h, p, n uint32) int32 {
		w.orchs[h].custom = string(read(m, p, n))
		return 0
	})
	fn(abi.ImportContinueAsNew, func(ctx context.Context, m api.Module, h, p, n, keep uint32) int32 {
		w.orchs[h].continued = read(m, p, n)
		return 0
	})
	fn(abi.ImportComplete, func(ctx context.Context, m api.Module, h, status, p, n uint32) int32 {
		w.calls = append(w.calls, fmt.Sprintf("%d:%s", h, abi.ImportComplete))
		if o := w.orchs[h]; o != nil {
			if o.done {
				t.Errorf("complete twice or after stop for handle %d", h)
			}
			o.done, o.status, o.payload = true, int32(status), read(m, p, n)
			return 0
		}
		w.actDone[h] = read(m, p, n)
		w.actStat[h] = int32(status)
		return 0
	})
	fn(abi.ImportLog, func(ctx context.Context, m api.Module, h, level, p, n uint32) {
		w.calls = append(w.calls, fmt.Sprintf("%d:%s", h, abi.ImportLog))
		w.logs = append(w.logs, fmt.Sprintf("%d:%s", h, read(m, p, n)))
	})
	if _, err := b.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := wazero.NewModuleConfig().WithStartFunctions("_initialize").
		WithSysNanotime().WithSysWalltime().WithSysNanosleep()
	mod, err := r.InstantiateWithConfig(ctx, buildTinyGuest(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.mod = mod
	return w
}

func (w *wHost) call(name string, args ...uint64) uint64 {
	w.t.Helper()
	res, err := w.mod.ExportedFunction(name).Call(w.ctx, args...)
	if err != nil {
		w.t.Fatalf("%s: %v", name, err)
	}
	if len(res) == 0 {
		return 0
	}
	return res[0]
}

func (w *wHost) write(b []byte) (ptr uint32) {
	ptr = uint32(w.call(abi.ExportAlloc, uint64(len(b))))
	if !w.mod.Memory().Write(ptr, b) {
		w.t.Fatalf("write %d bytes at %d", len(b), ptr)
	}
	return ptr
}

func (w *wHost) start(h uint32, name, input string) int32 {
	w.orchs[h] = &wOrch{name: name, gens: 1}
	return w.startGen(h, input)
}

func (w *wHost) startGen(h uint32, input string) int32 {
	req := abi.StartRequest{InstanceID: fmt.Sprint("i", h), Name: w.orchs[h].name, Input: []byte(input)}.Encode()
	return int32(w.call(abi.ExportOrchestratorStart, uint64(h), uint64(w.write(req)), uint64(len(req))))
}

// drive runs activities, fires timers and delivers events until the
// orchestration under h finishes or nothing can progress.
func (w *wHost) drive(h uint32, events map[string][]string) {
	w.t.Helper()
	for i := 0; i < 100; i++ {
		o := w.orchs[h]
		if o.continued != nil {
			in := string(o.continued)
			w.orchs[h] = &wOrch{name: o.name, gens: o.gens + 1}
			if rc := w.startGen(h, in); rc != abi.StatusOK {
				w.t.Fatalf("restart: %d", rc)
			}
			continue
		}
		if o.done {
			return
		}
		progress := false
		for id, tk := range o.tasks {
			if tk.resolved || tk.canceled {
				continue
			}
			switch tk.kind {
			case "activity":
				w.nextAct++
				ah := w.nextAct
				req := abi.ActivityRequest{InstanceID: "x", Name: tk.name, Input: tk.input, TaskID: int32(id)}.Encode()
				if rc := w.call(abi.ExportActivityRun, uint64(ah), uint64(w.write(req)), uint64(len(req))); rc != abi.StatusOK {
					w.t.Fatalf("activity_run: %d", rc)
				}
				kind := int64(abi.ResultOK)
				if w.actStat[ah] == abi.CompleteFailed {
					kind = abi.ResultFailed
				}
				w.resolve(tk, kind, w.actDone[ah])
			case "timer":
				w.resolve(tk, abi.ResultOK, nil)
			case "sub":
				w.resolve(tk, abi.ResultOK, []byte(`"sub-ok"`))
			case "event":
				q := events[tk.name]
				if len(q) == 0 {
					continue
				}
				events[tk.name] = q[1:]
				w.resolve(tk, abi.ResultOK, []byte(q[0]))
			default:
				continue
			}
			progress = true
		}
		if !progress {
			return
		}
		if rc := w.call(abi.ExportOrchestratorResume, uint64(h)); rc != abi.StatusOK {
			w.t.Fatalf("resume %d: %d", h, rc)
		}
	}
	w.t.Fatalf("orchestration %d did not settle", h)
}

func (w *wHost) resolve(tk *wTask, kind int64, payload []byte) {
	w.seq++
	tk.resolved, tk.seq, tk.result, tk.payload = true, w.seq, kind, payload
}

func TestWasmRuntime(t *testing.T) {
	w := newWasmHost(t)
	if v := w.call(abi.ExportABIVersion); v != abi.Version {
		t.Fatalf("abi version %d", v)
	}
	if rc := w.call(abi.ExportListFunctions); rc != abi.StatusOK {
		t.Fatalf("list_functions %d", rc)
	}
	wantReg := []string{"2:Big", "2:Echo", "2:Fail", "1:Features", "1:Goexit", "1:Loop", "1:Panic", "1:Race", "1:Seq", "1:Stuck", "1:Wait"}
	if !reflect.DeepEqual(w.reg, wantReg) {
		t.Fatalf("registered %v, want %v", w.reg, wantReg)
	}

	t.Run("multiplexed sequences", func(t *testing.T) {
		w.t = t
		const n = 20
		for h := uint32(1); h <= n; h++ {
			if rc := w.start(h, "Seq", fmt.Sprintf(`"s%d"`, h)); rc != abi.StatusOK {
				t.Fatalf("start %d: %d", h, rc)
			}
		}
		for h := uint32(1); h <= n; h++ {
			w.drive(h, nil)
			o := w.orchs[h]
			want := fmt.Sprintf(`{"big":5000,"guid":36,"out":["s%d-a","s%d-b","s%d-c"]}`, h, h, h)
			if o.status != abi.CompleteOK || string(o.payload) != want {
				t.Fatalf("handle %d: status %d output %s", h, o.status, o.payload)
			}
		}
	})

	t.Run("composite tasks", func(t *testing.T) {
		w.t = t
		w.start(30, "Race", "")
		w.drive(30, map[string][]string{"go": {`"hi"`}})
		o := w.orchs[30]
		if o.status != abi.CompleteOK || string(o.payload) != `"hi"` || o.custom != `"done"` {
			t.Fatalf("status %d output %s custom %s", o.status, o.payload, o.custom)
		}
		var kinds []string
		for _, tk := range o.tasks {
			kinds = append(kinds, tk.kind+":"+tk.name)
		}
		want := []string{"event:go", "timer:", "activity:Fail", "timer:", "activity:Fail"}
		if !reflect.DeepEqual(kinds, want) {
			t.Fatalf("tasks %v, want %v", kinds, want)
		}
	})

	t.Run("continue as new", func(t *testing.T) {
		w.t = t
		w.start(31, "Loop", "0")
		w.drive(31, nil)
		if o := w.orchs[31]; o.gens != 4 || string(o.payload) != "3" {
			t.Fatalf("gens %d output %s", o.gens, o.payload)
		}
	})

	t.Run("sub-orchestration and events", func(t *testing.T) {
		w.t = t
		w.start(34, "Features", "")
		w.drive(34, nil)
		if o := w.orchs[34]; string(o.payload) != `{"replaying":false,"sub":"sub-ok"}` {
			t.Fatalf("output %s", o.payload)
		}
	})

	t.Run("panic and goexit", func(t *testing.T) {
		w.t = t
		w.start(32, "Panic", "")
		w.drive(32, nil)
		f := abi.DecodeFailure(w.orchs[32].payload)
		if w.orchs[32].status != abi.CompleteFailed || f.Type != "Panic" || !strings.Contains(f.Message, "oops") || !strings.Contains(f.Stack, "main.init") {
			t.Fatalf("panic failure %+v", f)
		}
		w.start(33, "Goexit", "")
		f = abi.DecodeFailure(w.orchs[33].payload)
		if w.orchs[33].status != abi.CompleteFailed || !strings.Contains(f.Message, "Goexit") {
			t.Fatalf("goexit failure %+v", f)
		}
	})

	t.Run("stuck", func(t *testing.T) {
		// The orchestration's coroutine cannot be abandoned, so the SDK
		// exits the instance with abi.ExitStuck; it gets its own instance.
		ws := newWasmHost(t)
		ws.orchs[40] = &wOrch{name: "Stuck", gens: 1}
		req := abi.StartRequest{InstanceID: "i40", Name: "Stuck"}.Encode()
		ptr := ws.write(req)
		t0 := time.Now()
		_, err := ws.mod.ExportedFunction(abi.ExportOrchestratorStart).Call(ws.ctx, 40, uint64(ptr), uint64(len(req)))
		var exit *sys.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != abi.ExitStuck {
			t.Fatalf("start stuck: %v, want exit code %d", err, abi.ExitStuck)
		}
		// Never before the deadline (slowness cannot make it early); the
		// upper bound only catches a watchdog that never fires.
		if d := time.Since(t0); d < 250*time.Millisecond || d > time.Minute {
			t.Fatalf("stuck detected after %v, deadline is 300ms", d)
		}
		// Other orchestrations are unaffected elsewhere.
		w.t = t
		w.start(41, "Seq", `"z"`)
		w.drive(41, nil)
		if w.orchs[41].status != abi.CompleteOK {
			t.Fatalf("after stuck: %s", w.orchs[41].payload)
		}
	})

	t.Run("drop", func(t *testing.T) {
		w.t = t
		w.start(50, "Wait", "")
		before := len(w.calls)
		if rc := w.call(abi.ExportOrchestratorDrop, 50); rc != abi.StatusOK {
			t.Fatalf("drop: %d", rc)
		}
		if extra := w.calls[before:]; len(extra) != 0 {
			t.Fatalf("host calls after drop: %v", extra)
		}
		if rc := w.call(abi.ExportOrchestratorResume, 50); rc != abi.StatusUnknownHandle {
			t.Fatalf("resume after drop: %d", rc)
		}
		if rc := w.call(abi.ExportOrchestratorDrop, 50); rc != abi.StatusOK {
			t.Fatalf("second drop: %d", rc)
		}
	})

	t.Run("nondeterminism", func(t *testing.T) {
		w.t = t
		w.orchs[60] = &wOrch{name: "Seq", gens: 1, failOnCall: 2}
		w.startGen(60, `"n"`)
		w.drive(60, nil)
		last := w.calls[len(w.calls)-1]
		if last != "60:nondeterminism" {
			t.Fatalf("calls after nondeterminism: last is %s", last)
		}
		if rc := w.call(abi.ExportOrchestratorResume, 60); rc != abi.StatusUnknownHandle {
			t.Fatalf("resume after nondeterminism: %d", rc)
		}
	})

	t.Run("unknown and bad requests", func(t *testing.T) {
		w.t = t
		if rc := w.start(70, "Nope", ""); rc != abi.StatusUnknownFunction {
			t.Fatalf("unknown orchestrator: %d", rc)
		}
		if rc := w.call(abi.ExportOrchestratorStart, 71, uint64(w.write([]byte{1, 2})), 2); rc != abi.StatusBadRequest {
			t.Fatalf("bad frames: %d", rc)
		}
		if rc := w.call(abi.ExportOrchestratorStart, 72, 8, 16); rc != abi.StatusBadRequest {
			t.Fatalf("pointer outside alloc buffer: %d", rc)
		}
		req := abi.ActivityRequest{Name: "Nope", TaskID: 1}.Encode()
		if rc := w.call(abi.ExportActivityRun, 73, uint64(w.write(req)), uint64(len(req))); rc != abi.StatusUnknownFunction {
			t.Fatalf("unknown activity: %d", rc)
		}
	})

	t.Run("memory per parked orchestration", func(t *testing.T) {
		w.t = t
		const n = 2000
		// warm up, then measure linear memory growth for n parked waits
		for h := uint32(1000); h < 1100; h++ {
			w.start(h, "Wait", "")
		}
		before := w.mod.Memory().Size()
		for h := uint32(2000); h < 2000+n; h++ {
			if rc := w.start(h, "Wait", ""); rc != abi.StatusOK {
				t.Fatalf("start: %d", rc)
			}
		}
		per := float64(w.mod.Memory().Size()-before) / n
		t.Logf("linear memory growth per parked orchestration: %.0f bytes", per)
		if per > 64<<10 {
			t.Fatalf("%.0f bytes per parked orchestration", per)
		}
	})
}
