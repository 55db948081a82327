package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

// fastHeartbeat makes idle streams send a heartbeat every 50ms.
func fastHeartbeat(cfg *app.Config) { cfg.StreamHeartbeat = 50 * time.Millisecond }

// sseFrame is one block of a server-sent event stream, as sent.
type sseFrame struct {
	id, event, data string
	hasID           bool
	comment         string
}

// sseConn reads the raw frames of one GET /v1/stream response in the
// background, so that tests can wait for them with a deadline.
type sseConn struct {
	t      *testing.T
	resp   *http.Response
	frames chan sseFrame
	cancel context.CancelFunc
}

// openSSE starts GET path with the client's token and extra headers, and
// fails the test unless the response is a 200 event stream.
func openSSE(t *testing.T, c *client.Client, path string, header http.Header) *sseConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s = %d %s, want 200", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type = %q, want text/event-stream", ct)
	}
	s := &sseConn{t: t, resp: resp, frames: make(chan sseFrame, 1024), cancel: cancel}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *sseConn) read() {
	defer close(s.frames)
	sc := bufio.NewScanner(s.resp.Body)
	var f sseFrame
	blank := true
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if !blank {
				s.frames <- f
			}
			f, blank = sseFrame{}, true
			continue
		}
		blank = false
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			f.comment = value
		case "id":
			f.id, f.hasID = value, true
		case "event":
			f.event = value
		case "data":
			f.data = value
		default:
			s.t.Errorf("unexpected stream line %q", line)
		}
	}
}

func (s *sseConn) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next frame, skipping heartbeats when skipHeartbeats is
// set, or fails the test after 10s.
func (s *sseConn) next(skipHeartbeats bool) sseFrame {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				s.t.Fatal("the stream ended early")
			}
			if skipHeartbeats && f.comment != "" {
				continue
			}
			return f
		case <-deadline:
			s.t.Fatal("timed out waiting for a stream frame")
		}
	}
}

// change returns the next change event.
func (s *sseConn) change() client.Change {
	s.t.Helper()
	f := s.next(true)
	if f.event != "change" {
		s.t.Fatalf("frame %+v, want a change event", f)
	}
	var ch client.Change
	if err := json.Unmarshal([]byte(f.data), &ch); err != nil {
		s.t.Fatalf("decode change %q: %v", f.data, err)
	}
	if !f.hasID || f.id != strconv.FormatInt(ch.Cursor, 10) {
		s.t.Errorf("event id %q, want the cursor %d", f.id, ch.Cursor)
	}
	return ch
}

// quiet fails the test if a change event arrives within d.
func (s *sseConn) quiet(d time.Duration) {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return
			}
			if f.comment == "" {
				s.t.Errorf("unexpected frame %+v", f)
			}
		case <-deadline:
			return
		}
	}
}

func TestStreamSendsChangesInOrder(t *testing.T) {
	_, c := startHub(t)
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "Restart the queue", "Drain first."))

	s := openSSE(t, pc, "/v1/stream", nil)
	first := s.change()
	if first.ArticleID != "rb-1" || first.Version != 1 || first.Type != "created" || first.Cursor != 1 {
		t.Errorf("first change = %+v, want rb-1 version 1 created at cursor 1", first)
	}
	if f := s.next(false); f.comment != "heartbeat" {
		t.Errorf("after the backlog got %+v, want a heartbeat comment", f)
	}

	put(t, c, article("rb-2", "runbook", "Rotate the keys", "Rotate."))
	put(t, c, article("rb-1", "runbook", "Restart the queue", "Drain first, then restart."))
	put(t, c, article("rb-3", "runbook", "Renew certificates", "Renew."))
	var got []string
	last := first.Cursor
	for range 3 {
		ch := s.change()
		if ch.Cursor <= last {
			t.Errorf("cursor %d after %d, want increasing cursors", ch.Cursor, last)
		}
		last = ch.Cursor
		got = append(got, ch.ArticleID+"@"+strconv.FormatInt(ch.Version, 10)+"/"+ch.Type)
	}
	want := "rb-2@1/created rb-1@2/updated rb-3@1/created"
	if strings.Join(got, " ") != want {
		t.Errorf("changes = %v, want %s", got, want)
	}
}

