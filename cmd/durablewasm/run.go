package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/httpapi"
	"github.com/durablewasm/durablewasm/host/sandbox"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/redisstore"
	"github.com/durablewasm/durablewasm/samples"
)

func workerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "activity-concurrency", Value: 1000, Usage: "most activities in flight at once, running or waiting on I/O"},
		&cli.IntFlag{Name: "activity-instances", Value: 16, Usage: "most module instances per module that run activities (a Go SDK module runs many activities per instance, and adds one only when all are computing)"},
		&cli.IntFlag{Name: "activity-memory-mib", Value: 1024, Usage: "linear memory of all activity instances together; over it, new activities wait"},
		&cli.DurationFlag{Name: "lease-ttl", Value: 10 * time.Second, Usage: "partition lease duration; a dead worker's partitions move after about this long"},
		&cli.DurationFlag{Name: "visibility-timeout", Value: 5 * time.Minute, Usage: "how long an activity may run before another worker presumes its worker dead and runs it again"},
		&cli.DurationFlag{Name: "local-activity-max", Value: 10 * time.Millisecond, Usage: "run activities whose average run time on this worker is at most this in the worker that owns their orchestration, committed with its next step (0 turns local activities off)"},
		&cli.DurationFlag{Name: "shutdown-grace", Value: worker.DefaultShutdownGrace, Usage: "on SIGTERM or Ctrl-C, how long running steps and activities may finish before they are interrupted (their work is redelivered)"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
	}
}

func newLogger(c *cli.Context) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
}

// checkWorkerFlags refuses worker durations that cannot work.
func checkWorkerFlags(c *cli.Context) error {
	if err := requirePositive(c, 100*time.Millisecond, "lease-ttl"); err != nil {
		return err
	}
	if err := requirePositive(c, 0, "visibility-timeout"); err != nil {
		return err
	}
	if err := requirePositive(c, 0, "shutdown-grace"); err != nil {
		return err
	}
	return requireNonNegative(c, "local activities off", "local-activity-max")
}

// runWorker runs a worker on store until the command's context ends. ready,
// if not nil, is called once the worker is about to run.
func runWorker(c *cli.Context, store *redisstore.Store, engine *sandbox.Engine, api *httpAPI, log *slog.Logger, ready func() error) error {
	local := c.Duration("local-activity-max")
	if local <= 0 {
		local = -1 // worker.Options: negative disables, zero is the default
	}
	w := worker.New(store, engine, worker.Options{
		LocalActivityMax:    local,
		ActivityConcurrency: c.Int("activity-concurrency"),
		ActivityInstances:   c.Int("activity-instances"),
		ActivityMemoryBytes: uint64(max(c.Int("activity-memory-mib"), 1)) << 20,
		LeaseTTL:            c.Duration("lease-ttl"),
		VisibilityTimeout:   c.Duration("visibility-timeout"),
		ShutdownGrace:       c.Duration("shutdown-grace"),
		ManagementPayload:   api.managementPayload(),
		Logger:              log,
	})
	if ready != nil {
		if err := ready(); err != nil {
			return err
		}
	}
	log.Info("worker started", "id", w.ID(), "partitions", store.Partitions())
	err := w.Run(c.Context)
	log.Info("worker stopped", "id", w.ID())
	return err
}

// waitLogInterval is how often waitForRedis logs that it is still waiting.
var waitLogInterval = 10 * time.Second

