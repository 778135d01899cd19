package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/sandbox"
)

// parseBytes parses a size such as 64MiB, 512KiB, 1GiB or a plain number of
// bytes.
func parseBytes(flag, s string) (uint64, error) {
	s = strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		m      uint64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	var n uint64
	if _, err := fmt.Sscan(s, &n); err != nil || fmt.Sprint(n) != s {
		return 0, exitWith(2, "--%s: %q is not a size; use bytes or a unit such as 64MiB, 512KiB, 1GiB", flag, s)
	}
	return n * mult, nil
}

// maxModuleBytes is the largest module file deploy reads: a module is
// stored as one Redis string and compiled by every worker, and real guests
// are a few MiB (the samples: about 4 MiB).
const maxModuleBytes = 128 << 20

// settingsFromFlags reads the module settings given to deploy.
func settingsFromFlags(c *cli.Context) (host.AppSettings, error) {
	st := host.AppSettings{
		StepTimeout:      c.Duration("step-timeout"),
		ActivityTimeout:  c.Duration("activity-timeout"),
		MaxPayloadBytes:  0,
		MaxHistoryEvents: c.Int("max-history"),
		HTTPAllow:        c.StringSlice("allow-http"),
		HTTPTimeout:      c.Duration("http-timeout"),
	}
	if v := c.String("memory-limit"); v != "" {
		n, err := parseBytes("memory-limit", v)
		if err != nil {
			return st, err
		}
		st.MemoryLimitBytes = n
	}
	if v := c.String("max-payload"); v != "" {
		n, err := parseBytes("max-payload", v)
		if err != nil {
			return st, err
		}
		st.MaxPayloadBytes = int(n)
	}
	for _, kv := range c.StringSlice("config") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return st, exitWith(2, "--config %q: use key=value", kv)
		}
		if st.Config == nil {
			st.Config = map[string]string{}
		}
		st.Config[k] = v
	}
	return st, nil
}

func deployCommand() *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "validate and store a module; running workers use it for new instances without restart",
		ArgsUsage: "FILE.wasm",
		Flags: withConn(
			&cli.StringFlag{Name: "name", Usage: "app name (default: the file name without .wasm)"},
			&cli.DurationFlag{Name: "step-timeout", Usage: "deadline of one orchestration step (default 10s)"},
			&cli.DurationFlag{Name: "activity-timeout", Usage: "deadline of one activity execution (default 5m)"},
			&cli.StringFlag{Name: "memory-limit", Usage: "memory limit of each module instance, e.g. 256MiB (default 1GiB)"},
			&cli.StringFlag{Name: "max-payload", Usage: "largest input, output, event data, custom status or HTTP response body, e.g. 1MiB (default 1MiB)"},
			&cli.IntFlag{Name: "max-history", Usage: "most history events of one generation (default 100000; a warning is logged at 80%)"},
			&cli.StringSliceFlag{Name: "config", Usage: "configuration value for activities, key=value (repeatable)"},
			&cli.StringSliceFlag{Name: "allow-http", Usage: "host activities may call over HTTP: host, host:port or *.domain (repeatable; default none)"},
			&cli.DurationFlag{Name: "http-timeout", Usage: "deadline of one outbound HTTP request (default 30s)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return exitWith(2, "deploy takes exactly one argument, the module file (e.g. durablewasm deploy app.wasm --name app)")
			}
			if err := requireNonNegative(c, "the default", "step-timeout", "activity-timeout", "http-timeout"); err != nil {
				return err
			}
			settings, err := settingsFromFlags(c)
			if err != nil {
				return err
			}
			path := c.Args().First()
			wasm, err := readFileLimited(path, "deploy FILE.wasm", "module size", maxModuleBytes)
			if err != nil {
				return err
			}
			name := c.String("name")
			if name == "" {
				name = strings.TrimSuffix(filepath.Base(path), ".wasm")
			}
			store, err := openStore(c)
			if err != nil {
				return err
			}
			defer store.Close()
			engine, err := sandbox.NewEngine(c.Context, sandbox.EngineOptions{})
			if err != nil {
				return err
			}
			defer engine.Close(context.Background())
			info, err := client.New(store, engine).DeployWithSettings(c.Context, name, wasm, settings)
			if err != nil {
				return exitWith(1, "%v", err)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "Deployed '%s' as %s (ABI v%d).\n", name, info.Digest, info.ABIVersion)
			for _, f := range info.Functions {
				kind := "activity"
				if f.Kind == abi.KindOrchestrator {
					kind = "orchestrator"
				}
				fmt.Fprintf(w, "  %-12s %s\n", kind, f.Name)
			}
			printSettings(c, settings)
			return nil
		},
	}
}

func printSettings(c *cli.Context, s host.AppSettings) {
	w := c.App.Writer
	dur := func(d, def time.Duration) string {
		if d == 0 {
			return def.String() + " (default)"
		}
		return d.String()
	}
	fmt.Fprintf(w, "Limits: step %s, activity %s", dur(s.StepTimeout, 10*time.Second), dur(s.ActivityTimeout, 5*time.Minute))
	if s.MemoryLimitBytes > 0 {
		fmt.Fprintf(w, ", memory %d MiB", s.MemoryLimitBytes>>20)
	}
	if s.MaxPayloadBytes > 0 {
		fmt.Fprintf(w, ", payload %d bytes", s.MaxPayloadBytes)
	}
	if s.MaxHistoryEvents > 0 {
		fmt.Fprintf(w, ", history %d events", s.MaxHistoryEvents)
	}
	fmt.Fprintln(w, ".")
	if len(s.Config) > 0 {
		keys := make([]string, 0, len(s.Config))
		for k := range s.Config {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "Config keys: %s.\n", strings.Join(keys, ", "))
	}
	if len(s.HTTPAllow) > 0 {
		fmt.Fprintf(w, "Activities may call over HTTP: %s.\n", strings.Join(s.HTTPAllow, ", "))
	}
}
