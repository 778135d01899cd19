package redisstore

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
)

// wireMsg is the stored form of a host.ControlMessage (without its stream
// entry id). The event is abi.EncodeEvent's JSON, embedded verbatim.
type wireMsg struct {
	I string          `json:"i"`
	X string          `json:"x,omitempty"`
	M string          `json:"mid,omitempty"`
	E json.RawMessage `json:"e"`
	// Fresh: host.ControlMessage.Fresh.
	A string `json:"a,omitempty"`
	D string `json:"d,omitempty"`
	C int64  `json:"c,omitempty"`
	P int    `json:"dp,omitempty"`
}

// encodeMsg writes the bytes json.Marshal(wireMsg) would, without
// reflection (a message is encoded for every start, event and activity
// result).
func encodeMsg(m *host.ControlMessage) string {
	b := make([]byte, 0, 160+len(m.InstanceID)+len(m.Event.Input)+len(m.Event.Result))
	b = abi.AppendJSONString(append(b, `{"i":`...), m.InstanceID)
	b = appendOmitEmpty(b, `,"x":`, m.ExecutionID)
	b = appendOmitEmpty(b, `,"mid":`, m.MessageID)
	b = abi.AppendEvent(append(b, `,"e":`...), &m.Event)
	if f := m.Fresh; f != nil {
		b = appendOmitEmpty(b, `,"a":`, f.App)
		b = appendOmitEmpty(b, `,"d":`, f.Digest)
		if c := f.CreatedAt.UnixNano(); c != 0 {
			b = strconv.AppendInt(append(b, `,"c":`...), c, 10)
		}
		if f.Depth != 0 {
			b = strconv.AppendInt(append(b, `,"dp":`...), int64(f.Depth), 10)
		}
	}
	return string(append(b, '}'))
}

// appendOmitEmpty appends key and s as a JSON string unless s is empty.
func appendOmitEmpty(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return abi.AppendJSONString(append(b, key...), s)
}

func decodeMsg(id, s string) (host.ControlMessage, error) {
	var w wireMsg
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return host.ControlMessage{}, fmt.Errorf("decode control message %s: %w", id, err)
	}
	ev, err := abi.DecodeEvent(w.E)
	if err != nil {
		return host.ControlMessage{}, fmt.Errorf("decode control message %s: %w", id, err)
	}
	m := host.ControlMessage{ID: id, InstanceID: w.I, ExecutionID: w.X, MessageID: w.M, Event: ev}
	if w.D != "" {
		m.Fresh = &host.FreshInstance{App: w.A, Digest: w.D, CreatedAt: time.Unix(0, w.C).UTC(), Depth: w.P}
	}
	return m, nil
}

// wireItem is the stored form of a host.ActivityItem (without id, partition
// and delivery count, which come from the stream).
type wireItem struct {
	I  string `json:"i"`
	X  string `json:"x,omitempty"`
	T  int32  `json:"t"`
	N  string `json:"n"`
	In string `json:"in,omitempty"`
	D  string `json:"d,omitempty"`
}

// encodeItem writes the bytes json.Marshal(wireItem) would, without
// reflection.
func encodeItem(a *host.ActivityItem) string {
	b := make([]byte, 0, 128+len(a.InstanceID)+len(a.Name)+len(a.Input)+len(a.Digest))
	b = abi.AppendJSONString(append(b, `{"i":`...), a.InstanceID)
	b = appendOmitEmpty(b, `,"x":`, a.ExecutionID)
	b = strconv.AppendInt(append(b, `,"t":`...), int64(a.TaskID), 10)
	b = abi.AppendJSONString(append(b, `,"n":`...), a.Name)
	b = appendOmitEmpty(b, `,"in":`, a.Input)
	b = appendOmitEmpty(b, `,"d":`, a.Digest)
	return string(append(b, '}'))
}

func decodeItem(p int, id, s string) (host.ActivityItem, error) {
	var w wireItem
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return host.ActivityItem{}, fmt.Errorf("decode activity item %s: %w", id, err)
	}
	return host.ActivityItem{ID: id, Partition: p, InstanceID: w.I, ExecutionID: w.X, TaskID: w.T,
		Name: w.N, Input: w.In, Digest: w.D, Deliveries: 1}, nil
}

// wireOutbox is the stored form of a host.OutboxMessage.
type wireOutbox struct {
	P int             `json:"p"`
	M string          `json:"m"`
	C json.RawMessage `json:"c,omitempty"` // wireState of Create
}

// wireState is the JSON form of an InstanceState inside an outbox envelope.
type wireState struct {
	F []string `json:"f"` // instance hash field/value pairs
	S string   `json:"s"` // status
	C string   `json:"c"` // created score (ms)
}

