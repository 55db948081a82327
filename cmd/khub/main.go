// Command khub runs and drives a khub knowledge integration hub.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	var stoppedBy atomic.Value // the syscall.Signal that ended ctx
	go func() {
		sig := <-signals
		stoppedBy.Store(sig)
		cancel()
	}()
	err := newRootCmd().ExecuteContext(ctx)
	signal.Stop(signals)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		if sig, ok := stoppedBy.Load().(syscall.Signal); ok {
			// 128 + the signal's number, as shells report a command
			// that a signal stopped: 130 for Ctrl-C, 143 for SIGTERM.
			os.Exit(128 + int(sig))
		}
		os.Exit(1)
	}
}

// errorLine is the message printed for a failed command: the error after
// "khub: ", unless it starts so already, as errors of the client package do.
// A refused connection gets a hint, because it means that no hub listens
// at the address.
func errorLine(err error) string {
	msg := err.Error()
	if errors.Is(err, syscall.ECONNREFUSED) {
		msg += ": no hub is listening there; start one with khub serve, or point --server or KHUB_SERVER at a running hub"
	}
	if strings.HasPrefix(msg, "khub: ") {
		return msg
	}
	return "khub: " + msg
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "khub",
		Short: "Connect an organisation's knowledge to the tools where people work",
		Long: `khub keeps a knowledge base (policies, safety procedures, compliance
documents, runbooks, reference articles) and connects it to tools through
integrations. Each integration declares a freshness window, and the window
decides how knowledge moves: push (signed webhooks as changes commit), pull
(the tool asks through the API) or hybrid (critical changes pushed, the rest
pulled).

Start with "khub demo", or run a hub with "khub serve --data DIR".
Commands that talk to a running hub take --server and --token, or the
KHUB_SERVER and KHUB_TOKEN environment variables.`,
		Version:       app.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newDemoCmd(), newImportCmd(), newIntegrationsCmd(), newStatusCmd(), newSearchCmd(), newLookupCmd(), newMigrateCmd())
	root.AddCommand(newPlanCmd(), newApplyCmd())
	return root
}

// remote holds the flags of commands that call a running hub.
type remote struct {
	server string
	token  string
}

// addFlags adds --server and --token to a command that needs the admin
// token.
func (r *remote) addFlags(cmd *cobra.Command) {
	r.addFlagsWithTokenHelp(cmd, "admin token (env KHUB_TOKEN); khub serve writes it to DATA/admin.token")
}

// addReadFlags adds --server and --token to a command that reads only, so
// an integration's pull token works too, within its scope.
func (r *remote) addReadFlags(cmd *cobra.Command) {
	r.addFlagsWithTokenHelp(cmd, "admin token, or an integration's pull token to read within its scope (env KHUB_TOKEN); khub serve writes the admin token to DATA/admin.token")
}

func (r *remote) addFlagsWithTokenHelp(cmd *cobra.Command, tokenHelp string) {
	cmd.Flags().StringVar(&r.server, "server", envOr("KHUB_SERVER", "http://127.0.0.1:8080"), "base URL of the hub (env KHUB_SERVER)")
	cmd.Flags().StringVar(&r.token, "token", "", tokenHelp)
}

func (r *remote) client() (*client.Client, error) {
	token := r.token
	if token == "" {
		token = os.Getenv("KHUB_TOKEN")
	}
	if token == "" {
		return nil, errors.New("no token: pass --token or set KHUB_TOKEN (khub serve writes the admin token to DATA/admin.token)")
	}
	if err := checkServer(r.server); err != nil {
		return nil, err
	}
	return client.New(r.server, token), nil
}

// checkServer checks that --server is a base URL the client can append
// API paths to. Messages show the URL without its password, if any.
func checkServer(server string) error {
	const fix = "give the hub's base URL, such as http://127.0.0.1:8080, with --server or KHUB_SERVER"
	u, err := url.Parse(server)
	switch {
	case strings.TrimSpace(server) == "":
		return errors.New("--server is empty: " + fix)
	case !strings.Contains(server, "://"):
		// Without "://", url.Parse reads "user:password@host" as a
		// scheme and an opaque rest, so nothing of it is shown.
		return errors.New("--server has no scheme: write http:// or https:// before the host, as in http://127.0.0.1:8080")
	case err != nil:
		return errors.New("--server cannot be parsed as a URL: " + fix)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("--server %q is not an http or https URL with a host: %s", u.Redacted(), fix)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(server, "#"):
		return fmt.Errorf("--server %q has a query or fragment, which the API paths cannot follow: %s; the token goes in --token", u.Redacted(), fix)
	}
	return nil
}

// redacted returns server with the password of its URL, if any, hidden.
func redacted(server string) string {
	if u, err := url.Parse(server); err == nil && strings.Contains(server, "://") {
		return u.Redacted()
	}
	return "the --server address"
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
