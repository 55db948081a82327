package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/examples"
	"github.com/khub-dev/khub/internal/app"
	"github.com/khub-dev/khub/internal/push"
)

func newDemoCmd() *cobra.Command {
	var addr, dataDir string
	var keep, exit bool
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a hub with the example knowledge base and show push, pull and hybrid at work",
		Long: `Start a hub on a temporary data directory, import the example knowledge base,
start a webhook receiver on loopback that verifies every signature, create one
push, one pull and one hybrid integration, change a policy, and print what
happened with timings. Then keep serving and print the URL and admin token
until interrupted (or exit at once with --exit).

The demo allows webhooks to loopback, because its receiver runs there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := logs.logger()
			if err != nil {
				return err
			}
			d := &demo{out: cmd.OutOrStdout(), addr: addr, dataDir: dataDir, keep: keep}
			return d.run(cmd.Context(), logger, exit)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "listen address of the demo hub; a busy port falls back to a free one")
	cmd.Flags().StringVar(&dataDir, "data", "", "data directory (default: a new temporary directory, removed at exit)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary data directory at exit")
	cmd.Flags().BoolVar(&exit, "exit", false, "exit after the walkthrough instead of serving until interrupted")
	cmd.Flags().StringVar(&logs.format, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&logs.level, "log-level", "warn", "log level of the hub: debug, info, warn or error")
	return cmd
}

type demo struct {
	out     io.Writer
	addr    string
	dataDir string
	keep    bool
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

func (d *demo) run(ctx context.Context, logger *slog.Logger, exit bool) error {
	start := time.Now()
	dataDir := d.dataDir
	if dataDir == "" {
		tmp, err := os.MkdirTemp("", "khub-demo-")
		if err != nil {
			return fmt.Errorf("create temporary data directory: %w", err)
		}
		dataDir = tmp
		if !d.keep {
			defer os.RemoveAll(tmp)
		}
	}

	// The receiver runs on loopback, so the demo allows private
	// destinations. khub serve allows them only with
	// --allow-private-destinations.
	cfg := app.Config{DataDir: dataDir, Addr: d.addr, AllowPrivate: true, Logger: logger}
	cfg.Push.InitialBackoff = 200 * time.Millisecond
	hub, err := app.Open(cfg)
	if err != nil {
		return err
	}
	if err := hub.Start(ctx); err != nil {
		// Shutdown also releases the data directory's lock, which the
		// second Open needs.
		if serr := hub.Shutdown(context.Background()); serr != nil {
			logger.Warn("demo: closing the hub after a failed start failed", "error", serr)
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			return err
		}
		// The port is busy: take any free one instead.
		cfg.Addr = "127.0.0.1:0"
		if hub, err = app.Open(cfg); err != nil {
			return err
		}
		if err := hub.Start(ctx); err != nil {
			if serr := hub.Shutdown(context.Background()); serr != nil {
				logger.Warn("demo: closing the hub after a failed start failed", "error", serr)
			}
			return err
		}
	}
	defer hub.Shutdown(context.Background())
	admin := client.New(hub.URL(), hub.AdminToken())
	d.printf("khub demo: hub started at %s with data in %s (%s)\n\n", hub.URL(), dataDir, since(start))

	if err := d.importExamples(ctx, admin, dataDir); err != nil {
		return err
	}

	rv, recvURL, err := startReceiver(ctx)
	if err != nil {
		return err
	}
	ints, err := d.createIntegrations(ctx, admin, rv, recvURL)
	if err != nil {
		return err
	}
	if err := d.changePolicy(ctx, admin, rv); err != nil {
		return err
	}
	if err := d.pullLookup(ctx, hub.URL(), ints.pullToken); err != nil {
		return err
	}
	if err := d.catchUp(ctx, hub.URL(), ints.hybridToken); err != nil {
		return err
	}
	if err := d.showFreshness(ctx, admin); err != nil {
		return err
	}

	d.printf("\nThe hub keeps serving at %s\n", hub.URL())
	d.printf("  admin token: %s (also in %s)\n", hub.AdminToken(), hub.TokenFile)
	d.printf("  try: curl -H 'Authorization: Bearer %s' '%s/v1/search?q=failover'\n", ints.pullToken, hub.URL())
	d.printf("       KHUB_SERVER=%s KHUB_TOKEN=%s %s status\n", hub.URL(), hub.AdminToken(), selfCommand())
	if exit {
		return nil
	}
	d.printf("Press Ctrl-C to stop.\n")
	select {
	case <-ctx.Done():
	case err := <-hub.Done():
		return err
	}
	d.printf("\nstopping\n")
	return nil
}

// importExamples writes the embedded example knowledge base to the data
// directory and imports it through the API, as khub import would.
func (d *demo) importExamples(ctx context.Context, c *client.Client, dataDir string) error {
	dir := filepath.Join(dataDir, "example-kb")
	if err := os.CopyFS(dir, mustSub(examples.KB, "kb")); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("write example knowledge base: %w", err)
	}
	sum, err := runImport(ctx, c, dir, importOptions{collection: "northwind", workers: 4}, io.Discard, false)
	if err != nil {
		return err
	}
	d.printf("1. Imported the example knowledge base: %d articles created, %d unchanged, %d skipped in %s\n",
		sum.Created+sum.Updated, sum.Unchanged, len(sum.Skipped), sum.Elapsed.Round(time.Millisecond))
	return nil
}

type demoIntegrations struct {
	pullToken   string // helpdesk's
	hybridToken string // ops-chat's, for the long tail it pulls
}

func (d *demo) createIntegrations(ctx context.Context, c *client.Client, rv *receiver, recvURL string) (demoIntegrations, error) {
	var out demoIntegrations
	reqs := []client.IntegrationRequest{
		{
			Name: "safety-board", Freshness: "1m",
			Scope:   client.Scope{Classes: []string{"policy", "safety", "compliance"}},
			Webhook: &client.Webhook{URL: recvURL + "/safety-board", Secret: rv.secretFor("/safety-board")},
		},
		{
			Name: "helpdesk", Freshness: "15m", Lookups: true,
			Scope: client.Scope{Classes: []string{"runbook", "reference"}},
		},
		{
			Name: "ops-chat", Freshness: "10m",
			Webhook: &client.Webhook{URL: recvURL + "/ops-chat", Secret: rv.secretFor("/ops-chat")},
		},
	}
	if err := d.removeEarlierRun(ctx, c, reqs); err != nil {
		return out, err
	}
	d.printf("\n2. Created three integrations; khub chose each pattern from the window and scope:\n")
	for _, req := range reqs {
		in, err := c.CreateIntegration(ctx, req)
		if err != nil {
			return out, fmt.Errorf("create integration %s: %w", req.Name, err)
		}
		switch in.Name {
		case "helpdesk":
			out.pullToken = in.Token
		case "ops-chat":
			out.hybridToken = in.Token
		}
		d.printf("   %-13s window %-4s -> %s\n", in.Name, in.Freshness.Window, in.Pattern)
		for _, r := range in.Reasons {
			d.printf("                 %s\n", r)
		}
	}
	return out, nil
}

// removeEarlierRun deletes the integrations that an earlier demo on the
// same data directory created under the names in reqs. Their webhooks point
// at that run's receiver, which is gone, and their names must be free for
// this run.
func (d *demo) removeEarlierRun(ctx context.Context, c *client.Client, reqs []client.IntegrationRequest) error {
	names := map[string]bool{}
	for _, req := range reqs {
		names[req.Name] = true
	}
	all, err := c.ListIntegrations(ctx)
	if err != nil {
		return fmt.Errorf("list integrations of an earlier demo run: %w", err)
	}
	var removed []string
	for _, in := range all {
		if !names[in.Name] {
			continue
		}
		if err := c.DeleteIntegration(ctx, in.ID); err != nil && !client.IsNotFound(err) {
			return fmt.Errorf("delete integration %s (%s) of an earlier demo run: %w", in.ID, in.Name, err)
		}
		removed = append(removed, in.Name)
	}
	if len(removed) > 0 {
		d.printf("\n   Deleted the integrations of an earlier demo run in this data directory: %s\n", strings.Join(removed, ", "))
	}
	return nil
}

// changePolicy edits a policy and waits until both pushing integrations
// have received and verified the change.
func (d *demo) changePolicy(ctx context.Context, c *client.Client, rv *receiver) error {
	const id = "policy-access-review"
	cur, err := c.GetArticle(ctx, id)
	if err != nil {
		return fmt.Errorf("read %s: %w", id, err)
	}
	cur.Body += "\n\nUpdate: access reviews now also cover service accounts with production access.\n"
	t0 := time.Now()
	updated, err := c.UpdateArticle(ctx, cur, cur.Version)
	if err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	d.printf("\n3. Changed policy %q to version %d (write took %s)\n", updated.Title, updated.Version, since(t0))

	want := map[string]bool{"/safety-board": true, "/ops-chat": true}
	timeout := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case ev := <-rv.events:
			// New integrations start at the beginning of the change log, so
			// the import arrives first; wait for the new version.
			if ev.subject != id || ev.version != updated.Version || !want[ev.path] {
				continue
			}
			delete(want, ev.path)
			d.printf("   pushed to %-13s in %s: %s %s, signature verified\n", strings.TrimPrefix(ev.path, "/"), ev.at.Sub(t0).Round(100*time.Microsecond), ev.typ, ev.id)
		case <-timeout:
			return fmt.Errorf("the policy change did not reach %d receivers within 10s", len(want))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pullLookup searches with the pull token, as a helpdesk would when a
// ticket arrives.
func (d *demo) pullLookup(ctx context.Context, base, token string) error {
	c := client.New(base, token)
	t0 := time.Now()
	res, err := c.Search(ctx, "database failover", client.SearchOptions{Limit: 3})
	if err != nil {
		return fmt.Errorf("pull search: %w", err)
	}
	d.printf("\n4. helpdesk searched \"database failover\" with its pull token in %s:\n", since(t0))
	for _, h := range res.Hits {
		d.printf("   %-32s %-9s %s\n", h.ID, h.Class, h.Title)
	}
	_, err = c.GetArticle(ctx, "policy-access-review")
	if client.IsNotFound(err) {
		d.printf("   a policy is outside helpdesk's scope, so reading one by id returns 404\n")
	}
	return nil
}

// catchUp reads the change feed as ops-chat's tool would, so the runbooks
// and reference articles that hybrid leaves to pull count as received.
func (d *demo) catchUp(ctx context.Context, base, token string) error {
	c := client.New(base, token)
	start := time.Now()
	var after int64
	read := 0
	for {
		page, err := c.Changes(ctx, after, 500, 0)
		if err != nil {
			return fmt.Errorf("ops-chat change feed: %w", err)
		}
		read += len(page.Changes)
		if page.Next == after {
			break
		}
		after = page.Next
	}
	d.printf("   ops-chat read the change feed with its pull token: %d changes up to cursor %d in %s\n", read, after, since(start))
	return nil
}

func (d *demo) showFreshness(ctx context.Context, c *client.Client) error {
	// Dispatchers record delivered cursors within a second of going idle,
	// so the demo waits that long for every integration to read as caught
	// up before it prints what remains.
	var all []client.Integration
	deadline := time.Now().Add(3 * time.Second)
	for {
		var err error
		all, err = c.ListIntegrations(ctx)
		if err != nil {
			return err
		}
		caughtUp := true
		for _, in := range all {
			caughtUp = caughtUp && in.Freshness.StalenessSeconds == 0
		}
		if caughtUp || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.printf("\n5. Freshness of each integration:\n")
	for _, in := range all {
		d.printf("   %-13s %-6s staleness %-6s window %-4s %s\n", in.Name, in.Pattern,
			formatSeconds(in.Freshness.StalenessSeconds), in.Freshness.Window, withinText(in.Freshness.WithinWindow))
	}
	return nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Microsecond) }

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // dir is a constant embedded path
	}
	return sub
}

// startReceiver serves the demo receiver on a free loopback port until
// ctx ends.
func startReceiver(ctx context.Context) (*receiver, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("start webhook receiver: %w", err)
	}
	rv := &receiver{secrets: map[string]string{}, events: make(chan receivedEvent, 1024)}
	srv := &http.Server{Handler: rv, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	context.AfterFunc(ctx, func() { srv.Close() })
	return rv, "http://" + ln.Addr().String(), nil
}

func (rv *receiver) secretFor(path string) string {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	s := push.NewSecret()
	rv.secrets[path] = s
	return s
}

// receiver is the demo's webhook endpoint: it verifies every delivery and
// reports each verified event on a channel.
type receiver struct {
	mu      sync.Mutex
	secrets map[string]string // path → secret
	events  chan receivedEvent
	bad     int
}

type receivedEvent struct {
	path    string
	id      string
	subject string
	typ     string
	version int64
	at      time.Time
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	rv.mu.Lock()
	secret := rv.secrets[r.URL.Path]
	rv.mu.Unlock()
	if err := client.VerifyWebhook(secret, r.Header, body, 0, time.Now()); err != nil {
		rv.mu.Lock()
		rv.bad++
		rv.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	evs, err := client.ParseEvents(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, ev := range evs {
		select {
		case rv.events <- receivedEvent{path: r.URL.Path, id: ev.ID, subject: ev.Subject, typ: ev.Type, version: ev.Data.Version, at: time.Now()}:
		default:
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// selfCommand returns how to run this program again in a hint: "khub",
// or "go run ./cmd/khub" when go run built it into a temporary directory,
// where no khub binary stays.
func selfCommand() string {
	if exe, err := os.Executable(); err == nil && strings.HasPrefix(exe, os.TempDir()) && strings.Contains(exe, "go-build") {
		return "go run ./cmd/khub"
	}
	return "khub"
}