func TestStreamResumesFromLastEventID(t *testing.T) {
	_, c := startHub(t)
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "1"))
	put(t, c, article("rb-2", "runbook", "Two", "2"))

	s := openSSE(t, pc, "/v1/stream", nil)
	s.change()
	second := s.change()
	s.close()

	// Written while the client is away.
	put(t, c, article("rb-3", "runbook", "Three", "3"))
	put(t, c, article("pol", "policy", "Policy", "p"))
	put(t, c, article("rb-4", "runbook", "Four", "4"))

	// A reconnecting EventSource repeats its first URL, so Last-Event-ID
	// must win over after.
	header := http.Header{"Last-Event-ID": {strconv.FormatInt(second.Cursor, 10)}}
	s = openSSE(t, pc, "/v1/stream?after=0", header)
	for _, want := range []string{"rb-3", "rb-4"} {
		if ch := s.change(); ch.ArticleID != want {
			t.Errorf("resumed stream sent %s, want %s", ch.ArticleID, want)
		}
	}
	s.quiet(200 * time.Millisecond)

	// The after parameter works the same without the header.
	s = openSSE(t, pc, "/v1/stream?after="+strconv.FormatInt(second.Cursor, 10), nil)
	if ch := s.change(); ch.ArticleID != "rb-3" {
		t.Errorf("stream after cursor %d sent %s first, want rb-3", second.Cursor, ch.ArticleID)
	}
	s.close()

	// EventSource polyfills append lastEventId to the first URL, which
	// wins over after as the header does. The header wins over both.
	s = openSSE(t, pc, "/v1/stream?after=0&lastEventId="+strconv.FormatInt(second.Cursor, 10), nil)
	if ch := s.change(); ch.ArticleID != "rb-3" {
		t.Errorf("stream with lastEventId %d sent %s first, want rb-3", second.Cursor, ch.ArticleID)
	}
	s.close()
	s = openSSE(t, pc, "/v1/stream?lastEventId=0", header)
	if ch := s.change(); ch.ArticleID != "rb-3" {
		t.Errorf("stream with Last-Event-ID %d and lastEventId 0 sent %s first, want rb-3", second.Cursor, ch.ArticleID)
	}
}

func TestStreamScopeIsolation(t *testing.T) {
	_, c := startHub(t)
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	other := createPull(t, c, "crm", client.Scope{Classes: []string{"reference"}})

	helpdesk := openSSE(t, pc, "/v1/stream", nil)
	crm := openSSE(t, other, "/v1/stream", nil)
	admin := openSSE(t, c, "/v1/stream", nil)

	put(t, c, article("pol", "policy", "Policy", "Only DBAs."))
	put(t, c, article("ref", "reference", "Acme notes", "Fleet tracking."))
	put(t, c, article("rb", "runbook", "Failover", "Promote the replica."))
	// Moving an article out of the scope is announced to the old scope,
	// whose readers then find the article gone.
	put(t, c, article("rb", "policy", "Failover", "Promote the replica."))

	for i, typ := range []string{"created", client.ChangeRemoved} {
		version := int64(i + 1)
		if ch := helpdesk.change(); ch.ArticleID != "rb" || ch.Version != version || ch.Type != typ {
			t.Errorf("helpdesk stream sent %s@%d %s, want rb@%d %s", ch.ArticleID, ch.Version, ch.Type, version, typ)
		}
	}
	helpdesk.quiet(200 * time.Millisecond)
	if _, err := pc.GetArticle(context.Background(), "rb"); !client.IsNotFound(err) {
		t.Errorf("helpdesk reads rb after it left the scope: err = %v, want not found", err)
	}
	// The feed reports the same types. The admin, whose scope rb never
	// left, receives the change's own type.
	page, err := pc.Changes(context.Background(), 0, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(page.Changes); n != 2 || page.Changes[1].Type != client.ChangeRemoved {
		t.Errorf("helpdesk feed = %+v, want rb created and removed", page.Changes)
	}
	if page, err = c.Changes(context.Background(), 0, 10, 0); err != nil || page.Changes[len(page.Changes)-1].Type != "updated" {
		t.Errorf("admin feed = %+v, %v, want the last change updated", page.Changes, err)
	}
	if ch := crm.change(); ch.ArticleID != "ref" {
		t.Errorf("crm stream sent %s, want only ref", ch.ArticleID)
	}
	crm.quiet(100 * time.Millisecond)
	var all []string
	for range 4 {
		all = append(all, admin.change().ArticleID)
	}
	if strings.Join(all, " ") != "pol ref rb rb" {
		t.Errorf("admin stream sent %v, want every change", all)
	}

	req := mustRequest(t, http.MethodGet, client.New(c.BaseURL(), "khub_pull_wrong"), "/v1/stream", nil, "token")
	if resp := do(t, req); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("stream with an unknown token = %d, want 401", resp.StatusCode)
	}
}

func TestStreamRejectsBadCursors(t *testing.T) {
	_, c := startHub(t)
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "1"))

	cases := []struct {
		path, lastEventID, field string
	}{
		{"/v1/stream?after=5", "", "after"},
		{"/v1/stream?after=-1", "", "after"},
		{"/v1/stream?after=x", "", "after"},
		{"/v1/stream?after=1&after=1", "", "after"},
		{"/v1/stream?since=1", "", "since"},
		{"/v1/stream", "7", "Last-Event-ID"},
		{"/v1/stream", "abc", "Last-Event-ID"},
		{"/v1/stream?lastEventId=abc", "", "lastEventId"},
		{"/v1/stream?lastEventId=7", "", "lastEventId"},
		{"/v1/stream?lastEventId=1&lastEventId=1", "", "lastEventId"},
		// Of several unknown parameters, the first in sorted order is named.
		{"/v1/stream?zz=1&since=1&b=2", "", "b"},
	}
	for _, tc := range cases {
		req := mustRequest(t, http.MethodGet, pc, tc.path, nil, "token")
		if tc.lastEventID != "" {
			req.Header.Set("Last-Event-ID", tc.lastEventID)
		}
		resp := do(t, req)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s Last-Event-ID %q = %d, want 400", tc.path, tc.lastEventID, resp.StatusCode)
			continue
		}
		if e := errorOf(t, resp); e.Field != tc.field {
			t.Errorf("%s Last-Event-ID %q: field %q, want %q (%s)", tc.path, tc.lastEventID, e.Field, tc.field, e.Message)
		}
	}
}

