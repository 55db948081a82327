package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawStream serves body as the event stream of GET /v1/stream, then holds
// the connection open until hold is closed.
func rawStream(t *testing.T, body string, hold chan struct{}) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, body)
		w.(http.Flusher).Flush()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL, "token")
}

func readEvents(t *testing.T, r *streamReader, n int) []streamEvent {
	t.Helper()
	var out []streamEvent
	for range n {
		ev, err := r.next()
		if err != nil {
			t.Fatalf("event %d: %v", len(out), err)
		}
		out = append(out, ev)
	}
	return out
}

func TestStreamParsesFraming(t *testing.T) {
	long := strings.Repeat("x", 10000)
	body := ": heartbeat\n\n" +
		"id: 7\r\nevent: change\r\ndata: {\"cursor\":7}\r\n\r\n" +
		"data: line one\ndata: line two\n\n" +
		"id: 9\nevent: change\nretry: 100\nunknown: field\ndata:" + long + "\n\n" +
		"event: ignored without data\n\n" +
		"id: a\x00b\nevent: change\ndata:{}\n\n"
	c := rawStream(t, body, nil)
	r, err := c.openStream(context.Background(), 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	evs := readEvents(t, r, 5)

	if !evs[0].heartbeat {
		t.Errorf("event 0 = %+v, want a heartbeat", evs[0])
	}
	if evs[1].name != "change" || evs[1].id != "7" || string(evs[1].data) != `{"cursor":7}` {
		t.Errorf("CRLF event = %+v, want change 7", evs[1])
	}
	if evs[2].name != "message" || string(evs[2].data) != "line one\nline two" {
		t.Errorf("multi-line event = %+v, want a message with two lines", evs[2])
	}
	if evs[3].id != "9" || string(evs[3].data) != long {
		t.Errorf("long event has id %q and %d bytes of data, want id 9 and %d", evs[3].id, len(evs[3].data), len(long))
	}
	if evs[4].id != "" || string(evs[4].data) != "{}" {
		t.Errorf("event with a NUL in its id = %+v, want the id ignored", evs[4])
	}
	if _, err := r.next(); !errors.Is(err, ErrStreamClosed) {
		t.Errorf("after the last event: %v, want ErrStreamClosed", err)
	}
}

func TestStreamRejectsLongLine(t *testing.T) {
	c := rawStream(t, "data: "+strings.Repeat("x", maxStreamLine+1)+"\n\n", nil)
	r, err := c.openStream(context.Background(), 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if _, err := r.next(); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("line over the limit: %v, want an error about its length", err)
	}
}

func TestStreamIdleTimeout(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	c := rawStream(t, ": heartbeat\n\n", hold)
	r, err := c.openStream(context.Background(), 0, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	readEvents(t, r, 1)
	start := time.Now()
	_, err = r.next()
	if !errors.Is(err, errStreamIdle) {
		t.Errorf("silent stream: %v, want the idle timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("the idle timeout of 100ms took %s", elapsed)
	}
}

func TestStreamRejectsOtherContentType(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>")
	}))
	defer srv.Close()
	for _, err := range New(srv.URL, "token").Stream(context.Background(), 0) {
		if err == nil || !strings.Contains(err.Error(), "text/event-stream") {
			t.Errorf("HTML answer: %v, want an error naming text/event-stream", err)
		}
	}
}

func TestStreamYieldsServerErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":"invalid_request","field":"after","message":"after 9 is beyond the newest change"}}`)
	}))
	defer srv.Close()
	n := 0
	for _, err := range New(srv.URL, "token").Stream(context.Background(), 9) {
		n++
		var e *Error
		if !errors.As(err, &e) || e.StatusCode != http.StatusBadRequest || e.Field != "after" {
			t.Errorf("400 answer: %v, want an *Error with field after", err)
		}
	}
	if n != 1 {
		t.Errorf("the iterator yielded %d times, want once", n)
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	for i, ceiling := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		ceiling *= time.Millisecond
		d := b.next()
		if d < ceiling/2 || d > ceiling {
			t.Errorf("wait %d = %s, want from %s to %s", i, d, ceiling/2, ceiling)
		}
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Errorf("wait after reset = %s, want at most 100ms", d)
	}
}

// TestStreamEndGivesResumeCursor checks that the error that ends a Stream
// carries the cursor to resume from: the last change, or a later
// heartbeat's id, which covers the changes of other scopes.
func TestStreamEndGivesResumeCursor(t *testing.T) {
	cases := []struct {
		name, body string
		want       int64
	}{
		{"heartbeat after the change", "id: 5\nevent: change\ndata: {\"cursor\":5}\n\n: heartbeat\nid: 9\n\n", 9},
		{"change last", ": heartbeat\nid: 3\n\nid: 5\nevent: change\ndata: {\"cursor\":5}\n\n", 5},
		{"heartbeat without id", "id: 5\nevent: change\ndata: {\"cursor\":5}\n\n: heartbeat\n\n", 5},
		{"after a resync", "event: resync-required\ndata: {\"after\":2,\"oldest_cursor\":40}\n\n", 39},
		{"nothing sent", "", 2},
	}
	for _, tc := range cases {
		var last error
		for _, err := range rawStream(t, tc.body, nil).Stream(context.Background(), 2) {
			last = err
		}
		var end *StreamEndError
		if !errors.As(last, &end) {
			t.Errorf("%s: the stream ended with %v, want a *StreamEndError", tc.name, last)
			continue
		}
		if end.Resume != tc.want {
			t.Errorf("%s: resume cursor %d, want %d", tc.name, end.Resume, tc.want)
		}
		if !errors.Is(last, ErrStreamClosed) {
			t.Errorf("%s: %v, want it to wrap ErrStreamClosed", tc.name, last)
		}
	}
}
