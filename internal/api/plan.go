package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/hub"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// integrationInput converts the body of a create request for the hub.
func integrationInput(req *client.IntegrationRequest) hub.IntegrationInput {
	in := hub.IntegrationInput{
		Name:         req.Name,
		Freshness:    req.Freshness,
		Pattern:      req.Pattern,
		Scope:        fromClientScope(req.Scope),
		PollInterval: req.PollInterval,
		Lookups:      req.Lookups,
		AcceptRisk:   req.AcceptRisk,
		Delivery:     deliveryInput(req.Delivery),
	}
	if req.Webhook != nil {
		in.HasWebhook = true
		in.WebhookURL = req.Webhook.URL
		in.WebhookSecret = req.Webhook.Secret
	}
	return in
}

func deliveryInput(d *client.DeliverySettings) *hub.DeliveryInput {
	if d == nil {
		return nil
	}
	return &hub.DeliveryInput{
		InitialBackoff: d.InitialBackoff,
		MaxBackoff:     d.MaxBackoff,
		RetryFor:       d.RetryFor,
		Timeout:        d.Timeout,
		BatchSize:      d.BatchSize,
		Coalesce:       d.Coalesce,
		RateLimit:      d.RateLimit,
		PauseAfter:     d.PauseAfter,
		ProbeEvery:     d.ProbeEvery,
	}
}

// plan serves POST /v1/plan: it returns what creating or updating the
// integrations of the body would do, and their expected load, and changes
// nothing. An invalid entry is reported in its item with status 200, so
// that one mistake does not hide the plan of the others.
func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	var req client.PlanRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Integrations == nil {
		s.writeError(w, r, badRequest("integrations", "integrations is missing: give the list of integrations to plan"))
		return
	}

	inputs := make([]hub.PlanInput, len(req.Integrations))
	for i := range req.Integrations {
		e := &req.Integrations[i]
		inputs[i] = hub.PlanInput{IntegrationInput: integrationInput(&e.IntegrationRequest), Tool: e.Tool, RequestsPerHour: e.RequestsPerHour}
	}
	p, err := s.hub.PlanIntegrations(r.Context(), inputs)
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	out := client.Plan{
		Integrations:  make([]client.PlanItem, len(p.Items)),
		Warnings:      p.Warnings,
		MeasuredSince: p.MeasuredSince,
		MeasuredHours: p.MeasuredHours,
		PushesPerHour: p.PushesPerHour,
		PullsPerHour:  p.PullsPerHour,
		Unlisted:      make([]client.PlanExisting, len(p.Unlisted)),
	}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	for i := range p.Items {
		out.Integrations[i] = planItemView(&p.Items[i])
	}
	for i, st := range p.Unlisted {
		out.Unlisted[i] = client.PlanExisting{ID: st.ID, Name: st.Name, Pattern: string(st.Pattern)}
	}
	writeJSON(w, http.StatusOK, out)
}

func planItemView(it *hub.PlanItem) client.PlanItem {
	v := client.PlanItem{Name: it.Name, Tool: it.Tool, Action: it.Action, Warnings: it.Warnings}
	if it.Err != nil {
		var fe *knowledge.FieldError
		if errors.As(it.Err, &fe) {
			v.Error = &client.ErrorDetail{Code: "invalid_request", Field: fe.Field, Message: fe.Error()}
		} else {
			v.Error = &client.ErrorDetail{Code: "invalid_request", Message: it.Err.Error()}
		}
		return v
	}
	v.Pattern = string(it.Planned.Pattern)
	v.Reasons = it.Planned.Reasons
	if it.Current != nil {
		v.IntegrationID = it.Current.ID
	}
	for _, c := range it.Changes {
		v.Changes = append(v.Changes, client.PlanChange{Field: c.Field, From: c.From, To: c.To, InPlace: c.InPlace})
	}
	v.Load = client.PlanLoad{ChangesPerHour: it.ChangesPerHour, PushesPerHour: it.PushesPerHour, InitialPushes: it.InitialPushes}
	if it.PullsKnown {
		pulls := it.PullsPerHour
		v.Load.PullsPerHour = &pulls
	}
	return v
}

// integrationPatchRequest is the body of PATCH /v1/integrations/{id}. The
// name and the scope are decoded only to reject them with the reason.
type integrationPatchRequest struct {
	client.IntegrationUpdate
	Name  json.RawMessage `json:"name"`
	Scope json.RawMessage `json:"scope"`
}

// updateIntegration serves PATCH /v1/integrations/{id}: it changes the
// settings that can change in place and keeps the id, cursors, pull token
// and webhook secret. The Khub-Change header is updated or unchanged.
func (s *Server) updateIntegration(w http.ResponseWriter, r *http.Request) {
	st, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	var req integrationPatchRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	replace := "delete the integration and create it again (khub apply --replace does both)"
	if req.Scope != nil {
		s.writeError(w, r, badRequest("scope", "scope cannot change in place: the integration's cursors, delivery history and cached results all belong to its current scope, and changes already passed outside it would never reach integration %s. To change the scope, %s", st.Name, replace))
		return
	}
	if req.Name != nil {
		s.writeError(w, r, badRequest("name", "name cannot change in place: khub apply finds integrations by name. To rename integration %s, %s", st.Name, replace))
		return
	}

	u := req.IntegrationUpdate
	p := hub.IntegrationPatch{
		Pattern:      u.Pattern,
		Freshness:    u.Freshness,
		PollInterval: u.PollInterval,
		Lookups:      u.Lookups,
		AcceptRisk:   u.AcceptRisk,
		Delivery:     deliveryInput(u.Delivery),
	}
	if u.Webhook != nil {
		p.WebhookURL = &u.Webhook.URL
	}
	updated, err := s.hub.UpdateIntegration(r.Context(), st.ID, p)
	if errors.Is(err, store.ErrNotFound) {
		err = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("integration %q not found: it was deleted by another request", st.ID)}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	v, err := s.integrationView(r, &updated.State)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	outcome := client.OutcomeUnchanged
	if len(updated.Changes) > 0 {
		outcome = client.OutcomeUpdated
	}
	w.Header().Set("Khub-Change", outcome)
	writeJSON(w, http.StatusOK, v)
}
