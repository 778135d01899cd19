package redisstore

import (
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/worker"
)

// Store is what the client and the workers need from durable storage.
var (
	_ client.Store = (*Store)(nil)
	_ worker.Store = (*Store)(nil)
)
