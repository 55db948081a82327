package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/hub"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

func (s *Server) createIntegration(w http.ResponseWriter, r *http.Request) {
	var req client.IntegrationRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	in := hub.IntegrationInput{
		Name:         req.Name,
		Freshness:    req.Freshness,
		Pattern:      req.Pattern,
		Scope:        fromClientScope(req.Scope),
		PollInterval: req.PollInterval,
		Lookups:      req.Lookups,
		AcceptRisk:   req.AcceptRisk,
	}
	if req.Webhook != nil {
		in.HasWebhook = true
		in.WebhookURL = req.Webhook.URL
		in.WebhookSecret = req.Webhook.Secret
	}
	created, err := s.hub.CreateIntegration(r.Context(), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.integrationView(r, &created.State)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out.Token = created.Token
	if out.Webhook != nil {
		// The secret is shown once, here; later reads omit it.
		out.Webhook.Secret = created.State.WebhookSecret
	}
	w.Header().Set("Location", "/v1/integrations/"+created.State.ID)
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listIntegrations(w http.ResponseWriter, r *http.Request) {
	all, err := s.hub.Store.ListIntegrations(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := client.IntegrationList{Integrations: make([]client.Integration, 0, len(all))}
	for i := range all {
		v, err := s.integrationView(r, &all[i])
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out.Integrations = append(out.Integrations, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getIntegration(w http.ResponseWriter, r *http.Request) {
	st, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	v, err := s.integrationView(r, &st)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) deleteIntegration(w http.ResponseWriter, r *http.Request) {
	st, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	if err := s.hub.DeleteIntegration(r.Context(), st.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// Another request deleted it after loadIntegration read it.
			err = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("integration %q not found: it was deleted by another request", st.ID)}
		}
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	st, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	limit, err := intParam(r.URL.Query(), "limit", 50, 1, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	attempts, err := s.hub.Store.ListDeliveries(r.Context(), st.ID, int(limit))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := client.DeliveryList{Deliveries: make([]client.Delivery, len(attempts))}
	for i, a := range attempts {
		out.Deliveries[i] = client.Delivery{
			EventID:    a.EventID,
			Cursor:     a.Cursor,
			ArticleID:  a.ArticleID,
			Version:    a.Version,
			Type:       string(a.Type),
			Attempt:    a.Attempt,
			StatusCode: a.StatusCode,
			Error:      a.Error,
			LatencyMS:  float64(a.Latency.Microseconds()) / 1000,
			StartedAt:  a.StartedAt,
			Outcome:    a.Outcome,
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) loadIntegration(w http.ResponseWriter, r *http.Request) (store.IntegrationState, bool) {
	id := r.PathValue("id")
	if err := knowledge.ValidateID("id", id); err != nil {
		s.writeError(w, r, err)
		return store.IntegrationState{}, false
	}
	st, err := s.hub.Store.GetIntegration(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		err = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("integration %q not found: list the integrations with GET /v1/integrations to find its id", id)}
	}
	if err != nil {
		s.writeError(w, r, err)
		return st, false
	}
	return st, true
}

// integrationView renders an integration with a fresh staleness reading.
func (s *Server) integrationView(r *http.Request, st *store.IntegrationState) (client.Integration, error) {
	rep, err := s.hub.Freshness(r.Context(), st)
	if err != nil {
		return client.Integration{}, err
	}
	v := client.Integration{
		ID:         st.ID,
		Name:       st.Name,
		Pattern:    string(st.Pattern),
		Reasons:    st.Reasons,
		Scope:      toClientScope(st.Scope),
		Lookups:    st.Lookups,
		AcceptRisk: st.AcceptRisk,
		CreatedAt:  st.CreatedAt,
		PushCursor: st.PushCursor,
		PullCursor: st.PullCursor,
		LastError:  st.LastError,
		Freshness: client.Freshness{
			Window:              st.Freshness.String(),
			StalenessSeconds:    rep.Staleness.Seconds(),
			WithinWindow:        rep.WithinWindow,
			OldestPendingCursor: rep.OldestPending,
		},
		LastPullAt:    timePtr(st.LastPullAt),
		LastErrorAt:   timePtr(st.LastErrorAt),
		LastSuccessAt: timePtr(st.LastSuccessAt),
	}
	if st.PollInterval > 0 {
		v.PollInterval = st.PollInterval.String()
	}
	if st.Retry.Cursor != 0 {
		v.RetryDueAt = timePtr(st.Retry.DueAt)
	}
	if st.Pattern.Pushes() {
		v.Webhook = &client.Webhook{URL: st.WebhookURL}
	}
	return v, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func fromClientScope(s client.Scope) knowledge.Scope {
	out := knowledge.Scope{Collections: s.Collections, Tags: s.Tags, Metadata: s.Metadata}
	for _, c := range s.Classes {
		out.Classes = append(out.Classes, knowledge.Class(c))
	}
	return out
}

func toClientScope(s knowledge.Scope) client.Scope {
	out := client.Scope{Collections: s.Collections, Tags: s.Tags, Metadata: s.Metadata}
	for _, c := range s.Classes {
		out.Classes = append(out.Classes, string(c))
	}
	return out
}
