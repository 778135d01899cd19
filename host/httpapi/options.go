package httpapi

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Defaults of Options; a zero field means its default.
const (
	DefaultAddr              = "127.0.0.1:7071"
	DefaultHubName           = "DurableFunctionsHub"
	DefaultConnectionName    = "Redis"
	DefaultMaxBodyBytes      = 4 << 20
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxWait           = time.Minute
	DefaultShutdownTimeout   = 10 * time.Second
	// MinKeyLength is the shortest system key accepted.
	MinKeyLength = 16
)

// Options configure a Server. The zero value of every field means its
// default; New copies the struct and fills the defaults.
type Options struct {
	// Addr is the TCP address Start listens on (default "127.0.0.1:7071";
	// port 0 picks a free port).
	Addr string
	// HubName is the task hub reported in URLs and in the binding (default
	// "DurableFunctionsHub"). A request whose taskHub query parameter names
	// another hub gets 400 naming this one; names are compared exactly
	// (case-sensitively), as the CLI and the store compare them.
	HubName string
	// ConnectionName is the connection reported in URLs when the request
	// has no connection parameter (default "Redis"). The binding reports
	// null when it is empty, as Durable Functions does for the default.
	ConnectionName string
	// Keys are the accepted system keys (several allow rotation); each must
	// be at least MinKeyLength bytes. They are compared in constant time and
	// never logged. At least one is required unless DisableAuth.
	Keys []string
	// DisableAuth serves requests without a key. It is accepted only when
	// Addr is a loopback address, and even then a request that did not
	// arrive on a loopback address gets 401.
	DisableAuth bool
	// MaxBodyBytes limits request bodies (default 4 MiB); larger ones get
	// 413, before any of the body is read when Content-Length announces
	// it, else once the limit is crossed. Inputs and event data over the
	// payload limit of the module they are for (smaller by default, 1 MiB)
	// get 413 too (host.ErrPayloadTooLarge).
	MaxBodyBytes int64
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// http.Server limits (defaults 10s, 30s, 2m, 2m).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxWait caps the timeout of wait mode (default 1m); a larger timeout
	// is cut to it. It is at most half of WriteTimeout.
	MaxWait time.Duration
	// ShutdownTimeout bounds the graceful shutdown in Close when its context
	// has no deadline (default 10s).
	ShutdownTimeout time.Duration
	// Logger receives one Debug line per request (method, path without
	// the query, route, status, duration), panics and failures at Error;
	// nil discards them. The key and the query string are never logged.
	Logger *slog.Logger
}

// withDefaults returns a copy of o with defaults filled, or an error naming
// the field that is wrong.
func (o Options) withDefaults() (Options, error) {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.HubName == "" {
		o.HubName = DefaultHubName
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&o.ReadHeaderTimeout, DefaultReadHeaderTimeout}, {&o.ReadTimeout, DefaultReadTimeout},
		{&o.WriteTimeout, DefaultWriteTimeout}, {&o.IdleTimeout, DefaultIdleTimeout},
		{&o.MaxWait, DefaultMaxWait}, {&o.ShutdownTimeout, DefaultShutdownTimeout}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if o.MaxWait > o.WriteTimeout/2 {
		o.MaxWait = o.WriteTimeout / 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Keys = append([]string(nil), o.Keys...)
	for i, k := range o.Keys {
		if len(k) < MinKeyLength {
			return o, fmt.Errorf("http api: system key #%d is %d bytes long; use at least %d (e.g. `openssl rand -hex 32`)", i+1, len(k), MinKeyLength)
		}
	}
	if o.DisableAuth {
		if !IsLoopback(o.Addr) {
			return o, fmt.Errorf("http api: auth can be disabled only on a loopback address, not on %q; set a system key instead", o.Addr)
		}
	} else if len(o.Keys) == 0 {
		return o, errors.New("http api: no system key: set $DURABLEWASM_SYSTEM_KEY or --system-key-file, or disable auth on a loopback address")
	}
	return o, nil
}

// IsLoopback reports whether addr ("host:port" or a bare host) names only
// loopback interfaces: "localhost", 127.0.0.0/8 or ::1. An empty host
// ("":7071, all interfaces) is not loopback.
func IsLoopback(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		h = addr
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// keyDigests hashes the keys so that comparison time depends on neither
// the content nor the length of the presented key.
func keyDigests(keys []string) [][sha256.Size]byte {
	out := make([][sha256.Size]byte, len(keys))
	for i, k := range keys {
		out[i] = sha256.Sum256([]byte(k))
	}
	return out
}
