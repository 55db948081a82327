package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRedirectsAreRefused checks that the client neither follows a
// redirect nor sends its token to where one points.
func TestRedirectsAreRefused(t *testing.T) {
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"hits":[],"terms":[]}`))
	}))
	defer other.Close()
	target := strings.Replace(other.URL, "://", "://admin:hunter2@", 1)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()

	_, err := New(redirect.URL, "secret-token").Lookup(context.Background(), LookupRequest{Text: "disk full"})
	if err == nil || !strings.HasPrefix(err.Error(), redirect.URL+"/v1/lookup redirected to ") {
		t.Errorf("lookup through a redirect: err = %v, want one naming the server and the redirect", err)
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("redirect error %q shows the password of the target", err)
	}
	if leaked.Load() {
		t.Error("the token reached the server that the redirect named")
	}
}

// TestNonJSONResponseNamed checks that a response from a server other
// than a hub is reported as such, not as a JSON syntax error or a page of
// HTML.
func TestNonJSONResponseNamed(t *testing.T) {
	page := "<!doctype html><html><body>" + strings.Repeat("<p>Welcome</p>", 50) + "</body></html>"
	for _, c := range []struct {
		status int
		page   string
	}{{http.StatusOK, page}, {http.StatusNotImplemented, page}, {http.StatusUnauthorized, "<html><body>Router login</body></html>"}} {
		status := c.status
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(status)
			w.Write([]byte(c.page))
		}))
		_, err := New(srv.URL, "t").Search(context.Background(), "disk", SearchOptions{})
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), "not the JSON of the khub API") || strings.Contains(err.Error(), "<") {
			t.Errorf("status %d with HTML: err = %v, want one saying the response is not the API's", status, err)
		}
	}
}

// TestSyncerReadsWithoutRecording checks that the syncer's feed and stream
// reads pass record=false, so that only its own reports move the pull
// cursor.
func TestSyncerReadsWithoutRecording(t *testing.T) {
	var reads, recording atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/changes", "/v1/stream":
			reads.Add(1)
			if r.URL.Query().Get("record") != "false" {
				recording.Add(1)
			}
		}
		if r.URL.Path == "/v1/changes" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"changes":[],"next":0}`))
			return
		}
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	s := NewSyncer(New(srv.URL, "token"), SyncerOptions{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, FeedWait: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.After(10 * time.Second)
	for reads.Load() < 5 {
		select {
		case <-deadline:
			t.Fatalf("the syncer read the feed or stream %d times in 10s, want 5", reads.Load())
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	<-done
	if n := recording.Load(); n > 0 {
		t.Errorf("%d of %d feed and stream reads did not pass record=false", n, reads.Load())
	}
}

// TestChangesGiveUpOnSilentHub checks that a feed read fails once its wait
// and responseMargin have passed without a response, as on a connection that
// a network partition left open, instead of after the HTTP client's five
// minutes.
func TestChangesGiveUpOnSilentHub(t *testing.T) {
	defer func(d time.Duration) { responseMargin = d }(responseMargin)
	responseMargin = 100 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := New(srv.URL, "token").Changes(ctx, 0, 0, 100*time.Millisecond)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Changes on a silent hub: error %v, test context %v; want the call's own deadline", err, ctx.Err())
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Changes on a silent hub: %v, want a deadline error", err)
	}
}

// TestSyncerPageLimitCapped checks that a page limit above the hub's
// maximum of 1000 is capped, since the hub would reject every read.
func TestSyncerPageLimitCapped(t *testing.T) {
	s := NewSyncer(New("http://127.0.0.1:1", "token"), SyncerOptions{PageLimit: 2000})
	if s.opts.PageLimit != 1000 {
		t.Errorf("page limit %d, want 1000", s.opts.PageLimit)
	}
}

// TestDotIDsRejected checks that an id of "." or "..", which a path
// keeps as it is, fails with a message about the id, not a redirect.
func TestDotIDsRejected(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	c := New(srv.URL, "token")
	for _, id := range []string{".", ".."} {
		_, err := c.GetArticle(context.Background(), id)
		if err == nil || !strings.Contains(err.Error(), "is invalid") {
			t.Errorf("GetArticle(%q): %v, want an error about the id", id, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the hub got %d requests, want none", n)
	}
}
