package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// The fuzz tests assert that the decoders never panic on guest- or
// store-controlled bytes and that whatever they accept round-trips.

func FuzzDecodeFrames(f *testing.F) {
	f.Add([]byte{}, 0)
	f.Add(AppendFrames(nil, []byte("a"), nil), 2)
	f.Add(StartRequest{InstanceID: "i", Name: "n", Input: []byte(`1`)}.Encode(), 3)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, 1)
	f.Add([]byte{1, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 64 {
			return
		}
		frames, err := DecodeFrames(b, n)
		if err != nil {
			if !errors.Is(err, ErrMalformedFrames) {
				t.Fatalf("error does not wrap ErrMalformedFrames: %v", err)
			}
			return
		}
		if len(frames) != n {
			t.Fatalf("%d frames, want %d", len(frames), n)
		}
		if re := AppendFrames(nil, frames...); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding gives %x, input was %x", re, b)
		}
	})
}

func FuzzDecodeStartRequest(f *testing.F) {
	f.Add(StartRequest{InstanceID: "i1", Name: "WatHello", Input: []byte(`"x"`)}.Encode())
	f.Add(StartRequest{}.Encode())
	f.Add([]byte{})
	f.Add([]byte{3, 0, 0, 0, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeStartRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedFrames) {
				t.Fatalf("error does not wrap ErrMalformedFrames: %v", err)
			}
			return
		}
		if re := r.Encode(); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding gives %x, input was %x", re, b)
		}
	})
}

func FuzzDecodeActivityRequest(f *testing.F) {
	f.Add(ActivityRequest{InstanceID: "i1", Name: "WatEcho", Input: []byte(`"a"`), TaskID: 0}.Encode())
	f.Add(ActivityRequest{TaskID: -2147483648}.Encode())
	f.Add(AppendFrames(nil, nil, nil, nil, []byte("01")))
	f.Add(AppendFrames(nil, nil, nil, nil, []byte("+7")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeActivityRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedFrames) {
				t.Fatalf("error does not wrap ErrMalformedFrames: %v", err)
			}
			return
		}
		if re := r.Encode(); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding gives %x, input was %x", re, b)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"id":2,"type":"TaskCompleted","ts":9,"result":"\"r\"","taskId":2}`))
	f.Add(EncodeEvent(&HistoryEvent{EventID: -1, Type: EventTaskFailed, Failure: &FailureDetails{Message: "m", Inner: &FailureDetails{}}}))
	f.Add(EncodeEvent(&HistoryEvent{EventID: -1, Type: EventExecutionCompleted, Status: StatusCompleted, Result: "1"}))
	f.Add([]byte(`{"type":"Bogus"}`))
	f.Add([]byte(`{"id":1,"type":"EventRaised","name":"\ud800","input":"\xff"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b)
		if err != nil {
			return
		}
		if !e.Type.Valid() {
			t.Fatalf("accepted unknown type %q", e.Type)
		}
		enc := EncodeEvent(&e)
		e2, err := DecodeEvent(enc)
		if err != nil {
			t.Fatalf("decoding the re-encoding %s: %v", enc, err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", e, e2)
		}
		if enc2 := EncodeEvent(&e2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %s vs %s", enc, enc2)
		}
	})
}

func FuzzDecodeFailure(f *testing.F) {
	f.Add([]byte(`{"message":"m","type":"T","code":"DW1001","inner":{"message":"i"}}`))
	f.Add([]byte(`{"type":"T"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`null`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fd := DecodeFailure(b)
		if fd == nil {
			t.Fatal("nil failure")
		}
		_ = fd.Error()
		var probe FailureDetails
		parsed := json.Unmarshal(b, &probe) == nil && (probe.Message != "" || probe.Type != "")
		if !parsed {
			// Kept whole.
			if fd.Message != string(b) || fd.Type != "GuestError" || fd.Code != "" || fd.Inner != nil {
				t.Fatalf("unparsed payload %q not kept whole: %+v", b, fd)
			}
			return
		}
		if !reflect.DeepEqual(*fd, probe) {
			t.Fatalf("DecodeFailure = %+v, json.Unmarshal = %+v", fd, probe)
		}
		enc, err := json.Marshal(fd)
		if err != nil {
			t.Fatal(err)
		}
		if again := DecodeFailure(enc); !reflect.DeepEqual(again, fd) {
			t.Fatalf("round trip via %s changed %+v to %+v", enc, fd, again)
		}
	})
}

// FuzzEncodeEventMatchesJSON checks that EncodeEvent writes exactly the bytes
// of json.Marshal for any field values (escaping, invalid UTF-8, omitempty).
func FuzzEncodeEventMatchesJSON(f *testing.F) {
	f.Add(int32(-1), "ExecutionStarted", int64(1764111111111111111), "Hello5", `"hello"`, "", int32(0), int64(0), "id", "x", "", int32(0), "", "", false, "", "")
	f.Add(int32(3), "TaskFailed", int64(-5), "a<b>&\"\\", "\u2028\u2029\x00\x1f\x7f", "\xff\xfe ok é", int32(7), int64(9), "", "", "p", int32(2), "Failed", "why\n\t\r\b\f", true, "boom", "trace")
	f.Fuzz(func(t *testing.T, id int32, typ string, ts int64, name, input, result string, taskID int32, fireAt int64,
		inst, exec, parent string, parentTask int32, status, reason string, noCascade bool, msg, stack string) {
		e := HistoryEvent{EventID: id, Type: EventType(typ), Timestamp: ts, Name: name, Input: input, Result: result,
			TaskScheduledID: taskID, FireAt: fireAt, InstanceID: inst, ExecutionID: exec, ParentInstanceID: parent,
			ParentTaskID: parentTask, Status: RuntimeStatus(status), Reason: reason, NoCascade: noCascade}
		if msg != "" || stack != "" {
			e.Failure = &FailureDetails{Message: msg, Type: typ, Stack: stack, Source: inst, Code: exec,
				Inner: &FailureDetails{Message: reason, Code: name, Inner: &FailureDetails{Message: input, Source: result}}}
		}
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if got := EncodeEvent(&e); !bytes.Equal(got, want) {
			t.Fatalf("EncodeEvent:\n got %s\nwant %s", got, want)
		}
	})
}
