package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/push"
	"github.com/khub-dev/khub/internal/testpg"
)

// node is one khub serve process of a multi-node test.
type node struct {
	name string
	cmd  *exec.Cmd
	url  string
	// dispatching is closed when the node logs that a push dispatcher
	// started on it.
	dispatching chan struct{}
	once        sync.Once
	mu          sync.Mutex
	logs        []string
	exited      chan struct{}
}

func startNode(t *testing.T, name string, args ...string) *node {
	t.Helper()
	n := &node{name: name, dispatching: make(chan struct{}), exited: make(chan struct{})}
	n.cmd = khubCommand(append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--node-id", name}, args...)...)
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-n.exited
	})
	addr := make(chan string, 1)
	go func() {
		defer close(n.exited)
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			var rec map[string]any
			json.Unmarshal(lines.Bytes(), &rec)
			n.mu.Lock()
			n.logs = append(n.logs, lines.Text())
			n.mu.Unlock()
			switch rec["msg"] {
			case "khub serving":
				s, _ := rec["addr"].(string)
				addr <- s
			case "push dispatcher started":
				n.once.Do(func() { close(n.dispatching) })
			}
		}
		n.cmd.Wait()
	}()
	select {
	case n.url = <-addr:
	case <-n.exited:
		t.Fatalf("node %s exited before serving; log:\n%s", name, n.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not start; log:\n%s", name, n.log())
	}
	return n
}

func (n *node) log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.logs, "\n")
}

// failoverReceiver verifies every delivery with the Standard Webhooks
// library and records, per article, the order in which versions first
// arrived.
type failoverReceiver struct {
	verify *standardwebhooks.Webhook
	mu     sync.Mutex
	ids    map[string]bool
	order  map[string][]int64
	seen   map[string]bool // article id and version
	bad    []string
}

func (rv *failoverReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := rv.verify.Verify(body, r.Header); err != nil {
		rv.mu.Lock()
		rv.bad = append(rv.bad, err.Error())
		rv.mu.Unlock()
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	events, err := client.ParseEvents(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for _, ev := range events {
		rv.ids[ev.ID] = true
		key := fmt.Sprintf("%s@%d", ev.Subject, ev.Data.Version)
		if !rv.seen[key] {
			rv.seen[key] = true
			rv.order[ev.Subject] = append(rv.order[ev.Subject], ev.Data.Version)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rv *failoverReceiver) distinct() int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return len(rv.ids)
}

// TestFailoverSIGKILL runs three nodes on one PostgreSQL schema, writes a
// stream of changes through all of them and kills the node that dispatches
// the push integration with SIGKILL in the middle. Another node must take
// the lease over, and the receiver must get every change at least once, in
// version order per article.
func TestFailoverSIGKILL(t *testing.T) {
	url := testpg.URL(t)
	schema := testpg.Schema(t, url, "khub_failover_")
	token := "failover-admin-token-0123456789"

	secret := push.NewSecret()
	verify, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	rv := &failoverReceiver{verify: verify, ids: map[string]bool{}, order: map[string][]int64{}, seen: map[string]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rv}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	args := []string{"--db", url, "--db-schema", schema, "--admin-token", token, "--allow-private-destinations", "--lease-ttl", "2s"}
	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = startNode(t, fmt.Sprintf("node-%d", i), args...)
	}

	ctx := context.Background()
	admin := client.New(nodes[0].url, token)
	if _, err := admin.CreateIntegration(ctx, client.IntegrationRequest{
		Name: "ops-board", Freshness: "1m", Pattern: "push",
		Webhook: &client.Webhook{URL: "http://" + ln.Addr().String() + "/hook", Secret: secret},
	}); err != nil {
		t.Fatal(err)
	}
	var holder *node
	select {
	case <-nodes[0].dispatching:
		holder = nodes[0]
	case <-nodes[1].dispatching:
		holder = nodes[1]
	case <-nodes[2].dispatching:
		holder = nodes[2]
	case <-time.After(30 * time.Second):
		t.Fatal("no node started a push dispatcher")
	}

	const changes, articles = 240, 12
	alive := append([]*node(nil), nodes...)
	for i := range changes {
		if i == changes/2 {
			if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			for j, n := range alive {
				if n == holder {
					alive = append(alive[:j], alive[j+1:]...)
					break
				}
			}
		}
		a := client.Article{
			ID: fmt.Sprintf("policy-%02d", i%articles), Title: fmt.Sprintf("Policy %d", i%articles),
			Body: fmt.Sprintf("Revision %d.", i), Collection: "handbook", Class: "policy",
		}
		// A write through the node that was just killed fails, so it is
		// sent again through the next node.
		var err error
		for try := range len(alive) {
			c := client.New(alive[(i+try)%len(alive)].url, token)
			if _, _, err = c.PutArticle(ctx, a); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("write %d failed on every node: %v", i, err)
		}
	}

	// The change log is the truth: count its entries through a node that
	// is still alive.
	survivor := client.New(alive[0].url, token)
	var logged int
	for after := int64(0); ; {
		page, err := survivor.Changes(ctx, after, 500, 0)
		if err != nil {
			t.Fatal(err)
		}
		logged += len(page.Changes)
		if len(page.Changes) == 0 {
			break
		}
		after = page.Next
	}
	if logged < changes {
		t.Fatalf("change log has %d entries, want at least %d", logged, changes)
	}

	deadline := time.Now().Add(60 * time.Second)
	for rv.distinct() < logged && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := rv.distinct(); got != logged {
		for _, n := range alive {
			t.Logf("log of %s:\n%s", n.name, n.log())
		}
		t.Fatalf("receiver got %d distinct event ids, want %d, one per change", got, logged)
	}

	tookOver := false
	for _, n := range alive {
		select {
		case <-n.dispatching:
			tookOver = true
		default:
		}
	}
	if !tookOver {
		t.Error("no surviving node started the push dispatcher after the holder was killed")
	}

	rv.mu.Lock()
	defer rv.mu.Unlock()
	if len(rv.bad) > 0 {
		t.Errorf("signature verification failed %d times: %v", len(rv.bad), rv.bad[0])
	}
	for id, versions := range rv.order {
		for k := 1; k < len(versions); k++ {
			if versions[k] != versions[k-1]+1 {
				t.Errorf("article %s: versions first arrived in order %v, want 1, 2, 3, ...", id, versions)
				break
			}
		}
	}
}
