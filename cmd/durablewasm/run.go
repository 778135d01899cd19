package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/httpapi"
	"github.com/durablewasm/durablewasm/redisstore"
	"github.com/durablewasm/durablewasm/samples"
	"github.com/urfave/cli/v2"
)

func workerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "activity-concurrency", Value: 16, Usage: "most activities run at once"},
		&cli.DurationFlag{Name: "lease-ttl", Value: 10 * time.Second, Usage: "partition lease duration; a dead worker's partitions move after about this long"},
		&cli.DurationFlag{Name: "visibility-timeout", Value: 5 * time.Minute, Usage: "how long an activity may run before another worker presumes its worker dead and runs it again"},
		&cli.DurationFlag{Name: "local-activity-max", Value: 10 * time.Millisecond, Usage: "run activities whose average run time on this worker is at most this in the worker that owns their orchestration, committed with its next step (0 turns local activities off)"},
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

// runWorker runs a worker on store until the command's context ends.
func runWorker(c *cli.Context, store host.Store, engine *host.Engine, api *httpAPI, log *slog.Logger) error {
	local := c.Duration("local-activity-max")
	if local <= 0 {
		local = -1 // WorkerOptions: negative disables, zero is the default
	}
	w := host.NewWorker(store, engine, host.WorkerOptions{
		LocalActivityMax:    local,
		ActivityConcurrency: c.Int("activity-concurrency"),
		LeaseTTL:            c.Duration("lease-ttl"),
		VisibilityTimeout:   c.Duration("visibility-timeout"),
		ManagementPayload:   api.managementPayload(),
		Logger:              log,
	})
	log.Info("worker started", "id", w.ID(), "partitions", store.Partitions())
	err := w.Run(c.Context)
	log.Info("worker stopped", "id", w.ID())
	return err
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run orchestration and activity workers against Redis (SIGTERM finishes the step in flight, releases leases and exits)",
		Flags: withConn(append(workerFlags(), httpFlags("")...)...),
		Action: func(c *cli.Context) error {
			log := newLogger(c)
			store, err := openStore(c)
			if err != nil {
				return err
			}
			defer store.Close()
			for _, w := range store.CheckDurability(c.Context) {
				log.Warn("redis durability: " + w)
			}
			engine, err := host.NewEngine(c.Context, host.EngineOptions{Logger: log})
			if err != nil {
				return err
			}
			defer engine.Close(context.Background())
			api, err := startHTTP(c, host.NewClient(store, nil), log, false)
			if err != nil {
				return err
			}
			defer api.stop()
			if api.url() != "" {
				fmt.Fprintf(c.App.Writer, "HTTP API: %s\n", api.describe())
			}
			return runWorker(c, store, engine, api, log)
		},
	}
}

func upCommand() *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "run everything on an embedded, in-memory Redis with the bundled samples deployed",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:6399", Usage: "loopback address of the embedded Redis (a free port is used if it is taken)"},
			&cli.StringFlag{Name: "task-hub-name", Value: "DurableFunctionsHub", Usage: "task hub"},
			&cli.IntFlag{Name: "partitions", Value: 16, Usage: "partitions of the task hub"},
		}, append(workerFlags(), httpFlags(httpapi.DefaultAddr)...)...),
		Action: func(c *cli.Context) error {
			log := newLogger(c)
			emb, err := redisstore.StartEmbedded(c.String("listen"))
			if err != nil {
				emb, err = redisstore.StartEmbedded("127.0.0.1:0")
			}
			if err != nil {
				return exitWith(1, "start embedded Redis: %v", err)
			}
			defer emb.Close()
			stateFile, err := redisstore.DefaultStateFile()
			if err != nil {
				return exitWith(1, "locate the state file: %v", err)
			}
			if err := redisstore.WriteStateFile(stateFile, emb.URL()); err != nil {
				return exitWith(1, "write %s: %v", stateFile, err)
			}
			defer os.Remove(stateFile)
			store, err := redisstore.Open(c.Context, emb.URL(), c.String("task-hub-name"), redisstore.Options{Partitions: c.Int("partitions")})
			if err != nil {
				return err
			}
			defer store.Close()
			engine, err := host.NewEngine(c.Context, host.EngineOptions{Logger: log})
			if err != nil {
				return err
			}
			defer engine.Close(context.Background())
			info, err := host.NewClient(store, engine).Deploy(c.Context, "samples", samples.Wasm)
			if err != nil {
				return err
			}
			api, err := startHTTP(c, host.NewClient(store, nil), log, true)
			if err != nil {
				return err
			}
			defer api.stop()
			var orchs []string
			for _, f := range info.Functions {
				if f.Kind == abi.KindOrchestrator {
					orchs = append(orchs, f.Name)
				}
			}
			w := c.App.Writer
			fmt.Fprintf(w, "durablewasm is up.\n")
			fmt.Fprintf(w, "  embedded Redis: %s (in memory only: everything is lost when this process stops)\n", emb.URL())
			fmt.Fprintf(w, "  task hub:       %s\n", c.String("task-hub-name"))
			fmt.Fprintf(w, "  deployed app:   samples (%s)\n", info.Digest)
			fmt.Fprintf(w, "  orchestrators:  %s\n", strings.Join(orchs, ", "))
			fmt.Fprintf(w, "  HTTP API:       %s\n", api.describe())
			fmt.Fprintf(w, "Other durablewasm commands on this machine find it through %s. Try, in another shell:\n", stateFile)
			fmt.Fprintf(w, "  durablewasm start-new --function-name E1_HelloSequence --id x1\n")
			fmt.Fprintf(w, "  durablewasm get-runtime-status --id x1 --show-output true\n")
			if api.url() != "" && !api.auth {
				fmt.Fprintf(w, "  curl -X POST '%s/orchestrators/E1_HelloSequence/wait?timeout=2&retryInterval=0.5'\n", api.url())
			}
			fmt.Fprintf(w, "Stop with Ctrl-C.\n")
			return runWorker(c, store, engine, api, log)
		},
	}
}
