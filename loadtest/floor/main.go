//go:build linux

// Command floor measures the least a server can spend to send one small
// message to each of many subscribers over loopback TCP: one write(2) per
// socket in a tight loop, with nothing else in the process. It is the
// lower bound for the broadcast benchmarks in docs/benchmarks.md, on the
// same machine and with the same core pinning.
//
// Run the two sides as separate processes, each on its own core:
//
//	ulimit -n 20000
//	taskset -c 0 go run ./loadtest/floor -mode server -conns 10000 &
//	taskset -c 1 go run ./loadtest/floor -mode client -conns 10000
//
// The server accepts -conns connections, then once a second (-rounds
// times) writes an 80-byte WebSocket text frame carrying its send time to
// every socket, and reports each sweep's wall time and CPU. The client
// reads all sockets from one epoll loop, without a goroutine per
// connection, and reports the latency from send to receive. -busy makes
// the client poll instead of sleeping in epoll_wait, which spares the
// server's core the wake-ups.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

const frameLen = 80 // a 2-byte header and a 78-byte payload

func main() {
	mode := flag.String("mode", "", "server or client")
	addr := flag.String("addr", "127.0.0.1:7777", "address to listen on or dial")
	conns := flag.Int("conns", 10000, "connections")
	rounds := flag.Int("rounds", 10, "sweeps, one a second")
	busy := flag.Bool("busy", false, "client: poll without sleeping")
	flag.Parse()
	var err error
	switch *mode {
	case "server":
		err = server(*addr, *conns, *rounds)
	case "client":
		err = client(*addr, *conns, *rounds, *busy)
	default:
		err = errors.New("-mode must be server or client")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func server(addr string, n, rounds int) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	fds := make([]int, 0, n)
	keep := make([]net.Conn, 0, n) // the fds stay open while their Conn lives
	for len(fds) < n {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		rc, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			return err
		}
		if err := rc.Control(func(fd uintptr) { fds = append(fds, int(fd)) }); err != nil {
			return err
		}
		keep = append(keep, c)
	}
	fmt.Printf("accepted %d connections\n", len(fds))
	msg := make([]byte, frameLen)
	msg[0], msg[1] = 0x81, frameLen-2
	var total, totalCPU time.Duration
	for range rounds {
		time.Sleep(time.Second)
		cpu0 := cpuTime()
		t0 := time.Now()
		binary.LittleEndian.PutUint64(msg[2:], uint64(t0.UnixNano()))
		short := 0
		for _, fd := range fds {
			if m, err := syscall.Write(fd, msg); err != nil || m != len(msg) {
				short++
			}
		}
		el, cpu := time.Since(t0), cpuTime()-cpu0
		total += el
		totalCPU += cpu
		fmt.Printf("sweep %v: %.2f us per write, CPU %v, failed writes %d\n", el.Round(time.Microsecond), float64(el.Nanoseconds())/1e3/float64(len(fds)), cpu.Round(time.Microsecond), short)
	}
	fmt.Printf("mean: %.2f us per write (wall), %.2f us per write (CPU)\n",
		float64(total.Nanoseconds())/1e3/float64(rounds*len(fds)), float64(totalCPU.Nanoseconds())/1e3/float64(rounds*len(fds)))
	time.Sleep(2 * time.Second) // let the client read the last sweep
	for _, c := range keep {
		c.Close()
	}
	return nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func client(addr string, n, rounds int, busy bool) error {
	ap, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return err
	}
	sa := &syscall.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer syscall.Close(ep)
	fds := make([]int, 0, n)
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	for range n {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
		if err := syscall.Connect(fd, sa); err != nil {
			return err
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			return err
		}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}); err != nil {
			return err
		}
	}
	timeout := -1
	if busy {
		timeout = 0
	}
	h := hdrhistogram.New(1, 60_000_000, 3) // microseconds
	evs := make([]syscall.EpollEvent, 1024)
	buf := make([]byte, 64<<10)
	want := int64(n) * int64(rounds)
	deadline := time.Now().Add(time.Duration(rounds+30) * time.Second)
	for h.TotalCount() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out with %d of %d messages", h.TotalCount(), want)
		}
		k, err := syscall.EpollWait(ep, evs, timeout)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return err
		}
		now := time.Now().UnixNano()
		for _, e := range evs[:k] {
			m, err := syscall.Read(int(e.Fd), buf)
			if err != nil || m == 0 {
				continue
			}
			// Writes of 80 bytes arrive whole on loopback; a short read
			// would miss a sample, and the count would say so.
			for off := 0; off+frameLen <= m; off += frameLen {
				sent := int64(binary.LittleEndian.Uint64(buf[off+2:]))
				_ = h.RecordValue((now - sent) / 1e3)
			}
		}
	}
	ms := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1e3 }
	fmt.Printf("%d messages: p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms\n",
		h.TotalCount(), ms(50), ms(99), ms(99.9), float64(h.Max())/1e3)
	return nil
}
