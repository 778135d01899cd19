package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/host/sandbox"
)

// Durable HTTP.
//
// An orchestration's HTTP call (the Go SDK's OrchestrationContext.CallHTTP,
// Durable Functions' CallHttpAsync) is the built-in activity
// abi.ActivityHTTP, scheduled, recorded and delivered like any other. The
// worker that runs it performs the request natively, with the module's
// allowlist, HTTP timeout and payload limit, so it costs no guest instance
// and no activity slot beyond its own. The 202 + Location polling pattern
// is the SDK's: it calls again after a durable timer, so that every poll is
// in history.

// execHTTP performs the durable HTTP request of item and returns its
// TaskCompleted (the abi.HTTPResponse JSON, whatever its status) or
// TaskFailed (type abi.FailureHTTP: refused, timed out, or failed).
func (w *Worker) execHTTP(ctx context.Context, item *host.ActivityItem) abi.HistoryEvent {
	st := w.settings(ctx, item.Digest)
	limit := w.limits(ctx, item.Digest).MaxPayloadBytes
	began := time.Now()
	resp := sandbox.DoHTTP(w.guests.With(ctx), st, []byte(item.Input), limit)
	w.stats.observe(item.Digest, item.Name, time.Since(began))
	ev := abi.HistoryEvent{EventID: -1, Type: abi.EventTaskCompleted, Timestamp: w.opts.Now().UnixNano(), TaskScheduledID: item.TaskID}
	if resp.Error != "" {
		ev.Type = abi.EventTaskFailed
		ev.Failure = &abi.FailureDetails{Type: abi.FailureHTTP, Message: resp.Error, Source: activitySource(item)}
		return ev
	}
	b, _ := json.Marshal(resp) // an HTTPResponse always encodes
	if len(b) > limit {
		ev.Type = abi.EventTaskFailed
		ev.Failure = &abi.FailureDetails{Type: abi.FailureLimitExceeded, Code: replay.CodeLimit, Source: activitySource(item),
			Message: fmt.Sprintf("the HTTP response is %d bytes as JSON, over the payload limit of %d bytes", len(b), limit)}
		return ev
	}
	ev.Result = string(b)
	return ev
}
