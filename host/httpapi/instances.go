package httpapi

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/dfjson"
)

// defaultTop is the page size of the list route when top is absent or bad;
// maxTop is the largest page served (a page may hold fewer than top).
const (
	defaultTop = 100
	maxTop     = 1000
)

// handleStatus serves GET /instances/{id}: 404 empty when not found, else
// the status payload with 200 (terminal), 202 (not terminal, with Location
// and Retry-After: 5) or 500 (Failed with
// returnInternalServerErrorOnFailure=true).
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, a *args) {
	st, ok := s.lookup(w, r, a.path["instanceId"])
	if !ok {
		return
	}
	s.writeStatus(w, r, a.q, st, a.q.boolean("returnInternalServerErrorOnFailure", false))
}

// lookup gets an instance's status; on failure it writes 404 (not found)
// or 500 and returns false.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, id string) (*host.InstanceState, bool) {
	st, err := s.client.GetStatus(r.Context(), id)
	if errors.Is(err, host.ErrInstanceNotFound) {
		writeEmpty(w, http.StatusNotFound)
		return nil, false
	}
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return st, true
}

// writeStatus writes st's status payload with the status code of its
// runtime status, honouring showInput, showHistory and showHistoryOutput.
func (s *Server) writeStatus(w http.ResponseWriter, r *http.Request, q query, st *host.InstanceState, iseOnFailure bool) {
	o := dfjson.StatusOptions{ShowInput: q.boolean("showInput", true), ShowOutput: true,
		ShowHistory: q.boolean("showHistory", false), ShowHistoryOutput: q.boolean("showHistoryOutput", false)}
	var history []abi.HistoryEvent
	if o.ShowHistory && st.Status != abi.StatusPending {
		h, err := s.client.GetHistory(r.Context(), st.InstanceID)
		if errors.Is(err, host.ErrInstanceNotFound) {
			writeEmpty(w, http.StatusNotFound)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		history = h
	}
	p := dfjson.NewStatusPayload(st, history, o)
	code := http.StatusOK
	switch st.Status {
	case abi.StatusRunning, abi.StatusPending, abi.StatusContinuedAsNew, abi.StatusSuspended:
		code = http.StatusAccepted
		w.Header().Set("Location", requestURL(r))
		w.Header().Set("Retry-After", "5")
	case abi.StatusFailed:
		if iseOnFailure {
			code = http.StatusInternalServerError
		}
	case abi.StatusCompleted, abi.StatusCanceled, abi.StatusTerminated:
	default:
		code = http.StatusInternalServerError
	}
	writeJSON(w, code, p)
}

// handleList serves GET /instances: 200 with a JSON array and the
// x-ms-continuation-token header ("" on the last page), an empty array
// when createdTimeTo is before createdTimeFrom (as in Durable Functions);
// 400 for a continuation token the server did not issue or that was
// changed.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request, a *args) {
	q := a.q
	f := q.runtimeStatus()
	items := make([]*dfjson.StatusPayload, 0)
	next := ""
	if !f.set || len(f.statuses) > 0 {
		iq := host.InstanceQuery{Statuses: f.statuses, InstanceIDPrefix: q.str("instanceIdPrefix"),
			PageSize: defaultTop, ContinuationToken: r.Header.Get("x-ms-continuation-token")}
		if top, ok := q.integer("top"); ok && top > 0 {
			iq.PageSize = min(top, maxTop)
		}
		iq.CreatedFrom, _ = q.time("createdTimeFrom")
		iq.CreatedTo, _ = q.time("createdTimeTo")
		if emptyRange(iq.CreatedFrom, iq.CreatedTo) {
			// As in Durable Functions: the filter matches nothing.
			w.Header().Set("x-ms-continuation-token", "")
			writeJSON(w, http.StatusOK, items)
			return
		}
		page, err := s.client.QueryInstances(r.Context(), iq)
		switch {
		case errors.Is(err, host.ErrBadToken):
			writeMessage(w, http.StatusBadRequest, "The x-ms-continuation-token header is not a token this server issued, or it was changed; send the token of the previous page unmodified, or none for the first page.")
			return
		case errors.Is(err, host.ErrInvalidInput):
			writeMessage(w, http.StatusBadRequest, "The query cannot be served: "+invalidInputText(err))
			return
		case err != nil:
			s.fail(w, r, err)
			return
		}
		o := dfjson.StatusOptions{ShowInput: q.boolean("showInput", true), ShowOutput: true}
		for i := range page.Instances {
			items = append(items, dfjson.NewStatusPayload(&page.Instances[i], nil, o))
		}
		next = page.ContinuationToken
	}
	w.Header().Set("x-ms-continuation-token", next)
	writeJSON(w, http.StatusOK, items)
}

// emptyRange reports whether the created-time bounds from and to (zero:
// unbounded) admit no instance: both set and to before from.
func emptyRange(from, to time.Time) bool {
	return !from.IsZero() && !to.IsZero() && to.Before(from)
}

