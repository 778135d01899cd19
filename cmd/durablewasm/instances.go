package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/dfjson"
)

func withConn(flags ...cli.Flag) []cli.Flag { return append(flags, connectionFlags()...) }

func idFlag() cli.Flag {
	return &cli.StringFlag{Name: "id", Required: true, Usage: "instance id"}
}

// describeErr turns a missing or finished instance into the message users
// see; other errors pass through.
func describeErr(err error, id string) error {
	switch {
	case errors.Is(err, host.ErrInstanceNotFound):
		return exitWith(1, "no instance with id %q in this task hub (check --id and --task-hub-name)", id)
	case errors.Is(err, host.ErrInstanceFinished):
		return exitWith(1, "instance %q has already finished; it accepts no more events or operations", id)
	}
	return err
}

func startNewCommand() *cli.Command {
	return &cli.Command{
		Name:  "start-new",
		Usage: "start a new orchestration instance",
		Flags: withConn(
			&cli.StringFlag{Name: "function-name", Required: true, Usage: "orchestrator function to start"},
			&cli.StringFlag{Name: "id", Usage: "instance id (default: a random 32-hex-digit id)"},
			&cli.StringFlag{Name: "input", Usage: "input: inline JSON (text that is not JSON is sent as a string) or @path/file.json"},
			&cli.BoolFlag{Name: "wait", Usage: "wait for the instance to finish and print its output"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "with --wait: how long to wait"},
			maxPayloadFlag(),
		),
		Action: func(c *cli.Context) error {
			if err := requirePositive(c, 0, "timeout"); err != nil {
				return err
			}
			limit, err := payloadLimit(c)
			if err != nil {
				return err
			}
			input, err := readValue("input", c.String("input"), limit)
			if err != nil {
				return err
			}
			return withClient(c, func(cl *client.Client) error {
				st, err := cl.StartNew(c.Context, client.StartOptions{FunctionName: c.String("function-name"), InstanceID: c.String("id"), Input: input})
				if errors.Is(err, host.ErrInstanceExists) {
					return exitWith(1, "an instance with id %q is already running; pick another --id, or terminate it first", c.String("id"))
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "Started '%s' at %s. Instance ID: '%s'.\n", st.Name, dfjson.DFTime(st.CreatedAt), st.InstanceID)
				if c.Bool("wait") {
					return waitAndPrint(c, cl, st.InstanceID, c.Duration("timeout"), 50*time.Millisecond)
				}
				return nil
			})
		},
	}
}

func getRuntimeStatusCommand() *cli.Command {
	return &cli.Command{
		Name:  "get-runtime-status",
		Usage: "show an instance's status",
		Flags: withConn(idFlag(),
			&cli.BoolFlag{Name: "show-input", Usage: "include the input"},
			&cli.BoolFlag{Name: "show-output", Usage: "include the output (or the failure, or the termination reason)"},
			&cli.BoolFlag{Name: "show-history", Usage: "include the history events"},
			&cli.BoolFlag{Name: "show-history-output", Usage: "include activity results in the history"},
			outputFlag(),
		),
		Action: func(c *cli.Context) error {
			return withClient(c, func(cl *client.Client) error {
				id := c.String("id")
				st, err := cl.GetStatus(c.Context, id)
				if err != nil {
					return describeErr(err, id)
				}
				var hist []abi.HistoryEvent
				if c.Bool("show-history") {
					if hist, err = cl.GetHistory(c.Context, id); err != nil {
						return describeErr(err, id)
					}
				}
				p := dfjson.NewStatusPayload(st, hist, dfjson.StatusOptions{ShowInput: c.Bool("show-input"), ShowOutput: c.Bool("show-output"),
					ShowHistory: c.Bool("show-history"), ShowHistoryOutput: c.Bool("show-history-output")})
				if c.String("output") == "table" {
					tw := tabwriter.NewWriter(c.App.Writer, 0, 2, 2, ' ', 0)
					fmt.Fprintf(tw, "Name\t%s\nInstance ID\t%s\nRuntime status\t%s\nCreated\t%s\nLast updated\t%s\n", p.Name, p.InstanceID, p.RuntimeStatus, p.CreatedTime, p.LastUpdatedTime)
					fmt.Fprintf(tw, "Input\t%s\nCustom status\t%s\nOutput\t%s\nModule\t%s (%s)\n", p.Input, p.CustomStatus, p.Output, st.App, st.Digest)
					return tw.Flush()
				}
				return printJSON(c.App.Writer, p)
			})
		},
	}
}

func getHistoryCommand() *cli.Command {
	return &cli.Command{
		Name:  "get-history",
		Usage: "show an instance's history events",
		Flags: withConn(idFlag(), &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "output format: table (for people) or json"}),
		Action: func(c *cli.Context) error {
			return withClient(c, func(cl *client.Client) error {
				id := c.String("id")
				hist, err := cl.GetHistory(c.Context, id)
				if err != nil {
					return describeErr(err, id)
				}
				if c.String("output") == "json" {
					return printJSON(c.App.Writer, hist)
				}
				tw := tabwriter.NewWriter(c.App.Writer, 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "#\tTIMESTAMP\tEVENT\tID\tDETAILS")
				for i, e := range hist {
					id := ""
					if e.EventID >= 0 {
						id = fmt.Sprint(e.EventID)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i, dfjson.DFTimestamp(time.Unix(0, e.Timestamp)), e.Type, id, eventDetails(e))
				}
				return tw.Flush()
			})
		},
	}
}

