package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/khub-dev/khub/client"
)

func TestIntegrationNameTaken(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	req := client.IntegrationRequest{Name: "helpdesk", Freshness: "15m", Scope: client.Scope{Classes: []string{"runbook"}}, Lookups: true}
	first, err := c.CreateIntegration(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateIntegration(ctx, req)
	if err == nil || !strings.Contains(err.Error(), "is taken by integration "+first.ID) {
		t.Errorf("second create with the same name: error %v, want it to name %s", err, first.ID)
	}
	list, err := c.ListIntegrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Errorf("%d integrations after the rejected create, want 1", len(list))
	}
}
