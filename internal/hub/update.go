package hub

import (
	"context"
	"fmt"
	"strings"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/netguard"
	"github.com/khub-dev/khub/internal/planner"
	"github.com/khub-dev/khub/internal/store"
)

// IntegrationPatch changes the settings of an integration that can change
// in place. Nil fields keep their stored values.
type IntegrationPatch struct {
	// Pattern is the pattern the caller declares: auto, or the
	// integration's own pattern. It decides the reasons and which rules
	// apply, and it must resolve to the integration's pattern, because the
	// pattern cannot change in place. Nil means the integration's pattern.
	Pattern *string
	// Freshness is the new window as a Go duration.
	Freshness *string
	// PollInterval is the new polling interval; an empty string clears it,
	// so the planner assumes planner.DefaultPollInterval.
	PollInterval *string
	Lookups      *bool
	AcceptRisk   *bool
	// WebhookURL is the new destination of a push or hybrid integration.
	WebhookURL *string
	// Delivery replaces every delivery setting; fields left empty take the
	// defaults.
	Delivery *DeliveryInput
}

// Updated is the integration after an update, with the fields that changed.
type Updated struct {
	State   store.IntegrationState
	Changes []FieldChange
}

// UpdateIntegration changes an integration in place and keeps its id,
// cursors, pull token, webhook secret and delivery history. The planner
// checks the new settings and writes new reasons. A push dispatcher picks
// up a new webhook URL and delivery settings when it next re-reads the
// integration, within push.Config.StateRefresh (5s by default). A patch
// that changes nothing writes nothing.
func (h *Hub) UpdateIntegration(ctx context.Context, id string, p IntegrationPatch) (Updated, error) {
	st, err := h.Store.GetIntegration(ctx, id)
	if err != nil {
		return Updated{}, err
	}
	next, err := h.patched(&st, p)
	if err != nil {
		return Updated{}, err
	}

	changes := h.diffIntegration(&st, &next)
	if len(changes) == 0 {
		return Updated{State: st}, nil
	}
	for _, c := range changes {
		if !c.InPlace {
			// patched keeps the pattern and the scope, so this is a bug.
			return Updated{}, fmt.Errorf("update integration %s: %s cannot change in place", id, c.Field)
		}
	}

	// NOTE: two concurrent updates of one integration both read the old
	// settings, so the later write wins and drops the other's fields.
	err = h.Store.UpdateIntegration(ctx, id, store.IntegrationUpdate{
		Freshness:    next.Freshness,
		PollInterval: next.PollInterval,
		Lookups:      next.Lookups,
		AcceptRisk:   next.AcceptRisk,
		Reasons:      next.Reasons,
		WebhookURL:   next.WebhookURL,
		Delivery:     next.Delivery,
	})
	if err != nil {
		return Updated{}, err
	}
	h.refreshDispatcher(id)

	fields := make([]string, len(changes))
	for i, c := range changes {
		fields[i] = c.Field
	}
	h.logger().Info("integration updated", "integration_id", id, "name", st.Name, "fields", strings.Join(fields, ","))
	st, err = h.Store.GetIntegration(ctx, id)
	if err != nil {
		return Updated{}, err
	}
	return Updated{State: st, Changes: changes}, nil
}

// patched returns the integration with the patch applied and the reasons
// of the planner's decision. Its errors are *knowledge.FieldError naming
// the request field.
func (h *Hub) patched(st *store.IntegrationState, p IntegrationPatch) (knowledge.Integration, error) {
	next := st.Integration
	var err error
	if p.Freshness != nil {
		if next.Freshness, err = knowledge.ParseDuration("freshness", *p.Freshness); err != nil {
			return next, err
		}
	}
	if p.PollInterval != nil {
		next.PollInterval = 0
		if *p.PollInterval != "" {
			if next.PollInterval, err = knowledge.ParseDuration("poll_interval", *p.PollInterval); err != nil {
				return next, err
			}
		}
	}
	if p.Lookups != nil {
		next.Lookups = *p.Lookups
	}
	if p.AcceptRisk != nil {
		next.AcceptRisk = *p.AcceptRisk
	}
	replace := "; delete the integration and create it again to change that (khub apply --replace does both)"
	if p.WebhookURL != nil {
		if !st.Pattern.Pushes() {
			return next, &knowledge.FieldError{Field: "webhook.url", Message: fmt.Sprintf("is not used: integration %s uses pattern %s, which sends no webhooks, and the pattern cannot change in place%s", st.Name, st.Pattern, replace)}
		}
		if err := netguard.CheckURL(*p.WebhookURL, h.AllowPrivate, h.Lookup); err != nil {
			return next, err
		}
		next.WebhookURL = *p.WebhookURL
	}
	if p.Delivery != nil {
		if !st.Pattern.Pushes() {
			return next, &knowledge.FieldError{Field: "delivery", Message: fmt.Sprintf("is not used: delivery settings tune webhooks, and integration %s uses pattern %s, which sends none. Remove delivery from the request", st.Name, st.Pattern)}
		}
		if next.Delivery, err = p.Delivery.Parse(); err != nil {
			return next, err
		}
	}

	declared := st.Pattern
	if p.Pattern != nil && *p.Pattern != "" {
		declared = knowledge.Pattern(*p.Pattern)
	}
	auto := declared == knowledge.PatternAuto
	if !auto && declared != st.Pattern {
		return next, &knowledge.FieldError{Field: "pattern", Message: fmt.Sprintf("%s differs from pattern %s of integration %s, and the pattern cannot change in place, because the pull token and the push cursor belong to it%s", declared, st.Pattern, st.Name, replace)}
	}
	// Auto is judged as if a webhook were given, so that the decision
	// depends on the window, scope and polling alone.
	decision, err := planner.Decide(planner.Request{
		Pattern:      declared,
		Freshness:    next.Freshness,
		PollInterval: next.PollInterval,
		Lookups:      next.Lookups,
		Scope:        next.Scope,
		HasWebhook:   auto || st.Pattern.Pushes(),
		AcceptRisk:   next.AcceptRisk,
	})
	if err != nil {
		return next, err
	}
	if decision.Pattern != st.Pattern {
		return next, &knowledge.FieldError{Field: "pattern", Message: fmt.Sprintf("auto would choose %s for these settings (%s), but integration %s uses %s, and the pattern cannot change in place. Declare pattern %s to keep it%s",
			decision.Pattern, strings.Join(decision.Reasons, " "), st.Name, st.Pattern, st.Pattern, replace)}
	}
	next.Reasons = decision.Reasons
	return next, nil
}
