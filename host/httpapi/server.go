package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
)

// Server is the HTTP management API over a client.Client. It is an
// http.Handler (use it with any listener, e.g. httptest) and can run its own
// http.Server with Start and Close. It is safe for concurrent use.
type Server struct {
	client *client.Client
	opts   Options
	keys   [][sha256.Size]byte
	log    *slog.Logger

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	err  error
}

var _ http.Handler = (*Server)(nil)

// New returns a Server over client. It fails when the options are unsafe
// or invalid: no key while auth is enabled, auth disabled on a non-loopback
// address, or a key shorter than MinKeyLength.
func New(cl *client.Client, opts Options) (*Server, error) {
	if cl == nil {
		return nil, errors.New("http api: nil client")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Server{client: cl, opts: o, keys: keyDigests(o.Keys), log: o.Logger}, nil
}

// Options returns a copy of the server's options with defaults filled and
// Keys left out (so that the result can be logged).
func (s *Server) Options() Options {
	o := s.opts
	o.Keys = nil
	return o
}

// ManagementPayloadJSON returns the HttpManagementPayload JSON of instance
// instanceID as the server hands it to activities (it has the signature of
// worker.Options.ManagementPayload): URLs on the server's bound address
// (URL) under WebhookPath, with taskHub= the served hub, connection= the
// connection name (Options.ConnectionName, else "Redis") and, when auth is
// on, code= the first system key, so that the URLs work as they are, like
// those the start routes return to a request that passed that key. It
// fails before Start and for an id that host.ValidateInstanceID refuses.
// The key is in the result: whoever gets it can use the API.
func (s *Server) ManagementPayloadJSON(instanceID string) ([]byte, error) {
	base := s.URL()
	if base == "" {
		return nil, errors.New("http api: management URLs: the server is not started")
	}
	if err := host.ValidateInstanceID(instanceID); err != nil {
		return nil, fmt.Errorf("http api: management URLs: %w", err)
	}
	code := ""
	if !s.opts.DisableAuth && len(s.opts.Keys) > 0 {
		code = s.opts.Keys[0]
	}
	return encodeJSON(ManagementPayload(base+WebhookPath, s.opts.HubName, s.connection(query{}), code, instanceID))
}

// Start listens on Options.Addr and serves in a goroutine owned by the
// server until Close. It returns once the listener is bound, so Addr and
// URL are valid after it.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("http api: already started")
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("http api: listen on %s: %w", s.opts.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			s.log.Error("http api stopped", "err", err)
		}
	}()
	return nil
}

// Addr returns the bound address after Start, else nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// URL returns "http://host:port" of the bound address after Start, else "".
func (s *Server) URL() string {
	a := s.Addr()
	if a == nil {
		return ""
	}
	return "http://" + a.String()
}

// Close shuts the server down gracefully: it stops accepting connections,
// waits for requests in flight until ctx ends (or ShutdownTimeout when ctx
// has no deadline), then closes the remaining connections and waits for the
// serving goroutine. It returns the serving error, if any. Closing a server
// that was not started is a no-op.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.ShutdownTimeout)
		defer cancel()
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	<-done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if err != nil {
		return fmt.Errorf("http api: shutdown: %w", err)
	}
	return nil
}

// Run starts the server and serves until ctx ends, then closes it
// gracefully.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close(context.WithoutCancel(ctx))
}

// ServeHTTP authenticates, routes and serves one request. A panic in a
// handler is recovered and answered with 500 (if nothing was written yet).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w}
	name := "-"
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("http api: handler panicked", "route", name, "panic", fmt.Sprint(v))
			if !rw.wrote {
				writeInternal(rw)
			}
		}
		// The path only: the query may hold the key.
		s.log.Debug("http request", "method", r.Method, "path", r.URL.Path, "route", name,
			"status", rw.status, "duration", time.Since(start))
	}()
	if !s.authorized(r) {
		writeEmpty(rw, http.StatusUnauthorized)
		return
	}
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		writeEmpty(rw, http.StatusNotFound)
		return
	}
	rt, p, rpc := match(r.Method, segs)
	if rt == nil || (rpc && !fromLoopback(r)) {
		writeEmpty(rw, http.StatusNotFound)
		return
	}
	name = rt.name
	q := parseQuery(r.URL.RawQuery)
	if hub := q.str("taskHub"); hub != "" && hub != s.opts.HubName {
		writeMessage(rw, http.StatusBadRequest, hubNotServedMessage(hub, s.opts.HubName))
		return
	}
	// The id as the router sees it: percent-decoded, so "%2e%2e" is ".."
	// like a literal ".." segment (which curl and browsers resolve away
	// before sending; the server never cleans paths itself).
	if id, ok := p["instanceId"]; ok {
		if err := host.ValidateInstanceID(id); err != nil {
			writeArgumentError(rw, err.Error())
			return
		}
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		// A retry with the same key is applied at most once (client.WithIdempotencyKey).
		if err := client.ValidateIdempotencyKey(key); err != nil {
			writeArgumentError(rw, err.Error()+" (the Idempotency-Key header)")
			return
		}
		r = r.WithContext(client.WithIdempotencyKey(r.Context(), key))
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		// Refused before any of the body is read.
		writeBodyTooLarge(rw, s.opts.MaxBodyBytes)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes) // w: it closes the connection on excess
	rt.handle(s, rw, r, &args{path: p, q: q})
}

// hubNotServedMessage is the 400 message for a taskHub parameter naming a
// hub other than the served one. Task hub names are compared exactly
// (case-sensitively), as the CLI and the store compare them.
func hubNotServedMessage(hub, served string) string {
	msg := fmt.Sprintf("The task hub %q is not served here; this server serves only the task hub %q. ", hub, served)
	if strings.EqualFold(hub, served) {
		msg += "Task hub names are case-sensitive: "
	}
	return msg + fmt.Sprintf("send taskHub=%s or leave taskHub out.", url.QueryEscape(served))
}

// authorized checks the system key: the code query parameter or the
// x-functions-key header must equal one of the keys. With auth disabled,
// the request must have arrived on a loopback address.
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.DisableAuth {
		return arrivedOnLoopback(r)
	}
	presented := r.Header.Get("x-functions-key")
	if presented == "" {
		presented = parseQuery(r.URL.RawQuery).str("code")
	}
	if presented == "" {
		return false
	}
	d := sha256.Sum256([]byte(presented))
	ok := 0
	for _, k := range s.keys {
		ok |= subtle.ConstantTimeCompare(d[:], k[:])
	}
	return ok == 1
}

// arrivedOnLoopback reports whether the request's connection has a
// loopback local address.
func arrivedOnLoopback(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	return IsLoopback(a.String())
}

// fromLoopback reports whether the request came from a loopback peer.
func fromLoopback(r *http.Request) bool {
	return IsLoopback(r.RemoteAddr)
}

// statusWriter records whether and with what status a response was written.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
