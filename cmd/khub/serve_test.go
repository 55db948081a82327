package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets tests run the khub command from the test binary itself, so
// that process-level tests need no separate build.
func TestMain(m *testing.M) {
	if os.Getenv("KHUB_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func khubCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KHUB_TEST_RUN_MAIN=1")
	return cmd
}

func TestServeStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	cmd := khubCommand("serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	var logs []string
	lines := bufio.NewScanner(stderr)
	addr := ""
	for addr == "" && lines.Scan() {
		logs = append(logs, lines.Text())
		var rec map[string]any
		if json.Unmarshal(lines.Bytes(), &rec) == nil && rec["msg"] == "khub serving" {
			addr, _ = rec["addr"].(string)
		}
	}
	if addr == "" {
		t.Fatalf("hub did not log its address; log:\n%s", strings.Join(logs, "\n"))
	}

	resp, err := http.Get(addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz = %d", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		logs = append(logs, lines.Text())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("khub serve exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("khub serve did not exit after SIGTERM")
	}

	all := strings.Join(logs, "\n")
	if !strings.Contains(all, "khub stopped") {
		t.Errorf("log has no stop record:\n%s", all)
	}
	token, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(all, strings.TrimSpace(string(token))) {
		t.Error("the admin token appears in the log")
	}
	if !strings.Contains(all, filepath.Join(dir, "admin.token")) {
		t.Error("the log does not say where the admin token was written")
	}
}

func TestHelpExplainsEveryCommand(t *testing.T) {
	root := newRootCmd()
	for _, c := range root.Commands() {
		if c.Short == "" {
			t.Errorf("command %s has no short help", c.Name())
		}
		for _, sub := range c.Commands() {
			if sub.Short == "" {
				t.Errorf("command %s %s has no short help", c.Name(), sub.Name())
			}
		}
	}
	out, err := khubCommand("serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("serve --help: %v", err)
	}
	for _, flag := range []string{"--data", "--addr", "--admin-token", "--allow-private-destinations"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("serve --help does not mention %s", flag)
		}
	}
}

func TestServeRejectsResultCacheFlags(t *testing.T) {
	cases := map[string][]string{
		"--result-cache-mib":     {"--result-cache-mib", "0"},
		"--result-cache-entries": {"--result-cache-entries", "0"},
	}
	for flag, args := range cases {
		root := newRootCmd()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(append([]string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, args...))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("serve %v: err = %v, want an error naming %s", args, err, flag)
		}
	}
}