func eventDetails(e abi.HistoryEvent) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			if len(v) > 80 {
				v = v[:80] + "…"
			}
			parts = append(parts, k+"="+v)
		}
	}
	add("name", e.Name)
	add("instance", e.InstanceID)
	if e.TaskScheduledID != 0 || e.Type == abi.EventTaskCompleted || e.Type == abi.EventTaskFailed || e.Type == abi.EventTimerFired {
		add("task", fmt.Sprint(e.TaskScheduledID))
	}
	if e.FireAt != 0 {
		add("fireAt", dfjson.DFTimestamp(time.Unix(0, e.FireAt)))
	}
	add("input", e.Input)
	add("result", e.Result)
	add("status", string(e.Status))
	add("reason", e.Reason)
	if e.Failure != nil {
		add("failure", dfjson.FailureText(e.Failure))
	}
	return strings.Join(parts, " ")
}

func raiseEventCommand() *cli.Command {
	return &cli.Command{
		Name:  "raise-event",
		Usage: "raise an external event on an instance",
		Flags: withConn(idFlag(),
			&cli.StringFlag{Name: "event-name", Usage: "event name (default Event_<guid>)"},
			&cli.StringFlag{Name: "event-data", Usage: "event data: inline JSON (text that is not JSON is sent as a string) or @path/file.json"},
			maxPayloadFlag(),
		),
		Action: func(c *cli.Context) error {
			limit, err := payloadLimit(c)
			if err != nil {
				return err
			}
			data, err := readValue("event-data", c.String("event-data"), limit)
			if err != nil {
				return err
			}
			name := c.String("event-name")
			if name == "" {
				name = "Event_" + host.NewInstanceID()
			}
			return withClient(c, func(cl *client.Client) error {
				id := c.String("id")
				if err := cl.RaiseEvent(c.Context, id, name, data); err != nil {
					return describeErr(err, id)
				}
				fmt.Fprintf(c.App.Writer, "Raised event '%s' to instance '%s'.\n", name, id)
				return nil
			})
		},
	}
}

func reasonOp(name, usage, done string, op func(*client.Client, context.Context, string, string) error) *cli.Command {
	return &cli.Command{
		Name:  name,
		Usage: usage,
		Flags: withConn(idFlag(), &cli.StringFlag{Name: "reason", Usage: "reason, recorded in history"}),
		Action: func(c *cli.Context) error {
			return withClient(c, func(cl *client.Client) error {
				id := c.String("id")
				if err := op(cl, c.Context, id, c.String("reason")); err != nil {
					return describeErr(err, id)
				}
				fmt.Fprintf(c.App.Writer, done+"\n", id)
				return nil
			})
		},
	}
}

func suspendCommand() *cli.Command {
	return reasonOp("suspend", "suspend a running instance", "Sent a suspend message to instance '%s'.", (*client.Client).Suspend)
}

func resumeCommand() *cli.Command {
	return reasonOp("resume", "resume a suspended instance", "Sent a resume message to instance '%s'.", (*client.Client).Resume)
}

func waitCommand() *cli.Command {
	return &cli.Command{
		Name:  "wait",
		Usage: "wait for an instance to finish; exit 0 when it completed in time, 1 when it failed or was terminated, 2 on timeout",
		Flags: withConn(idFlag(),
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "how long to wait"},
			&cli.DurationFlag{Name: "retry-interval", Value: time.Second, Usage: "how often to check"},
		),
		Action: func(c *cli.Context) error {
			if err := requirePositive(c, 0, "timeout", "retry-interval"); err != nil {
				return err
			}
			return withClient(c, func(cl *client.Client) error {
				return waitAndPrint(c, cl, c.String("id"), c.Duration("timeout"), c.Duration("retry-interval"))
			})
		},
	}
}

func waitAndPrint(c *cli.Context, cl *client.Client, id string, timeout, interval time.Duration) error {
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	st, err := cl.WaitForCompletion(ctx, id, interval)
	if err != nil && st == nil {
		return describeErr(err, id)
	}
	p := dfjson.NewStatusPayload(st, nil, dfjson.StatusOptions{ShowInput: false, ShowOutput: true})
	if err != nil {
		fmt.Fprintf(c.App.Writer, "Instance '%s' is still %s after %s; query it with: durablewasm get-runtime-status --id %s --show-output true\n", id, st.Status, timeout, id)
		return &exitError{code: 2, err: fmt.Errorf("timed out waiting for %s", id)}
	}
	if st.Status == abi.StatusCompleted {
		fmt.Fprintf(c.App.Writer, "%s\n", p.Output)
		return nil
	}
	_ = printJSON(c.App.Writer, p)
	return exitWith(1, "instance '%s' ended %s", id, st.Status)
}
