package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/dfjson"
)

// Defaults of the start-and-wait starter route (those of Durable Functions'
// HttpSyncStart sample), and the shortest polling interval used.
const (
	starterDefaultTimeout  = 30 * time.Second
	starterDefaultInterval = time.Second
	minPollInterval        = 20 * time.Millisecond
)

// waitSpec is a wait-mode request: poll every interval for up to timeout.
type waitSpec struct {
	timeout, interval time.Duration
}

// webhookWait reads wait mode from the start and restart routes: it is on
// when both timeout and pollingInterval parse as seconds. ok is false (and
// 400 written) when pollingInterval exceeds timeout.
func (s *Server) webhookWait(w http.ResponseWriter, q query) (ws *waitSpec, ok bool) {
	timeout, ok1 := q.seconds("timeout")
	interval, ok2 := q.seconds("pollingInterval")
	if !ok1 || !ok2 {
		return nil, true
	}
	return s.checkWait(w, timeout, interval)
}

// checkWait validates and clamps a wait: 400 when interval > timeout.
func (s *Server) checkWait(w http.ResponseWriter, timeout, interval time.Duration) (*waitSpec, bool) {
	if interval > timeout {
		writeArgumentError(w, fmt.Sprintf("Total timeout %gs should be bigger than retry timeout %gs.", timeout.Seconds(), interval.Seconds()))
		return nil, false
	}
	return &waitSpec{timeout: min(timeout, s.opts.MaxWait), interval: max(interval, minPollInterval)}, true
}

// handleStart serves POST /orchestrators/{functionName}[/{instanceId}].
func (s *Server) handleStart(w http.ResponseWriter, r *http.Request, a *args) {
	ws, ok := s.webhookWait(w, a.q)
	if !ok {
		return
	}
	s.start(w, r, a, a.path["instanceId"], ws)
}

// handleHTTPStart serves the sample starter POST /orchestrators/{name}: the
// 202 check-status response.
func (s *Server) handleHTTPStart(w http.ResponseWriter, r *http.Request, a *args) {
	s.start(w, r, a, "", nil)
}

// handleHTTPStartAndWait serves the sample starter POST
// /orchestrators/{name}/wait?timeout=s&retryInterval=s (defaults 30s and
// 1s; pollingInterval is accepted for retryInterval): 200 with the output
// when it completes in time, else as the webhook wait mode.
func (s *Server) handleHTTPStartAndWait(w http.ResponseWriter, r *http.Request, a *args) {
	timeout, ok := a.q.seconds("timeout")
	if !ok {
		timeout = starterDefaultTimeout
	}
	interval, ok := a.q.seconds("retryInterval")
	if !ok {
		if interval, ok = a.q.seconds("pollingInterval"); !ok {
			interval = starterDefaultInterval
		}
	}
	ws, ok := s.checkWait(w, timeout, interval)
	if !ok {
		return
	}
	s.start(w, r, a, "", ws)
}

// start reads the input, starts the orchestrator and answers with the
// check-status response or waits.
func (s *Server) start(w http.ResponseWriter, r *http.Request, a *args, id string, ws *waitSpec) {
	input, ok := s.readJSONBody(w, r, false)
	if !ok {
		return
	}
	st, err := s.client.StartNew(r.Context(), client.StartOptions{FunctionName: a.path["functionName"], InstanceID: id, Input: input})
	if err != nil {
		s.writeStartError(w, r, id, err)
		return
	}
	s.respondStarted(w, r, a.q, st.InstanceID, ws)
}

// writeStartError maps a StartNew error: 400 invalid input (unknown
// function, bad id), 413 an input over the module's payload limit, 409 an
// unfinished instance with that id exists.
func (s *Server) writeStartError(w http.ResponseWriter, r *http.Request, id string, err error) {
	switch {
	case writePayloadTooLarge(w, err):
	case errors.Is(err, host.ErrInvalidInput):
		writeArgumentError(w, invalidInputText(err))
	case errors.Is(err, host.ErrInstanceExists):
		status := "Running"
		if st, gerr := s.client.GetStatus(r.Context(), id); gerr == nil {
			status = string(st.Status)
		}
		writeMessage(w, http.StatusConflict, fmt.Sprintf("An orchestration instance with the ID '%s' and the status %s already exists; it can be replaced only once it has finished.", id, status))
	default:
		s.fail(w, r, err)
	}
}

// handleRestart serves POST /instances/{id}/restart: 400 when not found,
// 409 when restarting under the same id while it runs, else as start.
func (s *Server) handleRestart(w http.ResponseWriter, r *http.Request, a *args) {
	ws, ok := s.webhookWait(w, a.q)
	if !ok {
		return
	}
	id := a.path["instanceId"]
	newID := a.q.boolean("restartWithNewInstanceId", true)
	st, err := s.client.Restart(r.Context(), id, newID)
	if errors.Is(err, host.ErrInstanceNotFound) {
		const msg = "InstanceId does not match a valid orchestration instance."
		writeException(w, http.StatusBadRequest, msg, msg, "System.ArgumentException")
		return
	}
	if err != nil {
		s.writeStartError(w, r, id, err)
		return
	}
	s.respondStarted(w, r, a.q, st.InstanceID, ws)
}

// respondStarted writes the check-status response for id, or waits for it
// when ws is set.
func (s *Server) respondStarted(w http.ResponseWriter, r *http.Request, q query, id string, ws *waitSpec) {
	if ws == nil {
		s.writeCheckStatus(w, r, q, id)
		return
	}
	s.waitForCompletion(w, r, q, id, *ws)
}

