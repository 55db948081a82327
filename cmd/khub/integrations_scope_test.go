package main

import (
	"testing"

	"github.com/khub-dev/khub/client"
)

// TestScopeTextQuotesSeparators checks that scope values holding the
// separators of the listing are quoted, so that each reads as one.
func TestScopeTextQuotesSeparators(t *testing.T) {
	cases := []struct {
		scope client.Scope
		want  string
	}{
		{client.Scope{}, "every article"},
		{client.Scope{Classes: []string{"runbook", "policy"}, Metadata: map[string]string{"team": "sre-1"}}, "classes runbook, policy; metadata team=sre-1"},
		{client.Scope{Tags: []string{"a, b"}, Metadata: map[string]string{"k=v": "x, y", "owner": "on call"}}, `tags "a, b"; metadata "k=v"="x, y", owner="on call"`},
		{client.Scope{Metadata: map[string]string{"team": ""}}, `metadata team=""`},
	}
	for _, c := range cases {
		if got := scopeText(&c.scope); got != c.want {
			t.Errorf("scopeText(%+v) = %s, want %s", c.scope, got, c.want)
		}
	}
}