// waitForRedis opens the task hub named by the flags (creating it), waiting
// with backoff while Redis cannot be reached or is not ready (not started
// yet, loading its data set, a cluster without quorum). It logs when it
// starts waiting and then once per waitLogInterval, with the URL redacted,
// and gives up at once on errors that waiting cannot cure (a malformed URL,
// refused credentials, a bad hub name) or when the context ends (SIGTERM):
// then it returns a nil Store and a nil error.
func waitForRedis(c *cli.Context, log *slog.Logger) (*redisstore.Store, error) {
	t, _, err := resolveTarget(c)
	if err != nil {
		return nil, err
	}
	const maxBackoff = 2 * time.Second
	backoff := 50 * time.Millisecond
	var lastLog time.Time
	waited := false
	for {
		st, err := redisstore.Open(c.Context, t.url, t.hub, storeOptions(c))
		if err == nil {
			if waited {
				log.Info("redis is ready", "url", redisstore.RedactURL(t.url))
			}
			return st, nil
		}
		if c.Context.Err() != nil {
			log.Info("stopped while waiting for Redis", "url", redisstore.RedactURL(t.url))
			return nil, nil
		}
		if !redisstore.IsUnavailable(err) {
			return nil, openErr(err)
		}
		if now := time.Now(); lastLog.IsZero() || now.Sub(lastLog) >= waitLogInterval {
			log.Warn(fmt.Sprintf("waiting for Redis at %s: %v", redisstore.RedactURL(t.url), err))
			lastLog = now
		}
		waited = true
		select {
		case <-c.Context.Done():
			log.Info("stopped while waiting for Redis", "url", redisstore.RedactURL(t.url))
			return nil, nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name: "serve",
		Usage: "run orchestration and activity workers against Redis (waits for Redis to be reachable; SIGTERM " +
			"finishes the step in flight, releases leases and exits)",
		Flags: withConn(append(workerFlags(), httpFlags("")...)...),
		Action: func(c *cli.Context) error {
			if err := checkWorkerFlags(c); err != nil {
				return err
			}
			log := newLogger(c)
			store, err := waitForRedis(c, log)
			if err != nil || store == nil {
				return err
			}
			defer store.Close()
			for _, w := range store.CheckDurability(c.Context) {
				log.Warn("redis durability: " + w)
			}
			engine, err := sandbox.NewEngine(c.Context, sandbox.EngineOptions{Logger: log})
			if err != nil {
				return err
			}
			defer engine.Close(context.Background())
			api, err := startHTTP(c, client.New(store, nil), log, false)
			if err != nil {
				return err
			}
			defer api.stop()
			if api.url() != "" {
				fmt.Fprintf(c.App.Writer, "HTTP API: %s\n", api.describe())
			}
			return runWorker(c, store, engine, api, log, nil)
		},
	}
}

func upCommand() *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "run everything on an embedded, in-memory Redis with the bundled samples deployed",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:6399", Usage: "loopback address of the embedded Redis: 127.0.0.0/8, [::1] or localhost, with a port (a free port is used if the default one is taken)"},
			&cli.StringFlag{Name: "task-hub-name", Value: "DurableFunctionsHub", Usage: "task hub (other commands on this machine use it by default)"},
			&cli.IntFlag{Name: "partitions", Value: 16, Usage: "partitions of the task hub"},
		}, append(workerFlags(), httpFlags(httpapi.DefaultAddr)...)...),
		Action: upAction,
	}
}

// upAction runs `up`: it checks the flags, starts the embedded Redis, opens
// the task hub, deploys the samples, starts the HTTP API and runs a worker
// until the command's context ends, announcing itself (announceUp) once the
// worker is about to run. On the way out it removes the state file and
// stops what it started, in reverse order.
func upAction(c *cli.Context) error {
	hub, err := checkUpFlags(c)
	if err != nil {
		return err
	}
	log := newLogger(c)
	emb, err := startUpRedis(c)
	if err != nil {
		return err
	}
	defer emb.Close()
	stateFile, err := redisstore.DefaultStateFile()
	if err != nil {
		return exitWith(1, "locate the state file: %v", err)
	}
	store, err := redisstore.Open(c.Context, emb.URL(), hub, redisstore.Options{Partitions: c.Int("partitions")})
	if err != nil {
		return openErr(err)
	}
	defer store.Close()
	engine, err := sandbox.NewEngine(c.Context, sandbox.EngineOptions{Logger: log})
	if err != nil {
		return err
	}
	defer engine.Close(context.Background())
	info, err := client.New(store, engine).Deploy(c.Context, "samples", samples.Wasm)
	if err != nil {
		return err
	}
	api, err := startHTTP(c, client.New(store, nil), log, true)
	if err != nil {
		return err
	}
	defer api.stop()
	up := &upAnnouncement{url: emb.URL(), hub: hub, stateFile: stateFile, digest: info.Digest, orchs: orchestratorNames(info), api: api}
	defer func() { _ = redisstore.RemoveState(stateFile) }()
	return runWorker(c, store, engine, api, log, func() error { return up.announce(c.App.Writer) })
}