func TestStreamResyncRequiredAfterPruning(t *testing.T) {
	a, c := startHub(t)
	ctx := context.Background()
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "1"))
	put(t, c, article("rb-2", "runbook", "Two", "2"))
	put(t, c, article("rb-3", "runbook", "Three", "3"))
	if _, err := a.Store.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	oldest, err := a.Store.OldestCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}

	s := openSSE(t, pc, "/v1/stream?after=1", nil)
	f := s.next(true)
	if f.event != "resync-required" || f.hasID {
		t.Fatalf("first frame = %+v, want a resync-required event without an id", f)
	}
	var body struct {
		OldestCursor int64  `json:"oldest_cursor"`
		After        int64  `json:"after"`
		Message      string `json:"message"`
	}
	if err := json.Unmarshal([]byte(f.data), &body); err != nil {
		t.Fatal(err)
	}
	if body.OldestCursor != oldest || body.After != 1 || body.Message == "" {
		t.Errorf("resync-required data = %+v, want oldest_cursor %d after 1 and a message", body, oldest)
	}
	if ch := s.change(); ch.Cursor != oldest || ch.ArticleID != "rb-3" {
		t.Errorf("after the resync the stream sent %+v, want the kept change %d of rb-3", ch, oldest)
	}

	// The client iterator yields the resync and goes on.
	var got []string
	for ch, err := range pc.Stream(ctx, 0) {
		var rr *client.ResyncRequiredError
		switch {
		case errors.As(err, &rr):
			got = append(got, "resync@"+strconv.FormatInt(rr.Oldest, 10))
			continue
		case err != nil:
			t.Fatal(err)
		}
		got = append(got, ch.ArticleID)
		break
	}
	if want := "resync@" + strconv.FormatInt(oldest, 10) + " rb-3"; strings.Join(got, " ") != want {
		t.Errorf("Stream yielded %v, want %s", got, want)
	}
}

func TestStreamHeartbeat(t *testing.T) {
	_, c := startHub(t, fastHeartbeat)
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	s := openSSE(t, pc, "/v1/stream", nil)
	start := time.Now()
	for i := range 3 {
		if f := s.next(false); f.comment != "heartbeat" {
			t.Fatalf("frame %d on an idle stream = %+v, want a heartbeat", i, f)
		}
	}
	// The first comes at once, the next two after 50ms each.
	if elapsed := time.Since(start); elapsed < 90*time.Millisecond {
		t.Errorf("three heartbeats took %s, want about 100ms at a 50ms interval", elapsed)
	}
}

// TestStreamHeartbeatCoversOtherScopes checks that a heartbeat's id is
// the cursor up to which the stream has covered the log, changes outside
// the scope included, and that heartbeats after a resync-required event
// carry no id.
func TestStreamHeartbeatCoversOtherScopes(t *testing.T) {
	a, c := startHub(t, fastHeartbeat)
	ctx := context.Background()
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "1"))

	s := openSSE(t, pc, "/v1/stream", nil)
	if ch := s.change(); ch.ArticleID != "rb-1" {
		t.Fatalf("first change = %+v, want rb-1", ch)
	}
	put(t, c, article("pol-1", "policy", "Policy", "p"))
	put(t, c, article("pol-2", "policy", "Policy", "q"))
	head, err := a.Store.HeadCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.FormatInt(head, 10)
	deadline := time.Now().Add(5 * time.Second)
	for f := s.next(false); f.id != want; f = s.next(false) {
		if f.comment != "heartbeat" {
			t.Fatalf("frame %+v, want only heartbeats after out-of-scope changes", f)
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat id %q after 5s, want %s, the head", f.id, want)
		}
	}

	// After a resync-required event, a client that reconnects before a
	// change arrives must hear it again.
	if _, err := a.Store.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	r := openSSE(t, pc, "/v1/stream?after=1", nil)
	if f := r.next(false); f.event != "resync-required" {
		t.Fatalf("first frame = %+v, want resync-required", f)
	}
	for range 3 {
		if f := r.next(false); f.comment != "heartbeat" || f.hasID {
			t.Fatalf("frame after the resync = %+v, want a heartbeat without an id", f)
		}
	}
}

