package client_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
)

// exampleHub starts a hub on loopback with a temporary data directory and
// returns a client with its admin token, a client with the pull token of
// an integration whose scope is the runbooks, and a function that stops the hub.
func exampleHub() (admin, helpdesk *client.Client, stop func()) {
	dir, err := os.MkdirTemp("", "khub-example-")
	if err != nil {
		log.Fatal(err)
	}
	a, err := app.Open(app.Config{DataDir: dir, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	admin = client.New(a.URL(), a.AdminToken())
	in, err := admin.CreateIntegration(context.Background(), client.IntegrationRequest{
		Name: "helpdesk", Freshness: "15m", Pattern: "pull",
		Scope: client.Scope{Classes: []string{"runbook"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	return admin, client.New(a.URL(), in.Token), func() {
		a.Shutdown(context.Background())
		os.RemoveAll(dir)
	}
}

func runbook(id, body string) client.Article {
	return client.Article{ID: id, Title: id, Body: body, Collection: "ops", Class: "runbook"}
}

// Stream follows the changes in an integration's scope as they commit.
// Resuming from the cursor of the last change received misses nothing.
func ExampleClient_Stream() {
	admin, helpdesk, stop := exampleHub()
	defer stop()
	ctx := context.Background()
	admin.PutArticle(ctx, runbook("db-failover", "Promote the replica."))

	var last int64
	for change, err := range helpdesk.Stream(ctx, 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(change.Cursor, change.ArticleID, change.Type)
		last = change.Cursor
		if change.ArticleID == "db-failover" && change.Version == 1 {
			// Written while the stream is open.
			admin.PutArticle(ctx, runbook("db-failover", "Promote the replica, then page the DBA."))
			continue
		}
		break
	}
	fmt.Println("resume after", last)
	// Output:
	// 1 db-failover created
	// 2 db-failover updated
	// resume after 2
}

// Feed reads the change feed page by page and long-polls once it has read
// every change.
func ExampleClient_Feed() {
	admin, helpdesk, stop := exampleHub()
	defer stop()
	ctx := context.Background()
	admin.PutArticle(ctx, runbook("queue-restart", "Drain first."))
	admin.PutArticle(ctx, client.Article{ID: "access", Title: "Access", Body: "DBAs only.", Collection: "ops", Class: "policy"})
	admin.PutArticle(ctx, runbook("key-rotation", "Rotate."))

	n := 0
	for change, err := range helpdesk.Feed(ctx, 0, 100) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(change.Cursor, change.ArticleID)
		if n++; n == 2 {
			break
		}
	}
	// Output:
	// 1 queue-restart
	// 3 key-rotation
}

// A Syncer keeps a local copy of an integration's scope and reports its
// cursor, so the hub's freshness measurement counts what the copy holds.
func ExampleSyncer() {
	admin, helpdesk, stop := exampleHub()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin.PutArticle(ctx, runbook("db-failover", "Promote the replica."))
	admin.PutArticle(ctx, runbook("old-vpn", "Use the old VPN."))
	admin.PutArticle(ctx, runbook("cache-flush", "Flush the cache."))
	admin.ArchiveArticle(ctx, "old-vpn")

	s := client.NewSyncer(helpdesk, client.SyncerOptions{})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()

	a, ok := s.Get("db-failover")
	fmt.Println(s.Len(), a.Body, ok, s.Cursor())
	_, ok = s.Get("old-vpn")
	fmt.Println("archived article kept:", ok)
	for _, a := range s.Articles() {
		fmt.Println(a.ID, a.Version)
	}

	cancel()
	fmt.Println(<-done)
	// Output:
	// 2 Promote the replica. true 4
	// archived article kept: false
	// cache-flush 1
	// db-failover 1
	// context canceled
}

// ReportCursor reports to the hub how far a tool's own copy is up to date.
func ExampleClient_ReportCursor() {
	admin, helpdesk, stop := exampleHub()
	defer stop()
	ctx := context.Background()
	admin.PutArticle(ctx, runbook("db-failover", "Promote the replica."))

	state, err := helpdesk.ReportCursor(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(state.Cursor, state.Head)

	_, err = helpdesk.ReportCursor(ctx, 5)
	fmt.Println(err)
	// Output:
	// 1 1
	// khub: 400 invalid_request: cursor 5 is beyond the newest change, cursor 1: report only a cursor the hub has sent (field cursor)
}
