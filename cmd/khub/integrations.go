package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
)

// maxDeliveryLimit is the largest --limit of delivery history the API
// accepts.
const maxDeliveryLimit = 1000

func newIntegrationsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "integrations",
		Aliases: []string{"integration", "int"},
		Short:   "Create, list, inspect and delete integrations",
		Long: `An integration connects one tool to khub with a freshness window: the
longest a change may take to reach the tool. khub picks push, pull or hybrid
from the window, the scope and the tool's polling, and explains the choice.`,
	}
	cmd.AddCommand(newIntegrationsCreateCmd(), newIntegrationsListCmd(), newIntegrationsShowCmd(),
		newIntegrationsDeleteCmd(), newIntegrationsDeliveriesCmd(), newIntegrationsResumeCmd(),
		newIntegrationsRotateSecretCmd(), newIntegrationsReplayCmd())
	return cmd
}

func newIntegrationsCreateCmd() *cobra.Command {
	var r remote
	var req client.IntegrationRequest
	var webhookURL, webhookSecret string
	var meta []string
	var asJSON bool
	var delivery deliveryFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an integration and print its pattern, reasons and credentials",
		Long: `Create an integration. The answer shows the chosen pattern with its reasons,
the webhook secret (for push and hybrid) and the pull token (for pull and
hybrid). Both are shown only once: store them in the tool now.`,
		Example: `  khub integrations create --name helpdesk --freshness 15m --class runbook --lookups
  khub integrations create --name safety-board --freshness 1m --class safety \
      --webhook-url https://board.example.com/hooks/khub
  khub integrations create --name compliance-archive --freshness 5m --class compliance \
      --webhook-url https://archive.example.com/khub --batch-size 50 --rate-limit 2 --retry-for 24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			if webhookURL != "" || webhookSecret != "" {
				req.Webhook = &client.Webhook{URL: webhookURL, Secret: webhookSecret}
			}
			for _, kv := range meta {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--meta %q is invalid: use KEY=VALUE", kv)
				}
				if req.Scope.Metadata == nil {
					req.Scope.Metadata = map[string]string{}
				}
				req.Scope.Metadata[k] = v
			}
			req.Delivery = delivery.settings(cmd)
			in, err := c.CreateIntegration(cmd.Context(), req)
			if err != nil {
				return withFlagName(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), in)
			}
			printIntegration(cmd.OutOrStdout(), &in)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "name of the tool this integration connects (required, unique)")
	f.StringVar(&req.Freshness, "freshness", "", "freshness window: the longest a change may take to reach the tool, such as 30s, 15m or 24h (required)")
	f.StringVar(&req.Pattern, "pattern", "auto", "auto, push, pull or hybrid; auto picks from the window and scope")
	f.StringSliceVar(&req.Scope.Collections, "collection", nil, "limit the scope to these collections (repeatable)")
	f.StringSliceVar(&req.Scope.Classes, "class", nil, "limit the scope to these classes: policy, safety, compliance, runbook, reference or custom (repeatable)")
	f.StringSliceVar(&req.Scope.Tags, "tag", nil, "limit the scope to articles with one of these tags (repeatable)")
	f.StringArrayVar(&meta, "meta", nil, "limit the scope to articles whose metadata KEY equals VALUE, as KEY=VALUE (repeatable, all must match)")
	f.StringVar(&webhookURL, "webhook-url", "", "URL that receives signed CloudEvents (push and hybrid)")
	f.StringVar(&webhookSecret, "webhook-secret", "", "signing secret, whsec_ and base64 (default: generated)")
	f.StringVar(&req.PollInterval, "poll-interval", "", "how often the tool polls khub, such as 1m (pull; default 1m)")
	f.BoolVar(&req.Lookups, "lookups", false, "the tool looks knowledge up during workflow steps (reads are fresh at query time)")
	f.BoolVar(&req.AcceptRisk, "accept-risk", false, "accept a pattern the freshness rules reject, such as pulling policy slower than its window")
	delivery.add(f)
	f.BoolVar(&asJSON, "json", false, "print the API answer as JSON")
	r.addFlags(cmd)
	return cmd
}

func newIntegrationsListCmd() *cobra.Command {
	var r remote
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List integrations with their pattern and freshness",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			all, err := c.ListIntegrations(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), all)
			}
			printStatusTable(cmd.OutOrStdout(), all)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API answer as JSON")
	r.addFlags(cmd)
	return cmd
}

func newIntegrationsShowCmd() *cobra.Command {
	var r remote
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID|NAME",
		Short: "Show one integration with its reasons and freshness",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			in, err := findIntegration(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), in)
			}
			printIntegration(cmd.OutOrStdout(), &in)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API answer as JSON")
	r.addFlags(cmd)
	return cmd
}

func newIntegrationsDeleteCmd() *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "delete ID|NAME",
		Short: "Delete an integration and its delivery history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			in, err := findIntegration(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if err := c.DeleteIntegration(cmd.Context(), in.ID); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted integration %s (%s)\n", in.ID, in.Name)
			return nil
		},
	}
	r.addFlags(cmd)
	return cmd
}

func newIntegrationsDeliveriesCmd() *cobra.Command {
	var r remote
	var q client.DeliveryQuery
	var since, until string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "deliveries ID|NAME",
		Short: "List the newest webhook delivery attempts of an integration",
		Example: `  khub integrations deliveries safety-board --status failed
  khub integrations deliveries safety-board --article forklift-lanes --since 2h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if q.Limit < 1 || q.Limit > maxDeliveryLimit {
				return fmt.Errorf("--limit %d is invalid: give a number of attempts from 1 to %d", q.Limit, maxDeliveryLimit)
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			now := time.Now()
			if q.Since, err = parseTimeFlag("--since", since, now); err != nil {
				return err
			}
			if q.Until, err = parseTimeFlag("--until", until, now); err != nil {
				return err
			}
			in, err := findIntegration(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			ds, err := c.QueryDeliveries(cmd.Context(), in.ID, q)
			if err != nil {
				return withFlagName(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), ds)
			}
			if len(ds) == 0 {
				if q != (client.DeliveryQuery{Limit: q.Limit}) && in.Webhook != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "no delivery attempts of integration %s (%s) match the filters\n", in.ID, in.Name)
					return nil
				}
				fmt.Fprintln(cmd.OutOrStdout(), noDeliveriesText(&in))
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			// A batched request's attempts share its webhook-id, so the
			// cursor distinguishes their events.
			fmt.Fprintln(tw, "TIME\tEVENT\tCURSOR\tARTICLE\tVERSION\tTYPE\tATTEMPT\tSTATUS\tLATENCY\tOUTCOME\tERROR")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%d\t%d\t%.1fms\t%s\t%s\n", d.StartedAt.Local().Format(time.TimeOnly), d.EventID,
					d.Cursor, d.ArticleID, d.Version, d.Type, d.Attempt, d.StatusCode, d.LatencyMS, d.Outcome, d.Error)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.IntVar(&q.Limit, "limit", 50, fmt.Sprintf("number of attempts to list, 1 to %d", maxDeliveryLimit))
	f.StringVar(&q.Status, "status", "", "only attempts with this outcome: delivered, retrying or failed")
	f.StringVar(&q.ArticleID, "article", "", "only attempts that carried this article id")
	f.StringVar(&since, "since", "", "only attempts started at or after this time: RFC 3339 such as 2026-03-01T12:00:00Z, or a duration ago such as 2h")
	f.StringVar(&until, "until", "", "only attempts started before this time: RFC 3339, or a duration ago such as 30m")
	f.BoolVar(&asJSON, "json", false, "print the API answer as JSON")
	r.addFlags(cmd)
	return cmd
}

