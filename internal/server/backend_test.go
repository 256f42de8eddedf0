package server

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestClusterOptionsKeepURLSettings checks that the query options of
// --redis-url reach the cluster client too.
func TestClusterOptionsKeepURLSettings(t *testing.T) {
	o, err := goredis.ParseURL("redis://user:secret@127.0.0.1:7000/0?pool_size=77&pool_timeout=9s&read_timeout=2s&min_idle_conns=3&client_name=pl")
	if err != nil {
		t.Fatal(err)
	}
	c := clusterOptions(o)
	if len(c.Addrs) != 1 || c.Addrs[0] != "127.0.0.1:7000" || c.Username != "user" || c.Password != "secret" || c.ClientName != "pl" {
		t.Errorf("address and credentials = %v %q %q %q", c.Addrs, c.Username, c.Password, c.ClientName)
	}
	if c.PoolSize != 77 || c.PoolTimeout != 9*time.Second || c.ReadTimeout != 2*time.Second || c.MinIdleConns != 3 {
		t.Errorf("pool_size %d, pool_timeout %v, read_timeout %v, min_idle_conns %d: the URL's options were dropped",
			c.PoolSize, c.PoolTimeout, c.ReadTimeout, c.MinIdleConns)
	}
	if c.MaxRetries != -1 {
		t.Errorf("MaxRetries = %d; a retried publish could be appended twice", c.MaxRetries)
	}
}
