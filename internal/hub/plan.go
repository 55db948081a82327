package hub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/planner"
	"github.com/khub-dev/khub/internal/store"
)

// RateWindow is how far back a plan measures change rates. A week covers
// the weekday and weekend rhythm of edits.
const RateWindow = 7 * 24 * time.Hour

// MaxPlanEntries bounds the integrations of one plan, because each one costs
// a few reads of the change log.
const MaxPlanEntries = 500

// PlanInput is one integration of a plan: a create request with the tool it
// connects and the pull usage it declares.
type PlanInput struct {
	IntegrationInput
	// Tool names the product the integration connects, for people; khub
	// does not store it.
	Tool string
	// RequestsPerHour is the declared pull usage; zero means undeclared.
	RequestsPerHour float64
}

// Plan actions: what applying a plan entry does.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionUnchanged = "unchanged"
	// ActionReplace means a field that cannot change in place differs, so
	// the integration must be deleted and created again.
	ActionReplace = "replace"
	// ActionInvalid means the entry cannot be planned, for the reason in Err.
	ActionInvalid = "invalid"
)

// FieldChange is one field whose value differs between the hub and the
// plan. Values are formatted for people.
type FieldChange struct {
	Field    string
	From, To string
	// InPlace is false for the pattern and the scope. The cursors and the
	// pull token are only valid for the pattern and scope they were made
	// under, so changing either needs a new integration.
	InPlace bool
}

// PlanItem is the plan of one integration.
type PlanItem struct {
	Name   string
	Tool   string
	Action string
	// Err is the reason an invalid entry cannot be planned, usually a
	// *knowledge.FieldError.
	Err error
	// Planned is the integration as the plan would create it, with its
	// pattern and reasons.
	Planned knowledge.Integration
	// Current is the integration of the same name on the hub, if any.
	Current *store.IntegrationState
	Changes []FieldChange
	// ChangesPerHour is the measured rate of all changes in scope, and
	// PushesPerHour the rate of those the pattern pushes.
	ChangesPerHour float64
	PushesPerHour  float64
	// PullsPerHour is the expected pull requests per hour; PullsKnown is
	// false when the tool declares no usage for its lookups.
	PullsPerHour float64
	PullsKnown   bool
	// InitialPushes is the number of changes already in the log that a new
	// integration is sent first, because it starts at the beginning of the
	// log. It is zero for actions other than create and replace.
	InitialPushes int64
	Warnings      []string
}

// Plan is the outcome of planning a list of integrations: the action and
// the expected load of each.
type Plan struct {
	Items []PlanItem
	// Warnings concern the plan as a whole.
	Warnings []string
	// MeasuredSince is the start of the span the rates were measured over,
	// and MeasuredHours its length. The span is RateWindow, or shorter when
	// the change log starts later, and at least one hour.
	MeasuredSince time.Time
	MeasuredHours float64
	// PushesPerHour and PullsPerHour add up the valid entries; pulls of
	// tools that declare no usage are left out.
	PushesPerHour float64
	PullsPerHour  float64
	// Unlisted are the integrations on the hub that the plan does not name.
	// Applying the plan leaves them alone.
	Unlisted []store.IntegrationState
}

// PlanIntegrations plans the integrations without changing anything. It
// validates each one as CreateIntegration would and lets the planner choose
// its pattern. Then it compares the result with the integration of the same
// name on the hub and estimates the load from the change rate of its scope.
// An invalid entry is reported in its item and the others are still planned.
func (h *Hub) PlanIntegrations(ctx context.Context, inputs []PlanInput) (Plan, error) {
	if len(inputs) > MaxPlanEntries {
		return Plan{}, &knowledge.FieldError{Field: "integrations", Message: fmt.Sprintf("has %d entries; the maximum is %d: split the plan into several files", len(inputs), MaxPlanEntries)}
	}
	existing, err := h.Store.ListIntegrations(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("list integrations: %w", err)
	}
	byName := make(map[string]*store.IntegrationState, len(existing))
	for i := range existing {
		byName[existing[i].Name] = &existing[i]
	}
	var plan Plan
	if plan.MeasuredSince, plan.MeasuredHours, err = h.rateSpan(ctx); err != nil {
		return Plan{}, err
	}

	named := map[string]int{} // name of a valid entry → 1-based entry number
	listed := map[string]bool{}
	var usages []planner.Usage
	for i, in := range inputs {
		item, usage, err := h.planOne(ctx, in, byName, plan.MeasuredSince, plan.MeasuredHours)
		if err != nil {
			return Plan{}, err
		}
		if first, dup := named[item.Name]; dup && item.Err == nil {
			item = PlanItem{Name: item.Name, Tool: in.Tool, Action: ActionInvalid, Err: &knowledge.FieldError{Field: "name",
				Message: fmt.Sprintf("%q is given twice, in entries %d and %d: give each integration one entry", item.Name, first, i+1)}}
		}
		listed[item.Name] = true
		if item.Err == nil {
			named[item.Name] = i + 1
			usages = append(usages, usage)
			plan.PushesPerHour += item.PushesPerHour
			plan.PullsPerHour += item.PullsPerHour
		}
		plan.Items = append(plan.Items, item)
	}
	plan.Warnings = planner.PlanWarnings(usages)
	for _, st := range existing {
		if !listed[st.Name] {
			plan.Unlisted = append(plan.Unlisted, st)
		}
	}
	return plan, nil
}

