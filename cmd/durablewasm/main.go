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

func main() {
	redis.SetLogger(quietRedis{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, newApp(), os.Args)
	stop()
	os.Exit(code)
}
