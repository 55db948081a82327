package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/hub"
	"github.com/khub-dev/khub/internal/knowledge"
)

// TestDashboardHeaders checks the headers of the dashboard's responses
// without a browser: a strict Content-Security-Policy, nosniff, and no
// caching of the page, whose URL may carry the token.
func TestDashboardHeaders(t *testing.T) {
	a, _ := startHub(t)
	for _, tc := range []struct{ path, contentType string }{
		{"/", "text/html"},
		{"/dashboard/app.js", "javascript"},
		{"/dashboard/app.css", "text/css"},
	} {
		resp, err := http.Get(a.URL() + tc.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, want 200", tc.path, resp.StatusCode)
		}
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: Content-Security-Policy %q is not strict", tc.path, csp)
		}
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", tc.path, got)
		}
		if got := h.Get("Content-Type"); !strings.Contains(got, tc.contentType) {
			t.Errorf("GET %s: Content-Type %q, want %s", tc.path, got, tc.contentType)
		}
	}
	resp, err := http.Get(a.URL() + "/?token=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("GET /: Cache-Control %q, want no-store", got)
	}
	resp, err = http.Get(a.URL() + "/dashboard/missing.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET a missing dashboard file: status %d, want 404", resp.StatusCode)
	}
}

// chromiumPath finds Debian's chromium. Without it the browser test skips
// on a developer's machine and fails in CI, where .ci/run installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: .ci/run installs Debian's chromium package, so the browser test must run in CI")
	}
	t.Skip("chromium is not installed: install Debian's chromium package (apt-get install chromium) to run the dashboard browser test")
	return ""
}

// statusServer is a webhook receiver on loopback that responds to every
// request with the status in code.
func statusServer(t *testing.T, code *atomic.Int32) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(code.Load()))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook"
}

