package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/redisstore"
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
			idempotent(startNewCommand()), getRuntimeStatusCommand(), getHistoryCommand(), idempotent(raiseEventCommand()),
			idempotent(terminateCommand()), idempotent(suspendCommand()), idempotent(resumeCommand()), waitCommand(),
			getInstancesCommand(), idempotent(purgeHistoryCommand()), deleteTaskHubCommand(), idempotent(rewindCommand()), idempotent(restartCommand()),
			modulesCommand(), migrateCommand(), deadLettersCommand(),
			doctorCommand(),
		},
	}
	// A flag value that does not parse (--timeout abc) is bad usage: exit 2.
	usage := func(c *cli.Context, err error, _ bool) error { return &exitError{code: 2, err: err} }
	app.OnUsageError = usage
	for _, cmd := range app.Commands {
		cmd.OnUsageError = usage
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

// target is where a command's task hub is: the Redis URL and the hub name.
type target struct {
	url       string
	hub       string
	fromState bool // found through the state file of a running `up`
}

// redisURL resolves where Redis is: --redis-url, the variable named by
// --connection-string-setting, $DURABLEWASM_REDIS_URL, then the embedded
// Redis of a running `durablewasm up`. tried describes what was looked at.
func redisURL(c *cli.Context) (url string, tried []string, err error) {
	t, tried, err := resolveTarget(c)
	return t.url, tried, err
}

// resolveTarget is redisURL with the task hub: --task-hub-name when given;
// else, when the URL came from the state file of `up`, the hub `up` serves;
// else the flag's default.
func resolveTarget(c *cli.Context) (t target, tried []string, err error) {
	t.hub = c.String("task-hub-name")
	if setting := c.String("connection-string-setting"); setting != "" {
		if v := os.Getenv(setting); v != "" {
			t.url = v
			return t, nil, nil
		}
		return t, nil, exitWith(1, "the environment variable %s (named by --connection-string-setting) is empty or unset; set it to a Redis URL such as redis://127.0.0.1:6379", setting)
	}
	if v := c.String("redis-url"); v != "" {
		t.url = v
		return t, nil, nil
	}
	tried = append(tried, "--redis-url and $DURABLEWASM_REDIS_URL (both unset)")
	path, err := redisstore.DefaultStateFile()
	if err == nil {
		var st redisstore.State
		if st, err = redisstore.ReadState(path); err == nil {
			t.url, t.fromState = st.URL, true
			if st.Hub != "" && !c.IsSet("task-hub-name") {
				t.hub = st.Hub
			}
			return t, tried, nil
		}
	}
	tried = append(tried, "the embedded Redis of 'durablewasm up' (none is running)")
	return t, tried, exitWith(1, "no Redis to connect to: tried %s; start one with 'durablewasm up' (embedded, in memory) or pass --redis-url redis://host:port", strings.Join(tried, " and "))
}

// storeOptions are the redisstore options of the connection flags.
func storeOptions(c *cli.Context) redisstore.Options {
	return redisstore.Options{Partitions: c.Int("partitions")}
}

// openStore connects to the task hub named by the flags, creating it if it
// does not exist (deploy, serve).
func openStore(c *cli.Context) (*redisstore.Store, error) {
	t, _, err := resolveTarget(c)
	if err != nil {
		return nil, err
	}
	st, err := redisstore.Open(c.Context, t.url, t.hub, storeOptions(c))
	if err != nil {
		return nil, openErr(err)
	}
	return st, nil
}

// openExistingStore connects to the task hub named by the flags, which must
// exist: commands that read or change instances never create a hub.
func openExistingStore(c *cli.Context) (*redisstore.Store, error) {
	t, _, err := resolveTarget(c)
	if err != nil {
		return nil, err
	}
	st, err := redisstore.OpenExisting(c.Context, t.url, t.hub, storeOptions(c))
	if err != nil {
		return nil, openErr(err)
	}
	return st, nil
}

// openErr is the CLI's message for an error of redisstore.Open (which never
// shows a password).
func openErr(err error) error {
	if errors.Is(err, redisstore.ErrHubNotFound) {
		return exitWith(1, "%v (check --task-hub-name)", err)
	}
	return exitWith(1, "%v", err)
}

func openClient(c *cli.Context) (*client.Client, func(), error) {
	st, err := openExistingStore(c)
	if err != nil {
		return nil, nil, err
	}
	return client.New(st, nil), func() { _ = st.Close() }, nil
}

// defaultPayloadLimit is the payload limit of a module deployed without
// --max-payload: the largest @file value read by default.
var defaultPayloadLimit = int64(replay.Limits{}.WithDefaults().MaxPayloadBytes)

// maxPayloadFlag bounds what readValue reads from an @file.
func maxPayloadFlag() cli.Flag {
	return &cli.StringFlag{Name: "max-payload", Usage: "largest @file value read, e.g. 4MiB (default 1MiB, the default payload limit; raise it for a module deployed with a larger --max-payload)"}
}

// payloadLimit returns --max-payload, or the default payload limit.
func payloadLimit(c *cli.Context) (int64, error) {
	v := c.String("max-payload")
	if v == "" {
		return defaultPayloadLimit, nil
	}
	n, err := parseBytes("max-payload", v)
	if err != nil {
		return 0, err
	}
	if n == 0 || n > 1<<40 {
		return 0, exitWith(2, "--max-payload %s: use a size from 1 byte to 1TiB, e.g. 4MiB", v)
	}
	return int64(n), nil
}

// fmtSize writes n bytes for people: "1 MiB", "512 KiB", "1234 bytes".
func fmtSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// fileKind names the kind of a file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

// readFileLimited reads path, which must be a regular file of at most limit
// bytes; what names the argument and what it holds in errors (e.g. "--input
// @FILE", "payload"). It never reads more than limit+1 bytes, so a file that
// grows while it is read cannot make it read without bound, and it refuses
// devices, pipes and directories before opening them (opening a named pipe
// would block).
func readFileLimited(path, what, limitName string, limit int64) ([]byte, error) {
	accepted := fmt.Sprintf("%s accepts a regular file of at most %s (the %s limit)", what, fmtSize(limit), limitName)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, exitWith(1, "%s: cannot read %s: %v", what, path, errors.Unwrap(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, exitWith(1, "%s: %s is %s, not a regular file; %s", what, path, fileKind(fi.Mode()), accepted)
	}
	tooBig := func(n int64, atLeast string) error {
		return exitWith(1, "%s: %s is %s%d bytes, over the %s limit of %s; %s", what, path, atLeast, n, limitName, fmtSize(limit), accepted)
	}
	if fi.Size() > limit {
		return nil, tooBig(fi.Size(), "")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, exitWith(1, "%s: cannot read %s: %v", what, path, errors.Unwrap(err))
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, exitWith(1, "%s: %s is not a regular file; %s", what, path, accepted)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, exitWith(1, "%s: cannot read %s: %v", what, path, err)
	}
	if int64(len(b)) > limit {
		return nil, tooBig(int64(len(b)), "at least ")
	}
	return b, nil
}

// requirePositive refuses duration flags that are zero or negative: a usage
// error (exit 2) naming the flag. min, when positive, is a smallest value.
func requirePositive(c *cli.Context, min time.Duration, names ...string) error {
	for _, n := range names {
		d := c.Duration(n)
		if d <= 0 {
			return exitWith(2, "--%s %s: must be a positive duration such as 500ms, 10s or 2m", n, d)
		}
		if d < min {
			return exitWith(2, "--%s %s: must be at least %s", n, d, min)
		}
	}
	return nil
}

// requireNonNegative refuses negative duration flags (where 0 means the
// default or "off"): a usage error (exit 2) naming the flag.
func requireNonNegative(c *cli.Context, zero string, names ...string) error {
	for _, n := range names {
		if d := c.Duration(n); d < 0 {
			return exitWith(2, "--%s %s: must not be negative (use a duration such as 500ms, 10s or 2m; 0 means %s)", n, d, zero)
		}
	}
	return nil
}

// readValue reads a JSON value given inline or as @path for flag (e.g.
// "input"), reading at most limit bytes of a file. Inline text that is not
// JSON is taken as a string (as `func durable` does).
func readValue(flag, v string, limit int64) (string, error) {
	if v == "" {
		return "", nil
	}
	if strings.HasPrefix(v, "@") {
		path := v[1:]
		b, err := readFileLimited(path, "--"+flag+" @FILE", "payload", limit)
		if err != nil {
			return "", err
		}
		if !json.Valid(b) {
			return "", exitWith(1, "--%s: %s does not contain valid JSON", flag, path)
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
func withClient(c *cli.Context, fn func(cl *client.Client) error) error {
	cl, done, err := openClient(c)
	if err != nil {
		return err
	}
	defer done()
	return fn(cl)
}

// idempotent gives a command that changes an instance the flag
// --idempotency-key: the operation is applied at most once per key, so a
// command that failed with "may have been applied" can be run again with the
// key it printed (client.WithIdempotencyKey). Without the flag the client
// generates a key and retries ambiguous failures with it by itself.
func idempotent(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, &cli.StringFlag{Name: "idempotency-key",
		Usage: "apply the operation at most once per key (1-255 printable ASCII characters, e.g. a UUID); rerun a failed command with the key it printed"})
	action := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if key := c.String("idempotency-key"); c.IsSet("idempotency-key") {
			if err := client.ValidateIdempotencyKey(key); err != nil {
				return exitWith(2, "%v (--idempotency-key)", err)
			}
			c.Context = client.WithIdempotencyKey(c.Context, key)
		}
		return action(c)
	}
	return cmd
}
