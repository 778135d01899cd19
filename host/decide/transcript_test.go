package decide

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/host/sandbox"
	"github.com/durablewasm/durablewasm/samples"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected effects of testdata/transcripts/*.txt")

// TestTranscripts replays the golden transcripts of testdata/transcripts:
// each runs the samples module's orchestrator in wazero through a sequence
// of steps and compares the effects of each step — what decide commits —
// with the "<" lines of the file. Files named bad-* hold histories the
// orchestrator no longer matches; they must fail with a nondeterminism code
// (DW1001–DW1003). `go test ./host/decide -run TestTranscripts -rewrite` rewrites
// the expected lines.
//
// A transcript is text, one directive a line:
//
//	# comment
//	instance {InstanceState JSON}   the instance before the first step
//	history {event JSON}            a recorded event (replayed before the first step)
//	step                            a new step; its messages follow
//	> {event JSON}                  a message of the step
//	local                           the previous step's local messages are this step's
//	rewind REASON                   a step that rewinds the (Failed) instance
//	child {InstanceState JSON}      a sub-orchestration's state, as a rewind reads it
//	limits {replay.Limits JSON}     the module's limits
//	migrate                         a step that moves the instance to another digest of the
//	                                samples module (shown as <migrated>; <samples> is the first)
//	< …                             an expected effect (written by -rewrite)
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("../../testdata/transcripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	ctx := context.Background()
	eng, err := sandbox.NewEngine(ctx, sandbox.EngineOptions{CacheDir: filepath.Join(os.TempDir(), "durablewasm-test-cache"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	digest := sandbox.Digest(samples.Wasm)
	// The same code under another digest (a custom section appended), to
	// migrate to.
	other := append(append([]byte(nil), samples.Wasm...), 0, 6, 3, 'f', 'i', 'x', 1, 2)
	digests := [2]string{digest, sandbox.Digest(other)}
	for i, w := range [][]byte{samples.Wasm, other} {
		if _, err := eng.Compile(ctx, digests[i], w); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			runTranscript(t, eng, digests, f)
		})
	}
}

func runTranscript(t *testing.T, eng *sandbox.Engine, digests [2]string, file string) {
	digest := digests[0]
	ctx := context.Background()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var kept, got, want []string // kept: the input lines; got/want: effects
	var meta host.InstanceState
	var history []abi.HistoryEvent
	type step struct {
		msgs    []abi.HistoryEvent
		local   bool
		rewind  string
		migrate bool
		at      int // index in kept after which its effects go
	}
	var children []*host.InstanceState
	var limits replay.Limits
	var steps []*step
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		word, rest, _ := strings.Cut(line, " ")
		switch {
		case strings.HasPrefix(line, "<"):
			want = append(want, line)
			continue
		case line == "" || strings.HasPrefix(line, "#"):
		case word == "instance":
			if err := json.Unmarshal([]byte(rest), &meta); err != nil {
				t.Fatalf("%s: instance: %v", file, err)
			}
		case word == "history":
			history = append(history, decodeTranscriptEvent(t, rest))
		case line == "step" || line == "local":
			steps = append(steps, &step{local: line == "local"})
		case line == "migrate":
			steps = append(steps, &step{migrate: true})
		case word == "rewind":
			steps = append(steps, &step{rewind: rest})
		case word == "child":
			var c host.InstanceState
			if err := json.Unmarshal([]byte(rest), &c); err != nil {
				t.Fatalf("%s: child: %v", file, err)
			}
			children = append(children, &c)
		case word == "limits":
			if err := json.Unmarshal([]byte(rest), &limits); err != nil {
				t.Fatalf("%s: limits: %v", file, err)
			}
		case word == ">":
			if len(steps) == 0 {
				t.Fatalf("%s: a message before the first step", file)
			}
			s := steps[len(steps)-1]
			s.msgs = append(s.msgs, decodeTranscriptEvent(t, rest))
		default:
			t.Fatalf("%s: unknown line %q", file, line)
		}
		kept = append(kept, line)
		if len(steps) > 0 {
			steps[len(steps)-1].at = len(kept)
		}
	}
	meta.Digest = digest
	inst, err := eng.NewInstance(ctx, digest, true, &host.AppSettings{})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	ids := 0
	env := Env{Partitions: 16, Limits: limits.WithDefaults(), NewID: func() string { ids++; return fmt.Sprintf("id%d", ids) }}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var st *replay.State
	var local []host.ControlMessage
	newGen := func() *sandbox.Orchestration { return inst.Bind(ctx) }
	guest := newGen()
	if len(history) > 0 {
		err = guest.Locked(func() (err error) {
			st, err = replay.Rebuild(meta.InstanceID, env.Limits, history, guest)
			return err
		})
		if err != nil {
			t.Fatalf("rebuild: %v", err)
		}
	} else {
		st = replay.New(meta.InstanceID, env.Limits)
	}
	out := make([][]string, len(steps))
	for i, s := range steps {
		env.Now = start.Add(time.Duration(i+1) * time.Second)
		var msgs []abi.HistoryEvent
		if s.local {
			for _, m := range local {
				msgs = append(msgs, m.Event)
			}
		}
		msgs = append(msgs, s.msgs...)
		if meta.Status == abi.StatusContinuedAsNew {
			// A new Generation starts on a new guest orchestration, from
			// its history (the carried events), as the worker loads it.
			guest = newGen()
			st = replay.New(meta.InstanceID, env.Limits)
			if len(history) > 0 {
				err = guest.Locked(func() (err error) {
					st, err = replay.Rebuild(meta.InstanceID, env.Limits, history, guest)
					return err
				})
				if err != nil {
					t.Fatalf("step %d: rebuild the new Generation: %v", i+1, err)
				}
			}
		}
		if s.migrate {
			// As the worker migrates: rebuild the history on the new
			// module, record the move, then step.
			inst2, err := eng.NewInstance(ctx, digests[1], true, &host.AppSettings{})
			if err != nil {
				t.Fatal(err)
			}
			defer inst2.Close(ctx)
			newGen = func() *sandbox.Orchestration { return inst2.Bind(ctx) }
			guest = newGen()
			err = guest.Locked(func() (err error) {
				st, err = replay.Rebuild(meta.InstanceID, env.Limits, history, guest)
				return err
			})
			if err != nil {
				t.Fatalf("step %d: migrate: %v", i+1, err)
			}
			info, _ := json.Marshal(map[string]string{"from": meta.Digest, "to": digests[1]})
			msgs = append(msgs, abi.HistoryEvent{EventID: -1, Type: abi.EventGenericEvent, Timestamp: env.Now.UnixNano(),
				Name: host.MigrateEventName, Input: string(info)})
			meta.Digest = digests[1]
		}
		var d Decision
		if s.rewind != "" {
			d = transcriptRewind(t, env, meta, history, children, s.rewind, newGen, &st, &guest)
		} else {
			var res *replay.StepResult
			err := guest.Locked(func() (err error) {
				res, err = st.Step(env.Now.UnixNano(), msgs, guest)
				return err
			})
			if err != nil {
				t.Fatalf("step %d: %v", i+1, err)
			}
			d = Decide(env, 0, 1, meta.InstanceID, meta, GenerationOf(st, res), res)
		}
		out[i] = renderDecision(d)
		for j, l := range out[i] {
			out[i][j] = strings.NewReplacer(digests[0], "<samples>", digests[1], "<migrated>").Replace(l)
		}
		meta, local = d.Commit.State, d.Commit.Local
		if d.Commit.ResetHistory {
			history = nil
		}
		history = append(history, d.Commit.NewEvents...)
	}
	if strings.HasPrefix(filepath.Base(file), "bad-") {
		if meta.Status != abi.StatusFailed || meta.Failure == nil || !strings.HasPrefix(meta.Failure.Code, "DW100") {
			t.Errorf("a bad-* transcript must end Failed with a nondeterminism code; it ended %s %v", meta.Status, meta.Failure)
		}
	}
	for _, o := range out {
		got = append(got, o...)
	}
	if *rewrite {
		var b strings.Builder
		next := 0
		for i, line := range kept {
			b.WriteString(line + "\n")
			for next < len(steps) && steps[next].at == i+1 {
				for _, l := range out[next] {
					b.WriteString(l + "\n")
				}
				next++
			}
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("effects differ from %s (run with -rewrite to accept):\n--- got\n%s\n--- want\n%s", file, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// transcriptRewind runs a rewind step as the worker does: plan it from the
// history and the children's states, rebuild the Generation from the plan
// on a new guest orchestration, step it and decide.
func transcriptRewind(t *testing.T, env Env, meta host.InstanceState, history []abi.HistoryEvent, children []*host.InstanceState, reason string,
	newGen func() *sandbox.Orchestration, st **replay.State, guest **sandbox.Orchestration) Decision {
	plan := replay.PlanRewind(history, reason, env.Now.UnixNano())
	subs := append([]abi.HistoryEvent(nil), plan.SubOrchestrations...)
	states := make([]*host.InstanceState, len(subs))
	for i, sub := range subs {
		for _, c := range children {
			if c.InstanceID == sub.InstanceID {
				states[i] = c
			}
		}
	}
	extra, rewind := RewindChildren(subs, states)
	plan.Record(extra...)
	*guest = newGen()
	g := *guest
	var s *replay.State
	var res *replay.StepResult
	err := g.Locked(func() (err error) {
		if s, err = replay.Rebuild(meta.InstanceID, env.Limits, plan.History, g); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		res, err = s.Step(env.Now.UnixNano(), nil, g)
		return err
	})
	if err != nil {
		t.Fatalf("rewind: %v", err)
	}
	*st = s
	meta.Failure, meta.Output = nil, ""
	return DecideRewind(env, 0, 1, meta.InstanceID, meta, GenerationOf(s, res), res, plan, rewind, reason)
}

func decodeTranscriptEvent(t *testing.T, s string) abi.HistoryEvent {
	t.Helper()
	ev, err := abi.DecodeEvent([]byte(s))
	if err != nil {
		t.Fatalf("event %s: %v", s, err)
	}
	return ev
}

// renderDecision writes a Decision as "<" lines: the commit's state, each
// new event, activity, timer, local and outbox message, one JSON each.
func renderDecision(d Decision) []string {
	c := d.Commit
	j := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	st := c.State
	lines := []string{fmt.Sprintf("< commit id=%s reset=%t", c.CommitID, c.ResetHistory),
		fmt.Sprintf("< state status=%s execution=%s input=%s output=%s custom=%s history=%d depth=%d failure=%s",
			st.Status, st.ExecutionID, st.Input, st.Output, st.CustomStatus, st.HistoryLength, st.Depth, j(st.Failure))}
	if st.Digest != "" {
		lines[1] += " module=" + st.Digest
	}
	for _, e := range c.NewEvents {
		e.Timestamp = 0
		lines = append(lines, "< event "+string(abi.EncodeEvent(&e)))
	}
	for _, a := range c.Activities {
		lines = append(lines, fmt.Sprintf("< activity task=%d name=%s input=%s module=%s", a.TaskID, a.Name, a.Input, a.Digest))
	}
	for _, tm := range c.Timers {
		lines = append(lines, fmt.Sprintf("< timer task=%d at=%s", tm.Message.Event.TaskScheduledID, tm.FireAt.Format(time.RFC3339Nano)))
	}
	for _, m := range c.Local {
		e := m.Event
		e.Timestamp = 0
		lines = append(lines, fmt.Sprintf("< local execution=%s %s", m.ExecutionID, abi.EncodeEvent(&e)))
	}
	for _, o := range c.Outbox {
		e := o.Message.Event
		e.Timestamp = 0
		create := ""
		if o.Create != nil {
			create = fmt.Sprintf(" create=%s/%s depth=%d", o.Create.Name, o.Create.InstanceID, o.Create.Depth)
		}
		lines = append(lines, fmt.Sprintf("< outbox partition=%d to=%s mid=%s%s %s", o.Partition, o.Message.InstanceID, o.Message.MessageID, create, abi.EncodeEvent(&e)))
	}
	if d.HistoryWarning {
		lines = append(lines, "< warning history at 80% of its limit")
	}
	return lines
}