// TestDashboardBrowser loads the dashboard in headless Chromium against a
// hub with 500 integrations, driving the page through the DevTools
// protocol: sign-in by /?token=, the first page of the table sorted by
// staleness, a selected integration's chart and failed deliveries, Resume,
// recent changes and search. It saves a screenshot of the page.
func TestDashboardBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	began := time.Now()
	a, c := startHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Knowledge in three collections, so that scopes differ in staleness.
	articles := []client.Article{
		{ID: "remote-work", Title: "Remote work policy", Collection: "handbook", Class: "policy", Body: "Staff may work remotely three days a week."},
		{ID: "ppe", Title: "Protective equipment", Collection: "handbook", Class: "policy", Body: "Wear goggles in the lab."},
		{ID: "db-failover", Title: "Database failover", Collection: "runbooks", Class: "runbook", Body: "Promote the replica, then repoint the service."},
		{ID: "cache-flush", Title: "Flushing the cache", Collection: "runbooks", Class: "runbook", Body: "Flush one region at a time."},
		{ID: "glossary", Title: "Glossary", Collection: "reference", Class: "reference", Body: "A cursor is a position in the change log."},
		{ID: "regions", Title: "Regions", Collection: "reference", Class: "reference", Body: "We run in three regions."},
	}
	for _, art := range articles {
		if _, _, err := c.PutArticle(ctx, art); err != nil {
			t.Fatalf("put article %s: %v", art.ID, err)
		}
	}
	seededHead := int64(len(articles))

	// Four push integrations: one whose tool is healthy, and three whose
	// tools fail in different ways.
	var okCode, goneCode, brokenCode atomic.Int32
	okCode.Store(http.StatusNoContent)
	goneCode.Store(http.StatusGone)
	brokenCode.Store(http.StatusInternalServerError)
	createPush := func(name, hook string, d client.DeliverySettings) client.Integration {
		in, err := c.CreateIntegration(ctx, client.IntegrationRequest{
			Name: name, Freshness: "1m", Pattern: "push",
			Scope:    client.Scope{Classes: []string{"policy"}},
			Webhook:  &client.Webhook{URL: hook},
			Delivery: &d,
		})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return in
	}
	createPush("push-healthy", statusServer(t, &okCode), client.DeliverySettings{})
	pushGone := createPush("push-gone", statusServer(t, &goneCode), client.DeliverySettings{})
	pushPaused := createPush("push-paused", statusServer(t, &brokenCode), client.DeliverySettings{PauseAfter: 2, ProbeEvery: "1h"})
	pushBroken := createPush("push-broken", statusServer(t, &brokenCode), client.DeliverySettings{
		InitialBackoff: "100ms", MaxBackoff: "200ms", RetryFor: "1s", PauseAfter: 1000,
	})

	// The rest are pull integrations: some created through the API by
	// eight workers at once, the others stored directly. POST
	// /v1/integrations checks that the name is free by listing every
	// integration, so creating all 500 through it reads a quadratic number
	// of rows, which took 30 to 60 s under the race detector on 2 cores.
	const total, viaAPI = 500, 50
	windows := []string{"2s", "5m", "15m", "1h", "24h"}
	scopes := [][]string{{"runbook"}, {"reference"}, {"runbook", "reference"}}
	jobs := make(chan int)
	errs := make(chan error, total)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for n := range jobs {
				_, err := c.CreateIntegration(ctx, client.IntegrationRequest{
					Name: fmt.Sprintf("tool-%03d", n), Freshness: windows[n%len(windows)], Pattern: "pull",
					Scope: client.Scope{Classes: scopes[n%len(scopes)]}, AcceptRisk: true,
				})
				if err != nil {
					errs <- fmt.Errorf("create tool-%03d: %w", n, err)
				}
			}
		})
	}
	for n := range viaAPI - 4 {
		jobs <- n
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for n := viaAPI - 4; n < total-4; n++ {
		window, _ := time.ParseDuration(windows[n%len(windows)])
		var classes []knowledge.Class
		for _, class := range scopes[n%len(scopes)] {
			classes = append(classes, knowledge.Class(class))
		}
		err := a.Store.CreateIntegration(ctx, knowledge.Integration{
			ID: fmt.Sprintf("int_%016x", n), Name: fmt.Sprintf("tool-%03d", n), Pattern: knowledge.PatternPull,
			Freshness: window, Scope: knowledge.Scope{Classes: classes}, AcceptRisk: true,
			Reasons:   []string{"pattern pull was requested."},
			TokenHash: hub.HashToken(fmt.Sprintf("token-%03d", n)), CreatedAt: time.Now().UTC(),
		})
		if err != nil {
			t.Fatalf("store tool-%03d: %v", n, err)
		}
	}
	t.Logf("%s: %d integrations created", time.Since(began), total)

	// Wait for the push integrations to reach the states the page shows.
	eventually(t, "push-gone disabled, push-paused paused and a failed delivery of push-broken", func() bool {
		g, err1 := c.GetIntegration(ctx, pushGone.ID)
		p, err2 := c.GetIntegration(ctx, pushPaused.ID)
		failed, err3 := c.QueryDeliveries(ctx, pushBroken.ID, client.DeliveryQuery{Status: "failed"})
		return err1 == nil && err2 == nil && err3 == nil &&
			g.State == client.StateDisabled && p.State == client.StatePaused && len(failed) > 0
	})

	// Every host name fails to resolve in the browser, so the page can
	// reach only the hub at its loopback address, even by mistake.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // Chromium refuses to run as root, as CI does, with its sandbox on
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	// Record every request the page makes and every error it reports.
	var mu sync.Mutex
	var requests, pageErrors []string
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *runtime.EventExceptionThrown:
			pageErrors = append(pageErrors, fmt.Sprintf("exception: %s", exceptionText(ev)))
		case *cdplog.EventEntryAdded:
			// A failed API call logs a network error, which the page
			// expects when it falls back to an older call, so those are
			// allowed. CSP violations are security entries and fail.
			if ev.Entry.Source == cdplog.EntrySourceSecurity || (ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork) {
				pageErrors = append(pageErrors, fmt.Sprintf("%s %s: %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text))
			}
		}
	}); err != nil {
		t.Fatalf("listen to the page: %v", err)
	}

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		t.Logf("%s: %s", time.Since(began), what)
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(what, expr string) any {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[any](expr))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	waitJS := func(what, expr string) {
		t.Helper()
		t.Logf("%s: wait %s", time.Since(began), what)
		if _, err := chromedp.Run(bctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("wait for %s (%s): %v", what, expr, err)
		}
	}

	// Without JavaScript the sign-in page still reads: it explains what
	// the dashboard needs, and the form is there.
	if _, err := chromedp.Call(bctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatalf("turn JavaScript off: %v", err)
	}
	run("open the sign-in page without JavaScript", chromedp.Navigate(a.URL()+"/"))
	text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#login")))
	if err != nil {
		t.Fatalf("read the sign-in page: %v", err)
	}
	for _, want := range []string{"Admin token", "admin token", "JavaScript, which is off"} {
		if !strings.Contains(text, want) {
			t.Errorf("the sign-in page without JavaScript does not contain %q:\n%s", want, text)
		}
	}
	if _, err := chromedp.Call(bctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
		t.Fatalf("turn JavaScript on: %v", err)
	}

	// Sign in through /?token=, which the page then removes from the address.
	token := a.AdminToken()
	run("open the dashboard", chromedp.Navigate(a.URL()+"/?token="+url.QueryEscape(token)))
	waitJS("500 integrations in the table", `document.getElementById('int-total').textContent === '500' && document.querySelectorAll('#int-rows tr').length > 0`)
	if rows := eval("count rows", `document.querySelectorAll('#int-rows tr').length`); rows != float64(25) {
		t.Errorf("the first page has %v rows, want 25", rows)
	}
	if search := eval("read the address", `location.search`); search != "" {
		t.Errorf("the address still has the query %q after sign-in; the token must be removed", search)
	}
	if stored := eval("read session storage", `sessionStorage.getItem('khub.adminToken')`); stored != token {
		t.Errorf("session storage holds %v, want the admin token", stored)
	}
	if cookies := eval("read cookies", `document.cookie`); cookies != "" {
		t.Errorf("the page set cookies %q; the token belongs in session storage only", cookies)
	}
	sorted := eval("read staleness column", `(() => {
		const v = [...document.querySelectorAll('#int-rows tr td[data-seconds]')].map((td) => Number(td.dataset.seconds));
		return v.every((x, i) => i === 0 || v[i - 1] >= x);
	})()`)
	if sorted != true {
		t.Error("the first page is not sorted by staleness, highest first")
	}
	pageInfo := eval("read page info", `document.getElementById('page-info').textContent`)
	if s, _ := pageInfo.(string); !strings.Contains(s, "of 500") {
		t.Errorf("page info %q does not say 'of 500'", pageInfo)
	}

	// Filter to one integration and open its deliveries: the chart and the
	// failed attempts must render.
	run("filter the table", chromedp.SendKeys(chromedp.ID("filter"), "push-broken"))
	waitJS("one matching row", `document.querySelectorAll('#int-rows tr').length === 1`)
	run("open the deliveries", chromedp.Click(chromedp.CSS(`#int-rows tr a[href*="view=deliveries"]`)))
	waitJS("the staleness chart", `document.querySelector('#chart svg.chart line.window') !== null`)
	samples := eval("read the chart", `(() => {
		const svg = document.querySelector('#chart svg.chart');
		return {samples: Number(svg.dataset.samples), line: !!svg.querySelector('polyline.line'),
			empty: !!svg.querySelector('text.empty'), label: svg.getAttribute('aria-label')};
	})()`).(map[string]any)
	if n, _ := samples["samples"].(float64); n > 0 {
		if samples["line"] != true {
			t.Errorf("the chart has %v samples but no line", n)
		}
	} else if samples["empty"] != true {
		t.Error("the chart has no samples and does not say 'no samples yet'")
	}
	if label, _ := samples["label"].(string); !strings.Contains(label, "push-broken") {
		t.Errorf("the chart's label %q does not name the integration", label)
	}
	t.Logf("chart: %v", samples)
	waitJS("failed deliveries", `[...document.querySelectorAll('#deliv-rows .outcome')].some((e) => e.textContent === 'failed')`)
	run("show failed deliveries only",
		chromedp.SetValue(chromedp.ID("deliv-status"), "failed"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('deliv-status').dispatchEvent(new Event('change'))`))
	waitJS("only failed deliveries", `(() => {
		const o = [...document.querySelectorAll('#deliv-rows .outcome')];
		return o.length > 0 && o.every((e) => e.textContent === 'failed');
	})()`)

	// Paused and disabled integrations are listed with Resume. The tool
	// that returned 410 is back, so Resume makes it active again.
	waitJS("two integrations that need an operator", `document.querySelectorAll('#attention-list li').length === 2`)
	goneCode.Store(http.StatusNoContent)
	run("resume push-gone", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#attention-list li[data-id=%q] button.resume`, pushGone.ID))))
	eventually(t, "push-gone active after Resume", func() bool {
		g, err := c.GetIntegration(ctx, pushGone.ID)
		return err == nil && g.State == client.StateActive
	})
	waitJS("the resume message", `document.getElementById('status').textContent.startsWith('Resumed push-gone')`)
	waitJS("push-gone gone from the list", `document.querySelectorAll('#attention-list li').length === 1`)

	// Recent changes end with the newest, and search finds the runbook.
	waitJS("recent changes", `document.querySelectorAll('#changes-rows tr').length > 0`)
	last := eval("read the newest change", `Number([...document.querySelectorAll('#changes-rows tr')].pop().cells[0].textContent)`)
	if n, _ := last.(float64); int64(n) < seededHead {
		t.Errorf("the last change shown has cursor %v, want at least %d", last, seededHead)
	}
	run("search", chromedp.SendKeys(chromedp.ID("q"), "failover"), chromedp.Click(chromedp.CSS(`#search-form button`)))
	waitJS("a search hit", `[...document.querySelectorAll('#search-results li')].some((li) => li.textContent.includes('Database failover'))`)
	waitJS("the match marked in a snippet", `[...document.querySelectorAll('#search-results .snippet mark')].some((m) => /failover/i.test(m.textContent))`)
	waitJS("the number of matches", `/result/.test(document.getElementById('search-note').textContent)`)

	// Back to the full table, with push-broken still selected, for the
	// screenshot.
	run("clear the filter", chromedp.Evaluate[chromedp.Void](`(() => {
		const f = document.getElementById('filter');
		f.value = '';
		f.dispatchEvent(new Event('input'));
		window.scrollTo(0, 0);
	})()`))
	waitJS("25 rows again", `document.querySelectorAll('#int-rows tr').length === 25`)
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// ArtifactDir is a temporary directory like TempDir, kept when go test
	// runs with -artifacts.
	shot := filepath.Join(t.ArtifactDir(), "dashboard.png")
	if err := os.WriteFile(shot, png, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	mu.Lock()
	defer mu.Unlock()
	for _, u := range requests {
		if !strings.HasPrefix(u, a.URL()+"/") {
			t.Errorf("the page requested %s, outside the hub", u)
		}
	}
	for _, e := range pageErrors {
		t.Errorf("the page reported %s", e)
	}
}

func exceptionText(ev *runtime.EventExceptionThrown) string {
	d := ev.ExceptionDetails
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}