// createFeedReader creates a pull integration without lookups and returns
// it with a client that uses its token. Unlike createPullIntegration's,
// it turns stale as soon as a change in scope is unread, because an
// integration with lookups that has never read the feed is not stale.
func createFeedReader(t *testing.T, c *client.Client, name string, scope client.Scope) (client.Integration, *client.Client) {
	t.Helper()
	in, err := c.CreateIntegration(context.Background(), client.IntegrationRequest{Name: name, Freshness: "15m", Pattern: "pull", Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	return in, client.New(c.BaseURL(), in.Token)
}

func TestStreamRecordsPullCursor(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	in, pc := createFeedReader(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "1"))
	put(t, c, article("pol", "policy", "Policy", "p"))

	s := openSSE(t, pc, "/v1/stream", nil)
	s.change()
	eventually(t, "the stream to record the pull cursor", func() bool {
		got, err := c.GetIntegration(ctx, in.ID)
		return err == nil && got.PullCursor == 2 && got.Freshness.StalenessSeconds == 0
	})
}

// TestReadsWithoutRecording checks that record=false leaves the pull
// cursor to POST /v1/cursor, so that freshness counts what the tool
// reports as applied, not what the hub sent.
func TestReadsWithoutRecording(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	in, pc := createFeedReader(t, c, "syncer", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "1"))
	put(t, c, article("rb-2", "runbook", "Two", "2"))

	var page client.ChangesPage
	getJSON(t, pc, "/v1/changes?after=0&record=false", &page)
	if len(page.Changes) != 2 {
		t.Fatalf("feed read %d changes, want 2", len(page.Changes))
	}
	s := openSSE(t, pc, "/v1/stream?record=false", nil)
	s.change()
	s.change()
	// A stream that records hands its cursor over within a second.
	s.quiet(2 * time.Second)
	got, err := c.GetIntegration(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PullCursor != 0 || got.Freshness.StalenessSeconds == 0 {
		t.Errorf("after reads with record=false: pull cursor %d, staleness %.0fs; want 0 and stale", got.PullCursor, got.Freshness.StalenessSeconds)
	}

	if _, err := pc.ReportCursor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got, err = c.GetIntegration(ctx, in.ID); err != nil || got.PullCursor != 1 || got.Freshness.OldestPendingCursor != 2 {
		t.Errorf("after reporting cursor 1: %v, pull cursor %d, oldest pending %d; want 1 and 2", err, got.PullCursor, got.Freshness.OldestPendingCursor)
	}

	resp := do(t, mustRequest(t, http.MethodGet, pc, "/v1/changes?record=no", nil, "token"))
	if e := errorOf(t, resp); resp.StatusCode != http.StatusBadRequest || e.Field != "record" {
		t.Errorf("record=no: status %d field %q, want 400 naming record", resp.StatusCode, e.Field)
	}
}

// TestFeedHeadRecordsNothing checks that HEAD of the change feed, which
// a monitoring probe may send, neither moves the pull cursor nor waits.
func TestFeedHeadRecordsNothing(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	in, pc := createFeedReader(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "1"))

	resp := do(t, mustRequest(t, http.MethodHead, pc, "/v1/changes?after=0", nil, "token"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD /v1/changes = %d, want 200", resp.StatusCode)
	}
	got, err := c.GetIntegration(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PullCursor != 0 {
		t.Errorf("after HEAD /v1/changes the pull cursor is %d, want 0", got.PullCursor)
	}

	// Nothing in this scope is new, so a GET with this wait would hold
	// the request for 20 seconds.
	_, idle := createFeedReader(t, c, "idle", client.Scope{Classes: []string{"safety"}})
	start := time.Now()
	resp = do(t, mustRequest(t, http.MethodHead, idle, "/v1/changes?after=1&wait=20s", nil, "token"))
	resp.Body.Close()
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("HEAD /v1/changes with wait=20s and nothing in scope took %s: it waited", elapsed)
	}
}

func TestCursorReport(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	in, pc := createFeedReader(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "1"))
	put(t, c, article("rb-2", "runbook", "Two", "2"))

	got, err := c.GetIntegration(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Freshness.StalenessSeconds == 0 {
		t.Fatal("a pull tool that has read nothing has zero staleness; the test needs it stale")
	}

	_, err = pc.ReportCursor(ctx, 3)
	wantAPIError(t, "cursor beyond the head", err, http.StatusBadRequest, "cursor")
	_, err = c.ReportCursor(ctx, 1)
	wantAPIError(t, "report with the admin token", err, http.StatusForbidden, "")
	for _, body := range []string{`{}`, `{"cursor": -1}`, `{"cursor": "2"}`} {
		req := mustRequest(t, http.MethodPost, pc, "/v1/cursor", strings.NewReader(body), "token")
		resp := do(t, req)
		if e := errorOf(t, resp); resp.StatusCode != http.StatusBadRequest || e.Field != "cursor" {
			t.Errorf("POST /v1/cursor %s = %d field %q, want 400 naming cursor", body, resp.StatusCode, e.Field)
		}
	}

	state, err := pc.ReportCursor(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if state.Cursor != 1 || state.Head != 2 || state.Oldest != 1 {
		t.Errorf("report of cursor 1 = %+v, want cursor 1, head 2, oldest 1", state)
	}
	got, err = c.GetIntegration(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PullCursor != 1 || got.Freshness.OldestPendingCursor != 2 {
		t.Errorf("after reporting cursor 1: pull cursor %d, oldest pending %d; want 1 and 2", got.PullCursor, got.Freshness.OldestPendingCursor)
	}

	if _, err := pc.ReportCursor(ctx, 2); err != nil {
		t.Fatal(err)
	}
	// An older report does not move the cursor back.
	state, err = pc.ReportCursor(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if state.Cursor != 2 {
		t.Errorf("cursor after reporting 2 then 1 = %d, want 2", state.Cursor)
	}
	got, err = c.GetIntegration(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Freshness.StalenessSeconds != 0 || !got.Freshness.WithinWindow {
		t.Errorf("freshness after reporting the head = %+v, want zero staleness", got.Freshness)
	}
	if state, err := pc.Cursor(ctx); err != nil || state.Cursor != 2 || state.Head != 2 {
		t.Errorf("GET /v1/cursor = %+v, %v; want cursor 2 and head 2", state, err)
	}
}

// startForShutdown starts a hub that the test shuts down itself.
func startForShutdown(t *testing.T) (*app.App, *client.Client) {
	t.Helper()
	a, err := app.Open(app.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a, client.New(a.URL(), a.AdminToken())
}

func TestStreamEndsOnShutdown(t *testing.T) {
	a, c := startForShutdown(t)
	s := openSSE(t, c, "/v1/stream", nil)
	s.next(false)

	start := time.Now()
	if err := a.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown with an open stream: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("shutdown with an open stream took %s, want it to end the stream at once", elapsed)
	}
	for range s.frames {
	}
}

// TestLongPollEndsOnShutdown checks that a long poll of the change feed
// returns an empty page when the hub shuts down, instead of delaying the
// shutdown for its wait.
func TestLongPollEndsOnShutdown(t *testing.T) {
	a, c := startForShutdown(t)
	type result struct {
		status int
		page   client.ChangesPage
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(mustRequest(t, http.MethodGet, c, "/v1/changes?after=0&wait=50s", nil, "token"))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var r result
		r.status = resp.StatusCode
		r.err = json.NewDecoder(resp.Body).Decode(&r.page)
		done <- r
	}()
	// Nothing commits, so the poll waits once it reaches the hub, which
	// takes well under this pause.
	time.Sleep(500 * time.Millisecond)

	start := time.Now()
	if err := a.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown with a long poll in flight: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("shutdown with a long poll in flight took %s, want it to end the poll at once", elapsed)
	}
	r := <-done
	if r.err != nil || r.status != http.StatusOK || len(r.page.Changes) != 0 {
		t.Errorf("long poll at shutdown: status %d, %d changes, error %v; want 200 with an empty page", r.status, len(r.page.Changes), r.err)
	}
}

func TestStreamEndsWhenIntegrationDeleted(t *testing.T) {
	// A stream that leaves the pull cursor alone ends too.
	for _, path := range []string{"/v1/stream", "/v1/stream?record=false"} {
		t.Run(path, func(t *testing.T) {
			_, c := startHub(t)
			ctx := context.Background()
			in, pc := createFeedReader(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
			s := openSSE(t, pc, path, nil)
			s.next(false)
			if err := c.DeleteIntegration(ctx, in.ID); err != nil {
				t.Fatal(err)
			}
			put(t, c, article("rb-1", "runbook", "One", "1"))
			deadline := time.After(10 * time.Second)
			for {
				select {
				case _, ok := <-s.frames:
					if !ok {
						return
					}
				case <-deadline:
					t.Fatal("the stream of a deleted integration stayed open")
				}
			}
		})
	}
}

// syncerOptions are fast settings for tests.
func syncerOptions() client.SyncerOptions {
	return client.SyncerOptions{
		MinBackoff:        20 * time.Millisecond,
		MaxBackoff:        200 * time.Millisecond,
		FeedWait:          time.Second,
		StreamIdleTimeout: 2 * time.Second,
		ReportInterval:    20 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	}
}

// runSyncer starts a syncer and waits for its first load. It stops the
// syncer when the test ends and fails the test if Run fails otherwise.
func runSyncer(t *testing.T, c *client.Client, opts client.SyncerOptions) *client.Syncer {
	t.Helper()
	s := client.NewSyncer(c, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("syncer Run = %v, want context.Canceled", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("syncer stopped before its first load: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("syncer did not finish its first load")
	}
	return s
}

// waitConverged waits until the syncer's copy holds exactly want, by id and
// body.
func waitConverged(t *testing.T, s *client.Syncer, want map[string]string) {
	t.Helper()
	eventually(t, "the syncer to hold "+strconv.Itoa(len(want))+" articles", func() bool {
		if s.Len() != len(want) {
			return false
		}
		for id, body := range want {
			a, ok := s.Get(id)
			if !ok || a.Body != body {
				return false
			}
		}
		return true
	})
}

func TestSyncerConverges(t *testing.T) {
	_, c := startHub(t, fastHeartbeat)
	ctx := context.Background()
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "first"))
	put(t, c, article("rb-2", "runbook", "Two", "second"))
	put(t, c, article("pol", "policy", "Policy", "out of scope"))
	if _, err := c.ArchiveArticle(ctx, "rb-2"); err != nil {
		t.Fatal(err)
	}

	s := runSyncer(t, pc, syncerOptions())
	if s.Len() != 1 {
		t.Errorf("after the first load the syncer holds %d articles, want 1 (rb-2 is archived, pol out of scope)", s.Len())
	}
	waitConverged(t, s, map[string]string{"rb-1": "first"})

	put(t, c, article("rb-3", "runbook", "Three", "third"))
	put(t, c, article("rb-1", "runbook", "One", "first, edited"))
	put(t, c, article("pol", "policy", "Policy", "still out of scope"))
	waitConverged(t, s, map[string]string{"rb-1": "first, edited", "rb-3": "third"})
	if a, _ := s.Get("rb-1"); a.Version != 2 {
		t.Errorf("rb-1 version = %d, want 2", a.Version)
	}

	if _, err := c.ArchiveArticle(ctx, "rb-3"); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, s, map[string]string{"rb-1": "first, edited"})
	eventually(t, "the syncer's cursor to reach the head", func() bool { return s.Cursor() == 8 })
	eventually(t, "a heartbeat to confirm the syncer is current", func() bool { return s.Staleness() < time.Second })
	if st := s.Stats(); st.StreamConnects != 1 || st.StreamDrops != 0 {
		t.Errorf("stats = %+v, want one stream and no drop", st)
	}
}

// TestSyncerDropsArticleThatLeavesScope moves articles out of a syncer's
// scope, once while it follows the stream and once while it reads the
// change feed, and checks that its copy drops them.
func TestSyncerDropsArticleThatLeavesScope(t *testing.T) {
	_, c := startHub(t, fastHeartbeat)
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	g := newGate(t, c.BaseURL())
	put(t, c, article("rb-1", "runbook", "One", "1"))
	put(t, c, article("rb-2", "runbook", "Two", "2"))

	s := runSyncer(t, client.New(g.srv.URL, pc.Token()), syncerOptions())
	waitConverged(t, s, map[string]string{"rb-1": "1", "rb-2": "2"})
	eventually(t, "the stream to connect", func() bool { return s.Stats().StreamConnects == 1 })
	put(t, c, article("rb-1", "policy", "One", "1, now a policy"))
	waitConverged(t, s, map[string]string{"rb-2": "2"})

	g.set(true, false)
	put(t, c, article("rb-2", "policy", "Two", "2, now a policy"))
	waitConverged(t, s, map[string]string{})
	if st := s.Stats(); st.StreamDrops == 0 {
		t.Errorf("stats = %+v, want the stream dropped, so the feed announced the move", st)
	}
}

func TestSyncerReportsCursorForFreshness(t *testing.T) {
	a, c := startHub(t, fastHeartbeat)
	ctx := context.Background()
	in, pc := createFeedReader(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "1"))
	s := runSyncer(t, pc, syncerOptions())
	put(t, c, article("rb-2", "runbook", "Two", "2"))
	waitConverged(t, s, map[string]string{"rb-1": "1", "rb-2": "2"})

	eventually(t, "the integration's staleness to reach zero", func() bool {
		got, err := c.GetIntegration(ctx, in.ID)
		return err == nil && got.PullCursor == s.Cursor() && got.Freshness.StalenessSeconds == 0
	})
	eventually(t, "the syncer to report its cursor", func() bool { return s.Stats().Reports > 0 })
	if n := cursorReports(t, a); n == 0 {
		t.Error("the hub counted no POST /v1/cursor request")
	}
}

// cursorReports returns the number of completed POST /v1/cursor requests
// from the hub's metrics.
func cursorReports(t *testing.T, a *app.App) int {
	t.Helper()
	families, err := a.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		if f.GetName() != "khub_http_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == "POST /v1/cursor" {
					n += int(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return n
}

// gate is a reverse proxy in front of a hub that can cut and refuse
// streams, or refuse every request as if the hub were down.
type gate struct {
	proxy *httputil.ReverseProxy
	srv   *httptest.Server

	mu        sync.Mutex
	streams   map[*http.Request]context.CancelFunc
	noStreams bool
	down      bool
}

func newGate(t *testing.T, hubURL string) *gate {
	t.Helper()
	target, err := url.Parse(hubURL)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{proxy: httputil.NewSingleHostReverseProxy(target), streams: map[*http.Request]context.CancelFunc{}}
	g.proxy.FlushInterval = -1
	g.proxy.ErrorLog = log.New(io.Discard, "", 0)
	g.srv = httptest.NewServer(g)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	if g.down || (g.noStreams && r.URL.Path == "/v1/stream") {
		g.mu.Unlock()
		http.Error(w, "the gate is closed", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path == "/v1/stream" {
		ctx, cancel := context.WithCancel(r.Context())
		r = r.WithContext(ctx)
		g.streams[r] = cancel
		defer func() {
			g.mu.Lock()
			delete(g.streams, r)
			g.mu.Unlock()
			cancel()
		}()
	}
	g.mu.Unlock()
	g.proxy.ServeHTTP(w, r)
}

// set cuts the open streams and refuses new ones while noStreams is set,
// and refuses every request while down is set.
func (g *gate) set(noStreams, down bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.noStreams, g.down = noStreams, down
	if noStreams || down {
		for _, cancel := range g.streams {
			cancel()
		}
	}
}

func TestSyncerFallsBackToFeed(t *testing.T) {
	_, c := startHub(t, fastHeartbeat)
	ctx := context.Background()
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	g := newGate(t, c.BaseURL())
	put(t, c, article("rb-1", "runbook", "One", "1"))

	s := runSyncer(t, client.New(g.srv.URL, pc.Token()), syncerOptions())
	eventually(t, "the stream to connect", func() bool { return s.Stats().StreamConnects == 1 })
	pagesBefore := s.Stats().FeedPages

	g.set(true, false)
	put(t, c, article("rb-2", "runbook", "Two", "2"))
	put(t, c, article("rb-1", "runbook", "One", "1, edited"))
	if _, err := c.ArchiveArticle(ctx, "rb-2"); err != nil {
		t.Fatal(err)
	}
	put(t, c, article("rb-3", "runbook", "Three", "3"))
	waitConverged(t, s, map[string]string{"rb-1": "1, edited", "rb-3": "3"})
	st := s.Stats()
	if st.StreamDrops == 0 || st.FeedPages <= pagesBefore {
		t.Errorf("stats while streams are refused = %+v, want drops and feed pages beyond the %d of the first load", st, pagesBefore)
	}
	if st.StreamConnects != 1 {
		t.Errorf("stream connects while streams are refused = %d, want 1", st.StreamConnects)
	}

	g.set(false, false)
	eventually(t, "the stream to reconnect", func() bool { return s.Stats().StreamConnects >= 2 })
	put(t, c, article("rb-4", "runbook", "Four", "4"))
	waitConverged(t, s, map[string]string{"rb-1": "1, edited", "rb-3": "3", "rb-4": "4"})
}

func TestSyncerSurvivesHubRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := app.Config{DataDir: dir, Addr: "127.0.0.1:0", StreamHeartbeat: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	start := func() *app.App {
		t.Helper()
		a, err := app.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := start()
	// The restarted hub must listen on the same port.
	cfg.Addr = strings.TrimPrefix(a.URL(), "http://")
	defer func() { a.Shutdown(context.Background()) }()
	c := client.New(a.URL(), a.AdminToken())
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "1"))

	s := runSyncer(t, pc, syncerOptions())
	waitConverged(t, s, map[string]string{"rb-1": "1"})
	eventually(t, "the stream to connect", func() bool { return s.Stats().StreamConnects == 1 })

	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the syncer to see the stream drop", func() bool { return s.Stats().StreamDrops > 0 })
	a = start()
	put(t, c, article("rb-2", "runbook", "Two", "2"))
	put(t, c, article("rb-1", "runbook", "One", "1, edited"))
	waitConverged(t, s, map[string]string{"rb-1": "1, edited", "rb-2": "2"})
	eventually(t, "the stream to reconnect", func() bool { return s.Stats().StreamConnects >= 2 })
}

func TestSyncerResyncsAfterPruning(t *testing.T) {
	a, c := startHub(t, fastHeartbeat)
	ctx := context.Background()
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	g := newGate(t, c.BaseURL())
	put(t, c, article("rb-1", "runbook", "One", "1"))
	put(t, c, article("rb-2", "runbook", "Two", "2"))

	s := runSyncer(t, client.New(g.srv.URL, pc.Token()), syncerOptions())
	waitConverged(t, s, map[string]string{"rb-1": "1", "rb-2": "2"})

	// While the syncer cannot reach the hub, changes commit and retention
	// removes them from the log.
	g.set(false, true)
	put(t, c, article("rb-1", "runbook", "One", "1, edited"))
	if _, err := c.ArchiveArticle(ctx, "rb-2"); err != nil {
		t.Fatal(err)
	}
	put(t, c, article("rb-3", "runbook", "Three", "3"))
	put(t, c, article("rb-4", "runbook", "Four", "4"))
	if _, err := a.Store.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	g.set(false, false)

	waitConverged(t, s, map[string]string{"rb-1": "1, edited", "rb-3": "3", "rb-4": "4"})
	if st := s.Stats(); st.Resyncs == 0 {
		t.Errorf("stats = %+v, want a resync", st)
	}
	put(t, c, article("rb-5", "runbook", "Five", "5"))
	waitConverged(t, s, map[string]string{"rb-1": "1, edited", "rb-3": "3", "rb-4": "4", "rb-5": "5"})
}

// syncerBehindGate starts a hub with the first article, a pull
// integration for runbooks and a syncer that reaches the hub through a
// gate, and waits until the syncer holds the article. It returns the hub,
// an admin client, the gate and the syncer.
func syncerBehindGate(t *testing.T, first client.Article) (*app.App, *client.Client, *gate, *client.Syncer) {
	t.Helper()
	a, c := startHub(t, fastHeartbeat)
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	g := newGate(t, c.BaseURL())
	put(t, c, first)
	s := runSyncer(t, client.New(g.srv.URL, pc.Token()), syncerOptions())
	waitConverged(t, s, map[string]string{first.ID: first.Body})
	return a, c, g, s
}

// TestSyncerSkipsOtherScopes lets retention remove changes that are all
// outside the syncer's scope while it is disconnected: the stream's
// heartbeats moved its cursor past them, so it reconnects without a
// reload.
func TestSyncerSkipsOtherScopes(t *testing.T) {
	a, c, g, s := syncerBehindGate(t, article("rb-1", "runbook", "One", "1"))
	ctx := context.Background()

	for i := range 3 {
		put(t, c, article(fmt.Sprintf("pol-%d", i), "policy", "Policy", "p"))
	}
	head, err := a.Store.HeadCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the syncer's cursor to pass the other scopes' changes", func() bool { return s.Cursor() >= head })

	g.set(false, true)
	if _, err := a.Store.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	g.set(false, false)
	put(t, c, article("rb-2", "runbook", "Two", "2"))
	waitConverged(t, s, map[string]string{"rb-1": "1", "rb-2": "2"})
	if st := s.Stats(); st.Resyncs != 0 {
		t.Errorf("stats = %+v, want no resync", st)
	}
}

func TestFeedIteratorLongPolls(t *testing.T) {
	a, c := startHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("rb-1", "runbook", "One", "1"))
	put(t, c, article("pol", "policy", "Policy", "p"))

	var got []string
	// The feed can yield rb-2 before its PUT has returned, so the test
	// waits for the writer before it ends and cancels ctx.
	var writer sync.WaitGroup
	for ch, err := range pc.Feed(ctx, 0, 1) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch.ArticleID)
		if len(got) == 1 {
			// The feed has been read to the end, so the next change
			// arrives by long poll.
			writer.Go(func() {
				time.Sleep(100 * time.Millisecond)
				if _, _, err := c.PutArticle(ctx, article("rb-2", "runbook", "Two", "2")); err != nil {
					t.Errorf("put rb-2: %v", err)
				}
			})
			continue
		}
		break
	}
	writer.Wait()
	if strings.Join(got, " ") != "rb-1 rb-2" {
		t.Errorf("Feed yielded %v, want rb-1 rb-2", got)
	}

	if _, err := a.Store.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got = nil
	for ch, err := range pc.Feed(ctx, 0, 10) {
		var rr *client.ResyncRequiredError
		if errors.As(err, &rr) {
			got = append(got, "resync@"+strconv.FormatInt(rr.Oldest, 10))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch.ArticleID)
		break
	}
	if strings.Join(got, " ") != "resync@3 rb-2" {
		t.Errorf("Feed after pruning yielded %v, want resync@3 rb-2", got)
	}
}

func TestStreamWakesForOtherNode(t *testing.T) {
	shared := sharedPostgres(t)
	_, nodeA := startHub(t, shared)
	_, nodeB := startHub(t, shared)
	pc := createPull(t, nodeB, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	onA := client.New(nodeA.BaseURL(), pc.Token())

	s := openSSE(t, onA, "/v1/stream", nil)
	s.next(false)
	put(t, nodeB, article("pol", "policy", "Policy", "p"))
	put(t, nodeB, article("rb-1", "runbook", "Restart the queue", "Drain first."))
	put(t, nodeB, article("rb-2", "runbook", "Rotate the keys", "Rotate."))
	for _, want := range []string{"rb-1", "rb-2"} {
		if ch := s.change(); ch.ArticleID != want {
			t.Errorf("stream on node A sent %s, want %s written through node B", ch.ArticleID, want)
		}
	}
}

// TestSyncerReloadsPastSearchDepth prunes the log while more articles
// than a search with a query pages through are missing from the copy:
// the reload lists them all.
func TestSyncerReloadsPastSearchDepth(t *testing.T) {
	a, _, g, s := syncerBehindGate(t, article("rb-0", "runbook", "Zero", "0"))
	ctx := context.Background()

	// The store takes the writes directly, as an import does, since a
	// thousand requests would slow the test more than they exercise.
	g.set(false, true)
	want := map[string]string{"rb-0": "0"}
	for i := range fulltext.MaxDepth + 20 {
		id := fmt.Sprintf("rb-%04d", i+1)
		art := knowledge.Article{ID: id, Title: "Runbook " + id, Body: id, Collection: "handbook", Class: knowledge.ClassRunbook}
		if _, err := a.Store.SaveArticle(ctx, art, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		want[id] = id
	}
	if _, err := a.Store.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	g.set(false, false)

	waitConverged(t, s, want)
	if st := s.Stats(); st.Resyncs == 0 {
		t.Errorf("stats = %+v, want a resync", st)
	}
}
