package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
)

func TestArticleETagAndIfMatch(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	a := put(t, c, article("policy-passwords", "policy", "Password policy", "Use 14 characters."))
	if a.Version != 1 {
		t.Fatalf("first version = %d, want 1", a.Version)
	}

	// If-None-Match with the current ETag gives 304.
	req := rawRequest(t, c, http.MethodGet, "/v1/articles/policy-passwords", nil)
	req.Header.Set("If-None-Match", `"v1"`)
	resp := do(t, req)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET with current If-None-Match = %d, want 304", resp.StatusCode)
	}
	if got := resp.Header.Get("ETag"); got != `"v1"` {
		t.Errorf("ETag on 304 = %q, want \"v1\"", got)
	}

	a.Body = "Use 16 characters."
	a2, err := c.UpdateArticle(ctx, a, 1)
	if err != nil {
		t.Fatalf("update with current If-Match: %v", err)
	}
	if a2.Version != 2 {
		t.Errorf("version after update = %d, want 2", a2.Version)
	}

	// A stale If-Match gives 412 and changes nothing.
	a.Body = "Use 8 characters."
	_, err = c.UpdateArticle(ctx, a, 1)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("update with stale If-Match: err = %v, want 412", err)
	}
	if !strings.Contains(apiErr.Message, "version 2") {
		t.Errorf("412 message %q does not name the current version", apiErr.Message)
	}
	cur, err := c.GetArticle(ctx, "policy-passwords")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != 2 || cur.Body != "Use 16 characters." {
		t.Errorf("after stale write: version %d body %q, want version 2 unchanged", cur.Version, cur.Body)
	}

	// An old ETag no longer gives 304.
	req = rawRequest(t, c, http.MethodGet, "/v1/articles/policy-passwords", nil)
	req.Header.Set("If-None-Match", `"v1"`)
	if resp := do(t, req); resp.StatusCode != http.StatusOK {
		t.Errorf("GET with stale If-None-Match = %d, want 200", resp.StatusCode)
	}

	// Writing the same content again creates no version.
	_, outcome, err := c.PutArticle(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	if outcome != client.OutcomeUnchanged {
		t.Errorf("rewrite outcome = %q, want unchanged", outcome)
	}

	archived, err := c.ArchiveArticle(ctx, "policy-passwords")
	if err != nil {
		t.Fatal(err)
	}
	if archived.Status != "archived" || archived.Version != 3 {
		t.Errorf("archive: status %q version %d, want archived 3", archived.Status, archived.Version)
	}
	var versions client.VersionList
	getJSON(t, c, "/v1/articles/policy-passwords/versions", &versions)
	if len(versions.Versions) != 3 {
		t.Errorf("versions listed = %d, want 3", len(versions.Versions))
	}
}

