package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/khub-dev/khub/client"
)

// applyResult is the outcome of apply for one integration, as --output
// json prints it. Integration carries the new webhook secret and pull token
// after a create or a replace, which no later read shows.
type applyResult struct {
	Name       string              `json:"name"`
	Action     string              `json:"action"`
	ReplacedID string              `json:"replaced_id,omitempty"`
	Changes    []client.PlanChange `json:"changes,omitempty"`
	// Integration is the integration after the action.
	Integration *client.Integration `json:"integration,omitempty"`
}

func newApplyCmd() *cobra.Command {
	var r remote
	var path string
	var replace bool
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create and update the integrations of a file so that the hub matches it",
		Long: `Apply an integrations file: create the integrations the hub lacks and update
the ones whose settings differ, in place, so that each keeps its id,
cursors, pull token and webhook secret. Applying the same file again
changes nothing and says so. Integrations on the hub that the file does
not name are left alone.

The freshness window, poll_interval, lookups, accept_risk, webhook url and
delivery settings change in place. The pattern and the scope cannot: the
push cursor and the pull token belong to them. When either differs, apply
changes nothing unless --replace is given; then it deletes the integration
and creates it again, which loses its cursors, delivery history, pull token
and webhook secret, and the new integration starts at the beginning of the
change log. Nothing is applied while an entry is invalid.

New webhook secrets and pull tokens are printed once: store them in the
tool right away.

` + planFileHelp,
		Example: `  khub plan -f integrations.yaml && khub apply -f integrations.yaml
  khub apply -f integrations.yaml --replace`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			return runApply(cmd.Context(), c, path, cmd.InOrStdin(), cmd.OutOrStdout(), replace, output == "json")
		},
	}
	cmd.Flags().StringVarP(&path, "file", "f", "", "integrations file in YAML, or - for standard input (required)")
	cmd.MarkFlagRequired("file")
	cmd.Flags().BoolVar(&replace, "replace", false, "delete and create again the integrations whose pattern or scope differs, losing their cursors, delivery history, pull token and webhook secret")
	output.add(cmd)
	r.addFlags(cmd)
	return cmd
}

func runApply(ctx context.Context, c *client.Client, path string, stdin io.Reader, w io.Writer, replace, asJSON bool) error {
	file, plan, err := fetchPlan(ctx, c, path, stdin)
	if err != nil {
		return err
	}
	if err := checkApplicable(w, file, &plan, replace); err != nil {
		return err
	}

	var results []applyResult
	// log prints progress for people; JSON output prints only the results.
	log := func(format string, args ...any) {
		if !asJSON {
			fmt.Fprintf(w, format, args...)
		}
	}
	for i := range plan.Integrations {
		it, entry := &plan.Integrations[i], &file.entries[i]
		res := applyResult{Name: it.Name, Action: it.Action, Changes: it.Changes}
		switch it.Action {
		case client.PlanUnchanged:
			log("unchanged  %s (%s)\n", oneLine(it.Name), it.IntegrationID)
		case client.PlanUpdate:
			in, outcome, err := c.UpdateIntegration(ctx, it.IntegrationID, updateOf(entry, it.Pattern))
			if err != nil {
				return applyFailed(results, fileError(file, i, err))
			}
			res.Integration = &in
			if outcome == client.OutcomeUnchanged {
				// Another request made the same change after the plan.
				res.Action = client.PlanUnchanged
				log("unchanged  %s (%s)\n", oneLine(it.Name), in.ID)
				break
			}
			log("updated    %s (%s): %s\n", oneLine(it.Name), in.ID, changesText(it.Changes))
		case client.PlanCreate:
			in, err := c.CreateIntegration(ctx, entry.IntegrationRequest)
			if err != nil {
				return applyFailed(results, fileError(file, i, err))
			}
			res.Integration = &in
			log("created    %s (%s), %s\n", oneLine(in.Name), in.ID, in.Pattern)
			logCredentials(log, &in)
		case client.PlanReplace:
			log("replacing  %s (%s): %s cannot change in place, so it is deleted, with its cursors, delivery history, pull token and webhook secret, and created again from the beginning of the change log\n",
				oneLine(it.Name), it.IntegrationID, changesText(replaceOnly(it.Changes)))
			if err := c.DeleteIntegration(ctx, it.IntegrationID); err != nil {
				return applyFailed(results, fileError(file, i, err))
			}
			in, err := c.CreateIntegration(ctx, entry.IntegrationRequest)
			if err != nil {
				err = fmt.Errorf("%w; integration %s was deleted already, so run khub apply again to create it", fileError(file, i, err), it.IntegrationID)
				return applyFailed(results, err)
			}
			res.ReplacedID, res.Integration = it.IntegrationID, &in
			log("replaced   %s: deleted %s, created %s, %s\n", oneLine(in.Name), it.IntegrationID, in.ID, in.Pattern)
			logCredentials(log, &in)
		}
		results = append(results, res)
	}

	if asJSON {
		return printJSON(w, results)
	}
	fmt.Fprintln(w, applySummary(file, results))
	return nil
}