func encodeOutbox(o *host.OutboxMessage) string {
	w := wireOutbox{P: o.Partition, M: encodeMsg(&o.Message)}
	if o.Create != nil {
		st := *o.Create
		if st.InstanceID == "" {
			st.InstanceID = o.Message.InstanceID
		}
		c, _ := json.Marshal(wireState{F: stateFields(&st, true), S: string(st.Status), C: createdScore(st.CreatedAt)})
		w.C = c
	}
	b, _ := json.Marshal(w)
	return string(b)
}

// Instance hash field names.
const (
	hName     = "n"
	hExec     = "x"
	hStatus   = "s"
	hInput    = "in"
	hOutput   = "out"
	hCustom   = "cs"
	hFailure  = "f"
	hCreated  = "c"
	hUpdated  = "u"
	hApp      = "app"
	hDigest   = "d"
	hParent   = "pi"
	hParentTk = "pt"
	hHistLen  = "hl"
	hDepth    = "dp"
)

// stateFields returns the instance hash as field/value pairs. The instance id
// is not stored (it is in the key). withHL includes the history length (the
// commit script computes it itself).
func stateFields(st *host.InstanceState, withHL bool) []string {
	f := ""
	if st.Failure != nil {
		b, _ := json.Marshal(st.Failure)
		f = string(b)
	}
	out := []string{
		hName, st.Name,
		hExec, st.ExecutionID,
		hStatus, string(st.Status),
		hInput, st.Input,
		hOutput, st.Output,
		hCustom, st.CustomStatus,
		hFailure, f,
		hCreated, timeNS(st.CreatedAt),
		hUpdated, timeNS(st.UpdatedAt),
		hApp, st.App,
		hDigest, st.Digest,
		hParent, st.ParentInstanceID,
		hParentTk, strconv.FormatInt(int64(st.ParentTaskID), 10),
	}
	if st.Depth != 0 {
		// Written only for sub-orchestrations: a replaced instance's hash is
		// deleted first, so no stale depth survives.
		out = append(out, hDepth, strconv.Itoa(st.Depth))
	}
	if withHL {
		out = append(out, hHistLen, strconv.FormatInt(st.HistoryLength, 10))
	}
	return out
}

func parseState(id string, h map[string]string) (*host.InstanceState, error) {
	st := &host.InstanceState{
		InstanceID:       id,
		Name:             h[hName],
		ExecutionID:      h[hExec],
		Status:           abi.RuntimeStatus(h[hStatus]),
		Input:            h[hInput],
		Output:           h[hOutput],
		CustomStatus:     h[hCustom],
		CreatedAt:        parseNS(h[hCreated]),
		UpdatedAt:        parseNS(h[hUpdated]),
		App:              h[hApp],
		Digest:           h[hDigest],
		ParentInstanceID: h[hParent],
	}
	if v := h[hParentTk]; v != "" {
		n, _ := strconv.ParseInt(v, 10, 32)
		st.ParentTaskID = int32(n)
	}
	if v := h[hHistLen]; v != "" {
		st.HistoryLength, _ = strconv.ParseInt(v, 10, 64)
	}
	if v := h[hDepth]; v != "" {
		st.Depth, _ = strconv.Atoi(v)
	}
	if f := h[hFailure]; f != "" {
		var fd abi.FailureDetails
		if err := json.Unmarshal([]byte(f), &fd); err != nil {
			return nil, fmt.Errorf("instance %s: decode failure details: %w", id, err)
		}
		st.Failure = &fd
	}
	return st, nil
}

// timeNS formats t as unix nanoseconds; the zero time is "".
func timeNS(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

// parseNS parses unix nanoseconds into a UTC time; "" is the zero time.
func parseNS(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// createdScore is the index score of an instance: its created time in unix
// milliseconds (exact in a Lua/Redis double).
func createdScore(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// fireScore is a timer's score: its fire time in unix milliseconds rounded
// UP, so that score <= floor(now ms) implies fireAt <= now (never early).
func fireScore(t time.Time) string {
	ns := t.UnixNano()
	ms := ns / 1e6
	if ns%1e6 > 0 {
		ms++
	}
	return strconv.FormatInt(ms, 10)
}

// scoreTime converts a millisecond score returned by Redis into a UTC time.
func scoreTime(s string) time.Time {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		return time.Time{}
	}
	return time.UnixMilli(int64(f)).UTC()
}

func ms(d time.Duration) string {
	m := d.Milliseconds()
	if m < 1 {
		m = 1
	}
	return strconv.FormatInt(m, 10)
}

// timerOwner returns id as the fire-timers script sees it after decoding a
// timer message's JSON "i" field: id itself when it is valid UTF-8, else the
// JSON round trip of it (invalid bytes become U+FFFD). Commit and purge name
// the timer index with it, so all three agree.
func timerOwner(id string) string {
	if utf8.ValidString(id) {
		return id
	}
	b, _ := json.Marshal(id)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

func encodeEventString(e *abi.HistoryEvent) string { return string(abi.EncodeEvent(e)) }
