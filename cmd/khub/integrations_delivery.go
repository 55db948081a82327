package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/khub-dev/khub/client"
)

// deliveryFlags are the flags of khub integrations create that tune webhook
// delivery. Flags left unset take the hub's defaults.
type deliveryFlags struct {
	initialBackoff, maxBackoff, retryFor, timeout, probeEvery time.Duration
	batchSize, pauseAfter                                     int
	coalesce                                                  bool
	rateLimit                                                 float64
}

func (d *deliveryFlags) add(f *pflag.FlagSet) {
	f.IntVar(&d.batchSize, "batch-size", 0, "events per webhook request, 1 to 500; above 1 the body is a JSON array of events (push and hybrid; default 1)")
	f.BoolVar(&d.coalesce, "coalesce", false, "send only the newest version of an article when several wait, so a tool that was down catches up faster")
	f.Float64Var(&d.rateLimit, "rate-limit", 0, "most webhook requests per second, such as 5 or 0.5 (default: no limit)")
	f.DurationVar(&d.retryFor, "retry-for", 0, "how long a change is retried after its first failure before it is recorded as failed, 1s to 720h (default 72h)")
	f.DurationVar(&d.timeout, "attempt-timeout", 0, "time limit of one webhook attempt, from connecting to the response headers, 100ms to 2m (default 15s)")
	f.DurationVar(&d.initialBackoff, "initial-backoff", 0, "longest wait before the first retry, 10ms to 24h; later waits double up to --max-backoff (default 5s)")
	f.DurationVar(&d.maxBackoff, "max-backoff", 0, "longest wait between retries, 10ms to 24h (default 1h)")
	f.IntVar(&d.pauseAfter, "pause-after", 0, "failed attempts in a row after which delivery pauses and only probes are sent (default 10)")
	f.DurationVar(&d.probeEvery, "probe-every", 0, "time between probes while delivery is paused, 10ms to 24h (default 1m)")
}

// settings returns the delivery settings the flags give, or nil when none
// was set, so that the request leaves delivery to the hub's defaults.
func (d *deliveryFlags) settings(cmd *cobra.Command) *client.DeliverySettings {
	f := cmd.Flags()
	changed := false
	for _, name := range []string{"batch-size", "coalesce", "rate-limit", "retry-for", "attempt-timeout", "initial-backoff", "max-backoff", "pause-after", "probe-every"} {
		changed = changed || f.Changed(name)
	}
	if !changed {
		return nil
	}
	duration := func(name string, v time.Duration) string {
		if !f.Changed(name) {
			return ""
		}
		return v.String()
	}
	return &client.DeliverySettings{
		InitialBackoff: duration("initial-backoff", d.initialBackoff),
		MaxBackoff:     duration("max-backoff", d.maxBackoff),
		RetryFor:       duration("retry-for", d.retryFor),
		Timeout:        duration("attempt-timeout", d.timeout),
		ProbeEvery:     duration("probe-every", d.probeEvery),
		BatchSize:      d.batchSize,
		Coalesce:       d.coalesce,
		RateLimit:      d.rateLimit,
		PauseAfter:     d.pauseAfter,
	}
}

// flagOfField maps the API fields whose names differ from their flag's
// beyond underscores and dots becoming dashes. An empty flag means no one
// flag sets the field.
var flagOfField = map[string]string{
	"delivery.timeout": "--attempt-timeout",
	"event_id":         "--event",
	"webhook":          "--webhook-url",
	"delivery":         "",
}

// flagError is an API error with the flag that sets the field at fault, so
// the fix is given in the command's terms.
type flagError struct {
	err  *client.Error
	flag string
}

func (e *flagError) Error() string {
	return strings.TrimSuffix(e.err.Error(), ")") + ", flag " + e.flag + ")"
}

func (e *flagError) Unwrap() error { return e.err }

// withFlagName adds the flag to an API error that names a field.
func withFlagName(err error) error {
	var e *client.Error
	if !errors.As(err, &e) || e.Field == "" {
		return err
	}
	flag, ok := flagOfField[e.Field]
	if !ok {
		name := strings.TrimPrefix(e.Field, "delivery.")
		if strings.Contains(name, ".") && !strings.HasPrefix(name, "webhook.") {
			return err
		}
		flag = "--" + strings.NewReplacer("_", "-", ".", "-").Replace(name)
	}
	if flag == "" {
		return err
	}
	return &flagError{err: e, flag: flag}
}

// parseTimeFlag reads a time flag given as RFC 3339 or as a duration before
// now, such as 2h. Empty gives the zero time.
func parseTimeFlag(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s %q is invalid: give an RFC 3339 time such as 2026-03-01T12:00:00Z, or a duration ago such as 2h", flag, s)
}

