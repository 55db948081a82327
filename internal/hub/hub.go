// Package hub holds khub's use cases: writing articles, creating and
// removing integrations, measuring freshness. HTTP handlers, the command
// line and the demo call it; it calls the store, wakes change-log readers
// and tells the push dispatchers about integrations.
package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/freshness"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/netguard"
	"github.com/khub-dev/khub/internal/planner"
	"github.com/khub-dev/khub/internal/push"
	"github.com/khub-dev/khub/internal/store"
)

// Dispatchers is the part of the push manager that the hub drives.
// *push.Manager implements it.
type Dispatchers interface {
	Add(ctx context.Context, in store.IntegrationState)
	Remove(id string)
	// Refresh makes the integration's dispatcher on this node re-read it
	// before its next request, after an operator changed it.
	Refresh(id string)
	// Replay redelivers a range of changes already sent, in the background
	// on this node.
	Replay(ctx context.Context, integrationID string, r push.ReplayRange) (push.ReplayStarted, error)
	// EffectiveSettings fills the zero fields of delivery settings with the
	// defaults the dispatchers apply.
	EffectiveSettings(in knowledge.DeliverySettings) knowledge.DeliverySettings
}

// Hub ties the store, the change-log broadcaster and the dispatchers
// together. Create it with New.
type Hub struct {
	Store store.Store
	Wake  *changelog.Broadcaster
	// Push receives integrations as they are created and deleted; nil when
	// the hub does not dispatch (tests of the pull side).
	Push Dispatchers
	// AllowPrivate lets webhook URLs point at loopback and private networks.
	AllowPrivate bool
	// Lookup resolves webhook hosts; nil uses the system resolver.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	Logger *slog.Logger
	Now    func() time.Time
}

func (h *Hub) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

// SaveArticle normalizes, validates and stores an article, then wakes the
// change-log readers when a new version was written.
func (h *Hub) SaveArticle(ctx context.Context, a knowledge.Article, opts store.SaveOptions) (store.SaveResult, error) {
	a.Normalize()
	if err := a.Validate(); err != nil {
		return store.SaveResult{}, err
	}
	if opts.Now.IsZero() {
		opts.Now = h.now()
	}
	res, err := h.Store.SaveArticle(ctx, a, opts)
	if err != nil {
		return res, err
	}
	if res.Changed {
		h.Wake.Notify(res.Change.Cursor)
	}
	return res, nil
}

// ArchiveArticle stores a new version of the article with status archived
// and its current content, which the store reads in the same transaction,
// so concurrent writes of the article never make it conflict. ifVersion,
// when non-zero, must equal the current version.
func (h *Hub) ArchiveArticle(ctx context.Context, id string, ifVersion int64) (store.SaveResult, error) {
	res, err := h.Store.SaveArticle(ctx, knowledge.Article{ID: id}, store.SaveOptions{Archive: true, IfVersion: ifVersion, Now: h.now()})
	if err != nil {
		return res, err
	}
	if res.Changed {
		h.Wake.Notify(res.Change.Cursor)
	}
	return res, nil
}

// IntegrationInput is a request to create an integration, after JSON
// decoding and before validation.
type IntegrationInput struct {
	Name          string
	Freshness     string
	Pattern       string
	Scope         knowledge.Scope
	WebhookURL    string
	WebhookSecret string
	HasWebhook    bool
	PollInterval  string
	Lookups       bool
	AcceptRisk    bool
	// Delivery tunes webhook delivery; nil takes the defaults. It is
	// rejected when the chosen pattern does not push.
	Delivery *DeliveryInput
}

// Created is a new integration with the credentials shown only once.
type Created struct {
	State store.IntegrationState
	// Token is the pull token for pull and hybrid patterns, else empty.
	Token string
}

// MaxNameLen is the longest integration name, in bytes.
const MaxNameLen = 100