func printIntegration(w io.Writer, in *client.Integration) {
	fmt.Fprintf(w, "integration %s (%s)\n", in.ID, in.Name)
	fmt.Fprintf(w, "  pattern:   %s\n", in.Pattern)
	for _, r := range in.Reasons {
		fmt.Fprintf(w, "             - %s\n", r)
	}
	fmt.Fprintf(w, "  freshness: window %s, staleness %s, %s\n", in.Freshness.Window,
		formatSeconds(in.Freshness.StalenessSeconds), withinText(in.Freshness.WithinWindow))
	fmt.Fprintf(w, "  scope:     %s\n", scopeText(&in.Scope))
	if in.Lookups {
		fmt.Fprintf(w, "  lookups:   the tool reads at query time with its pull token\n")
	}
	if in.Webhook != nil {
		fmt.Fprintf(w, "  webhook:   %s\n", in.Webhook.URL)
		if in.Webhook.Secret != "" {
			fmt.Fprintf(w, "  secret:    %s   (shown once)\n", in.Webhook.Secret)
		}
	}
	if in.Token != "" {
		fmt.Fprintf(w, "  token:     %s   (shown once)\n", in.Token)
	}
	if in.State != "" {
		state := in.State
		if in.StateSince != nil {
			state += " since " + in.StateSince.Local().Format(time.DateTime)
		}
		if in.StateReason != "" {
			state += ": " + in.StateReason
		}
		fmt.Fprintf(w, "  state:     %s\n", state)
	}
	if in.PreviousSecretExpiresAt != nil {
		fmt.Fprintf(w, "  rotation:  requests are signed with the previous secret too until %s\n", in.PreviousSecretExpiresAt.Local().Format(time.DateTime))
	}
	if d := in.Delivery; d != nil {
		rate := "no rate limit"
		if d.RateLimit > 0 {
			rate = fmt.Sprintf("at most %g requests/s", d.RateLimit)
		}
		fmt.Fprintf(w, "  delivery:  batches of %d, coalesce %t, %s, timeout %s per attempt\n", d.BatchSize, d.Coalesce, rate, d.Timeout)
		fmt.Fprintf(w, "             retries for %s with backoff %s to %s; pauses after %d failed attempts, then probes every %s\n",
			d.RetryFor, d.InitialBackoff, d.MaxBackoff, d.PauseAfter, d.ProbeEvery)
	}
	if msg := currentError(in); msg != "" {
		fmt.Fprintf(w, "  last error: %s at %s\n", msg, in.LastErrorAt.Local().Format(time.DateTime))
	}
}