// checkApplicable prints and returns the reasons that keep the plan from
// being applied: invalid entries, and replacements without --replace.
func checkApplicable(w io.Writer, file *planFile, p *client.Plan, replace bool) error {
	var problems []string
	for i, it := range p.Integrations {
		if it.Action == client.PlanInvalid {
			field := ""
			if it.Error != nil {
				field = it.Error.Field
			}
			problems = append(problems, fmt.Sprintf("%s: %s", file.where(i, field), oneLine(errorMessage(it.Error))))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("nothing applied, because %s invalid:\n%s", entriesText(len(problems)), strings.Join(problems, "\n"))
	}
	if replace {
		return nil
	}
	for i, it := range p.Integrations {
		if it.Action == client.PlanReplace {
			problems = append(problems, fmt.Sprintf("%s: %s (%s): %s", file.where(i, replaceOnly(it.Changes)[0].Field), oneLine(it.Name), it.IntegrationID, changesText(replaceOnly(it.Changes))))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("nothing applied, because the pattern or the scope of %d %s differs, and neither can change in place:\n%s\nRun khub apply --replace to delete and create them again, which loses their cursors, delivery history, pull tokens and webhook secrets, or change the file back",
			len(problems), plural(len(problems), "integration", "integrations"), strings.Join(problems, "\n"))
	}
	return nil
}

// updateOf returns the in-place update that makes an integration match its
// file entry. It sends every field that can change in place, so the hub
// compares them all; webhook and delivery only for patterns that push.
func updateOf(e *client.PlanEntry, pattern string) client.IntegrationUpdate {
	declared := e.Pattern
	if declared == "" {
		declared = "auto"
	}
	u := client.IntegrationUpdate{
		Pattern:      &declared,
		Freshness:    &e.Freshness,
		PollInterval: &e.PollInterval,
		Lookups:      &e.Lookups,
		AcceptRisk:   &e.AcceptRisk,
	}
	if pattern == "push" || pattern == "hybrid" {
		if e.Webhook != nil {
			u.Webhook = &client.WebhookUpdate{URL: e.Webhook.URL}
		}
		u.Delivery = e.Delivery
		if u.Delivery == nil {
			// A file without delivery settings means the defaults.
			u.Delivery = &client.DeliverySettings{}
		}
	}
	return u
}

func logCredentials(log func(string, ...any), in *client.Integration) {
	if in.Webhook != nil && in.Webhook.Secret != "" {
		log("             webhook secret: %s   (shown once)\n", in.Webhook.Secret)
	}
	if in.Token != "" {
		log("             pull token:     %s   (shown once)\n", in.Token)
	}
}

func replaceOnly(changes []client.PlanChange) []client.PlanChange {
	var out []client.PlanChange
	for _, c := range changes {
		if !c.InPlace {
			out = append(out, c)
		}
	}
	return out
}

func changesText(changes []client.PlanChange) string {
	parts := make([]string, len(changes))
	for i, c := range changes {
		parts[i] = fmt.Sprintf("%s %s → %s", c.Field, oneLine(c.From), oneLine(c.To))
	}
	return strings.Join(parts, ", ")
}

// applyFailed adds what was applied before the failure to its error.
func applyFailed(done []applyResult, err error) error {
	var applied []string
	for _, r := range done {
		if r.Action != client.PlanUnchanged {
			applied = append(applied, r.Action+" "+oneLine(r.Name))
		}
	}
	if len(applied) == 0 {
		return fmt.Errorf("%w; nothing was applied before this", err)
	}
	return fmt.Errorf("%w; applied before this: %s", err, strings.Join(applied, ", "))
}

func applySummary(file *planFile, results []applyResult) string {
	counts := map[string]int{}
	for _, r := range results {
		counts[r.Action]++
	}
	if counts[client.PlanUnchanged] == len(results) {
		return fmt.Sprintf("Nothing to change: the %d integrations of %s match the hub.", len(results), file.path)
	}
	var parts []string
	for _, a := range []struct{ action, text string }{
		{client.PlanCreate, "created"},
		{client.PlanUpdate, "updated in place"},
		{client.PlanReplace, "replaced"},
		{client.PlanUnchanged, "unchanged"},
	} {
		if n := counts[a.action]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a.text))
		}
	}
	return "Applied " + file.path + ": " + strings.Join(parts, ", ") + "."
}