// planOne plans one entry. Validation failures go into the item; only
// store failures are returned as errors.
func (h *Hub) planOne(ctx context.Context, in PlanInput, byName map[string]*store.IntegrationState, since time.Time, hours float64) (PlanItem, planner.Usage, error) {
	item := PlanItem{Name: strings.TrimSpace(in.Name), Tool: in.Tool}
	invalid := func(err error) (PlanItem, planner.Usage, error) {
		var fe *knowledge.FieldError
		if !errors.As(err, &fe) {
			return PlanItem{}, planner.Usage{}, err
		}
		item.Action, item.Err = ActionInvalid, fe
		return item, planner.Usage{}, nil
	}
	if math.IsNaN(in.RequestsPerHour) || in.RequestsPerHour < 0 || math.IsInf(in.RequestsPerHour, 0) {
		return invalid(&knowledge.FieldError{Field: "requests_per_hour", Message: fmt.Sprintf("%v is invalid: give the pull requests the tool makes per hour, such as 120, or leave it out", in.RequestsPerHour)})
	}
	if err := checkToolName(in.Tool); err != nil {
		return invalid(err)
	}
	ig, err := h.buildIntegration(ctx, in.IntegrationInput)
	if err != nil {
		return invalid(err)
	}
	item.Planned = ig
	item.Current = byName[ig.Name]
	switch {
	case item.Current == nil:
		item.Action = ActionCreate
	default:
		item.Changes = h.diffIntegration(item.Current, &ig)
		item.Action = ActionUnchanged
		for _, c := range item.Changes {
			item.Action = ActionUpdate
			if !c.InPlace {
				item.Action = ActionReplace
				break
			}
		}
	}

	recent, err := h.Store.CountChanges(ctx, ig.Scope, since)
	if err != nil {
		return PlanItem{}, planner.Usage{}, fmt.Errorf("count changes in the scope of %q: %w", ig.Name, err)
	}
	all, pushed := countPushed(&ig, recent)
	item.ChangesPerHour, item.PushesPerHour = float64(all)/hours, float64(pushed)/hours
	if item.Action == ActionCreate || item.Action == ActionReplace {
		backlog, err := h.Store.CountChanges(ctx, ig.Scope, time.Time{})
		if err != nil {
			return PlanItem{}, planner.Usage{}, fmt.Errorf("count changes in the scope of %q: %w", ig.Name, err)
		}
		_, item.InitialPushes = countPushed(&ig, backlog)
	}

	usage := planner.Usage{
		Name: ig.Name,
		Request: planner.Request{Pattern: ig.Pattern, Freshness: ig.Freshness, PollInterval: ig.PollInterval,
			Lookups: ig.Lookups, Scope: ig.Scope, HasWebhook: ig.Pattern.Pushes(), AcceptRisk: ig.AcceptRisk},
		Decision:        planner.Decision{Pattern: ig.Pattern, Reasons: ig.Reasons},
		RequestsPerHour: in.RequestsPerHour,
		PushesPerHour:   item.PushesPerHour,
	}
	item.PullsPerHour, item.PullsKnown = usage.PullsPerHour()
	item.Warnings = usage.Warnings()
	return item, usage, nil
}

// checkToolName checks the tool of a plan entry, which plans print in
// tables, so control characters that could garble a terminal are rejected.
func checkToolName(tool string) error {
	switch {
	case len(tool) > MaxNameLen || !utf8.ValidString(tool):
		return &knowledge.FieldError{Field: "tool", Message: fmt.Sprintf("must be valid UTF-8 of at most %d bytes: name the product, such as \"Zendesk\"", MaxNameLen)}
	case strings.ContainsFunc(tool, unicode.IsControl):
		return &knowledge.FieldError{Field: "tool", Message: fmt.Sprintf("%q contains a control character: use printable characters only, such as \"Zendesk\"", tool)}
	}
	return nil
}

