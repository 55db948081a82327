package app_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
)

// BenchmarkStreamIdleSubscribers opens 10,000 streams of GET /v1/stream
// with one pull token on a SQLite hub, and reports what they cost the hub
// while idle: heap and goroutine stacks (heap-stack-MB,
// heap-stack-KB/sub) and the growth of the process's resident set
// (rss-MB, rss-KB/sub). The subscribers run in a child process, the test
// binary running TestStreamSubscriberProcess, so that they count against
// neither the hub's memory nor its open-file limit. Each iteration then
// writes one change in scope and waits until every subscriber has
// received it, so ns/op is the time to fan one change out to all of them.
func BenchmarkStreamIdleSubscribers(b *testing.B) {
	const subscribers = 10000
	raiseFileLimit(b, subscribers+1024)
	_, c := startHub(b)
	ctx := context.Background()
	in, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "agents", Freshness: "15m", Pattern: "pull", Scope: client.Scope{Classes: []string{"runbook"}}})
	if err != nil {
		b.Fatal(err)
	}

	heapBefore, rssBefore := memoryInUse(b)
	start := time.Now()
	subs := startSubscribers(b, strings.TrimPrefix(c.BaseURL(), "http://"), in.Token, subscribers)
	opened := time.Since(start)
	heapAfter, rssAfter := memoryInUse(b)

	i := 0
	for b.Loop() {
		i++
		put(b, c, article("rb-bench", "runbook", "Bench runbook", fmt.Sprintf("Revision %d.", i)))
		subs.await(fmt.Sprintf(`"version":%d`, i))
	}
	// b.Loop clears metrics reported before it, so they come last.
	heap := float64(heapAfter) - float64(heapBefore)
	rss := float64(rssAfter) - float64(rssBefore)
	b.ReportMetric(heap/(1<<20), "heap-stack-MB")
	b.ReportMetric(heap/subscribers/1024, "heap-stack-KB/sub")
	b.ReportMetric(rss/(1<<20), "rss-MB")
	b.ReportMetric(rss/subscribers/1024, "rss-KB/sub")
	b.ReportMetric(opened.Seconds(), "open-all-s")
	if rss > 300<<20 {
		b.Errorf("%d idle streams grew the hub's resident set by %.0f MB, want under 300 MB", subscribers, rss/(1<<20))
	}
}

// Environment of the subscriber process.
const (
	subscriberAddrEnv  = "KHUB_BENCH_STREAM_ADDR"
	subscriberTokenEnv = "KHUB_BENCH_STREAM_TOKEN"
	subscriberCountEnv = "KHUB_BENCH_STREAM_COUNT"
)

// subscriberProcess is the child process that holds the streams of
// BenchmarkStreamIdleSubscribers. It prints "ready" once every stream is
// open, and for each line "await TEXT" on its input it prints "ok" once
// every stream has received TEXT.
type subscriberProcess struct {
	b   *testing.B
	in  io.WriteCloser
	out *bufio.Scanner
}

func startSubscribers(b *testing.B, addr, token string, n int) *subscriberProcess {
	cmd := exec.Command(os.Args[0], "-test.run=^TestStreamSubscriberProcess$")
	cmd.Env = append(os.Environ(), subscriberAddrEnv+"="+addr, subscriberTokenEnv+"="+token, subscriberCountEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the subscriber process: %v", err)
	}
	b.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	p := &subscriberProcess{b: b, in: in, out: bufio.NewScanner(out)}
	p.expect("ready")
	return p
}

func (p *subscriberProcess) await(text string) {
	if _, err := fmt.Fprintf(p.in, "await %s\n", text); err != nil {
		p.b.Fatalf("ask the subscriber process: %v", err)
	}
	p.expect("ok")
}

// expect reads lines of the subscriber process until want, and fails the
// benchmark on a line that starts with "error".
func (p *subscriberProcess) expect(want string) {
	for p.out.Scan() {
		line := p.out.Text()
		switch {
		case line == want:
			return
		case strings.HasPrefix(line, "error"):
			p.b.Fatalf("subscriber process: %s", line)
		}
	}
	p.b.Fatalf("the subscriber process ended before it printed %q: %v", want, p.out.Err())
}

