package hub

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/push"
	"github.com/khub-dev/khub/internal/store"
)

// ConflictError means a request does not fit the integration it names, such
// as resuming the webhooks of a pull integration. Its message explains why
// and how to proceed, and is safe to show the client.
type ConflictError struct {
	Message string
}

func (e *ConflictError) Error() string { return e.Message }

// DeliveryInput is the delivery settings of a request before parsing.
// Durations are Go durations such as "500ms", "30s" or "2h". Empty strings
// and zero numbers take the defaults.
type DeliveryInput struct {
	InitialBackoff string
	MaxBackoff     string
	RetryFor       string
	Timeout        string
	BatchSize      int
	Coalesce       bool
	// RateLimit is in requests per second; 0 means no limit.
	RateLimit  float64
	PauseAfter int
	ProbeEvery string
}

// Parse converts the input to settings and validates them. Errors are
// *knowledge.FieldError naming "delivery.FIELD".
func (in DeliveryInput) Parse() (knowledge.DeliverySettings, error) {
	out := knowledge.DeliverySettings{
		BatchSize:  in.BatchSize,
		Coalesce:   in.Coalesce,
		RateLimit:  in.RateLimit,
		PauseAfter: in.PauseAfter,
	}
	for _, f := range []struct {
		name string
		text string
		dst  *time.Duration
	}{
		{"initial_backoff", in.InitialBackoff, &out.InitialBackoff},
		{"max_backoff", in.MaxBackoff, &out.MaxBackoff},
		{"retry_for", in.RetryFor, &out.RetryFor},
		{"timeout", in.Timeout, &out.Timeout},
		{"probe_every", in.ProbeEvery, &out.ProbeEvery},
	} {
		if f.text == "" {
			continue
		}
		d, err := knowledge.ParseDuration("delivery."+f.name, f.text)
		if err != nil {
			return knowledge.DeliverySettings{}, err
		}
		*f.dst = d
	}
	if err := out.Validate(); err != nil {
		return knowledge.DeliverySettings{}, err
	}
	return out, nil
}

// EffectiveDelivery returns the delivery settings that the dispatchers
// apply to stored settings, with every default filled in.
func (h *Hub) EffectiveDelivery(d knowledge.DeliverySettings) knowledge.DeliverySettings {
	if h.Push != nil {
		return h.Push.EffectiveSettings(d)
	}
	return d.WithDefaults()
}

// ResumeReason is the state reason recorded when an operator resumes an
// integration.
const ResumeReason = "resumed by an operator"

// ResumeIntegration makes a paused or disabled integration's webhooks flow
// again. The dispatcher notices within push.Config.StateRefresh (5s by
// default) on whichever node holds its lease, and sends the changes that
// waited, starting with the one that was refused. Resuming an active
// integration changes nothing.
func (h *Hub) ResumeIntegration(ctx context.Context, id string) (store.IntegrationState, error) {
	st, err := h.pushIntegration(ctx, id, "resume")
	if err != nil {
		return st, err
	}
	if st.State == "" || st.State == knowledge.StateActive {
		return st, nil
	}
	if err := h.Store.SetDeliveryState(ctx, id, knowledge.StateActive, ResumeReason, h.now()); err != nil {
		return st, err
	}
	h.refreshDispatcher(id)
	h.logger().Info("integration resumed by an operator", "integration_id", id, "was", st.State, "reason_was", st.StateReason)
	return h.Store.GetIntegration(ctx, id)
}

// Rotation bounds.
const (
	DefaultRotationOverlap = 24 * time.Hour
	MaxRotationOverlap     = 30 * 24 * time.Hour
)

// RotateInput is a request to rotate an integration's webhook secret.
type RotateInput struct {
	// Overlap is how long requests stay signed with the old secret as well,
	// as a Go duration. Empty means DefaultRotationOverlap, and "0s" stops
	// signing with the old secret at once.
	Overlap string
	// Secret is the new secret, "whsec_" and base64; empty generates one.
	Secret string
}

// Rotated is the result of a rotation. Secret is shown to the caller once.
type Rotated struct {
	State  store.IntegrationState
	Secret string
	// PreviousUntil is when requests stop carrying a signature under the
	// old secret.
	PreviousUntil time.Time
}

