//go:build unix

package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestImportStopsOnSignal runs khub import against a loopback server that
// never answers an upload, and checks that SIGINT and SIGTERM end the
// import promptly with a summary and an error that explains how to resume.
func TestImportStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range []string{"a.md", "b.md", "c.md"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("# "+name+"\n\nText.\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			arrived := make(chan struct{}, 16)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				<-r.Context().Done() // hold the upload until the client gives up
			})}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })

			cmd := khubCommand("import", dir, "--collection", "kb", "--workers", "1",
				"--server", "http://"+ln.Addr().String(), "--token", "test-token")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			select {
			case <-arrived:
			case <-time.After(20 * time.Second):
				t.Fatalf("no upload arrived; stderr:\n%s", stderr.String())
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("khub import still runs 10s after %v", sig)
			}
			var exit *exec.ExitError
			if want := 128 + int(sig); !errors.As(err, &exit) || exit.ExitCode() != want {
				t.Errorf("exit = %v, want status %d, as shells report a command that %v stopped", err, want, sig)
			}
			if !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("stderr does not report the interruption:\n%s", stderr.String())
			}
			if !strings.Contains(stderr.String(), "run the same command again") {
				t.Errorf("stderr does not explain how to resume:\n%s", stderr.String())
			}
			if !strings.Contains(stdout.String(), "not sent:      3") {
				t.Errorf("summary does not count the 3 files not sent:\n%s", stdout.String())
			}
		})
	}
}
