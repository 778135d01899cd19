package redisstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
)

// FuzzWireEncodersMatchJSON checks that encodeMsg and encodeItem write
// exactly what json.Marshal writes for the wire structs, and that the
// decoders read it back.
func FuzzWireEncodersMatchJSON(f *testing.F) {
	f.Add("i1", "x1", "m1", "in<&>\u2028", "app", "sha256:ab", int64(1764111111111111111), int32(3), "Bench_Echo", "\xff")
	f.Add("", "", "", "", "", "", int64(0), int32(-7), "", "")
	f.Fuzz(func(t *testing.T, id, exec, mid, input, app, digest string, created int64, task int32, name, other string) {
		m := host.ControlMessage{InstanceID: id, ExecutionID: exec, MessageID: mid,
			Event: abi.HistoryEvent{EventID: task, Type: abi.EventTaskCompleted, Timestamp: created, Result: input, Reason: other}}
		if app != "" || digest != "" || created != 0 {
			m.Fresh = &host.FreshInstance{App: app, Digest: digest, CreatedAt: time.Unix(0, created)}
		}
		w := wireMsg{I: m.InstanceID, X: m.ExecutionID, M: m.MessageID, E: abi.EncodeEvent(&m.Event)}
		if fr := m.Fresh; fr != nil {
			w.A, w.D, w.C = fr.App, fr.Digest, fr.CreatedAt.UnixNano()
		}
		want, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeMsg(&m); got != string(want) {
			t.Fatalf("encodeMsg:\n got %s\nwant %s", got, want)
		}
		back, err := decodeMsg("1-0", encodeMsg(&m))
		if err != nil {
			t.Fatal(err)
		}
		if back.InstanceID != json2(id) || back.Event.Result != json2(input) || back.Event.EventID != task {
			t.Fatalf("decoded %+v from %+v", back, m)
		}
		a := host.ActivityItem{InstanceID: id, ExecutionID: exec, TaskID: task, Name: name, Input: input, Digest: digest}
		want, err = json.Marshal(wireItem{I: a.InstanceID, X: a.ExecutionID, T: a.TaskID, N: a.Name, In: a.Input, D: a.Digest})
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeItem(&a); got != string(want) {
			t.Fatalf("encodeItem:\n got %s\nwant %s", got, want)
		}
	})
}

// json2 is s after a JSON round trip (invalid UTF-8 becomes U+FFFD).
func json2(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}