// RotateSecret gives an integration a new webhook secret. Until the
// overlap ends, every request carries a signature under the new secret and
// one under the old, so receivers can switch at any time within it. A
// second rotation within the overlap drops the oldest secret at once.
func (h *Hub) RotateSecret(ctx context.Context, id string, in RotateInput) (Rotated, error) {
	overlap := DefaultRotationOverlap
	if in.Overlap != "" {
		d, err := time.ParseDuration(in.Overlap)
		if err != nil {
			return Rotated{}, &knowledge.FieldError{Field: "overlap", Message: fmt.Sprintf("%q is not a duration: use a number with a unit, such as 1h or 24h, or 0s to stop signing with the old secret at once", in.Overlap)}
		}
		if d < 0 || d > MaxRotationOverlap {
			return Rotated{}, &knowledge.FieldError{Field: "overlap", Message: fmt.Sprintf("%s is out of range: use 0s to %s", d, MaxRotationOverlap)}
		}
		overlap = d
	}

	secret := in.Secret
	if secret != "" {
		if _, err := push.ParseSecret(secret); err != nil {
			var fe *knowledge.FieldError
			if errors.As(err, &fe) {
				return Rotated{}, &knowledge.FieldError{Field: "secret", Message: fe.Message}
			}
			return Rotated{}, err
		}
	}
	st, err := h.pushIntegration(ctx, id, "rotate the secret of")
	if err != nil {
		return Rotated{}, err
	}
	if secret == "" {
		secret = push.NewSecret()
	} else if secret == st.WebhookSecret {
		return Rotated{}, &knowledge.FieldError{Field: "secret", Message: "is the current secret: give a new one, or omit the field to have khub generate one"}
	}

	until := h.now().Add(overlap)
	if err := h.Store.RotateSecret(ctx, id, secret, until); err != nil {
		return Rotated{}, err
	}
	h.refreshDispatcher(id)
	h.logger().Info("webhook secret rotated", "integration_id", id, "previous_secret_until", until)
	st, err = h.Store.GetIntegration(ctx, id)
	if err != nil {
		return Rotated{}, err
	}
	return Rotated{State: st, Secret: secret, PreviousUntil: until}, nil
}

// ReplayInput selects changes to send again. At least one bound is
// required. EventID is a webhook-id from the delivery history: "evt_N"
// names cursor N and "batch_A-B" cursors A to B. It excludes the other
// bounds.
type ReplayInput struct {
	FromCursor, ToCursor int64
	// Since and Until are RFC 3339 times bounding the changes' commit
	// times: Since <= time < Until.
	Since, Until string
	EventID      string
}

// Replay is a replay that runs in the background.
type Replay struct {
	FromCursor, ToCursor int64
	Since, Until         time.Time
}

// Replay sends an integration's changes in the range again, with their
// original webhook-ids, beside its dispatcher. It runs on this node, and
// only changes up to the push cursor are sent, because later ones are
// still on their way. It returns a *ConflictError when nothing in the range has
// been sent yet.
func (h *Hub) Replay(ctx context.Context, id string, in ReplayInput) (Replay, error) {
	r, err := in.parse()
	if err != nil {
		return Replay{}, err
	}
	st, err := h.pushIntegration(ctx, id, "replay the webhooks of")
	if err != nil {
		return Replay{}, err
	}
	if h.Push == nil {
		return Replay{}, errors.New("replay: this hub runs no push dispatchers")
	}
	started, err := h.Push.Replay(ctx, id, r)
	if errors.Is(err, push.ErrNothingToReplay) && st.PushCursor == 0 {
		return Replay{}, &ConflictError{Message: fmt.Sprintf(
			"nothing to replay: integration %s has not been sent any change yet, and a replay sends again only changes already sent", st.Name)}
	}
	if errors.Is(err, push.ErrNothingToReplay) {
		return Replay{}, &ConflictError{Message: fmt.Sprintf(
			"nothing to replay: %s; integration %s has been sent the changes up to cursor %d, and a replay sends again only changes already sent. Later changes are still on their way; give a range that starts at or below cursor %d",
			describeRange(r), st.Name, st.PushCursor, st.PushCursor)}
	}
	if err != nil {
		return Replay{}, err
	}
	// The push manager logs the replay's start and end.
	return Replay{FromCursor: started.FromCursor, ToCursor: started.ToCursor, Since: r.Since, Until: r.Until}, nil
}

func describeRange(r push.ReplayRange) string {
	from := max(r.FromCursor, 1)
	if r.ToCursor > 0 {
		return fmt.Sprintf("the range is cursors %d to %d", from, r.ToCursor)
	}
	return fmt.Sprintf("the range starts at cursor %d", from)
}

