package planner

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

func scopeOf(classes ...knowledge.Class) knowledge.Scope {
	return knowledge.Scope{Classes: classes}
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name      string
		req       Request
		want      knowledge.Pattern
		wantField string // non-empty when an error is expected
		wantText  string // a phrase the reasons or error must contain
	}{
		{
			name:     "auto policy only is push",
			req:      Request{Freshness: time.Minute, Scope: scopeOf("policy"), HasWebhook: true},
			want:     knowledge.PatternPush,
			wantText: "policy",
		},
		{
			name:     "auto runbooks with lookups is pull",
			req:      Request{Freshness: 15 * time.Minute, Scope: scopeOf("runbook"), Lookups: true},
			want:     knowledge.PatternPull,
			wantText: "looks knowledge up",
		},
		{
			name:     "auto runbooks with long window is pull",
			req:      Request{Freshness: time.Hour, PollInterval: 10 * time.Minute, Scope: scopeOf("runbook", "reference")},
			want:     knowledge.PatternPull,
			wantText: "Polling every 10m0s",
		},
		{
			name:     "auto runbooks with short window is push",
			req:      Request{Freshness: 30 * time.Second, Scope: scopeOf("runbook"), HasWebhook: true},
			want:     knowledge.PatternPush,
			wantText: "shorter than the 1m0s polling interval",
		},
		{
			name:     "auto mixed scope is hybrid",
			req:      Request{Freshness: 15 * time.Minute, Scope: scopeOf("safety", "runbook"), HasWebhook: true},
			want:     knowledge.PatternHybrid,
			wantText: "includes safety, which tools must reflect as soon as they change",
		},
		{
			name:     "auto empty scope is hybrid",
			req:      Request{Freshness: 15 * time.Minute, HasWebhook: true},
			want:     knowledge.PatternHybrid,
			wantText: "names no classes, so it includes policy, safety and compliance, which tools must reflect as soon as they change",
		},
		{
			name:     "auto mixed with short window is push",
			req:      Request{Freshness: 10 * time.Second, Scope: scopeOf("policy", "runbook"), HasWebhook: true},
			want:     knowledge.PatternPush,
			wantText: "shorter than",
		},
		{
			name:      "auto push without webhook",
			req:       Request{Freshness: time.Minute, Scope: scopeOf("policy")},
			wantField: "webhook.url",
			wantText:  "chose push",
		},
		{
			name:      "missing window",
			req:       Request{Scope: scopeOf("policy"), HasWebhook: true},
			wantField: "freshness",
			wantText:  "required",
		},
		{
			name:      "unknown pattern",
			req:       Request{Pattern: "poll", Freshness: time.Minute},
			wantField: "pattern",
			wantText:  "auto, push, pull or hybrid",
		},
		{
			name:      "pull of policy under poll interval",
			req:       Request{Pattern: knowledge.PatternPull, Freshness: 5 * time.Minute, PollInterval: 15 * time.Minute, Scope: scopeOf("policy")},
			wantField: "pattern",
			wantText:  "accept_risk",
		},
		{
			name:     "pull of policy with accepted risk",
			req:      Request{Pattern: knowledge.PatternPull, Freshness: 5 * time.Minute, PollInterval: 15 * time.Minute, Scope: scopeOf("policy"), AcceptRisk: true},
			want:     knowledge.PatternPull,
			wantText: "risk was accepted",
		},
		{
			name:     "pull of policy within poll interval",
			req:      Request{Pattern: knowledge.PatternPull, Freshness: time.Hour, PollInterval: 15 * time.Minute, Scope: scopeOf("policy")},
			want:     knowledge.PatternPull,
			wantText: "Polling every 15m0s",
		},
		{
			name:      "pull with a webhook",
			req:       Request{Pattern: knowledge.PatternPull, Freshness: time.Hour, HasWebhook: true},
			wantField: "webhook",
			wantText:  "not used by pattern pull",
		},
		{
			name:      "push without webhook",
			req:       Request{Pattern: knowledge.PatternPush, Freshness: time.Hour},
			wantField: "webhook.url",
			wantText:  "required for pattern push",
		},
		{
			name:     "hybrid without time-sensitive classes",
			req:      Request{Pattern: knowledge.PatternHybrid, Freshness: time.Hour, Scope: scopeOf("runbook"), HasWebhook: true},
			want:     knowledge.PatternHybrid,
			wantText: "only deprecations and archivals",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(tc.req)
			if tc.wantField != "" {
				var fe *knowledge.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("Decide error = %v, want a FieldError on %q", err, tc.wantField)
				}
				if fe.Field != tc.wantField {
					t.Errorf("error field = %q, want %q", fe.Field, tc.wantField)
				}
				if !strings.Contains(fe.Message, tc.wantText) {
					t.Errorf("error message %q does not contain %q", fe.Message, tc.wantText)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Pattern != tc.want {
				t.Errorf("pattern = %s, want %s (reasons: %q)", d.Pattern, tc.want, d.Reasons)
			}
			if len(d.Reasons) == 0 {
				t.Fatal("no reasons given")
			}
			if joined := strings.Join(d.Reasons, " "); !strings.Contains(joined, tc.wantText) {
				t.Errorf("reasons %q do not contain %q", joined, tc.wantText)
			}
		})
	}
}
