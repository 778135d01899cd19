package abi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func le32(n uint32) []byte { return []byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)} }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestAppendFrames(t *testing.T) {
	cases := []struct {
		name   string
		dst    []byte
		fields [][]byte
		want   string // hex
	}{
		{"none", nil, nil, ""},
		{"empty field", nil, [][]byte{{}}, "00000000"},
		{"nil field", nil, [][]byte{nil}, "00000000"},
		{"two", nil, [][]byte{[]byte("ab"), []byte("c")}, "020000006162" + "0100000063"},
		{"appends to dst", []byte{0xff}, [][]byte{[]byte("x")}, "ff" + "0100000078"},
		{"length is little-endian", nil, [][]byte{bytes.Repeat([]byte{'z'}, 258)}, "02010000" + strings.Repeat("7a", 258)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := hex.EncodeToString(AppendFrames(c.dst, c.fields...))
			if got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestDecodeFrames(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		n    int
		want []string // nil: error expected
	}{
		{"zero frames of nothing", nil, 0, []string{}},
		{"one empty", le32(0), 1, []string{""}},
		{"two", cat(le32(2), []byte("ab"), le32(1), []byte("c")), 2, []string{"ab", "c"}},
		{"trailing bytes after zero frames", []byte{0}, 0, nil},
		{"trailing bytes", cat(le32(1), []byte("ab")), 1, nil},
		{"one frame too many", cat(le32(0), le32(0)), 1, nil},
		{"one frame too few", le32(0), 2, nil},
		{"truncated length", []byte{1, 0, 0}, 1, nil},
		{"empty input", nil, 1, nil},
		{"length past end", cat(le32(5), []byte("abcd")), 1, nil},
		{"length 0xffffffff", cat(le32(0xffffffff), []byte("abcd")), 1, nil},
		{"length over MaxFrameBytes", cat(le32(MaxFrameBytes+1), []byte("a")), 1, nil},
		{"length with high bit", cat(le32(0x80000001), []byte("a")), 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeFrames(c.in, c.n)
			if c.want == nil {
				if err == nil || !errors.Is(err, ErrMalformedFrames) {
					t.Fatalf("got %q, %v; want ErrMalformedFrames", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d frames, want %d", len(got), len(c.want))
			}
			for i := range got {
				if string(got[i]) != c.want[i] {
					t.Errorf("frame %d = %q, want %q", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestDecodeFramesViewsAreCapped(t *testing.T) {
	b := AppendFrames(nil, []byte("ab"), []byte("cd"))
	f, err := DecodeFrames(b, 2)
	if err != nil {
		t.Fatal(err)
	}
	if cap(f[0]) != 2 {
		t.Fatalf("cap of a frame view is %d; appending to it would overwrite the next frame", cap(f[0]))
	}
	_ = append(f[0], 'X')
	if string(f[1]) != "cd" {
		t.Fatalf("appending to frame 0 changed frame 1 to %q", f[1])
	}
	b[4] = 'Z' // views, not copies
	if string(f[0]) != "Zb" {
		t.Fatalf("frame is not a view of the input: %q", f[0])
	}
}

func TestFramesRoundTrip(t *testing.T) {
	for _, fields := range [][][]byte{
		nil,
		{{}},
		{[]byte("a"), {}, []byte("\x00\xff"), bytes.Repeat([]byte{1}, 70000)},
	} {
		b := AppendFrames(nil, fields...)
		got, err := DecodeFrames(b, len(fields))
		if err != nil {
			t.Fatal(err)
		}
		for i := range fields {
			if !bytes.Equal(got[i], fields[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
	}
}

func TestStartRequest(t *testing.T) {
	// The hex example of abi/README.md.
	r := StartRequest{InstanceID: "i1", Name: "WatHello", Input: []byte(`"x"`)}
	const want = "02000000" + "6931" + "08000000" + "57617448656c6c6f" + "03000000" + "227822"
	if got := hex.EncodeToString(r.Encode()); got != want {
		t.Fatalf("encode = %s, want %s", got, want)
	}
	for _, r := range []StartRequest{
		{},
		{InstanceID: "id", Name: "Orch"},
		{InstanceID: "ü/€", Name: "n", Input: []byte(`{"a":[1,2]}`)},
		{InstanceID: strings.Repeat("x", 256), Name: "N", Input: bytes.Repeat([]byte("1"), 1<<16)},
	} {
		got, err := DecodeStartRequest(r.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if got.InstanceID != r.InstanceID || got.Name != r.Name || !bytes.Equal(got.Input, r.Input) {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
	}
	good := r.Encode()
	bad := map[string][]byte{
		"empty":          nil,
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"two frames":     AppendFrames(nil, []byte("i"), []byte("n")),
		"four frames":    AppendFrames(nil, []byte("i"), []byte("n"), nil, nil),
		"oversize":       cat(le32(1<<31), []byte("i")),
	}
	for name, b := range bad {
		if _, err := DecodeStartRequest(b); !errors.Is(err, ErrMalformedFrames) {
			t.Errorf("%s: err = %v, want ErrMalformedFrames", name, err)
		}
	}
}

func TestActivityRequest(t *testing.T) {
	r := ActivityRequest{InstanceID: "i1", Name: "WatEcho", Input: []byte(`"a"`), TaskID: 0}
	const want = "02000000" + "6931" + "07000000" + "5761744563686f" + "03000000" + "226122" + "01000000" + "30"
	if got := hex.EncodeToString(r.Encode()); got != want {
		t.Fatalf("encode = %s, want %s", got, want)
	}
	for _, r := range []ActivityRequest{
		{},
		{InstanceID: "i", Name: "A", Input: []byte("null"), TaskID: 7},
		{InstanceID: "i", Name: "A", TaskID: 2147483647},
		{InstanceID: "i", Name: "A", TaskID: -2147483648},
		{InstanceID: "i", Name: "A", TaskID: -1},
	} {
		got, err := DecodeActivityRequest(r.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if got.InstanceID != r.InstanceID || got.Name != r.Name || !bytes.Equal(got.Input, r.Input) || got.TaskID != r.TaskID {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
	}
	withID := func(id string) []byte { return AppendFrames(nil, []byte("i"), []byte("A"), []byte("1"), []byte(id)) }
	good := r.Encode()
	bad := map[string][]byte{
		"empty":          nil,
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"three frames":   AppendFrames(nil, []byte("i"), []byte("A"), nil),
		"five frames":    append(withID("1"), le32(0)...),
		"oversize":       cat(AppendFrames(nil, []byte("i"), []byte("A"), nil), le32(MaxFrameBytes+1)),
		"empty id":       withID(""),
		"plus sign":      withID("+1"),
		"leading zero":   withID("01"),
		"minus zero":     withID("-0"),
		"space":          withID(" 1"),
		"trailing space": withID("1 "),
		"two numbers":    withID("1 2"),
		"hex":            withID("0x1"),
		"letters":        withID("one"),
		"fraction":       withID("1.0"),
		"overflow":       withID("2147483648"),
		"underflow":      withID("-2147483649"),
		"unicode digit":  withID("١"),
	}
	for name, b := range bad {
		if _, err := DecodeActivityRequest(b); !errors.Is(err, ErrMalformedFrames) {
			t.Errorf("%s: err = %v, want ErrMalformedFrames", name, err)
		}
	}
}

func TestEventRoundTrip(t *testing.T) {
	events := []HistoryEvent{
		{EventID: -1, Type: EventExecutionStarted, Timestamp: 1, Name: "O", Input: `{"x":1}`, InstanceID: "i", ExecutionID: "e",
			ParentInstanceID: "p", ParentTaskID: 3},
		{EventID: 0, Type: EventTaskScheduled, Timestamp: 2, Name: "A", Input: `"a"`},
		{EventID: -1, Type: EventTaskCompleted, TaskScheduledID: 0, Result: `"a"`},
		{EventID: -1, Type: EventTaskFailed, TaskScheduledID: 1, Failure: &FailureDetails{Message: "m", Type: "T", Code: "DW1", Stack: "s",
			Source: "src", Inner: &FailureDetails{Message: "inner"}}},
		{EventID: 4, Type: EventTimerCreated, FireAt: 1e18},
		{EventID: -1, Type: EventExecutionCompleted, Status: StatusFailed, Failure: &FailureDetails{Message: "x"}},
		{EventID: -1, Type: EventExecutionTerminated, Reason: "why", NoCascade: true},
	}
	for _, et := range []EventType{EventExecutionSuspended, EventExecutionResumed, EventExecutionRewound, EventContinueAsNew,
		EventOrchestratorStarted, EventOrchestratorCompleted, EventTimerFired, EventSubOrchestrationInstanceCreated,
		EventSubOrchestrationInstanceCompleted, EventSubOrchestrationInstanceFailed, EventEventRaised, EventEventSent, EventGenericEvent} {
		events = append(events, HistoryEvent{EventID: -1, Type: et})
	}
	for _, e := range events {
		b := EncodeEvent(&e)
		got, err := DecodeEvent(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip of %s gave %+v", b, got)
		}
	}
	// The JSON field names are part of the stored format.
	b := string(EncodeEvent(&HistoryEvent{EventID: 2, Type: EventTaskCompleted, Timestamp: 9, TaskScheduledID: 2, Result: `"r"`}))
	if want := `{"id":2,"type":"TaskCompleted","ts":9,"result":"\"r\"","taskId":2}`; b != want {
		t.Errorf("encoding = %s, want %s", b, want)
	}
}

func TestDecodeEventErrors(t *testing.T) {
	for _, in := range []string{
		``, `{`, `null`, `[]`, `"TaskCompleted"`,
		`{}`,
		`{"id":1,"type":""}`,
		`{"id":1,"type":"TaskDone"}`,
		`{"id":1,"type":"taskcompleted"}`,
		`{"id":"1","type":"TaskCompleted"}`,
		`{"id":1,"type":"TaskCompleted","ts":"x"}`,
		`{"id":2147483648,"type":"TaskCompleted"}`,
	} {
		if e, err := DecodeEvent([]byte(in)); err == nil {
			t.Errorf("DecodeEvent(%s) = %+v, want an error", in, e)
		}
	}
	if _, err := DecodeEvent([]byte(`{"type":"Bogus"}`)); err == nil || !strings.Contains(err.Error(), `unknown event type "Bogus"`) {
		t.Errorf("unknown type error: %v", err)
	}
}

func TestEventTypeValid(t *testing.T) {
	if len(knownEventTypes) != 20 {
		t.Errorf("%d known event types, want 20", len(knownEventTypes))
	}
	for et := range knownEventTypes {
		if !et.Valid() {
			t.Errorf("%s not valid", et)
		}
	}
	for _, et := range []EventType{"", "taskscheduled", "Task Scheduled", "Unknown"} {
		if et.Valid() {
			t.Errorf("%q valid", et)
		}
	}
}

func TestDecodeFailure(t *testing.T) {
	cases := []struct {
		in   string
		want FailureDetails
	}{
		{`{"message":"m","type":"T","code":"C","stack":"s","source":"src","inner":{"message":"i"}}`,
			FailureDetails{Message: "m", Type: "T", Code: "C", Stack: "s", Source: "src", Inner: &FailureDetails{Message: "i"}}},
		{`{"message":"only message"}`, FailureDetails{Message: "only message"}},
		{`{"type":"OnlyType"}`, FailureDetails{Type: "OnlyType"}},
		{`{"message":"m","extra":1}`, FailureDetails{Message: "m"}},
		// Kept whole: not JSON, not an object, or an object without message and type.
		{``, FailureDetails{Message: "", Type: "GuestError"}},
		{`boom`, FailureDetails{Message: "boom", Type: "GuestError"}},
		{`"quoted"`, FailureDetails{Message: `"quoted"`, Type: "GuestError"}},
		{`null`, FailureDetails{Message: "null", Type: "GuestError"}},
		{`42`, FailureDetails{Message: "42", Type: "GuestError"}},
		{`{}`, FailureDetails{Message: "{}", Type: "GuestError"}},
		{`{"code":"C"}`, FailureDetails{Message: `{"code":"C"}`, Type: "GuestError"}},
		{`{"message":1}`, FailureDetails{Message: `{"message":1}`, Type: "GuestError"}},
		{`{"message":"m"`, FailureDetails{Message: `{"message":"m"`, Type: "GuestError"}},
		{"\xff\xfe", FailureDetails{Message: "\xff\xfe", Type: "GuestError"}},
	}
	for _, c := range cases {
		got := DecodeFailure([]byte(c.in))
		if got == nil || !reflect.DeepEqual(*got, c.want) {
			t.Errorf("DecodeFailure(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestFailureError(t *testing.T) {
	cases := []struct {
		f    *FailureDetails
		want string
	}{
		{nil, "<nil failure>"},
		{&FailureDetails{Message: "m"}, "m"},
		{&FailureDetails{Message: "m", Type: "T"}, "T: m"},
		{&FailureDetails{Message: "m", Type: "Nondeterminism", Code: "DW1001"}, "Nondeterminism: [DW1001] m"},
		{&FailureDetails{Message: "m", Code: "C"}, "[C] m"},
	}
	for _, c := range cases {
		if got := c.f.Error(); got != c.want {
			t.Errorf("%+v.Error() = %q, want %q", c.f, got, c.want)
		}
	}
}

func TestParseRuntimeStatus(t *testing.T) {
	cases := map[string]RuntimeStatus{
		"Running": StatusRunning, "running": StatusRunning, "RUNNING": StatusRunning, " Running\t": StatusRunning,
		"completed": StatusCompleted, "continuedasnew": StatusContinuedAsNew, "ContinuedAsNew": StatusContinuedAsNew,
		"failed": StatusFailed, "canceled": StatusCanceled, "terminated": StatusTerminated, "pending": StatusPending,
		"sUsPeNdEd": StatusSuspended, "0": StatusRunning, "1": StatusCompleted, "2": StatusContinuedAsNew, "3": StatusFailed,
		"4": StatusCanceled, "5": StatusTerminated, "6": StatusPending, "7": StatusSuspended, " 7 ": StatusSuspended,
	}
	for in, want := range cases {
		got, err := ParseRuntimeStatus(in)
		if err != nil || got != want {
			t.Errorf("ParseRuntimeStatus(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "8", "-1", "01", "+1", "1.0", "Cancelled", "run", "Running,Failed", "Continued As New"} {
		got, err := ParseRuntimeStatus(in)
		if err == nil {
			t.Errorf("ParseRuntimeStatus(%q) = %q, want an error", in, got)
			continue
		}
		msg := err.Error()
		for _, s := range AllStatuses {
			if !strings.Contains(msg, string(s)) {
				t.Errorf("error for %q does not list %s: %s", in, s, msg)
			}
		}
		if !strings.Contains(msg, "0-7") {
			t.Errorf("error for %q does not mention the numbers: %s", in, msg)
		}
	}
}

func TestRuntimeStatusValueAndTerminal(t *testing.T) {
	want := []struct {
		s        RuntimeStatus
		value    int
		terminal bool
	}{
		{StatusRunning, 0, false}, {StatusCompleted, 1, true}, {StatusContinuedAsNew, 2, false},
		{StatusFailed, 3, true}, {StatusCanceled, 4, true}, {StatusTerminated, 5, true},
		{StatusPending, 6, false}, {StatusSuspended, 7, false},
		{"", -1, false}, {"running", -1, false}, {"Bogus", -1, false},
	}
	for _, w := range want {
		if v := w.s.Value(); v != w.value {
			t.Errorf("%q.Value() = %d, want %d", w.s, v, w.value)
		}
		if term := w.s.Terminal(); term != w.terminal {
			t.Errorf("%q.Terminal() = %v, want %v", w.s, term, w.terminal)
		}
	}
	if len(AllStatuses) != 8 {
		t.Fatalf("%d statuses", len(AllStatuses))
	}
	for i, s := range AllStatuses {
		if s.Value() != i {
			t.Errorf("AllStatuses[%d] = %s has value %d", i, s, s.Value())
		}
	}
	// Status is stored in ExecutionCompleted as its name.
	b, _ := json.Marshal(HistoryEvent{Type: EventExecutionCompleted, Status: StatusCompleted})
	if !strings.Contains(string(b), `"status":"Completed"`) {
		t.Errorf("status encoding: %s", b)
	}
}

// TestCodes pins the numeric contract of abi/README.md: changing any of these
// breaks every guest built for ABI v1.
func TestCodes(t *testing.T) {
	pins := []struct {
		name      string
		got, want int
	}{
		{"Version", Version, 1},
		{"KindOrchestrator", KindOrchestrator, 1}, {"KindActivity", KindActivity, 2},
		{"StatusOK", StatusOK, 0}, {"StatusUnknownFunction", StatusUnknownFunction, 1},
		{"StatusUnknownHandle", StatusUnknownHandle, 2}, {"StatusStuck", StatusStuck, 3}, {"StatusBadRequest", StatusBadRequest, 4},
		{"CompleteOK", CompleteOK, 1}, {"CompleteFailed", CompleteFailed, 2},
		{"ResultPending", ResultPending, 0}, {"ResultOK", ResultOK, 1}, {"ResultFailed", ResultFailed, 2},
		{"PollNone", PollNone, -1},
		{"ErrNotInStep", ErrNotInStep, -2}, {"ErrNondeterminism", ErrNondeterminism, -3}, {"ErrBadArgument", ErrBadArgument, -4},
		{"ErrUnknownTask", ErrUnknownTask, -5}, {"ErrLimit", ErrLimit, -6},
		{"LogDebug", LogDebug, 0}, {"LogInfo", LogInfo, 1}, {"LogWarn", LogWarn, 2}, {"LogError", LogError, 3},
		{"MaxFrameBytes", MaxFrameBytes, 64 << 20},
	}
	for _, p := range pins {
		if p.got != p.want {
			t.Errorf("%s = %d, want %d", p.name, p.got, p.want)
		}
	}
	names := map[string]string{
		HostModule: "durablewasm", ExportABIVersion: "durablewasm_abi_version", ExportAlloc: "durablewasm_alloc",
		ExportListFunctions: "durablewasm_list_functions", ExportOrchestratorStart: "durablewasm_orchestrator_start",
		ExportOrchestratorResume: "durablewasm_orchestrator_resume", ExportOrchestratorDrop: "durablewasm_orchestrator_drop",
		ExportActivityRun: "durablewasm_activity_run",
		ImportRegister:    "register", ImportScheduleActivity: "schedule_activity",
		ImportScheduleSubOrchestrator: "schedule_sub_orchestrator", ImportCreateTimer: "create_timer",
		ImportWaitEvent: "wait_event", ImportCancelTask: "cancel_task", ImportSendEvent: "send_event", ImportPoll: "poll",
		ImportTaskResult: "task_result", ImportNow: "now", ImportNewGUID: "new_guid", ImportIsReplaying: "is_replaying",
		ImportSetCustomStatus: "set_custom_status", ImportContinueAsNew: "continue_as_new", ImportComplete: "complete",
		ImportLog: "log",
	}
	for got, want := range names {
		if got != want {
			t.Errorf("name %q, want %q", got, want)
		}
	}
}

// TestEncodeEventCoversEveryField: EncodeEvent must match json.Marshal with
// every field of HistoryEvent and FailureDetails set, so that a field added
// to either struct and not to the encoder fails here (the fuzzer only runs
// its seeds in go test).
func TestEncodeEventCoversEveryField(t *testing.T) {
	fill := func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			switch f.Kind() {
			case reflect.String:
				f.SetString("s<" + v.Type().Field(i).Name + ">\u2028")
			case reflect.Int32, reflect.Int64:
				f.SetInt(int64(i + 1))
			case reflect.Bool:
				f.SetBool(true)
			case reflect.Slice: // json.RawMessage
				f.SetBytes([]byte(` {"a": ["<b>", 1]} `))
			}
		}
	}
	e := &HistoryEvent{Failure: &FailureDetails{Inner: &FailureDetails{}}}
	fill(reflect.ValueOf(e).Elem())
	fill(reflect.ValueOf(e.Failure).Elem())
	fill(reflect.ValueOf(e.Failure.Inner).Elem())
	for _, v := range []reflect.Value{reflect.ValueOf(*e), reflect.ValueOf(*e.Failure)} {
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).IsZero() {
				t.Fatalf("%s.%s is not set by the test; extend fill", v.Type().Name(), v.Type().Field(i).Name)
			}
		}
	}
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := EncodeEvent(e); string(got) != string(want) {
		t.Fatalf("EncodeEvent:\n got %s\nwant %s", got, want)
	}
}
