package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/redisstore"
	"github.com/urfave/cli/v2"
)

// exitError carries an exit code chosen by a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitWith(code int, format string, a ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, a...)}
}

// newApp builds the CLI. Tests call it directly with their own writers.
func newApp() *cli.App {
	app := &cli.App{
		Name:  "durablewasm",
		Usage: "durable orchestrations as WebAssembly, on Redis",
		Description: "Deploy orchestrator and activity functions compiled to WebAssembly, run workers, and manage\n" +
			"instances with the commands and flags of Azure Functions Core Tools' `func durable`.\n\n" +
			"Quick start: `durablewasm up` in one shell, then in another:\n" +
			"  durablewasm start-new --function-name E1_HelloSequence --id x1\n" +
			"  durablewasm get-runtime-status --id x1 --show-output true",
		ExitErrHandler:  func(*cli.Context, error) {},
		HideHelpCommand: true,
		Commands: []*cli.Command{
			upCommand(), serveCommand(), deployCommand(),
			startNewCommand(), getRuntimeStatusCommand(), getHistoryCommand(), raiseEventCommand(),
			terminateCommand(), suspendCommand(), resumeCommand(), waitCommand(),
			getInstancesCommand(), purgeHistoryCommand(), deleteTaskHubCommand(), rewindCommand(), restartCommand(),
			modulesCommand(), migrateCommand(), deadLettersCommand(),
			doctorCommand(),
		},
	}
	return app
}

// run executes the app and maps errors to exit codes: 0 success, 1 failure,
// 2 bad usage, or the code a command chose.
func run(ctx context.Context, app *cli.App, args []string) int {
	if app.Writer == nil {
		app.Writer = os.Stdout
	}
	if app.ErrWriter == nil {
		app.ErrWriter = os.Stderr
	}
	err := app.RunContext(ctx, normalizeArgs(args))
	if err == nil {
		return 0
	}
	fmt.Fprintln(app.ErrWriter, "error:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// boolFlags are the flags that `func durable` documents with a separate
// value ("--show-input true"); normalizeArgs joins such pairs.
var boolFlags = map[string]bool{"--show-input": true, "--show-output": true, "--show-history": true,
	"--show-history-output": true, "--recursive": true, "--yes": true, "--wait": true, "--force": true,
	"--new-id": true, "--restart-with-new-instance-id": true, "--y": true,
	"--scan-finished": true, "--keep-module": true, "--dry-run": true}

// normalizeArgs rewrites "--flag true|false" into "--flag=true|false" for
// boolean flags, so both of Core Tools' spellings work, and moves positional
// arguments after the flags ("deploy app.wasm --name x" works as well as
// "deploy --name x app.wasm"), since the flag parser stops at the first one.
func normalizeArgs(args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	var positional []string
	i := 1
	if !strings.HasPrefix(args[1], "-") {
		out = append(out, args[1]) // the command
		i = 2
	}
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		name := "--" + strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			out = append(out, a)
			continue
		}
		if boolFlags[name] {
			if i+1 < len(args) {
				switch v := strings.ToLower(args[i+1]); v {
				case "true", "false":
					out = append(out, name+"="+v)
					i++
					continue
				}
			}
			out = append(out, a)
			continue
		}
		out = append(out, a)
		if i+1 < len(args) && name != "--help" && name != "--h" {
			out = append(out, args[i+1])
			i++
		}
	}
	return append(out, positional...)
}

// connectionFlags are accepted by every command that talks to Redis.
func connectionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "redis-url", Usage: "Redis URL (redis://host:port, rediss://, unix:///path, redis+cluster://h1:p1,h2:p2); default: the embedded Redis of a running 'durablewasm up'", EnvVars: []string{"DURABLEWASM_REDIS_URL"}},
		&cli.StringFlag{Name: "connection-string-setting", Usage: "name of the environment variable that holds the Redis URL"},
		&cli.StringFlag{Name: "task-hub-name", Value: "DurableFunctionsHub", Usage: "task hub (3-45 letters and digits, starting with a letter)"},
		&cli.IntFlag{Name: "partitions", Value: 16, Usage: "partitions of a new task hub (fixed once the hub exists)"},
	}
}

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "json", Usage: "output format: json or table"}
}

// redisURL resolves where Redis is: --redis-url, the variable named by
// --connection-string-setting, $DURABLEWASM_REDIS_URL, then the embedded
// Redis of a running `durablewasm up`. tried describes what was looked at.
func redisURL(c *cli.Context) (url string, tried []string, err error) {
	if setting := c.String("connection-string-setting"); setting != "" {
		if v := os.Getenv(setting); v != "" {
			return v, nil, nil
		}
		return "", nil, exitWith(1, "the environment variable %s (named by --connection-string-setting) is empty or unset; set it to a Redis URL such as redis://127.0.0.1:6379", setting)
	}
	if v := c.String("redis-url"); v != "" {
		return v, nil, nil
	}
	tried = append(tried, "--redis-url and $DURABLEWASM_REDIS_URL (both unset)")
	path, err := redisstore.DefaultStateFile()
	if err == nil {
		var v string
		if v, err = redisstore.ReadStateFile(path); err == nil {
			return v, tried, nil
		}
	}
	tried = append(tried, "the embedded Redis of 'durablewasm up' (none is running)")
	return "", tried, exitWith(1, "no Redis to connect to: tried %s; start one with 'durablewasm up' (embedded, in memory) or pass --redis-url redis://host:port", strings.Join(tried, " and "))
}

// openStore connects to the task hub named by the flags.
func openStore(c *cli.Context) (*redisstore.Store, error) {
	url, _, err := redisURL(c)
	if err != nil {
		return nil, err
	}
	st, err := redisstore.Open(c.Context, url, c.String("task-hub-name"), redisstore.Options{Partitions: c.Int("partitions")})
	if err != nil {
		return nil, exitWith(1, "%v", err)
	}
	return st, nil
}

func openClient(c *cli.Context) (*host.Client, func(), error) {
	st, err := openStore(c)
	if err != nil {
		return nil, nil, err
	}
	return host.NewClient(st, nil), func() { _ = st.Close() }, nil
}

// readValue reads a JSON value given inline or as @path. Inline text that is
// not JSON is taken as a string (as `func durable` does).
func readValue(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if strings.HasPrefix(v, "@") {
		b, err := os.ReadFile(v[1:])
		if err != nil {
			return "", exitWith(1, "read %s: %v", v[1:], err)
		}
		if !json.Valid(b) {
			return "", exitWith(1, "%s does not contain valid JSON", v[1:])
		}
		return strings.TrimSpace(string(b)), nil
	}
	if json.Valid([]byte(v)) {
		return v, nil
	}
	b, _ := json.Marshal(v)
	return string(b), nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// withClient opens the client named by the connection flags, runs fn with
// it and closes it.
func withClient(c *cli.Context, fn func(cl *host.Client) error) error {
	cl, done, err := openClient(c)
	if err != nil {
		return err
	}
	defer done()
	return fn(cl)
}