// purgeResult is the body of the purge routes.
type purgeResult struct {
	InstancesDeleted int `json:"instancesDeleted"`
}

// handlePurge serves DELETE /instances/{id}: 404 empty when not found, 412
// with a JSON string when the instance has not finished (the 3.x rule;
// 2.13 purged running instances too), else 200 {"instancesDeleted":1}.
func (s *Server) handlePurge(w http.ResponseWriter, r *http.Request, a *args) {
	id := a.path["instanceId"]
	st, ok := s.lookup(w, r, id)
	if !ok {
		return
	}
	err := s.client.PurgeInstance(r.Context(), id, false)
	switch {
	case errors.Is(err, host.ErrInstanceNotFound):
		writeEmpty(w, http.StatusNotFound)
	case errors.Is(err, host.ErrNotFinished):
		writeString(w, http.StatusPreconditionFailed, notTerminalMessage(id, st.Status))
	case err != nil:
		s.fail(w, r, err)
	default:
		writeJSON(w, http.StatusOK, purgeResult{InstancesDeleted: 1})
	}
}

// notTerminalMessage is the 412 body of purging an unfinished instance.
func notTerminalMessage(id string, status abi.RuntimeStatus) string {
	if status.Terminal() {
		status = abi.StatusRunning // it was restarted between the lookup and the purge
	}
	return fmt.Sprintf("Only orchestrations in a terminal state can be purged. The orchestration with instance ID '%s' has status %s; terminate it first.", id, status)
}

// handlePurgeByFilter serves DELETE /instances: 400 (a JSON string)
// without a valid createdTimeFrom, 404 empty when nothing was deleted
// (also when the range is empty: createdTimeFrom after createdTimeTo, which
// defaults to now), else 200 {"instancesDeleted":N}. Only finished
// instances are purged.
func (s *Server) handlePurgeByFilter(w http.ResponseWriter, r *http.Request, a *args) {
	from, ok := a.q.time("createdTimeFrom")
	if !ok {
		writeString(w, http.StatusBadRequest, "Please provide value for 'createdTimeFrom' parameter.")
		return
	}
	to, ok := a.q.time("createdTimeTo")
	if !ok {
		to = time.Now().UTC()
	}
	f := a.q.runtimeStatus()
	if f.set && len(f.statuses) == 0 || emptyRange(from, to) {
		// Nothing can match: a createdTimeFrom after createdTimeTo (or
		// after now, its default) purges nothing, as in Durable Functions.
		writeEmpty(w, http.StatusNotFound)
		return
	}
	res, err := s.client.PurgeInstances(r.Context(), host.InstanceQuery{CreatedFrom: from, CreatedTo: to, Statuses: f.statuses}, false, nil)
	if errors.Is(err, host.ErrInvalidInput) && res.Deleted == 0 {
		writeString(w, http.StatusBadRequest, "The purge filter cannot be served: "+invalidInputText(err))
		return
	}
	if err != nil && res.Deleted == 0 {
		s.fail(w, r, err)
		return
	}
	if err != nil {
		s.log.Warn("http api: purge by filter stopped early", "deleted", res.Deleted, "err", err)
	}
	if res.Deleted == 0 {
		writeEmpty(w, http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, purgeResult{InstancesDeleted: res.Deleted})
}

// handleRaiseEvent serves POST /instances/{id}/raiseEvent/{name}, checking
// in Durable Functions' order: 404 not found, 410 finished, 400 media type
// not application/json, 400 empty or invalid JSON (413 too large), 202.
func (s *Server) handleRaiseEvent(w http.ResponseWriter, r *http.Request, a *args) {
	id := a.path["instanceId"]
	st, ok := s.lookup(w, r, id)
	if !ok {
		return
	}
	if st.Status.Terminal() {
		writeEmpty(w, http.StatusGone)
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, "application/json") {
		writeMessage(w, http.StatusBadRequest, msgOnlyJSON)
		return
	}
	data, ok := s.readJSONBody(w, r, true)
	if !ok {
		return
	}
	s.writeSendResult(w, r, s.client.RaiseEvent(r.Context(), id, a.path["eventName"], data))
}

// writeSendResult maps the error of a message sent to an instance: 404,
// 410, 400 (invalid input), 413 (event data over the payload limit) or 202
// empty.
func (s *Server) writeSendResult(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case err == nil:
		writeEmpty(w, http.StatusAccepted)
	case writePayloadTooLarge(w, err):
	case errors.Is(err, host.ErrInstanceNotFound):
		writeEmpty(w, http.StatusNotFound)
	case errors.Is(err, host.ErrInstanceFinished):
		writeEmpty(w, http.StatusGone)
	case errors.Is(err, host.ErrInvalidInput):
		writeArgumentError(w, invalidInputText(err))
	default:
		s.fail(w, r, err)
	}
}

