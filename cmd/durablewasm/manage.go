package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/dfjson"
)

// timeLayouts are the ISO 8601 forms accepted for --created-after and
// --created-before; a time without a zone is UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseTime parses an ISO 8601 date or time such as 2018-03-10T23:59Z or
// 2018-11-14T19:35:00.0000000Z.
func parseTime(flag, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, exitWith(2, "--%s %q is not an ISO 8601 date or time; use e.g. 2018-03-10, 2018-03-10T23:59Z or 2018-11-14T19:35:00.0000000Z", flag, s)
}

// filterFlags select instances by created time and status.
func filterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "created-after", Usage: "only instances created at or after this ISO 8601 time"},
		&cli.StringFlag{Name: "created-before", Usage: "only instances created at or before this ISO 8601 time"},
		&cli.StringSliceFlag{Name: "runtime-status", Usage: "only instances in these statuses (any case; several: repeat the flag, separate with commas, or list them after it)"},
	}
}

// queryFromFlags builds the instance filter. Extra positional arguments are
// taken as more runtime statuses, as in `--runtime-status failed terminated`.
func queryFromFlags(c *cli.Context) (host.InstanceQuery, error) {
	var q host.InstanceQuery
	var err error
	if v := c.String("created-after"); v != "" {
		if q.CreatedFrom, err = parseTime("created-after", v); err != nil {
			return q, err
		}
	}
	if v := c.String("created-before"); v != "" {
		if q.CreatedTo, err = parseTime("created-before", v); err != nil {
			return q, err
		}
	}
	names := append([]string(nil), c.StringSlice("runtime-status")...)
	names = append(names, c.Args().Slice()...)
	for _, n := range names {
		for _, part := range strings.FieldsFunc(n, func(r rune) bool { return r == ',' || r == ' ' }) {
			st, err := abi.ParseRuntimeStatus(part)
			if err != nil {
				return q, exitWith(2, "--runtime-status: %v", err)
			}
			q.Statuses = append(q.Statuses, st)
		}
	}
	return q, nil
}

func getInstancesCommand() *cli.Command {
	return &cli.Command{
		Name:  "get-instances",
		Usage: "list instances, with filters and paging",
		Flags: withConn(append(filterFlags(),
			&cli.IntFlag{Name: "top", Value: 10, Usage: "instances per page (1-1000)"},
			&cli.StringFlag{Name: "continuation-token", Usage: "token printed by the previous page"},
			&cli.StringFlag{Name: "instance-id-prefix", Usage: "only ids starting with this"},
			&cli.BoolFlag{Name: "show-input", Usage: "include inputs"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "json (an object with instances and continuationToken) or table; default: the JSON array and the token line of func durable"},
		)...),
		Action: func(c *cli.Context) error {
			q, err := queryFromFlags(c)
			if err != nil {
				return err
			}
			if top := c.Int("top"); top < 1 || top > 1000 {
				return exitWith(2, "--top %d is out of range: use 1 to 1000", top)
			}
			q.PageSize = c.Int("top")
			q.ContinuationToken = c.String("continuation-token")
			q.InstanceIDPrefix = c.String("instance-id-prefix")
			return withClient(c, func(cl *client.Client) error {
				page, err := cl.QueryInstances(c.Context, q)
				if errors.Is(err, host.ErrBadToken) {
					return exitWith(2, "--continuation-token: %v", err)
				}
				if err != nil {
					return err
				}
				items := make([]*dfjson.StatusPayload, 0, len(page.Instances))
				for i := range page.Instances {
					items = append(items, dfjson.NewStatusPayload(&page.Instances[i], nil, dfjson.StatusOptions{ShowInput: c.Bool("show-input"), ShowOutput: true}))
				}
				w := c.App.Writer
				switch c.String("output") {
				case "json":
					return printJSON(w, struct {
						Instances         []*dfjson.StatusPayload `json:"instances"`
						ContinuationToken string                  `json:"continuationToken"`
					}{items, page.ContinuationToken})
				case "table":
					tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
					fmt.Fprintln(tw, "INSTANCE ID\tNAME\tSTATUS\tCREATED\tLAST UPDATED")
					for _, p := range items {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.InstanceID, p.Name, p.RuntimeStatus, p.CreatedTime, p.LastUpdatedTime)
					}
					if err := tw.Flush(); err != nil {
						return err
					}
				case "":
					if err := printJSON(w, items); err != nil {
						return err
					}
				default:
					return exitWith(2, "--output %q: use json or table", c.String("output"))
				}
				if c.String("output") != "json" {
					fmt.Fprintf(w, "Continuation token for next set of results: '%s'\n", page.ContinuationToken)
				}
				return nil
			})
		},
	}
}

