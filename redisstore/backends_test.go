package redisstore

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/internal/redistest"
)

func TestConformanceMiniredis(t *testing.T) {
	m := redistest.Miniredis(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr(), PoolSize: 64})
	t.Cleanup(func() { c.Close() })
	runConformance(t, &backend{name: "miniredis", client: c})
}

func TestConformanceRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("real Redis skipped in -short mode")
	}
	addr := redistest.StartServer(t)
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	t.Cleanup(func() { c.Close() })
	runConformance(t, &backend{name: "redis", client: c})
}

func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("real Redis Cluster skipped in -short mode")
	}
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), PoolSize: 64})
	t.Cleanup(func() { c.Close() })
	runConformance(t, &backend{name: "cluster", client: c, cluster: true})
}