// rateSpan returns the span that rates are measured over: the last
// RateWindow, or since the oldest entry of the change log when that is
// later. The span is at least one hour, so that a log that started minutes
// ago does not turn a handful of changes into a large hourly rate.
func (h *Hub) rateSpan(ctx context.Context) (time.Time, float64, error) {
	now := h.now()
	since := now.Add(-RateWindow)
	oldest, err := h.Store.OldestCursor(ctx)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("read the oldest change: %w", err)
	}
	if oldest > 0 {
		page, err := h.Store.ReadChanges(ctx, oldest-1, 1)
		if err != nil {
			return time.Time{}, 0, fmt.Errorf("read the oldest change: %w", err)
		}
		if len(page.Changes) > 0 && page.Changes[0].Time.After(since) {
			since = page.Changes[0].Time
		}
	}
	hours := max(now.Sub(since).Hours(), 1)
	return since, hours, nil
}

// countPushed adds up the tallies, all of them and those that the
// integration's pattern pushes.
func countPushed(ig *knowledge.Integration, tallies []store.ChangeTally) (all, pushed int64) {
	for _, t := range tallies {
		all += t.Count
		c := knowledge.Change{Type: t.Type, Article: knowledge.Article{Class: t.Class}}
		if ig.PushesChange(&c) {
			pushed += t.Count
		}
	}
	return all, pushed
}

// diffIntegration lists the fields in which the planned integration
// differs from the current one. Delivery settings are compared with their
// defaults filled in, so leaving a setting out and giving its default are
// the same. Reasons are derived from the other fields and are not compared.
func (h *Hub) diffIntegration(cur *store.IntegrationState, next *knowledge.Integration) []FieldChange {
	var out []FieldChange
	add := func(field, from, to string, inPlace bool) {
		if from != to {
			out = append(out, FieldChange{Field: field, From: from, To: to, InPlace: inPlace})
		}
	}
	add("pattern", string(cur.Pattern), string(next.Pattern), false)
	add("scope", FormatScope(cur.Scope), FormatScope(next.Scope), false)
	add("freshness", cur.Freshness.String(), next.Freshness.String(), true)
	add("poll_interval", formatPoll(cur.PollInterval), formatPoll(next.PollInterval), true)
	add("lookups", strconv.FormatBool(cur.Lookups), strconv.FormatBool(next.Lookups), true)
	add("accept_risk", strconv.FormatBool(cur.AcceptRisk), strconv.FormatBool(next.AcceptRisk), true)
	if cur.Pattern.Pushes() && next.Pattern.Pushes() {
		add("webhook.url", cur.WebhookURL, next.WebhookURL, true)
		from, to := h.EffectiveDelivery(cur.Delivery), h.EffectiveDelivery(next.Delivery)
		for _, f := range deliveryFields(from, to) {
			add("delivery."+f.name, f.from, f.to, true)
		}
	}
	return out
}

type deliveryField struct{ name, from, to string }

// deliveryFields formats each delivery setting of a and b under its
// request name.
func deliveryFields(a, b knowledge.DeliverySettings) []deliveryField {
	return []deliveryField{
		{"initial_backoff", a.InitialBackoff.String(), b.InitialBackoff.String()},
		{"max_backoff", a.MaxBackoff.String(), b.MaxBackoff.String()},
		{"retry_for", a.RetryFor.String(), b.RetryFor.String()},
		{"timeout", a.Timeout.String(), b.Timeout.String()},
		{"batch_size", strconv.Itoa(a.BatchSize), strconv.Itoa(b.BatchSize)},
		{"coalesce", strconv.FormatBool(a.Coalesce), strconv.FormatBool(b.Coalesce)},
		{"rate_limit", strconv.FormatFloat(a.RateLimit, 'g', -1, 64), strconv.FormatFloat(b.RateLimit, 'g', -1, 64)},
		{"pause_after", strconv.Itoa(a.PauseAfter), strconv.Itoa(b.PauseAfter)},
		{"probe_every", a.ProbeEvery.String(), b.ProbeEvery.String()},
	}
}

// formatPoll formats a polling interval, naming the default for zero.
func formatPoll(d time.Duration) string {
	if d == 0 {
		return "unset (" + planner.DefaultPollInterval.String() + ")"
	}
	return d.String()
}

// FormatScope formats a normalized scope on one line, such as
// "classes policy, runbook; tags hr". An empty scope is "everything".
func FormatScope(s knowledge.Scope) string {
	var parts []string
	if len(s.Collections) > 0 {
		parts = append(parts, "collections "+strings.Join(s.Collections, ", "))
	}
	if len(s.Classes) > 0 {
		classes := make([]string, len(s.Classes))
		for i, c := range s.Classes {
			classes[i] = string(c)
		}
		parts = append(parts, "classes "+strings.Join(classes, ", "))
	}
	if len(s.Tags) > 0 {
		parts = append(parts, "tags "+strings.Join(s.Tags, ", "))
	}
	if len(s.Metadata) > 0 {
		var kv []string
		for k, v := range s.Metadata {
			kv = append(kv, k+"="+v)
		}
		slices.Sort(kv)
		parts = append(parts, "metadata "+strings.Join(kv, ", "))
	}
	if len(parts) == 0 {
		return "everything"
	}
	return strings.Join(parts, "; ")
}