// scopeText describes a scope in one line, as "classes runbook;
// collections ops", or "every article" for an empty one.
func scopeText(sc *client.Scope) string {
	var parts []string
	for _, p := range []struct {
		name   string
		values []string
	}{{"collections", sc.Collections}, {"classes", sc.Classes}, {"tags", sc.Tags}} {
		if len(p.values) > 0 {
			values := make([]string, len(p.values))
			for i, v := range p.values {
				values[i] = scopeValue(v)
			}
			parts = append(parts, p.name+" "+strings.Join(values, ", "))
		}
	}
	if len(sc.Metadata) > 0 {
		pairs := make([]string, 0, len(sc.Metadata))
		for k, v := range sc.Metadata {
			pairs = append(pairs, scopeValue(k)+"="+scopeValue(v))
		}
		slices.Sort(pairs)
		parts = append(parts, "metadata "+strings.Join(pairs, ", "))
	}
	if len(parts) == 0 {
		return "every article"
	}
	return strings.Join(parts, "; ")
}

// scopeValue writes a value of a scope for scopeText. A value of only
// letters, digits and the punctuation of ids and slugs stays as it is.
// Others are quoted, so that a comma, equals sign or space inside one
// cannot make it read as two.
func scopeValue(v string) string {
	plain := v != "" && !strings.ContainsFunc(v, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_./:@", r)
	})
	if plain {
		return v
	}
	return strconv.Quote(v)
}

// currentError returns the integration's last delivery error when no
// delivery has succeeded since, and "" otherwise: an error that a later
// success followed no longer describes the integration.
func currentError(in *client.Integration) string {
	if in.LastError == "" || in.LastErrorAt == nil {
		return ""
	}
	if in.LastSuccessAt != nil && !in.LastErrorAt.After(*in.LastSuccessAt) {
		return ""
	}
	return in.LastError
}

// noDeliveriesText explains an empty list of delivery attempts.
func noDeliveriesText(in *client.Integration) string {
	if in.Webhook == nil {
		return fmt.Sprintf("integration %s (%s) uses %s: khub sends it no webhooks, so it has no deliveries; its tool reads through the API with its pull token", in.ID, in.Name, in.Pattern)
	}
	return fmt.Sprintf("integration %s (%s) has no delivery attempts yet: none of its changes has been sent", in.ID, in.Name)
}

// findIntegration returns the integration whose id or name is ref. It tries
// ref as an id first, then as a name, which at most one integration has.
func findIntegration(ctx context.Context, c *client.Client, ref string) (client.Integration, error) {
	if knowledge.ValidateID("id", ref) == nil {
		in, err := c.GetIntegration(ctx, ref)
		if !client.IsNotFound(err) {
			return in, err
		}
	}
	all, err := c.ListIntegrations(ctx)
	if err != nil {
		return client.Integration{}, err
	}
	for _, in := range all {
		if in.Name == ref {
			return in, nil
		}
	}
	return client.Integration{}, fmt.Errorf("no integration has the id or name %q: list them with khub integrations list", ref)
}

func withinText(ok bool) string {
	if ok {
		return "within window"
	}
	return "OUTSIDE WINDOW"
}

func formatSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
