// Command durablewasm deploys WebAssembly orchestrations, runs workers and
// manages instances with the verbs and flags of `func durable`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// quietRedis drops go-redis' internal log lines (dial retries): the CLI
// reports connection problems itself, once.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// main runs the CLI with a context that SIGTERM and SIGINT cancel: every
// command stops what it waits for (Redis, an instance, a question) and
// `serve` finishes the steps in flight, releases its leases and exits. After
// the first signal the default handling is restored, so a second one ends
// the process at once.
func main() {
	redis.SetLogger(quietRedis{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, newApp(), os.Args)
	stop()
	os.Exit(code)
}
