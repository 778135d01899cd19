package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/durablewasm/durablewasm/internal/invariant"
	"github.com/durablewasm/durablewasm/redisstore"
)

// doctorCommand checks a task hub's durable state and the Redis settings it
// depends on (docs/reliability.md).
func doctorCommand() *cli.Command {
	return &cli.Command{
		Name: "doctor",
		Usage: "check a task hub: Redis durability settings, stuck instances, malformed histories, " +
			"pending queue entries whose message was deleted, dead letters (exit 1 when a problem is found)",
		Description: "Reads every partition's queues, timers and instances (its cost grows with the hub's size; it never\n" +
			"writes). Running workers may move work while it reads; a problem is reported only when two reads agree.\n" +
			"Instances that wait for an external event (or are suspended) are listed, not reported as problems.",
		Flags: withConn(),
		Action: func(c *cli.Context) error {
			t, _, err := resolveTarget(c)
			if err != nil {
				return err
			}
			store, err := openExistingStore(c)
			if err != nil {
				return err
			}
			defer store.Close()
			w := c.App.Writer
			fmt.Fprintf(w, "redis: %s\n", redisstore.RedactURL(t.url))
			if redisstore.IsEmbedded(c.Context, store.Client()) {
				fmt.Fprintln(w, "redis settings: "+redisstore.EmbeddedDurability)
			} else {
				warns := store.CheckDurability(c.Context)
				if len(warns) == 0 {
					fmt.Fprintln(w, "redis settings: ok (AOF on, noeviction)")
				}
				for _, s := range warns {
					fmt.Fprintln(w, "warning:", s)
				}
			}
			r, err := invariant.CheckStable(c.Context, store, 3)
			if err != nil {
				return exitWith(1, "check task hub %s: %v", store.Hub(), err)
			}
			fmt.Fprintf(w, "task hub %s, %d partitions\n", store.Hub(), store.Partitions())
			fmt.Fprint(w, r.String())
			if !r.OK() {
				return exitWith(1, "%d problems found in task hub %s", len(r.Problems), store.Hub())
			}
			return nil
		},
	}
}