// isTerminal reports whether f is a character device (a person is watching).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func purgeHistoryCommand() *cli.Command {
	return &cli.Command{
		Name:  "purge-history",
		Usage: "delete finished instances and everything they own (history, state, events, timers, index entries)",
		Flags: withConn(append(filterFlags(),
			&cli.StringFlag{Name: "id", Usage: "purge this one instance (instead of a filter)"},
			&cli.BoolFlag{Name: "force", Usage: "also purge instances that have not finished"},
		)...),
		Action: func(c *cli.Context) error {
			return withClient(c, func(cl *client.Client) error {
				w := c.App.Writer
				if id := c.String("id"); id != "" {
					err := cl.PurgeInstance(c.Context, id, c.Bool("force"))
					if errors.Is(err, host.ErrNotFinished) {
						return exitWith(1, "instance %q has not finished; terminate it first or pass --force", id)
					}
					if err != nil {
						return describeErr(err, id)
					}
					fmt.Fprintf(w, "Purged instance '%s'.\nInstances deleted: 1\n", id)
					return nil
				}
				q, err := queryFromFlags(c)
				if err != nil {
					return err
				}
				var progress func(host.PurgeResult)
				if isTerminal(os.Stderr) {
					progress = func(r host.PurgeResult) { fmt.Fprintf(c.App.ErrWriter, "\rpurged %d instances…", r.Deleted) }
				}
				res, err := cl.PurgeInstances(c.Context, q, c.Bool("force"), progress)
				if progress != nil {
					fmt.Fprintln(c.App.ErrWriter)
				}
				if err != nil {
					return exitWith(1, "%v (after deleting %d instances; run the same command again to continue)", err, res.Deleted)
				}
				from, to := "the beginning", "now"
				if !q.CreatedFrom.IsZero() {
					from = q.CreatedFrom.Format(time.RFC3339Nano)
				}
				if !q.CreatedTo.IsZero() {
					to = q.CreatedTo.Format(time.RFC3339Nano)
				}
				fmt.Fprintf(w, "Purged orchestration history for all instances created between '%s' and '%s'", from, to)
				if len(q.Statuses) > 0 {
					names := make([]string, len(q.Statuses))
					for i, s := range q.Statuses {
						names[i] = string(s)
					}
					fmt.Fprintf(w, " and whose runtime status matched one of the following: [%s]", strings.Join(names, ","))
				}
				fmt.Fprintf(w, "\nInstances deleted: %d\n", res.Deleted)
				if res.Skipped > 0 {
					fmt.Fprintf(w, "Instances skipped because they have not finished: %d (use --force to purge them too)\n", res.Skipped)
				}
				return nil
			})
		},
	}
}

func deleteTaskHubCommand() *cli.Command {
	return &cli.Command{
		Name:  "delete-task-hub",
		Usage: "delete every instance, queue, timer and module of a task hub",
		Flags: withConn(&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"}),
		Action: func(c *cli.Context) error {
			st, err := openExistingStore(c)
			if err != nil {
				return err
			}
			defer st.Close()
			cl, hub := client.New(st, nil), st.Hub()
			if !c.Bool("yes") {
				fmt.Fprintf(c.App.Writer, "Delete task hub '%s' and everything in it? This cannot be undone. [y/N] ", hub)
				line, err := readLine(c.Context, c.App.Reader)
				if err != nil {
					return exitWith(1, "not confirmed (%v); nothing was deleted (pass --yes to skip the question)", err)
				}
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" && strings.TrimSpace(line) != hub {
					return exitWith(1, "not confirmed; nothing was deleted (pass --yes to skip the question)")
				}
			}
			n, err := cl.DeleteTaskHub(c.Context)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "Task hub '%s' successfully deleted (%d keys).\n", hub, n)
			return nil
		},
	}
}

// readLine reads one line from r, or returns ctx's error as soon as ctx ends
// (SIGTERM or Ctrl-C while a question waits for an answer), so that a
// prompt never keeps the process alive.
func readLine(ctx context.Context, r io.Reader) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil && res.line == "" {
			return "", fmt.Errorf("no answer: %v", res.err)
		}
		return res.line, nil
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