// waitForCompletion waits for id for up to ws.timeout, reading its status
// when the store announces it finished and every ws.interval:
// Completed gives 200 with the output alone; Failed, Canceled and
// Terminated give 200 with the status payload; anything else (not finished,
// not found) the 202 check-status response.
func (s *Server) waitForCompletion(w http.ResponseWriter, r *http.Request, q query, id string, ws waitSpec) {
	deadline := time.Now().Add(ws.timeout)
	ctx := r.Context()
	// The status is read when the store announces the instance finished,
	// and every interval in any case.
	finished, release := s.client.WatchFinished(ctx, id)
	defer release()
	for {
		st, err := s.client.GetStatus(ctx, id)
		switch {
		case errors.Is(err, host.ErrInstanceNotFound):
		case err != nil:
			s.fail(w, r, err)
			return
		case st.Status == abi.StatusCompleted:
			writeRawJSON(w, http.StatusOK, dfjson.NewStatusPayload(st, nil, dfjson.StatusOptions{ShowOutput: true}).Output)
			return
		case st.Status.Terminal():
			s.writeStatus(w, r, q, st, false)
			return
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			break
		}
		t := time.NewTimer(min(ws.interval, remaining))
		select {
		case <-ctx.Done():
			t.Stop()
			writeEmpty(w, http.StatusServiceUnavailable) // the client has gone
			return
		case <-finished:
			t.Stop()
		case <-t.C:
		}
	}
	s.writeCheckStatus(w, r, q, id)
}

// writeCheckStatus writes the 202 check-status response: the 8-field
// payload, Location = statusQueryGetUri and Retry-After: 10.
func (s *Server) writeCheckStatus(w http.ResponseWriter, r *http.Request, q query, id string) {
	p := checkStatus(s.managementPayload(r, q, id))
	w.Header().Set("Location", p.StatusQueryGetURI)
	w.Header().Set("Retry-After", "10")
	writeJSON(w, http.StatusAccepted, p)
}

// managementPayload builds id's URLs from the request's origin, the served
// hub, the request's connection (or the default) and its code.
func (s *Server) managementPayload(r *http.Request, q query, id string) HTTPManagementPayload {
	return ManagementPayload(origin(r)+WebhookPath, s.opts.HubName, s.connection(q), q.str("code"), id)
}

// connection is the connection name put in URLs.
func (s *Server) connection(q query) string {
	if c := q.str("connection"); c != "" {
		return c
	}
	if s.opts.ConnectionName != "" {
		return s.opts.ConnectionName
	}
	return DefaultConnectionName
}

// origin is "scheme://host" of the request.
func origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	h := r.Host
	if h == "" {
		h = "localhost"
	}
	return scheme + "://" + h
}

// requestURL is the full URL of the request, query included.
func requestURL(r *http.Request) string {
	return origin(r) + r.URL.RequestURI()
}

// readJSONBody reads the body as JSON text. An empty (or blank) body gives
// "" (null) unless required, when it is 400 Invalid JSON content, as is a
// body that is not one JSON value. A body over the limit gives 413.
func (s *Server) readJSONBody(w http.ResponseWriter, r *http.Request, required bool) (string, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeBodyTooLarge(w, tooBig.Limit)
			return "", false
		}
		writeMessage(w, http.StatusBadRequest, "The request body could not be read.")
		return "", false
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		if required {
			writeException(w, http.StatusBadRequest, msgInvalidJSON, "The request body is empty; send a JSON value (e.g. null, \"text\" or {\"a\":1}).", "Newtonsoft.Json.JsonReaderException")
			return "", false
		}
		return "", true
	}
	if !json.Valid(b) {
		var v any
		msg := "The request body is not valid JSON."
		if err := json.Unmarshal(b, &v); err != nil {
			msg = "The request body is not valid JSON: " + err.Error() + "."
		}
		writeException(w, http.StatusBadRequest, msgInvalidJSON, msg, "Newtonsoft.Json.JsonReaderException")
		return "", false
	}
	return string(b), true
}

// invalidInputText is the message of an ErrInvalidInput error without the
// sentinel's prefix.
func invalidInputText(err error) string {
	return textAfter(err, host.ErrInvalidInput)
}

// textAfter is err's message from after the text of sentinel and ": " on
// (all of it when the sentinel's text is not in it).
func textAfter(err, sentinel error) string {
	msg := err.Error()
	if i := strings.Index(msg, sentinel.Error()+": "); i >= 0 {
		msg = msg[i+len(sentinel.Error())+2:]
	}
	return msg
}

// writeBodyTooLarge writes the 413 of a request body over limit bytes.
func writeBodyTooLarge(w http.ResponseWriter, limit int64) {
	writeMessage(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than the limit of %d bytes.", limit))
}

// writePayloadTooLarge maps host.ErrPayloadTooLarge (an input or event data
// over the payload limit of the module it is for; nothing was written) to
// 413 {"Message":…} with the client's message, which names the payload, its
// size and the limit. It reports whether err was that error (and the
// response written). Every route that passes a payload to the client uses
// it, before its other error cases.
func writePayloadTooLarge(w http.ResponseWriter, err error) bool {
	if !errors.Is(err, host.ErrPayloadTooLarge) {
		return false
	}
	writeMessage(w, http.StatusRequestEntityTooLarge, "Payload too large: "+textAfter(err, host.ErrPayloadTooLarge))
	return true
}
