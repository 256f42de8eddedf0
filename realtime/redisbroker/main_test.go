package redisbroker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/partyline/partyline/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		stopCluster()
		os.Exit(code)
	}))
}

// waitFor bounds every wait of these tests.
const waitFor = 15 * time.Second

// singleClient returns a client of the shared test Redis, closed when the
// test ends; it skips the test when PARTYLINE_TEST_REDIS_URL is unset.
func singleClient(t testing.TB) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatalf("parse %s: %v", testenv.RedisURLEnv, err)
	}
	return clientFor(t, opt)
}

func clientFor(t testing.TB, opt *goredis.Options) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clusterClient returns a client of the test cluster, starting the
// cluster on first use; it is closed when the test ends.
func clusterClient(t testing.TB) *goredis.ClusterClient {
	t.Helper()
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: sharedCluster(t)})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newEngine builds an Engine on c with a prefix of its own and a unique
// node id, unless opts sets them.
func newEngine(t testing.TB, c goredis.UniversalClient, opts Options) *Engine {
	t.Helper()
	opts.Client = c
	if opts.Prefix == "" {
		opts.Prefix = testenv.KeyPrefix()
	}
	if opts.NodeID == "" {
		opts.NodeID = "node-" + newEpoch()
	}
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// The test cluster: three masters on spare loopback ports, shared by the
// package's tests and stopped by TestMain.
var (
	clusterOnce  sync.Once
	clusterAddrs []string
	clusterErr   error
	clusterDir   string
	clusterProcs []*exec.Cmd
)

// sharedCluster returns the addresses of the test cluster, starting it on
// first use. Without redis-server and redis-cli the test is skipped, unless
// PARTYLINE_TEST_REDIS_URL is set, as it is in CI, where the cluster must
// run.
func sharedCluster(t testing.TB) []string {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv(testenv.RedisURLEnv) != "" {
				t.Fatalf("%s is set, so the cluster tests must run, but %s is missing: %v", testenv.RedisURLEnv, bin, err)
			}
			t.Skipf("skipping: the Redis Cluster tests need %s on PATH", bin)
		}
	}
	clusterOnce.Do(func() { clusterAddrs, clusterErr = startCluster() })
	if clusterErr != nil {
		t.Fatalf("start the test cluster: %v", clusterErr)
	}
	return clusterAddrs
}

func startCluster() ([]string, error) {
	dir, err := os.MkdirTemp("", "partyline-cluster-")
	if err != nil {
		return nil, err
	}
	clusterDir = dir
	var addrs []string
	for range 3 {
		port, err := sparePort(true)
		if err != nil {
			return nil, err
		}
		cmd, err := startRedis(dir, port, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port)))
		if err != nil {
			return nil, err
		}
		clusterProcs = append(clusterProcs, cmd)
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	for _, a := range addrs {
		if err := waitPing(a); err != nil {
			return nil, err
		}
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		err := poll(30*time.Second, func() error {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = errors.New("cluster_state is not ok")
			}
			return err
		})
		_ = c.Close()
		if err != nil {
			return nil, fmt.Errorf("cluster node %s: %w", a, err)
		}
	}
	return addrs, nil
}

// poll calls f until it returns nil, every 20 ms, and returns f's last
// error once timeout has passed. It waits on outside processes, where
// there is nothing to wait on but polling.
func poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		<-tick.C
	}
}

// stopCluster stops the cluster's processes, which this package started,
// by their pids.
func stopCluster() {
	for _, cmd := range clusterProcs {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	clusterProcs = nil
	if clusterDir != "" {
		_ = os.RemoveAll(clusterDir)
	}
}

// startRedis starts a redis-server without persistence on a loopback
// port, logging into dir. It dies with the test process.
func startRedis(dir string, port int, extra ...string) (*exec.Cmd, error) {
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)),
	}
	cmd := exec.Command("redis-server", append(args, extra...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server on %d: %w", port, err)
	}
	return cmd, nil
}

// privateRedis is a redis-server of one test, for what the shared one
// must not suffer: flushes and restarts.
type privateRedis struct {
	t    testing.TB
	dir  string
	port int
	cmd  *exec.Cmd
}

// startPrivateRedis starts a private redis-server, stopped (by pid) when
// the test ends. It skips the test like sharedCluster does.
func startPrivateRedis(t testing.TB) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv(testenv.RedisURLEnv) != "" {
			t.Fatalf("%s is set, but redis-server is missing: %v", testenv.RedisURLEnv, err)
		}
		t.Skip("skipping: this test needs redis-server on PATH")
	}
	port, err := sparePort(false)
	if err != nil {
		t.Fatal(err)
	}
	r := &privateRedis{t: t, dir: t.TempDir(), port: port}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *privateRedis) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

func (r *privateRedis) start() {
	r.t.Helper()
	cmd, err := startRedis(r.dir, r.port)
	if err != nil {
		r.t.Fatal(err)
	}
	r.cmd = cmd
	if err := waitPing(r.addr()); err != nil {
		r.t.Fatal(err)
	}
}

// stop kills the server and waits for it to exit.
func (r *privateRedis) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// waitPing waits until the server at addr answers PING.
func waitPing(addr string) error {
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	if err := poll(10*time.Second, func() error { return c.Ping(context.Background()).Err() }); err != nil {
		return fmt.Errorf("redis-server at %s did not answer: %w", addr, err)
	}
	return nil
}

// sparePort returns a free loopback port; withBus also wants port+10000
// free, for the cluster bus.
func sparePort(withBus bool) (int, error) {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if !withBus {
			return port, nil
		}
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		if err != nil {
			continue
		}
		_ = bus.Close()
		return port, nil
	}
	return 0, errors.New("no spare port found")
}

// pubsubConnIDs returns the ids of the pub/sub connections named name on
// the server c talks to, from CLIENT LIST.
func pubsubConnIDs(ctx context.Context, c *goredis.Client, name string) ([]string, error) {
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		return nil, err
	}
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		fields := map[string]string{}
		for _, f := range strings.Fields(sc.Text()) {
			if k, v, ok := strings.Cut(f, "="); ok {
				fields[k] = v
			}
		}
		if fields["name"] == name && strings.Contains(fields["flags"], "P") {
			ids = append(ids, fields["id"])
		}
	}
	return ids, nil
}