// CreateIntegration validates the request, lets the planner choose the
// pattern, stores the integration and starts its dispatcher.
func (h *Hub) CreateIntegration(ctx context.Context, in IntegrationInput) (Created, error) {
	var out Created
	ig, err := h.buildIntegration(ctx, in)
	if err != nil {
		return out, err
	}
	if ig.Pattern.Pulls() {
		out.Token = newToken()
		ig.TokenHash = HashToken(out.Token)
	}
	if err := h.Store.CreateIntegration(ctx, ig); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// The store keeps names unique, so name the integration that has it.
			if nameErr := h.checkNameFree(ctx, ig.Name); nameErr != nil {
				return out, nameErr
			}
		}
		return out, fmt.Errorf("store integration: %w", err)
	}
	st, err := h.Store.GetIntegration(ctx, ig.ID)
	if err != nil {
		return out, fmt.Errorf("read back integration: %w", err)
	}
	out.State = st
	if h.Push != nil && ig.Pattern.Pushes() {
		h.Push.Add(ctx, st)
	}
	h.logger().Info("integration created", "integration_id", ig.ID, "name", ig.Name, "pattern", ig.Pattern, "window", ig.Freshness.String())
	return out, nil
}

// buildIntegration validates a create request and lets the planner choose
// the pattern. It does not check that the name is free, because a plan
// builds integrations that already exist to compare them.
func (h *Hub) buildIntegration(ctx context.Context, in IntegrationInput) (knowledge.Integration, error) {
	name := strings.TrimSpace(in.Name)
	if err := checkIntegrationName(name); err != nil {
		return knowledge.Integration{}, err
	}
	window, err := knowledge.ParseDuration("freshness", in.Freshness)
	if err != nil {
		return knowledge.Integration{}, err
	}
	var poll time.Duration
	if in.PollInterval != "" {
		if poll, err = knowledge.ParseDuration("poll_interval", in.PollInterval); err != nil {
			return knowledge.Integration{}, err
		}
	}
	scope := in.Scope
	scope.Normalize()
	if len(scope.Metadata) > knowledge.MaxMetadataKeys {
		return knowledge.Integration{}, &knowledge.FieldError{Field: "scope.metadata", Message: fmt.Sprintf("has %d keys; the maximum is %d", len(scope.Metadata), knowledge.MaxMetadataKeys)}
	}
	if err := scope.Validate(); err != nil {
		return knowledge.Integration{}, err
	}
	var delivery knowledge.DeliverySettings
	if in.Delivery != nil {
		if delivery, err = in.Delivery.Parse(); err != nil {
			return knowledge.Integration{}, err
		}
	}
	// A webhook is checked whatever the pattern, so that an invalid or
	// forbidden URL is reported even when the pattern turns out to be pull.
	if in.HasWebhook {
		if err := netguard.CheckURL(in.WebhookURL, h.AllowPrivate, h.Lookup); err != nil {
			return knowledge.Integration{}, err
		}
		if in.WebhookSecret != "" {
			if _, err := push.ParseSecret(in.WebhookSecret); err != nil {
				return knowledge.Integration{}, err
			}
		}
	}

	decision, err := planner.Decide(planner.Request{
		Pattern:      knowledge.Pattern(in.Pattern),
		Freshness:    window,
		PollInterval: poll,
		Lookups:      in.Lookups,
		Scope:        scope,
		HasWebhook:   in.HasWebhook,
		AcceptRisk:   in.AcceptRisk,
	})
	if err != nil {
		return knowledge.Integration{}, err
	}
	if !decision.Pattern.Pushes() {
		chosen := fmt.Sprintf("pattern %s sends no webhooks.", decision.Pattern)
		if p := knowledge.Pattern(in.Pattern); p == "" || p == knowledge.PatternAuto {
			chosen = fmt.Sprintf("pattern auto chose %s, which sends no webhooks (%s)", decision.Pattern, strings.Join(decision.Reasons, " "))
		}
		if in.HasWebhook {
			// Dropping the webhook silently would leave the tool waiting
			// for calls that never come.
			return knowledge.Integration{}, &knowledge.FieldError{Field: "webhook", Message: "is not used: " + chosen +
				" Remove the webhook to let the tool pull, or set pattern push or hybrid to receive webhooks"}
		}
		if in.Delivery != nil {
			return knowledge.Integration{}, &knowledge.FieldError{Field: "delivery", Message: "is not used: delivery settings tune webhooks, and " + chosen +
				" Remove delivery, or set pattern push or hybrid with a webhook"}
		}
	}

	ig := knowledge.Integration{
		ID:           "int_" + randomHex(8),
		Name:         name,
		Pattern:      decision.Pattern,
		Freshness:    window,
		PollInterval: poll,
		Lookups:      in.Lookups,
		AcceptRisk:   in.AcceptRisk,
		Scope:        scope,
		Reasons:      decision.Reasons,
		CreatedAt:    h.now(),
		Delivery:     delivery,
	}
	if decision.Pattern.Pushes() {
		ig.WebhookURL = in.WebhookURL
		ig.WebhookSecret = in.WebhookSecret
		if ig.WebhookSecret == "" {
			ig.WebhookSecret = push.NewSecret()
		}
	}
	return ig, nil
}

