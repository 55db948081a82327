package planner

import (
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// usageOf decides the request and wraps it in a Usage, failing the test
// when the planner rejects it.
func usageOf(t *testing.T, name string, r Request, requestsPerHour, pushesPerHour float64) Usage {
	t.Helper()
	d, err := Decide(r)
	if err != nil {
		t.Fatalf("Decide(%s): %v", name, err)
	}
	return Usage{Name: name, Request: r, Decision: d, RequestsPerHour: requestsPerHour, PushesPerHour: pushesPerHour}
}

func TestPullsPerHour(t *testing.T) {
	cases := []struct {
		name      string
		req       Request
		declared  float64
		want      float64
		wantKnown bool
	}{
		{"push makes no pulls", Request{Freshness: time.Minute, Scope: scopeOf("safety"), HasWebhook: true}, 0, 0, true},
		{"push ignores declared usage", Request{Freshness: time.Minute, Scope: scopeOf("safety"), HasWebhook: true}, 500, 0, true},
		{"poller at the default interval", Request{Freshness: time.Hour, Scope: scopeOf("runbook")}, 0, 60, true},
		{"poller every 5m", Request{Freshness: time.Hour, PollInterval: 5 * time.Minute, Scope: scopeOf("runbook")}, 0, 12, true},
		{"declared usage wins over polling", Request{Freshness: time.Hour, PollInterval: 5 * time.Minute, Scope: scopeOf("runbook")}, 30, 30, true},
		{"lookups without declared usage", Request{Freshness: 15 * time.Minute, Lookups: true, Scope: scopeOf("runbook")}, 0, 0, false},
		{"lookups with declared usage", Request{Freshness: 15 * time.Minute, Lookups: true, Scope: scopeOf("runbook")}, 120, 120, true},
		{"hybrid polls for the other classes", Request{Freshness: time.Hour, PollInterval: 10 * time.Minute, Scope: scopeOf("policy", "runbook"), HasWebhook: true}, 0, 6, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := usageOf(t, tc.name, tc.req, tc.declared, 0)
			got, known := u.PullsPerHour()
			if known != tc.wantKnown {
				t.Errorf("known = %v, want %v", known, tc.wantKnown)
			}
			if got != tc.want {
				t.Errorf("pulls per hour = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUsageWarnings(t *testing.T) {
	cases := []struct {
		name     string
		req      Request
		declared float64
		want     []string // phrases, each in its own warning, in order
	}{
		{
			name: "pushed safety has none",
			req:  Request{Freshness: time.Minute, Scope: scopeOf("safety"), HasWebhook: true},
		},
		{
			name:     "pulled runbooks with declared lookups have none",
			req:      Request{Freshness: 15 * time.Minute, Lookups: true, Scope: scopeOf("runbook")},
			declared: 120,
		},
		{
			name: "pulled policy with accepted risk",
			req: Request{Pattern: knowledge.PatternPull, Freshness: 5 * time.Minute, PollInterval: 15 * time.Minute,
				Scope: scopeOf("policy"), AcceptRisk: true},
			want: []string{"Time-sensitive classes would be pulled: a change to policy reaches the tool only when it next polls, every 15m0s"},
		},
		{
			name: "pulled policy within the window",
			req:  Request{Pattern: knowledge.PatternPull, Freshness: time.Hour, PollInterval: 15 * time.Minute, Scope: scopeOf("policy", "safety")},
			want: []string{"a change to policy and safety reaches the tool only when it next polls"},
		},
		{
			name:     "pulled scope without classes looked up",
			req:      Request{Pattern: knowledge.PatternPull, Freshness: time.Hour, Lookups: true},
			declared: 10,
			want:     []string{"a change to policy, safety and compliance reaches the tool only when it next looks the article up"},
		},
		{
			name: "lookups without declared usage",
			req:  Request{Freshness: 15 * time.Minute, Lookups: true, Scope: scopeOf("runbook")},
			want: []string{"declares no requests_per_hour, so its pull load is unknown"},
		},
		{
			name:     "declared usage on push",
			req:      Request{Freshness: time.Minute, Scope: scopeOf("safety"), HasWebhook: true},
			declared: 60,
			want:     []string{"requests_per_hour (60) is not used: pattern push gives the tool no pull token"},
		},
		{
			name: "hybrid pushes time-sensitive classes, no warning",
			req:  Request{Freshness: time.Hour, Scope: scopeOf("policy", "runbook"), HasWebhook: true},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := usageOf(t, tc.name, tc.req, tc.declared, 0).Warnings()
			if len(got) != len(tc.want) {
				t.Fatalf("warnings = %q, want %d", got, len(tc.want))
			}
			for i, phrase := range tc.want {
				if !strings.Contains(got[i], phrase) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got[i], phrase)
				}
			}
		})
	}
}

func TestPlanWarnings(t *testing.T) {
	push := func(name string, perHour float64) Usage {
		return usageOf(t, name, Request{Freshness: time.Minute, Scope: scopeOf("safety"), HasWebhook: true}, 0, perHour)
	}
	pull := usageOf(t, "pull", Request{Freshness: time.Hour, Lookups: true, Scope: scopeOf("runbook")}, 10, 0)
	hybrid := usageOf(t, "hybrid", Request{Freshness: time.Hour, Scope: scopeOf("policy", "runbook"), HasWebhook: true}, 0, 2)

	got := PlanWarnings([]Usage{push("a", 12), push("b", 0.5), push("c", 3)})
	if len(got) != 1 {
		t.Fatalf("three push integrations: warnings = %q, want one", got)
	}
	for _, phrase := range []string{"Everything is push", "all 3 integrations", "fan-out grows with every integration added", "add 15.5 pushes per hour"} {
		if !strings.Contains(got[0], phrase) {
			t.Errorf("fan-out warning %q does not contain %q", got[0], phrase)
		}
	}

	for name, plan := range map[string][]Usage{
		"one push integration":   {push("a", 12)},
		"push and pull":          {push("a", 12), pull},
		"push and hybrid":        {push("a", 12), hybrid},
		"no integrations":        nil,
		"pull and hybrid only":   {pull, hybrid},
		"two pull integrations":  {pull, pull},
		"two hybrid integration": {hybrid, hybrid},
	} {
		if got := PlanWarnings(plan); len(got) != 0 {
			t.Errorf("%s: warnings = %q, want none", name, got)
		}
	}
}

func TestFormatRate(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 1.0 / 168: "0.006", 0.25: "0.2", 6: "6", 15.55: "15.6", 120: "120", 126.04: "126", 0.96: "1"} {
		if got := FormatRate(in); got != want {
			t.Errorf("FormatRate(%v) = %q, want %q", in, got, want)
		}
	}
}