// handleControl is terminate, suspend and resume: 404 not found, 410
// finished, else send and 202 empty. The body is ignored.
func (s *Server) handleControl(w http.ResponseWriter, r *http.Request, a *args, send func(ctx context.Context, id, reason string) error) {
	id := a.path["instanceId"]
	st, ok := s.lookup(w, r, id)
	if !ok {
		return
	}
	if st.Status.Terminal() {
		writeEmpty(w, http.StatusGone)
		return
	}
	s.writeSendResult(w, r, send(r.Context(), id, a.q.str("reason")))
}

// handleTerminate serves POST /instances/{id}/terminate?reason=…; with
// recursive=true (an extension) running sub-orchestrations are terminated
// too.
func (s *Server) handleTerminate(w http.ResponseWriter, r *http.Request, a *args) {
	recursive := a.q.boolean("recursive", false)
	s.handleControl(w, r, a, func(ctx context.Context, id, reason string) error {
		return s.client.Terminate(ctx, id, reason, recursive)
	})
}

// handleSuspend serves POST /instances/{id}/suspend?reason=….
func (s *Server) handleSuspend(w http.ResponseWriter, r *http.Request, a *args) {
	s.handleControl(w, r, a, s.client.Suspend)
}

// handleResume serves POST /instances/{id}/resume?reason=….
func (s *Server) handleResume(w http.ResponseWriter, r *http.Request, a *args) {
	s.handleControl(w, r, a, s.client.Resume)
}

// handleRewind serves POST /instances/{id}/rewind?reason=… with the 3.x
// codes: 404 and 412 with JSON string bodies, 202 empty.
func (s *Server) handleRewind(w http.ResponseWriter, r *http.Request, a *args) {
	id := a.path["instanceId"]
	notFound := "No orchestration with instance ID \"" + id + "\" found."
	st, err := s.client.GetStatus(r.Context(), id)
	if errors.Is(err, host.ErrInstanceNotFound) {
		writeString(w, http.StatusNotFound, notFound)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	notFailed := func(status abi.RuntimeStatus) string {
		return fmt.Sprintf("This orchestration has status %s, but only orchestrations in the \"Failed\" state can be rewound.", status)
	}
	if st.Status != abi.StatusFailed {
		writeString(w, http.StatusPreconditionFailed, notFailed(st.Status))
		return
	}
	err = s.client.Rewind(r.Context(), id, a.q.str("reason"))
	switch {
	case err == nil:
		writeEmpty(w, http.StatusAccepted)
	case errors.Is(err, host.ErrInstanceNotFound):
		writeString(w, http.StatusNotFound, notFound)
	case errors.Is(err, host.ErrInvalidInput): // the reason
		writeArgumentError(w, invalidInputText(err))
	case errors.Is(err, host.ErrNotFailed):
		status := abi.StatusRunning
		if now, gerr := s.client.GetStatus(r.Context(), id); gerr == nil {
			status = now.Status
		}
		writeString(w, http.StatusPreconditionFailed, notFailed(status))
	default:
		s.fail(w, r, err)
	}
}

// handleManagementPayload serves GET /instances/{id}/managementPayload
// (an extension): 404 empty when not found, else 200 with the
// HttpManagementPayload (with rewindPostUri).
func (s *Server) handleManagementPayload(w http.ResponseWriter, r *http.Request, a *args) {
	id := a.path["instanceId"]
	if _, ok := s.lookup(w, r, id); !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.managementPayload(r, a.q, id))
}

// handleBinding serves GET /binding (an extension): the durableClient
// binding JSON for this server as seen by the request.
func (s *Server) handleBinding(w http.ResponseWriter, r *http.Request, a *args) {
	var conn *string
	if s.opts.ConnectionName != "" {
		c := s.opts.ConnectionName
		conn = &c
	}
	var rpc *string
	if s.opts.DisableAuth {
		u := origin(r) + RPCPath + "/"
		rpc = &u
	}
	writeJSON(w, http.StatusOK, NewClientBinding(origin(r)+WebhookPath, s.opts.HubName, conn, s.connection(a.q), a.q.str("code"), rpc))
}

// fail logs an unexpected error and writes the generic 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		writeEmpty(w, http.StatusServiceUnavailable) // the client has gone; nobody reads this
		return
	}
	switch {
	case errors.Is(err, client.ErrMaybeApplied):
		// Redis did not answer; the message names the key to retry with.
		s.log.Warn("http api: request may have been applied", "method", r.Method, "path", r.URL.Path, "err", err)
		writeMessage(w, http.StatusServiceUnavailable, err.Error())
		return
	case errors.Is(err, host.ErrIdempotencyKeyReused):
		writeMessage(w, http.StatusConflict, err.Error())
		return
	}
	s.log.Error("http api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeInternal(w)
}