func newIntegrationsResumeCmd() *cobra.Command {
	var r remote
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "resume ID|NAME",
		Short: "Resume webhook delivery to a paused or disabled integration",
		Long: `Resume webhook delivery to a push or hybrid integration. khub disables an
integration whose webhook answered 410 Gone and sends nothing until it is
resumed; it pauses one after a run of failed attempts and resumes it by
itself once a probe succeeds, so resume cuts the pause short. The changes
that waited are sent first, with their original webhook-ids. The hub applies
the resume within a few seconds.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			in, err := findIntegration(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			was := in.State
			in, err = c.ResumeIntegration(cmd.Context(), in.ID)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), in)
			}
			w := cmd.OutOrStdout()
			if was == client.StateActive {
				fmt.Fprintf(w, "integration %s (%s) is already active: nothing to resume\n", in.ID, in.Name)
				return nil
			}
			fmt.Fprintf(w, "resumed integration %s (%s), which was %s: khub sends the changes that waited, oldest first\n", in.ID, in.Name, was)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API answer as JSON")
	r.addFlags(cmd)
	return cmd
}

func newIntegrationsRotateSecretCmd() *cobra.Command {
	var r remote
	var req client.RotateSecretRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate-secret ID|NAME",
		Short: "Give an integration a new webhook secret and print it once",
		Long: `Give a push or hybrid integration a new webhook signing secret. During the
overlap every request carries two signatures, one under the new secret and
one under the old, so the tool verifies with either: switch it to the new
secret before the overlap ends. The new secret is printed once; later reads
never show it.`,
		Example: `  khub integrations rotate-secret safety-board
  khub integrations rotate-secret safety-board --overlap 1h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			in, err := findIntegration(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			out, err := c.RotateSecret(cmd.Context(), in.ID, req)
			if err != nil {
				return withFlagName(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			printRotated(cmd.OutOrStdout(), &in, &out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Overlap, "overlap", "24h", "how long requests are signed with the old secret too, up to 720h; 0s stops using it at once")
	f.StringVar(&req.Secret, "secret", "", "the new secret, whsec_ and base64 (default: generated)")
	f.BoolVar(&asJSON, "json", false, "print the API answer as JSON")
	r.addFlags(cmd)
	return cmd
}

func printRotated(w io.Writer, in *client.Integration, out *client.RotatedSecret) {
	fmt.Fprintf(w, "rotated the webhook secret of integration %s (%s)\n", in.ID, in.Name)
	fmt.Fprintf(w, "  new secret: %s   (shown once)\n", out.Secret)
	if out.PreviousSecretExpiresAt.After(time.Now()) {
		fmt.Fprintf(w, "  requests are signed with the old secret too until %s; switch the tool to the new secret before then\n",
			out.PreviousSecretExpiresAt.Local().Format(time.DateTime))
	} else {
		fmt.Fprintln(w, "  requests are signed with the new secret only, from now on")
	}
}

func newIntegrationsReplayCmd() *cobra.Command {
	var r remote
	var req client.ReplayRequest
	var since, until string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "replay ID|NAME",
		Short: "Send changes that were already delivered again",
		Long: `Send a range of an integration's changes again, with their original
webhook-ids, so a receiver that drops duplicates keeps one copy. Give at
least one bound: cursors, times, or the webhook-id of one delivery. Only
changes already sent are replayed. The replay runs in the background on the
hub that receives the request; its attempts appear in khub integrations
deliveries.`,
		Example: `  khub integrations replay safety-board --event evt_42
  khub integrations replay safety-board --from-cursor 100 --to-cursor 180
  khub integrations replay safety-board --since 2026-03-01T00:00:00Z --until 2026-03-02T00:00:00Z`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			now := time.Now()
			if req.Since, err = parseTimeFlag("--since", since, now); err != nil {
				return err
			}
			if req.Until, err = parseTimeFlag("--until", until, now); err != nil {
				return err
			}
			if req == (client.ReplayRequest{}) {
				return errors.New("no range: give at least one of --from-cursor, --to-cursor, --since, --until or --event")
			}
			in, err := findIntegration(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			out, err := c.Replay(cmd.Context(), in.ID, req)
			if err != nil {
				return withFlagName(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			what := fmt.Sprintf("cursors %d to %d", out.FromCursor, out.ToCursor)
			if out.Since != nil || out.Until != nil {
				what += " committed"
				if out.Since != nil {
					what += " from " + out.Since.Local().Format(time.DateTime)
				}
				if out.Until != nil {
					what += " until " + out.Until.Local().Format(time.DateTime)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replaying %s to integration %s (%s) in the background; follow it with khub integrations deliveries %s\n",
				what, in.ID, in.Name, in.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&req.FromCursor, "from-cursor", 0, "first change-log cursor to send again")
	f.Int64Var(&req.ToCursor, "to-cursor", 0, "last change-log cursor to send again (default: the last change sent)")
	f.StringVar(&since, "since", "", "only changes committed at or after this time: RFC 3339 such as 2026-03-01T12:00:00Z, or a duration ago such as 2h")
	f.StringVar(&until, "until", "", "only changes committed before this time: RFC 3339, or a duration ago such as 30m")
	f.StringVar(&req.EventID, "event", "", "the webhook-id of one delivery to send again, such as evt_42 (from khub integrations deliveries)")
	f.BoolVar(&asJSON, "json", false, "print the API answer as JSON")
	r.addFlags(cmd)
	return cmd
}