func rewindCommand() *cli.Command {
	return &cli.Command{
		Name:  "rewind",
		Usage: "put a Failed instance back to Running, re-running only what failed",
		Flags: withConn(idFlag(), &cli.StringFlag{Name: "reason", Usage: "reason, recorded in history"}),
		Action: func(c *cli.Context) error {
			return withClient(c, func(cl *client.Client) error {
				id := c.String("id")
				err := cl.Rewind(c.Context, id, c.String("reason"))
				if errors.Is(err, host.ErrNotFailed) {
					st, _ := cl.GetStatus(c.Context, id)
					status := "not Failed"
					if st != nil {
						status = string(st.Status)
					}
					return exitWith(1, "orchestration instance %q not rewound: its status is %s, and only Failed instances can be rewound", id, status)
				}
				if err != nil {
					return describeErr(err, id)
				}
				fmt.Fprintf(c.App.Writer, "Rewind message sent to instance '%s'. Retrieving new status now...\n", id)
				fmt.Fprintf(c.App.Writer, "Status before rewind: %s\n", abi.StatusFailed)
				deadline := time.Now().Add(3 * time.Second)
				st, _ := cl.GetStatus(c.Context, id)
				for st != nil && st.Status == abi.StatusFailed && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
					st, _ = cl.GetStatus(c.Context, id)
				}
				if st != nil {
					fmt.Fprintf(c.App.Writer, "Status after rewind: %s\n", st.Status)
				}
				return nil
			})
		},
	}
}

func restartCommand() *cli.Command {
	return &cli.Command{
		Name:  "restart",
		Usage: "start an instance's orchestrator again with the same input",
		Flags: withConn(idFlag(),
			&cli.BoolFlag{Name: "new-id", Aliases: []string{"restart-with-new-instance-id"}, Value: true, Usage: "use a new random id (false: reuse the id; the instance must have finished)"}),
		Action: func(c *cli.Context) error {
			return withClient(c, func(cl *client.Client) error {
				id := c.String("id")
				st, err := cl.Restart(c.Context, id, c.Bool("new-id"))
				if errors.Is(err, host.ErrInstanceExists) {
					return exitWith(1, "instance %q is still running; restart it under a new id (--new-id true) or terminate it first", id)
				}
				if err != nil {
					return describeErr(err, id)
				}
				fmt.Fprintf(c.App.Writer, "Restarted '%s' as instance '%s' at %s.\n", st.Name, st.InstanceID, dfjson.DFTime(st.CreatedAt))
				return nil
			})
		},
	}
}

func terminateCommand() *cli.Command {
	return &cli.Command{
		Name:  "terminate",
		Usage: "terminate a running instance (and, by default, its running sub-orchestrations)",
		Flags: withConn(idFlag(),
			&cli.StringFlag{Name: "reason", Usage: "reason, recorded in history and shown as the output"},
			&cli.BoolFlag{Name: "recursive", Value: true, Usage: "also terminate running sub-orchestrations"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "how long to wait for the instance to be Terminated"},
		),
		Action: func(c *cli.Context) error {
			if err := requirePositive(c, 0, "timeout"); err != nil {
				return err
			}
			return withClient(c, func(cl *client.Client) error {
				id := c.String("id")
				err := cl.Terminate(c.Context, id, c.String("reason"), c.Bool("recursive"))
				if errors.Is(err, host.ErrInstanceFinished) {
					st, _ := cl.GetStatus(c.Context, id)
					status := "finished"
					if st != nil {
						status = string(st.Status)
					}
					return exitWith(1, "instance %q has already finished (%s); there is nothing to terminate", id, status)
				}
				if err != nil {
					return describeErr(err, id)
				}
				fmt.Fprintf(c.App.Writer, "Sent a termination message to instance '%s'. Waiting up to %s for it to terminate...\n", id, c.Duration("timeout"))
				deadline := time.Now().Add(c.Duration("timeout"))
				for {
					st, err := cl.GetStatus(c.Context, id)
					if err == nil && st.Status.Terminal() {
						if st.Status != abi.StatusTerminated {
							fmt.Fprintf(c.App.Writer, "Instance '%s' finished as %s before the termination took effect.\n", id, st.Status)
							return nil
						}
						fmt.Fprintf(c.App.Writer, "Successfully terminated '%s'.\n", id)
						return nil
					}
					if time.Now().After(deadline) {
						return exitWith(1, "instance %q did not terminate within %s (no worker running? it terminates when a worker processes the message)", id, c.Duration("timeout"))
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
		},
	}
}