// TestStreamSubscriberProcess is the subscriber process of
// BenchmarkStreamIdleSubscribers, and skips when run otherwise.
func TestStreamSubscriberProcess(t *testing.T) {
	addr := os.Getenv(subscriberAddrEnv)
	if addr == "" {
		t.Skip("runs only as the child process of BenchmarkStreamIdleSubscribers")
	}
	n, err := strconv.Atoi(os.Getenv(subscriberCountEnv))
	if err != nil {
		fmt.Printf("error: %s is invalid: %v\n", subscriberCountEnv, err)
		return
	}
	conns, err := openStreams(addr, os.Getenv(subscriberTokenEnv), n)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return
	}
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	fmt.Println("ready")
	commands := bufio.NewScanner(os.Stdin)
	for commands.Scan() {
		text, ok := strings.CutPrefix(commands.Text(), "await ")
		if !ok {
			fmt.Printf("error: unknown command %q\n", commands.Text())
			return
		}
		if err := awaitEvent(conns, text); err != nil {
			fmt.Printf("error: %v\n", err)
			return
		}
		fmt.Println("ok")
	}
}

// raiseFileLimit raises the soft and, if needed, hard limit on open files
// to at least n, or skips the benchmark when the process may not.
func raiseFileLimit(b *testing.B, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Skipf("read the open-file limit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	want := lim
	want.Cur = n
	want.Max = max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		b.Skipf("the benchmark needs %d open files and the limit is %d (hard %d), which this process may not raise: %v; run it as root or raise the limit with ulimit -n", n, lim.Cur, lim.Max, err)
	}
	b.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
}

// memoryInUse returns the bytes of heap and goroutine stacks in use after
// a full collection, and the resident set size from /proc/self/status.
func memoryInUse(b *testing.B) (heapAndStacks, rss uint64) {
	// FreeOSMemory collects and returns free pages to the system, so
	// that memory freed by earlier benchmarks of this process, which the
	// runtime returns only slowly, does not shrink the resident set
	// between the two readings.
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("read the resident set size: %v", err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("parse VmRSS %q: %v", v, err)
			}
			rss = kb << 10
		}
	}
	return ms.HeapInuse + ms.StackInuse, rss
}

// openStreams opens n streams with raw HTTP/1.1 requests, 64 at a time,
// and returns once each has received its first heartbeat.
func openStreams(addr, token string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	request := "GET /v1/stream HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + token + "\r\nAccept: text/event-stream\r\n\r\n"
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range 64 {
		wg.Go(func() {
			for i := range next {
				conn, err := openStream(addr, request)
				if err != nil {
					errs <- fmt.Errorf("stream %d: %w", i, err)
					return
				}
				conns[i] = conn
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		for _, conn := range conns {
			if conn != nil {
				conn.Close()
			}
		}
		return nil, err
	}
	return conns, nil
}

func openStream(addr, request string) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write([]byte(request)); err != nil {
		conn.Close()
		return nil, err
	}
	// A small reader, dropped once the heartbeat is read, so that the
	// subscriber keeps no buffer.
	br := bufio.NewReaderSize(conn, 512)
	var head []byte
	for !bytes.Contains(head, []byte(": heartbeat\n")) {
		line, err := br.ReadSlice('\n')
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("read the stream's start: %w (read %q)", err, head)
		}
		head = append(head, line...)
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 200")) {
		conn.Close()
		return nil, fmt.Errorf("answer %q, want 200", head)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// awaitEvent reads every connection, 64 at a time, until it has received
// text, for at most 60s.
func awaitEvent(conns []net.Conn, text string) error {
	var wg sync.WaitGroup
	next := make(chan net.Conn, len(conns))
	for _, conn := range conns {
		next <- conn
	}
	close(next)
	failed := make(chan error, len(conns))
	deadline := time.Now().Add(60 * time.Second)
	for range 64 {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for conn := range next {
				conn.SetReadDeadline(deadline)
				var got []byte
				for !bytes.Contains(got, []byte(text)) {
					n, err := conn.Read(buf)
					if err != nil {
						failed <- fmt.Errorf("waiting for %s: %w", text, err)
						return
					}
					got = append(got, buf[:n]...)
				}
			}
		})
	}
	wg.Wait()
	close(failed)
	return <-failed
}