// parse validates the input and returns the range. Its errors are
// *knowledge.FieldError naming the request field.
func (in ReplayInput) parse() (push.ReplayRange, error) {
	var r push.ReplayRange
	if in.FromCursor == 0 && in.ToCursor == 0 && in.Since == "" && in.Until == "" && in.EventID == "" {
		return r, &knowledge.FieldError{Field: "from_cursor", Message: "is missing, as are to_cursor, since, until and event_id: give at least one bound, such as event_id \"evt_42\" or from_cursor and to_cursor, so that a replay never resends the whole history by accident"}
	}
	if in.FromCursor < 0 {
		return r, &knowledge.FieldError{Field: "from_cursor", Message: fmt.Sprintf("%d is negative: give a change-log cursor of 1 or more", in.FromCursor)}
	}
	if in.ToCursor < 0 {
		return r, &knowledge.FieldError{Field: "to_cursor", Message: fmt.Sprintf("%d is negative: give a change-log cursor of 1 or more", in.ToCursor)}
	}
	if in.ToCursor != 0 && in.ToCursor < in.FromCursor {
		return r, &knowledge.FieldError{Field: "to_cursor", Message: fmt.Sprintf("%d is below from_cursor %d: give a range whose end is at or above its start", in.ToCursor, in.FromCursor)}
	}
	if in.EventID != "" {
		if in.FromCursor != 0 || in.ToCursor != 0 || in.Since != "" || in.Until != "" {
			return r, &knowledge.FieldError{Field: "event_id", Message: "cannot be combined with from_cursor, to_cursor, since or until: an event id names its changes already"}
		}
		from, to, ok := parseEventID(in.EventID)
		if !ok {
			return r, &knowledge.FieldError{Field: "event_id", Message: fmt.Sprintf("%.80q is not an event id: give the webhook-id of a delivery, such as evt_42 or batch_40-49", in.EventID)}
		}
		r.FromCursor, r.ToCursor = from, to
		return r, nil
	}
	r.FromCursor, r.ToCursor = in.FromCursor, in.ToCursor
	var err error
	if r.Since, err = ParseTime("since", in.Since); err != nil {
		return r, err
	}
	if r.Until, err = ParseTime("until", in.Until); err != nil {
		return r, err
	}
	if !r.Since.IsZero() && !r.Until.IsZero() && !r.Until.After(r.Since) {
		return r, &knowledge.FieldError{Field: "until", Message: fmt.Sprintf("%s is not after since %s: give an end later than the start", in.Until, in.Since)}
	}
	return r, nil
}

// parseEventID returns the cursors that a webhook-id names: "evt_N" is
// cursor N and "batch_A-B" cursors A to B.
func parseEventID(id string) (from, to int64, ok bool) {
	if n, found := strings.CutPrefix(id, "evt_"); found {
		c, err := strconv.ParseInt(n, 10, 64)
		return c, c, err == nil && c > 0
	}
	if span, found := strings.CutPrefix(id, "batch_"); found {
		a, b, found := strings.Cut(span, "-")
		if !found {
			return 0, 0, false
		}
		from, err1 := strconv.ParseInt(a, 10, 64)
		to, err2 := strconv.ParseInt(b, 10, 64)
		return from, to, err1 == nil && err2 == nil && from > 0 && to >= from
	}
	return 0, 0, false
}

// ParseTime parses an RFC 3339 time for the named field; empty gives the
// zero time.
func ParseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, &knowledge.FieldError{Field: field, Message: fmt.Sprintf("%.80q is not an RFC 3339 time: use a form such as 2026-03-01T12:00:00Z", s)}
	}
	return t, nil
}

// pushIntegration reads an integration for an operation on its webhooks,
// named by verb in messages, and returns a *ConflictError when it has none.
func (h *Hub) pushIntegration(ctx context.Context, id, verb string) (store.IntegrationState, error) {
	st, err := h.Store.GetIntegration(ctx, id)
	if err != nil {
		return st, err
	}
	if !st.Pattern.Pushes() {
		return st, &ConflictError{Message: fmt.Sprintf(
			"cannot %s integration %s (%s): it uses pattern %s, so khub sends it no webhooks; its tool reads through the API with its pull token",
			verb, st.ID, st.Name, st.Pattern)}
	}
	return st, nil
}

// refreshDispatcher makes this node's dispatcher of the integration, if it
// runs one, take a change of its settings, secrets or state before its
// next request. Other nodes take it within the push manager's state
// refresh.
func (h *Hub) refreshDispatcher(id string) {
	if h.Push != nil {
		h.Push.Refresh(id)
	}
}
