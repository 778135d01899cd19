package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
)

// The module-management commands: `modules list|show|remove`, `migrate` and
// `dead-letters list|replay`. The verb of `modules` and `dead-letters` is a
// positional argument (like APP or ID), so it may come before or after the
// flags.

func tableOutputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "output format: table (for people) or json"}
}

// verbArgs finds the verb (one of verbs) among the positional arguments and
// returns it with the other arguments. A leftover flag means it followed a
// positional argument that the flag parser stopped at.
func verbArgs(c *cli.Context, verbs ...string) (string, []string, error) {
	var verb string
	var rest []string
	for _, a := range c.Args().Slice() {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			return "", nil, exitWith(2, "flag %s was not understood here; put flags after the arguments (boolean ones as --flag=true)", a)
		}
		if verb == "" && slices.Contains(verbs, a) {
			verb = a
			continue
		}
		rest = append(rest, a)
	}
	if verb == "" {
		return "", nil, exitWith(2, "%s needs a subcommand: %s", c.Command.Name, strings.Join(verbs, ", "))
	}
	return verb, rest, nil
}

func checkOutput(c *cli.Context) error {
	switch o := c.String("output"); o {
	case "json", "table":
		return nil
	default:
		return exitWith(2, "--output %q: use json or table", o)
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// short abbreviates a digest for tables: sha256: and 12 hex digits (any
// unambiguous prefix is accepted where a digest is).
func short(d string) string {
	if len(d) > len("sha256:")+12 && strings.HasPrefix(d, "sha256:") {
		return d[:len("sha256:")+12]
	}
	return d
}

func moduleErr(err error) error {
	switch {
	case errors.Is(err, host.ErrModuleInUse), errors.Is(err, host.ErrModuleNotFound):
		return exitWith(1, "%v", err)
	case errors.Is(err, host.ErrInvalidInput):
		return exitWith(2, "%v", err)
	}
	return err
}

func modulesCommand() *cli.Command {
	return &cli.Command{
		Name:      "modules",
		Usage:     "list, show and remove deployed apps and stored modules",
		ArgsUsage: "list | show APP|DIGEST | remove APP|DIGEST",
		Description: "list: every app (its current module) and every stored module, with the apps pointing at it and\n" +
			"  how many unfinished instances run on it.\n" +
			"show APP|DIGEST: a module's functions, size, settings and instances by status.\n" +
			"remove APP: removes the app (its orchestrators can no longer be started) and its module unless\n" +
			"  another app uses it (--keep-module keeps it); refused while unfinished instances run on it.\n" +
			"remove DIGEST: removes a stored module; refused while an app points at it or unfinished\n" +
			"  instances run on it.\n" +
			"A DIGEST may be abbreviated to an unambiguous prefix of at least 8 hex digits.",
		Flags: withConn(tableOutputFlag(),
			&cli.BoolFlag{Name: "scan-finished", Usage: "show: also count finished instances (pages through every finished instance of the hub)"},
			&cli.BoolFlag{Name: "keep-module", Usage: "remove APP: keep the module's bytes and settings"}),
		Action: func(c *cli.Context) error {
			verb, args, err := verbArgs(c, "list", "show", "remove")
			if err != nil {
				return err
			}
			if err := checkOutput(c); err != nil {
				return err
			}
			if verb == "list" && len(args) > 0 || verb != "list" && len(args) != 1 {
				return exitWith(2, "usage: modules list | modules show APP|DIGEST | modules remove APP|DIGEST")
			}
			return withClient(c, func(cl *client.Client) error {
				w := c.App.Writer
				asJSON := c.String("output") == "json"
				switch verb {
				case "list":
					ov, err := cl.ListModules(c.Context)
					if err != nil {
						return err
					}
					if asJSON {
						return printJSON(w, ov)
					}
					return printModules(w, ov)
				case "show":
					d, err := cl.ShowModule(c.Context, args[0], c.Bool("scan-finished"))
					if err != nil {
						return moduleErr(err)
					}
					if asJSON {
						return printJSON(w, d)
					}
					return printModule(w, d)
				default:
					res, err := cl.RemoveModule(c.Context, args[0], c.Bool("keep-module"))
					if err != nil {
						return moduleErr(err)
					}
					if asJSON {
						return printJSON(w, res)
					}
					switch {
					case res.App != "" && res.ModuleRemoved:
						fmt.Fprintf(w, "Removed app %s and its module %s.\n", res.App, res.Digest)
					case res.App != "":
						fmt.Fprintf(w, "Removed app %s; its module %s is kept (another app uses it, or --keep-module).\n", res.App, res.Digest)
					default:
						fmt.Fprintf(w, "Removed module %s.\n", res.Digest)
					}
					return nil
				}
			})
		},
	}
}

func printModules(w io.Writer, ov *client.ModulesOverview) error {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tDIGEST\tORCHESTRATORS\tACTIVITIES\tDEPLOYED")
	for _, a := range ov.Apps {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", a.Name, short(a.Digest), a.Orchestrators, a.Activities, fmtTime(a.DeployedAt))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "DIGEST\tSIZE\tAPPS\tRUNNING\tSTORED")
	for _, m := range ov.Modules {
		apps := strings.Join(m.Apps, ",")
		if apps == "" {
			apps = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", short(m.Digest), m.Size, apps, m.Running, fmtTime(m.StoredAt))
	}
	return tw.Flush()
}

func printModule(w io.Writer, d *client.ModuleDetails) error {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "Digest:\t%s\n", d.Digest)
	fmt.Fprintf(tw, "Size:\t%d bytes\n", d.Size)
	fmt.Fprintf(tw, "Stored:\t%s\n", fmtTime(d.StoredAt))
	apps := strings.Join(d.Apps, ", ")
	if apps == "" {
		apps = "none (an older version, or a removed app)"
	}
	fmt.Fprintf(tw, "Apps:\t%s\n", apps)
	if d.Functions == nil {
		fmt.Fprintf(tw, "Functions:\tunknown (no app points at this module)\n")
	}
	for i, f := range d.Functions {
		label := ""
		if i == 0 {
			label = "Functions:"
		}
		kind := "activity"
		if f.Kind == abi.KindOrchestrator {
			kind = "orchestrator"
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\n", label, f.Name, kind)
	}
	fmt.Fprintf(tw, "Settings:\t%s\n", settingsLine(d.Settings))
	var counts []string
	for _, s := range abi.AllStatuses {
		if n := d.Instances[s]; n > 0 {
			counts = append(counts, fmt.Sprintf("%s %d", s, n))
		}
	}
	inst := strings.Join(counts, ", ")
	if inst == "" {
		inst = "none unfinished"
	}
	if !d.FinishedCounted {
		inst += " (finished ones not counted; --scan-finished=true counts them)"
	}
	fmt.Fprintf(tw, "Instances:\t%s\n", inst)
	return tw.Flush()
}

func settingsLine(s host.AppSettings) string {
	var parts []string
	add := func(name string, v any, set bool) {
		if set {
			parts = append(parts, fmt.Sprintf("%s=%v", name, v))
		}
	}
	add("step-timeout", s.StepTimeout, s.StepTimeout > 0)
	add("activity-timeout", s.ActivityTimeout, s.ActivityTimeout > 0)
	add("memory-limit", s.MemoryLimitBytes, s.MemoryLimitBytes > 0)
	add("max-payload", s.MaxPayloadBytes, s.MaxPayloadBytes > 0)
	add("max-history", s.MaxHistoryEvents, s.MaxHistoryEvents > 0)
	add("http-allow", strings.Join(s.HTTPAllow, ","), len(s.HTTPAllow) > 0)
	add("http-timeout", s.HTTPTimeout, s.HTTPTimeout > 0)
	if len(s.Config) > 0 {
		keys := make([]string, 0, len(s.Config))
		for k := range s.Config {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts = append(parts, "config keys="+strings.Join(keys, ","))
	}
	if len(parts) == 0 {
		return "defaults"
	}
	return strings.Join(parts, " ")
}

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "move the running instances of an app to its current module (or --to DIGEST)",
		Description: "Sends each unfinished instance of the app that runs on another module a migration message: the\n" +
			"worker owning it replays its history on the new module and records the move in its history\n" +
			"(get-history shows a GenericEvent durablewasm.migrate). An instance whose history the new\n" +
			"orchestrator code does not reproduce fails with a nondeterminism error (DW1001-DW1003).\n" +
			"Use --dry-run first.",
		Flags: withConn(tableOutputFlag(),
			&cli.StringFlag{Name: "app", Required: true, Usage: "the app whose instances move"},
			&cli.StringFlag{Name: "to", Usage: "target module digest (or unambiguous prefix); default: the app's current module"},
			&cli.StringSliceFlag{Name: "id", Usage: "only these instances (repeat the flag); default: all of the app's instances on other modules"},
			&cli.BoolFlag{Name: "dry-run", Usage: "list what would move, send nothing"}),
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return exitWith(2, "migrate takes no arguments (got %q); use --id ID for instances", c.Args().Slice())
			}
			if err := checkOutput(c); err != nil {
				return err
			}
			return withClient(c, func(cl *client.Client) error {
				res, err := cl.MigrateApp(c.Context, client.MigrateOptions{App: c.String("app"), To: c.String("to"),
					InstanceIDs: c.StringSlice("id"), DryRun: c.Bool("dry-run")})
				if errors.Is(err, host.ErrModuleNotFound) && res == nil {
					return exitWith(1, "%v (see `durablewasm modules list`)", err)
				}
				if err != nil {
					return moduleErr(err)
				}
				w := c.App.Writer
				if c.String("output") == "json" {
					return printJSON(w, res)
				}
				moved := 0
				tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "INSTANCE ID\tNAME\tSTATUS\tFROM\tRESULT")
				for _, m := range res.Instances {
					result := "migration requested"
					switch {
					case m.Skipped != "":
						result = "skipped: " + m.Skipped
					case res.DryRun:
						result = "would move"
						moved++
					default:
						moved++
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.InstanceID, m.Name, m.Status, short(m.From), result)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if res.DryRun {
					fmt.Fprintf(w, "Dry run: %d instance(s) of %s would move to %s.\n", moved, res.App, res.To)
				} else {
					fmt.Fprintf(w, "%d instance(s) of %s asked to move to %s; each moves when its worker processes the message (check with get-runtime-status).\n", moved, res.App, res.To)
				}
				return nil
			})
		},
	}
}

func deadLettersCommand() *cli.Command {
	return &cli.Command{
		Name:      "dead-letters",
		Usage:     "list, replay and remove activity work items and control messages that were given up on",
		ArgsUsage: "list | replay ID | remove ID",
		Description: "An activity delivered more times than the worker's limit (its worker crashed or outlived the\n" +
			"visibility timeout each time) fails its orchestration with PoisonMessage and is parked here.\n" +
			"A control message whose step or commit failed 3 times in a row is quarantined here (kind\n" +
			"control), and its instance failed with Quarantined [DW3001], so that its partition goes on.\n" +
			"replay ID: an activity's instance that is still Failed is rewound (the activity runs again,\n" +
			"every other result is kept) and the dead letter removed; if it went on past the failure the\n" +
			"dead letter is kept unless --force removes it. A quarantined message is put back on its\n" +
			"stream, after rewinding the instance it failed: fix the cause first (see the reason).\n" +
			"remove ID drops a dead letter for good. ID is the id `list` shows (or PARTITION/ID).",
		Flags: withConn(tableOutputFlag(),
			&cli.IntFlag{Name: "top", Value: 100, Usage: "list: at most this many, oldest first"},
			&cli.BoolFlag{Name: "force", Usage: "replay: remove the dead letter even if its instance went on past the failure"}),
		Action: func(c *cli.Context) error {
			verb, args, err := verbArgs(c, "list", "replay", "remove")
			if err != nil {
				return err
			}
			if err := checkOutput(c); err != nil {
				return err
			}
			if verb == "list" && len(args) > 0 || verb != "list" && len(args) != 1 {
				return exitWith(2, "usage: dead-letters list | dead-letters replay ID | dead-letters remove ID")
			}
			return withClient(c, func(cl *client.Client) error {
				if verb == "list" {
					return listDeadLetters(c, cl)
				}
				return settleDeadLetter(c, cl, verb, args[0])
			})
		},
	}
}

// listDeadLetters prints the dead letters (dead-letters list).
func listDeadLetters(c *cli.Context, cl *client.Client) error {
	w := c.App.Writer
	dls, err := cl.ListDeadLetters(c.Context, c.Int("top"))
	if err != nil {
		return err
	}
	if dls == nil {
		dls = []host.DeadLetter{}
	}
	if c.String("output") == "json" {
		return printJSON(w, dls)
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tID\tINSTANCE\tACTIVITY\tDELIVERIES\tREASON\tTIME")
	for _, d := range dls {
		inst, act := d.InstanceID, d.Activity
		switch d.Kind {
		case host.DeadLetterActivity:
		case host.DeadLetterControl:
			inst, act = strconv.Quote(d.InstanceID), "(quarantined "+d.Event+" message)"
		default:
			inst, act = "-", "("+d.Kind+" "+d.Source+")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Partition, d.ID, inst, act, d.Deliveries, d.Reason, fmtTime(d.Time))
	}
	return tw.Flush()
}

// settleDeadLetter replays or removes dead letter id (dead-letters replay,
// remove).
func settleDeadLetter(c *cli.Context, cl *client.Client, verb, id string) error {
	w := c.App.Writer
	d, err := cl.FindDeadLetter(c.Context, id)
	if errors.Is(err, host.ErrDeadLetterNotFound) {
		return exitWith(1, "no dead letter %q (see `durablewasm dead-letters list`)", id)
	}
	if err != nil {
		return err
	}
	if verb == "remove" {
		if err := cl.RemoveDeadLetter(c.Context, d); err != nil {
			return err
		}
		if c.String("output") == "json" {
			return printJSON(w, map[string]string{"id": d.ID, "instanceId": d.InstanceID, "outcome": "removed"})
		}
		fmt.Fprintf(w, "Dead letter %d/%s removed.\n", d.Partition, d.ID)
		return nil
	}
	out, detail, err := cl.ReplayDeadLetter(c.Context, d, c.Bool("force"))
	if err != nil {
		return err
	}
	if c.String("output") == "json" {
		return printJSON(w, map[string]string{"id": d.ID, "instanceId": d.InstanceID, "outcome": string(out), "detail": detail})
	}
	fmt.Fprintf(w, "Dead letter %s: %s.\n", d.ID, detail)
	if out == client.ReplayStale {
		return exitWith(1, "dead letter %s not replayed", d.ID)
	}
	return nil
}