// checkUpFlags checks the worker flags, --listen and --task-hub-name, and
// returns the hub's name; its errors are those the command exits with.
func checkUpFlags(c *cli.Context) (hub string, err error) {
	if err := checkWorkerFlags(c); err != nil {
		return "", err
	}
	if err := redisstore.CheckLoopbackAddr(c.String("listen")); err != nil {
		return "", exitWith(2, "--listen: %v", err)
	}
	hub = c.String("task-hub-name")
	if err := redisstore.ValidateHubName(hub); err != nil {
		return "", exitWith(2, "--task-hub-name: %v", err)
	}
	return hub, nil
}

// startUpRedis starts the embedded Redis on --listen or, when that fails
// and --listen was not given, on a free loopback port. It fails with exit
// status 1.
func startUpRedis(c *cli.Context) (*redisstore.Embedded, error) {
	emb, err := redisstore.StartEmbedded(c.String("listen"))
	if err != nil && !c.IsSet("listen") {
		emb, err = redisstore.StartEmbedded("127.0.0.1:0")
	}
	if err != nil {
		return nil, exitWith(1, "start embedded Redis: %v", err)
	}
	return emb, nil
}

// orchestratorNames returns the names of the orchestrators among info's
// functions, in order.
func orchestratorNames(info *sandbox.ModuleInfo) []string {
	var orchs []string
	for _, f := range info.Functions {
		if f.Kind == abi.KindOrchestrator {
			orchs = append(orchs, f.Name)
		}
	}
	return orchs
}

// upAnnouncement is what `up` announces once it can serve: the embedded
// Redis's URL, the hub, the state file, the samples' digest and
// orchestrators and the HTTP API.
type upAnnouncement struct {
	url, hub, stateFile, digest string
	orchs                       []string
	api                         *httpAPI
}

// announce announces `up` (the state file other commands find it by, then
// the banner on w) only once it can serve: samples deployed, the HTTP API
// listening, the worker about to run. It fails with exit status 1 when the
// state file cannot be written.
func (u *upAnnouncement) announce(w io.Writer) error {
	if err := redisstore.WriteState(u.stateFile, redisstore.State{URL: u.url, Hub: u.hub}); err != nil {
		return exitWith(1, "%v", err)
	}
	fmt.Fprintf(w, "durablewasm is up.\n")
	fmt.Fprintf(w, "  embedded Redis: %s (in memory only: everything is lost when this process stops)\n", redisstore.RedactURL(u.url))
	fmt.Fprintf(w, "  task hub:       %s\n", u.hub)
	fmt.Fprintf(w, "  deployed app:   samples (%s)\n", u.digest)
	fmt.Fprintf(w, "  orchestrators:  %s\n", strings.Join(u.orchs, ", "))
	fmt.Fprintf(w, "  HTTP API:       %s\n", u.api.describe())
	fmt.Fprintf(w, "Other durablewasm commands on this machine find it (and its task hub) through %s. Try, in another shell:\n", u.stateFile)
	fmt.Fprintf(w, "  durablewasm start-new --function-name E1_HelloSequence --id x1\n")
	fmt.Fprintf(w, "  durablewasm get-runtime-status --id x1 --show-output true\n")
	if u.api.url() != "" && !u.api.auth {
		fmt.Fprintf(w, "  curl -X POST '%s/orchestrators/E1_HelloSequence/wait?timeout=2&retryInterval=0.5'\n", u.api.url())
	}
	fmt.Fprintf(w, "Stop with Ctrl-C.\n")
	return nil
}