// checkIntegrationName checks a trimmed integration name. Names appear in
// logs, tables and operations articles, so control characters, which could
// forge log lines or garble a terminal, are rejected.
func checkIntegrationName(name string) error {
	switch {
	case name == "":
		return &knowledge.FieldError{Field: "name", Message: "is required: name the tool this integration connects, such as \"helpdesk\""}
	case len(name) > MaxNameLen || !utf8.ValidString(name):
		return &knowledge.FieldError{Field: "name", Message: fmt.Sprintf("must be valid UTF-8 of at most %d bytes", MaxNameLen)}
	}
	for i, r := range name {
		if unicode.IsControl(r) {
			return &knowledge.FieldError{Field: "name", Message: fmt.Sprintf("contains the control character %U at byte %d: use printable characters only, such as \"help desk\"", r, i)}
		}
	}
	return nil
}

// checkNameFree returns a field error naming the integration that has the
// name, if one has. It lists every integration, so it runs only after the
// store rejected a create.
func (h *Hub) checkNameFree(ctx context.Context, name string) error {
	all, err := h.Store.ListIntegrations(ctx)
	if err != nil {
		return fmt.Errorf("list integrations: %w", err)
	}
	for _, s := range all {
		if s.Name == name {
			return &knowledge.FieldError{Field: "name", Message: fmt.Sprintf("%q is taken by integration %s: choose another name or delete that integration", name, s.ID)}
		}
	}
	return nil
}

// DeleteIntegration stops the integration's dispatcher and removes it with
// its delivery history.
func (h *Hub) DeleteIntegration(ctx context.Context, id string) error {
	if _, err := h.Store.GetIntegration(ctx, id); err != nil {
		return err
	}
	if h.Push != nil {
		h.Push.Remove(id)
	}
	if err := h.Store.DeleteIntegration(ctx, id); err != nil {
		return err
	}
	h.logger().Info("integration deleted", "integration_id", id)
	return nil
}

// Freshness measures one integration now.
func (h *Hub) Freshness(ctx context.Context, s *store.IntegrationState) (freshness.Report, error) {
	return freshness.Measure(ctx, h.Store, s, h.now())
}

// Authenticate returns the integration that owns a pull token.
func (h *Hub) Authenticate(ctx context.Context, token string) (store.IntegrationState, error) {
	return h.Store.GetIntegrationByToken(ctx, HashToken(token))
}

func (h *Hub) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// HashToken returns the hex SHA-256 under which a token is stored. Tokens
// carry 256 random bits, so an unsalted fast hash is enough.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// PullTokenPrefix starts every pull token, so that secret scanners and
// people can tell what a leaked string is.
const PullTokenPrefix = "khub_pull_"

func newToken() string {
	return PullTokenPrefix + randomBase32(32)
}

// NewAdminToken returns a random admin token.
func NewAdminToken() string { return "khub_admin_" + randomBase32(32) }

func randomBase32(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
