package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/planner"
)

// planFileHelp documents the integrations file for plan and apply.
const planFileHelp = `The file lists integrations under the key integrations. Each takes:

  name               the integration's name, unique on the hub (required)
  tool               the product it connects, for people; not stored
  freshness          the longest a change may take to reach the tool,
                     such as 30s, 15m or 24h (required)
  scope              collections, classes, tags and metadata that select
                     the articles the tool sees; empty selects everything
  lookups            true when the tool looks knowledge up during a
                     workflow step
  poll_interval      how often the tool would poll, such as 5m (default 1m)
  pattern            auto (default), push, pull or hybrid
  webhook            url: where push and hybrid send signed events; khub
                     generates the secret
  requests_per_hour  the pull requests the tool makes per hour; without it
                     a poller is assumed to make 3600/poll_interval
  accept_risk        true to pull time-sensitive classes with a window
                     shorter than the polling interval
  delivery           webhook delivery settings, as the flags of
                     khub integrations create: initial_backoff, max_backoff,
                     retry_for, timeout, batch_size, coalesce, rate_limit,
                     pause_after, probe_every

Unknown keys are errors. examples/integrations.yaml is a commented example.`

// outputFlag is the --output flag of plan and apply.
type outputFlag string

func (o *outputFlag) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP((*string)(o), "output", "o", "table", "output format: table for people, json for programs")
}

func (o outputFlag) check() error {
	if o != "table" && o != "json" {
		return fmt.Errorf("--output %q is invalid: use table or json", string(o))
	}
	return nil
}

