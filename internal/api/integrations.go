package api

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
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
	created, err := s.hub.CreateIntegration(r.Context(), integrationInput(&req))
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
		// The secret is shown once, here. Later reads omit it.
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
	// This node's streams of the integration end at once. Other nodes
	// find the deletion when they recheck, within streamRecheck.
	s.streams.pulls.markGone(st.ID)
	w.WriteHeader(http.StatusNoContent)
}

// deliveryParams are the query parameters of the delivery history.
var deliveryParams = []string{"status", "article", "since", "until", "limit"}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	st, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	f, err := deliveryFilter(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	attempts, err := s.hub.Store.QueryDeliveries(r.Context(), st.ID, f)
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

// deliveryFilter reads the query of GET /v1/integrations/{id}/deliveries.
// Errors name the parameter at fault.
func deliveryFilter(q url.Values) (store.DeliveryFilter, error) {
	var f store.DeliveryFilter
	keys := slices.Sorted(maps.Keys(q))
	for _, key := range keys {
		if !slices.Contains(deliveryParams, key) {
			return f, badRequest(key, "unknown query parameter %q: use %s", key, strings.Join(deliveryParams, ", "))
		}
		if len(q[key]) > 1 {
			return f, badRequest(key, "%s is given %d times: give it once", key, len(q[key]))
		}
	}

	switch status := q.Get("status"); status {
	case "", store.OutcomeDelivered, store.OutcomeRetrying, store.OutcomeFailed:
		f.Outcome = status
	default:
		return f, badRequest("status", "status %.40q is invalid: use %s, %s or %s", status, store.OutcomeDelivered, store.OutcomeRetrying, store.OutcomeFailed)
	}
	if id := q.Get("article"); id != "" {
		if err := knowledge.ValidateID("article", id); err != nil {
			return f, err
		}
		f.ArticleID = id
	}
	var err error
	if f.Since, err = hub.ParseTime("since", q.Get("since")); err != nil {
		return f, err
	}
	if f.Until, err = hub.ParseTime("until", q.Get("until")); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, badRequest("until", "until %s is not after since %s: give an end later than the start", q.Get("until"), q.Get("since"))
	}

	limit, err := intParam(q, "limit", 50, 1, 1000)
	if err != nil {
		return f, err
	}
	f.Limit = int(limit)
	return f, nil
}

// resumeIntegration makes a paused or disabled integration send again.
func (s *Server) resumeIntegration(w http.ResponseWriter, r *http.Request) {
	st, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	st, err := s.hub.ResumeIntegration(r.Context(), st.ID)
	if err != nil {
		s.writeHubError(w, r, err)
		return
	}
	v, err := s.integrationView(r, &st)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) {
	st, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	var req client.RotateSecretRequest
	if err := decodeOptionalJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	rotated, err := s.hub.RotateSecret(r.Context(), st.ID, hub.RotateInput{Overlap: req.Overlap, Secret: req.Secret})
	if err != nil {
		s.writeHubError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.RotatedSecret{
		IntegrationID:           st.ID,
		Secret:                  rotated.Secret,
		PreviousSecretExpiresAt: rotated.PreviousUntil,
	})
}

// replayRequest is the body of POST /v1/integrations/{id}/replay. Times
// are strings here, so that a malformed one is reported under its field.
type replayRequest struct {
	FromCursor int64  `json:"from_cursor"`
	ToCursor   int64  `json:"to_cursor"`
	Since      string `json:"since"`
	Until      string `json:"until"`
	EventID    string `json:"event_id"`
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	st, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	var req replayRequest
	if err := decodeOptionalJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	started, err := s.hub.Replay(r.Context(), st.ID, hub.ReplayInput{
		FromCursor: req.FromCursor, ToCursor: req.ToCursor, Since: req.Since, Until: req.Until, EventID: req.EventID,
	})
	if err != nil {
		s.writeHubError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, client.ReplayStarted{
		IntegrationID: st.ID,
		FromCursor:    started.FromCursor,
		ToCursor:      started.ToCursor,
		Since:         timePtr(started.Since),
		Until:         timePtr(started.Until),
	})
}

// writeHubError writes 409 for a *hub.ConflictError and maps any other
// error as writeError does.
func (s *Server) writeHubError(w http.ResponseWriter, r *http.Request, err error) {
	var conflict *hub.ConflictError
	if errors.As(err, &conflict) {
		err = &apiError{Status: http.StatusConflict, Code: "conflict", Message: conflict.Message}
	}
	s.writeError(w, r, err)
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
	if v.SLO, err = s.sloView(r, st, rep); err != nil {
		return client.Integration{}, err
	}
	if v.Applied, err = s.appliedView(r, st); err != nil {
		return client.Integration{}, err
	}
	if st.PollInterval > 0 {
		v.PollInterval = st.PollInterval.String()
	}
	if st.Retry.Cursor != 0 {
		v.RetryDueAt = timePtr(st.Retry.DueAt)
	}
	if st.Pattern.Pushes() {
		v.Webhook = &client.Webhook{URL: st.WebhookURL}
		v.Delivery = deliveryView(s.hub.EffectiveDelivery(st.Delivery))
		v.State = string(st.State)
		if v.State == "" {
			v.State = client.StateActive
		}
		v.StateReason = st.StateReason
		v.StateSince = timePtr(st.StateSince)
		// Only the end of the overlap is shown, never a secret.
		if st.PreviousSecret != "" && time.Now().Before(st.PreviousSecretUntil) {
			v.PreviousSecretExpiresAt = timePtr(st.PreviousSecretUntil)
		}
	}
	return v, nil
}

func deliveryView(d knowledge.DeliverySettings) *client.DeliverySettings {
	return &client.DeliverySettings{
		InitialBackoff: d.InitialBackoff.String(),
		MaxBackoff:     d.MaxBackoff.String(),
		RetryFor:       d.RetryFor.String(),
		Timeout:        d.Timeout.String(),
		BatchSize:      d.BatchSize,
		Coalesce:       d.Coalesce,
		RateLimit:      d.RateLimit,
		PauseAfter:     d.PauseAfter,
		ProbeEvery:     d.ProbeEvery.String(),
	}
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
