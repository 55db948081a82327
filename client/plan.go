package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// PlanEntry is one integration of a plan: a create request with the tool it
// connects and the pull requests per hour it declares.
type PlanEntry struct {
	IntegrationRequest
	// Tool is the name of the product the integration connects, for people
	// to read. khub does not store it.
	Tool string `json:"tool,omitempty"`
	// RequestsPerHour is the declared pull usage. 0 means undeclared, and a
	// poller is then assumed to make 3600/poll_interval requests per hour.
	RequestsPerHour float64 `json:"requests_per_hour,omitempty"`
}

// PlanRequest is the body of POST /v1/plan.
type PlanRequest struct {
	Integrations []PlanEntry `json:"integrations"`
}

// Plan actions.
const (
	PlanCreate    = "create"
	PlanUpdate    = "update"
	PlanUnchanged = "unchanged"
	// PlanReplace means the pattern or the scope differs, which cannot
	// change in place: the integration must be deleted and created again.
	PlanReplace = "replace"
	// PlanInvalid means the entry cannot be planned, for the reason in Error.
	PlanInvalid = "invalid"
)

// Plan is the response of POST /v1/plan: the action that applying each
// entry would take and the load it would add. Planning changes nothing on
// the hub.
type Plan struct {
	Integrations []PlanItem `json:"integrations"`
	// Warnings concern the plan as a whole.
	Warnings []string `json:"warnings"`
	// MeasuredSince and MeasuredHours give the span the change rates were
	// measured over: the last 7 days, or since the oldest change in the log
	// when that is later, and at least one hour.
	MeasuredSince time.Time `json:"measured_since"`
	MeasuredHours float64   `json:"measured_hours"`
	// PushesPerHour and PullsPerHour add up the valid entries. Pulls of
	// tools that declare no requests_per_hour for their lookups are left out.
	PushesPerHour float64 `json:"pushes_per_hour"`
	PullsPerHour  float64 `json:"pulls_per_hour"`
	// Unlisted are the integrations on the hub that the plan does not name;
	// applying the plan leaves them alone.
	Unlisted []PlanExisting `json:"unlisted"`
}

// PlanExisting names an integration on the hub.
type PlanExisting struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Pattern string `json:"pattern"`
}

// PlanItem is the plan of one entry, in the order of the request.
type PlanItem struct {
	Name   string `json:"name"`
	Tool   string `json:"tool,omitempty"`
	Action string `json:"action"`
	// Error is the reason an invalid entry cannot be planned.
	Error *ErrorDetail `json:"error,omitempty"`
	// Pattern is the pattern the entry gets, and Reasons explain it.
	Pattern string   `json:"pattern,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	// IntegrationID is the id of the integration of the same name on the
	// hub, if there is one.
	IntegrationID string `json:"integration_id,omitempty"`
	// Changes are the fields that differ from that integration.
	Changes []PlanChange `json:"changes,omitempty"`
	Load    PlanLoad     `json:"load"`
	// Warnings concern this entry.
	Warnings []string `json:"warnings,omitempty"`
}

// PlanChange is one field that applying the plan changes.
type PlanChange struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
	// InPlace is false for the pattern and the scope, which need the
	// integration deleted and created again.
	InPlace bool `json:"in_place"`
}

// PlanLoad is the expected traffic of one integration.
type PlanLoad struct {
	// ChangesPerHour is the measured rate of changes in scope, and
	// PushesPerHour the rate of those the pattern sends by webhook.
	ChangesPerHour float64 `json:"changes_per_hour"`
	PushesPerHour  float64 `json:"pushes_per_hour"`
	// PullsPerHour is the expected API requests per hour, or nil when the tool
	// looks knowledge up but declares no requests_per_hour.
	PullsPerHour *float64 `json:"pulls_per_hour"`
	// InitialPushes is the number of changes already in the log that a new
	// integration is sent first, for create and replace only.
	InitialPushes int64 `json:"initial_pushes,omitempty"`
}

// IntegrationUpdate is a change to an integration in place. Nil fields
// stay as they are. The pattern and the scope cannot change in place.
type IntegrationUpdate struct {
	// Pattern is the declared pattern, auto or the integration's own. It
	// decides the reasons and the rules that apply, and it must resolve to
	// the integration's pattern.
	Pattern      *string `json:"pattern,omitempty"`
	Freshness    *string `json:"freshness,omitempty"`
	PollInterval *string `json:"poll_interval,omitempty"`
	Lookups      *bool   `json:"lookups,omitempty"`
	AcceptRisk   *bool   `json:"accept_risk,omitempty"`
	// Webhook is the new destination URL. The secret changes only through
	// RotateSecret.
	Webhook *WebhookUpdate `json:"webhook,omitempty"`
	// Delivery is the replacement for every delivery setting, and empty
	// fields take the hub's defaults.
	Delivery *DeliverySettings `json:"delivery,omitempty"`
}

// WebhookUpdate is a new webhook destination.
type WebhookUpdate struct {
	URL string `json:"url"`
}

// Plan returns what applying the entries would do and the load they would
// add, without changing anything.
func (c *Client) Plan(ctx context.Context, req PlanRequest) (Plan, error) {
	var out Plan
	_, err := c.do(ctx, http.MethodPost, "/v1/plan", nil, req, &out)
	return out, err
}

// UpdateIntegration changes an integration in place, keeping its id,
// cursors, pull token and webhook secret. It returns the integration and
// OutcomeUpdated or OutcomeUnchanged.
func (c *Client) UpdateIntegration(ctx context.Context, id string, req IntegrationUpdate) (Integration, string, error) {
	var out Integration
	resp, err := c.do(ctx, http.MethodPatch, "/v1/integrations/"+url.PathEscape(id), nil, req, &out)
	if err != nil {
		return out, "", err
	}
	return out, resp.Header.Get("Khub-Change"), nil
}