func newPlanCmd() *cobra.Command {
	var r remote
	var path string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "Show the pattern, load and changes that applying an integrations file would bring",
		Long: `Plan the integrations of a file without changing anything. For each one,
khub prints the pattern it would get with the reasons, the pushes per hour
measured from the change rate of its scope over the last 7 days, the pull
requests per hour it declares, and what applying it would do to the
integration of the same name on the hub: create, update (which fields),
unchanged, or replace when the pattern or the scope differs. Warnings point
at load and freshness risks. An invalid entry is reported and the others
are still planned; the command then exits with status 1.

` + planFileHelp,
		Example: `  khub plan -f examples/integrations.yaml
  khub plan -f integrations.yaml --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			file, plan, err := fetchPlan(cmd.Context(), c, path, cmd.InOrStdin())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				if err := printJSON(w, plan); err != nil {
					return err
				}
			} else {
				printPlan(w, file, &plan)
			}
			if n := countAction(&plan, client.PlanInvalid); n > 0 {
				return fmt.Errorf("%s invalid: fix %s and plan again", entriesText(n), file.path)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "file", "f", "", "integrations file in YAML, or - for standard input (required)")
	cmd.MarkFlagRequired("file")
	output.add(cmd)
	r.addFlags(cmd)
	return cmd
}

// fetchPlan reads the file and requests its plan from the hub.
func fetchPlan(ctx context.Context, c *client.Client, path string, stdin io.Reader) (*planFile, client.Plan, error) {
	file, err := readPlanFile(path, stdin)
	if err != nil {
		return nil, client.Plan{}, err
	}
	plan, err := c.Plan(ctx, client.PlanRequest{Integrations: file.entries})
	if err != nil {
		return nil, client.Plan{}, err
	}
	if len(plan.Integrations) != len(file.entries) {
		return nil, client.Plan{}, fmt.Errorf("the hub planned %d integrations of the %d in %s: check that the hub runs the same khub version as this command", len(plan.Integrations), len(file.entries), file.path)
	}
	return file, plan, nil
}

func countAction(p *client.Plan, action string) int {
	n := 0
	for _, it := range p.Integrations {
		if it.Action == action {
			n++
		}
	}
	return n
}

func entriesText(n int) string {
	if n == 1 {
		return "1 entry is"
	}
	return fmt.Sprintf("%d entries are", n)
}

// printPlan writes the plan as a table with one section per integration.
func printPlan(w io.Writer, file *planFile, p *client.Plan) {
	fmt.Fprintf(w, "Plan for %s: change rates measured %s\n\n", file.path, spanText(p, time.Now()))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTOOL\tPATTERN\tACTION\tPUSHES/H\tPULLS/H")
	for _, it := range p.Integrations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", oneLine(it.Name), orDash(oneLine(it.Tool)), orDash(it.Pattern), it.Action,
			rateCell(&it, it.Load.PushesPerHour), pullsCell(&it))
	}
	tw.Flush()

	for i := range p.Integrations {
		fmt.Fprintln(w)
		printPlanItem(w, file, i, &p.Integrations[i])
	}

	if len(p.Warnings) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Warnings:")
		for _, s := range p.Warnings {
			fmt.Fprintf(w, "  - %s\n", s)
		}
	}
	if len(p.Unlisted) > 0 {
		var names []string
		for _, u := range p.Unlisted {
			names = append(names, fmt.Sprintf("%s (%s, %s)", oneLine(u.Name), u.ID, u.Pattern))
		}
		fmt.Fprintf(w, "\nOn the hub but not in the file, left alone: %s\n", strings.Join(names, ", "))
	}
	fmt.Fprintf(w, "\n%s\n", planSummary(p))
	fmt.Fprintf(w, "Load the file puts on the hub: %s pushes/h and %s pull requests/h", planner.FormatRate(p.PushesPerHour), planner.FormatRate(p.PullsPerHour))
	if unknown := unknownPulls(p); unknown > 0 {
		fmt.Fprintf(w, ", plus the lookups of %d %s that declare no requests_per_hour", unknown, plural(unknown, "tool", "tools"))
	}
	fmt.Fprintln(w, ".")
}

func printPlanItem(w io.Writer, file *planFile, i int, it *client.PlanItem) {
	head := oneLine(it.Name)
	if head == "" {
		head = fmt.Sprintf("integration %d", i+1)
	}
	if it.Tool != "" {
		head += " (" + oneLine(it.Tool) + ")"
	}
	switch it.Action {
	case client.PlanInvalid:
		field := ""
		if it.Error != nil {
			field = it.Error.Field
		}
		fmt.Fprintf(w, "%s: invalid, not planned\n", head)
		fmt.Fprintf(w, "  error:   %s: %s\n", file.where(i, field), oneLine(errorMessage(it.Error)))
		return
	case client.PlanCreate:
		fmt.Fprintf(w, "%s: create, %s\n", head, it.Pattern)
	case client.PlanReplace:
		fmt.Fprintf(w, "%s: replace %s, %s; needs khub apply --replace\n", head, it.IntegrationID, it.Pattern)
	default:
		fmt.Fprintf(w, "%s: %s %s, %s\n", head, it.Action, it.IntegrationID, it.Pattern)
	}
	for _, c := range it.Changes {
		how := "in place"
		if !c.InPlace {
			how = "cannot change in place"
		}
		fmt.Fprintf(w, "  change:  %s %s → %s (%s)\n", c.Field, oneLine(c.From), oneLine(c.To), how)
	}
	for j, reason := range it.Reasons {
		label := "           "
		if j == 0 {
			label = "  why:     "
		}
		fmt.Fprintf(w, "%s%s\n", label, reason)
	}
	fmt.Fprintf(w, "  load:    %s\n", loadText(&file.entries[i], it))
	for _, s := range it.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", s)
	}
}

// loadText describes an integration's expected traffic in one line.
func loadText(e *client.PlanEntry, it *client.PlanItem) string {
	l := it.Load
	text := fmt.Sprintf("%s pushes/h of %s changes/h in scope", planner.FormatRate(l.PushesPerHour), planner.FormatRate(l.ChangesPerHour))
	switch {
	case l.PullsPerHour == nil:
		text += "; pull requests/h unknown"
	case *l.PullsPerHour == 0:
		text += "; no pull requests"
	case e.RequestsPerHour > 0:
		text += fmt.Sprintf("; %s pull requests/h (declared)", planner.FormatRate(*l.PullsPerHour))
	default:
		poll := e.PollInterval
		if poll == "" {
			poll = planner.DefaultPollInterval.String() + ", the default"
		}
		text += fmt.Sprintf("; %s pull requests/h (polling every %s)", planner.FormatRate(*l.PullsPerHour), poll)
	}
	if l.InitialPushes > 0 {
		text += fmt.Sprintf("; first sends the %d changes already in scope", l.InitialPushes)
	}
	return text
}

func planSummary(p *client.Plan) string {
	var parts []string
	for _, a := range []struct{ action, text string }{
		{client.PlanCreate, "to create"},
		{client.PlanUpdate, "to update in place"},
		{client.PlanUnchanged, "unchanged"},
		{client.PlanReplace, "to replace (needs --replace)"},
		{client.PlanInvalid, "invalid"},
	} {
		if n := countAction(p, a.action); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a.text))
		}
	}
	return "Summary: " + strings.Join(parts, ", ") + "."
}

func unknownPulls(p *client.Plan) int {
	n := 0
	for _, it := range p.Integrations {
		if it.Action != client.PlanInvalid && it.Load.PullsPerHour == nil {
			n++
		}
	}
	return n
}

func rateCell(it *client.PlanItem, r float64) string {
	if it.Action == client.PlanInvalid {
		return "-"
	}
	return planner.FormatRate(r)
}

func pullsCell(it *client.PlanItem) string {
	if it.Action == client.PlanInvalid {
		return "-"
	}
	if it.Load.PullsPerHour == nil {
		return "unknown"
	}
	return planner.FormatRate(*it.Load.PullsPerHour)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// spanText describes the span that the plan's rates were measured over.
func spanText(p *client.Plan, now time.Time) string {
	span := time.Duration(p.MeasuredHours * float64(time.Hour)).Round(time.Minute)
	start := p.MeasuredSince.Local().Format(time.DateTime)
	switch {
	case span >= 7*24*time.Hour:
		return "over the last 7 days"
	case now.Sub(p.MeasuredSince) < time.Hour:
		return "since the change log started at " + start + ", counted as one hour"
	}
	return fmt.Sprintf("over the %s since the change log started at %s", strings.TrimSuffix(span.String(), "0s"), start)
}

func errorMessage(e *client.ErrorDetail) string {
	if e == nil {
		return "the hub gave no reason"
	}
	return e.Message
}

// fileError adds the file position of the key that an API error names.
func fileError(file *planFile, entry int, err error) error {
	var e *client.Error
	if !errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("%s: %s: %w", file.where(entry, e.Field), oneLine(file.entries[entry].Name), err)
}