func TestBadInputNamesTheField(t *testing.T) {
	_, c := startHub(t, func(cfg *app.Config) { cfg.AllowPrivate = false })
	cases := []struct {
		name      string
		method    string
		path      string
		body      string
		wantCode  int
		wantField string
	}{
		{"malformed json", "POST", "/v1/articles", `{"title": "x",`, 400, ""},
		{"unknown field", "POST", "/v1/articles", `{"title":"x","body":"","collection":"c","class":"policy","titel":"y"}`, 400, "titel"},
		{"wrong type", "POST", "/v1/articles", `{"title":"x","body":"","collection":"c","class":"policy","tags":"a"}`, 400, "tags"},
		{"missing title", "POST", "/v1/articles", `{"body":"b","collection":"c","class":"policy"}`, 400, "title"},
		{"bad status", "POST", "/v1/articles", `{"title":"t","body":"b","collection":"c","class":"policy","status":"draft"}`, 400, "status"},
		{"bad id in path", "PUT", "/v1/articles/has%20space", `{"title":"t","body":"b","collection":"c","class":"policy"}`, 400, "id"},
		{"id mismatch", "PUT", "/v1/articles/a1", `{"id":"a2","title":"t","body":"b","collection":"c","class":"policy"}`, 400, "id"},
		{"missing freshness", "POST", "/v1/integrations", `{"name":"x","scope":{"classes":["runbook"]},"lookups":true}`, 400, "freshness"},
		{"invalid duration", "POST", "/v1/integrations", `{"name":"x","freshness":"5 minutes","lookups":true}`, 400, "freshness"},
		{"negative duration", "POST", "/v1/integrations", `{"name":"x","freshness":"-5m","lookups":true}`, 400, "freshness"},
		{"unknown pattern", "POST", "/v1/integrations", `{"name":"x","freshness":"5m","pattern":"poll"}`, 400, "pattern"},
		{"risky pull", "POST", "/v1/integrations", `{"name":"x","freshness":"5m","pattern":"pull","poll_interval":"15m","scope":{"classes":["policy"]}}`, 400, "pattern"},
		{"push without webhook", "POST", "/v1/integrations", `{"name":"x","freshness":"1m","scope":{"classes":["safety"]}}`, 400, "webhook.url"},
		{"loopback webhook", "POST", "/v1/integrations", `{"name":"x","freshness":"1m","scope":{"classes":["safety"]},"webhook":{"url":"http://127.0.0.1:9/hook"}}`, 400, "webhook.url"},
		{"metadata webhook", "POST", "/v1/integrations", `{"name":"x","freshness":"1m","scope":{"classes":["safety"]},"webhook":{"url":"http://169.254.169.254/latest"}}`, 400, "webhook.url"},
		{"webhook with credentials", "POST", "/v1/integrations", `{"name":"x","freshness":"1m","scope":{"classes":["safety"]},"webhook":{"url":"https://u:p@example.com/h"}}`, 400, "webhook.url"},
		{"bad secret", "POST", "/v1/integrations", `{"name":"x","freshness":"1m","scope":{"classes":["safety"]},"webhook":{"url":"https://93.184.215.14/h","secret":"hunter2"}}`, 400, "webhook.secret"},
		{"bad search limit", "GET", "/v1/search?q=x&limit=5000", "", 400, "limit"},
		{"unknown search parameter", "GET", "/v1/search?q=x&clas=policy", "", 400, "clas"},
		{"bad wait", "GET", "/v1/changes?wait=forever", "", 400, "wait"},
		{"bad cursor", "GET", "/v1/changes?after=-1", "", 400, "after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := rawRequest(t, c, tc.method, tc.path, body)
			resp := do(t, req)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tc.wantCode, resp.body)
			}
			var eb client.ErrorBody
			if err := json.Unmarshal(resp.body, &eb); err != nil {
				t.Fatalf("error body is not JSON: %s", resp.body)
			}
			if eb.Error.Field != tc.wantField {
				t.Errorf("field = %q, want %q (message %q)", eb.Error.Field, tc.wantField, eb.Error.Message)
			}
			if eb.Error.Message == "" {
				t.Error("error message is empty")
			}
		})
	}

	t.Run("oversize body", func(t *testing.T) {
		big := bytes.Repeat([]byte("a"), 9<<20) // over the 8 MiB request limit
		payload := fmt.Sprintf(`{"title":"t","collection":"c","class":"policy","body":"%s"}`, big)
		resp := do(t, rawRequest(t, c, "POST", "/v1/articles", strings.NewReader(payload)))
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status = %d, want 413", resp.StatusCode)
		}
	})
	t.Run("nothing half-written", func(t *testing.T) {
		var res client.SearchResult
		getJSON(t, c, "/v1/search?q=", &res)
		if len(res.Hits) != 0 {
			t.Errorf("rejected writes left %d articles behind", len(res.Hits))
		}
		all, err := c.ListIntegrations(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 0 {
			t.Errorf("rejected creates left %d integrations behind", len(all))
		}
	})
	t.Run("no token", func(t *testing.T) {
		resp := do(t, mustRequest(t, http.MethodGet, c, "/v1/search?q=x", nil, ""))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", resp.StatusCode)
		}
		// RFC 9110 requires a challenge with every 401.
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
		}
		if e := errorOf(t, resp); e.Field != "Authorization" {
			t.Errorf("field = %q, want Authorization", e.Field)
		}
	})
	t.Run("healthz without token", func(t *testing.T) {
		resp := do(t, mustRequest(t, http.MethodGet, c, "/healthz", nil, ""))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status = %d, want 200", resp.StatusCode)
		}
	})
}

func TestAdminTokenFile(t *testing.T) {
	a, _ := startHub(t)
	info, err := os.Stat(a.TokenFile)
	if err != nil {
		t.Fatalf("admin token file: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("admin token file mode = %v, want 0600", info.Mode().Perm())
	}
	b, _ := os.ReadFile(a.TokenFile)
	if strings.TrimSpace(string(b)) != a.AdminToken() {
		t.Error("admin token file does not hold the token in use")
	}
	if filepath.Base(a.TokenFile) != "admin.token" {
		t.Errorf("token file name = %s, want admin.token", filepath.Base(a.TokenFile))
	}
}

type response struct {
	*http.Response
	body []byte
}

func rawRequest(t *testing.T, c *client.Client, method, path string, body io.Reader) *http.Request {
	t.Helper()
	return mustRequest(t, method, c, path, body, "admin")
}

func mustRequest(t *testing.T, method string, c *client.Client, path string, body io.Reader, who string) *http.Request {
	t.Helper()
	base := c.BaseURL()
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token())
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp, b}
}

func getJSON(t *testing.T, c *client.Client, path string, out any) {
	t.Helper()
	resp := do(t, rawRequest(t, c, http.MethodGet, path, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", path, resp.StatusCode, resp.body)
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

var _ = time.Second
