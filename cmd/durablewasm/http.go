package main

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/httpapi"
)

// systemKeyEnv names the environment variable holding the HTTP API's
// system key. Keys are never accepted as flag values (they would show in
// `ps` and shell history).
const systemKeyEnv = "DURABLEWASM_SYSTEM_KEY"

// httpFlags are the HTTP API flags of `serve` (listen defaults to off) and
// `up` (listen defaults to 127.0.0.1:7071).
func httpFlags(listen string) []cli.Flag {
	usage := "address of the HTTP management API (Durable Functions' /runtime/webhooks/durabletask routes); empty: off"
	if listen != "" {
		usage = "address of the HTTP management API (Durable Functions' /runtime/webhooks/durabletask routes); \"off\" disables it"
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "http-listen", Value: listen, Usage: usage},
		&cli.StringFlag{Name: "system-key-file", Usage: "file holding the HTTP API system key(s), one per line (or set $" + systemKeyEnv + "); requests pass it as ?code= or the x-functions-key header"},
		&cli.BoolFlag{Name: "http-disable-auth", Usage: "serve the HTTP API without a key (loopback addresses only)"},
		&cli.Int64Flag{Name: "http-max-body", Value: httpapi.DefaultMaxBodyBytes, Usage: "largest accepted HTTP request body in bytes (larger: 413)"},
	}
}

// systemKeys reads the keys from $DURABLEWASM_SYSTEM_KEY and the file named
// by --system-key-file (one key per line; blank lines and lines starting
// with # are skipped).
func systemKeys(c *cli.Context) ([]string, error) {
	var keys []string
	if v := strings.TrimSpace(os.Getenv(systemKeyEnv)); v != "" {
		keys = append(keys, v)
	}
	path := c.String("system-key-file")
	if path == "" {
		return keys, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, exitWith(1, "read the system key file: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, exitWith(1, "read the system key file %s: %v", path, err)
	}
	if len(keys) == 0 {
		return nil, exitWith(1, "the system key file %s holds no key", path)
	}
	return keys, nil
}

// httpAPI is a running HTTP API (or none: every method is then a no-op).
type httpAPI struct {
	srv  *httpapi.Server
	auth bool
}

// startHTTP starts the HTTP management API over client when --http-listen
// is set. With noKeyOnLoopback (`up`), auth is off when no key is
// configured and the address is loopback. If the default address of `up`
// is taken, a free loopback port is used instead.
func startHTTP(c *cli.Context, cl *client.Client, log *slog.Logger, noKeyOnLoopback bool) (*httpAPI, error) {
	addr := c.String("http-listen")
	if addr == "" || addr == "off" {
		return &httpAPI{}, nil
	}
	keys, err := systemKeys(c)
	if err != nil {
		return nil, err
	}
	disable := c.Bool("http-disable-auth")
	if !disable && len(keys) == 0 && noKeyOnLoopback && httpapi.IsLoopback(addr) {
		disable = true
	}
	if disable {
		keys = nil
	}
	opts := httpapi.Options{Addr: addr, HubName: c.String("task-hub-name"), Keys: keys, DisableAuth: disable,
		MaxBodyBytes: c.Int64("http-max-body"), Logger: log}
	if c.IsSet("connection-string-setting") {
		opts.ConnectionName = c.String("connection-string-setting")
	}
	srv, err := httpapi.New(cl, opts)
	if err != nil {
		return nil, exitWith(2, "%v", err)
	}
	if err := srv.Start(); err != nil {
		if !noKeyOnLoopback || c.IsSet("http-listen") {
			return nil, exitWith(1, "%v", err)
		}
		opts.Addr = "127.0.0.1:0"
		if srv, err = httpapi.New(cl, opts); err == nil {
			err = srv.Start()
		}
		if err != nil {
			return nil, exitWith(1, "%v", err)
		}
	}
	log.Info("http api started", "url", srv.URL(), "auth", !disable)
	return &httpAPI{srv: srv, auth: !disable}, nil
}

// describe is the line that `up` and `serve` print about the API.
func (a *httpAPI) describe() string {
	if a.srv == nil {
		return "off (enable with --http-listen 127.0.0.1:7071)"
	}
	if a.auth {
		return a.srv.URL() + httpapi.WebhookPath + " (requests need the system key: ?code=KEY or the x-functions-key header)"
	}
	return a.srv.URL() + httpapi.WebhookPath + " (no key needed: auth is off on this loopback address)"
}

// managementPayload returns the function that gives activities an
// instance's management URLs (abi.ImportManagementURLs), or nil when the API
// is off. The server builds them: with the served hub, the connection name
// and, when auth is on, the first system key as code=…, as Durable
// Functions' do, so the system they are handed to can call them.
func (a *httpAPI) managementPayload() func(string) ([]byte, error) {
	if a.srv == nil {
		return nil
	}
	return a.srv.ManagementPayloadJSON
}

// url is the API's base URL, "" when off.
func (a *httpAPI) url() string {
	if a.srv == nil {
		return ""
	}
	return a.srv.URL()
}

// stop shuts the API down gracefully.
func (a *httpAPI) stop() {
	if a.srv != nil {
		_ = a.srv.Close(context.Background())
	}
}
