package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// The benchmarks below run unchanged on every back-end, with the same
// generated articles and the same seeds, so their results compare side by
// side.

// Vocabulary is the vocabulary of generated article text: 60 English
// words followed by 5000 made-up ones. Words are drawn with a Zipf
// distribution, as in natural text, so the first words are in most
// articles and the last in few.
var Vocabulary = func() []string {
	words := strings.Fields(`rotate certificate proxy failover replica primary database cluster node drain
		upgrade kubernetes policy access leave remote incident page escalate owner backup restore
		network dns ingress gateway timeout retry latency queue worker deploy rollback release
		audit compliance safety ladder helmet badge visitor laptop password token secret vault
		billing invoice refund customer support ticket priority severity outage status report`)
	syllables := []string{"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa"}
	for i := range 5000 {
		words = append(words, syllables[i%10]+syllables[i/10%10]+syllables[i/100%10]+syllables[i/1000%10])
	}
	return words
}()

// ArticleGen generates articles of 120 words drawn from Vocabulary.
type ArticleGen struct {
	r    *rand.Rand
	zipf *rand.Zipf
}

// NewArticleGen returns a generator whose articles depend only on seed.
func NewArticleGen(seed uint64) *ArticleGen {
	r := rand.New(rand.NewPCG(seed, seed+1))
	return &ArticleGen{r: r, zipf: rand.NewZipf(r, 1.1, 1, uint64(len(Vocabulary)-1))}
}

// Next returns the next generated article, normalized, with the given id.
func (g *ArticleGen) Next(id string) knowledge.Article {
	words := make([]string, 120)
	for i := range words {
		words[i] = Vocabulary[g.zipf.Uint64()]
	}
	a := knowledge.Article{
		ID:         id,
		Title:      strings.Join(words[:4], " "),
		Body:       strings.Join(words, " ") + ".",
		Collection: []string{"ops", "hr", "support"}[g.r.IntN(3)],
		Class:      []knowledge.Class{knowledge.ClassRunbook, knowledge.ClassPolicy, knowledge.ClassReference}[g.r.IntN(3)],
		Tags:       []string{words[5], words[6]},
	}
	a.Normalize()
	return a
}

// Seed stores n generated articles, one version each, with ids a00000 and
// up, through the given number of concurrent writers. More writers only
// shorten the setup: the articles are the same, only their cursors' order
// differs.
func Seed(b *testing.B, s store.Store, n, writers int) {
	b.Helper()
	gen := NewArticleGen(1)
	articles := make(chan knowledge.Article, n)
	for i := range n {
		articles <- gen.Next(fmt.Sprintf("a%05d", i))
	}
	close(articles)
	var (
		wg       sync.WaitGroup
		firstErr error
		once     sync.Once
	)
	for range max(writers, 1) {
		wg.Go(func() {
			for a := range articles {
				if _, err := s.SaveArticle(context.Background(), a, store.SaveOptions{}); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// Bench runs the store benchmarks on stores from open: writes, search over
// 10,000 articles and change-feed reads. writers is the number of
// concurrent writers that seed the data.
func Bench(b *testing.B, open func(b *testing.B) store.Store, writers int) {
	b.Run("SaveArticle", func(b *testing.B) { benchSave(b, open(b)) })
	b.Run("Search", func(b *testing.B) {
		s := open(b)
		Seed(b, s, 10000, writers)
		BenchSearch(b, s)
	})
	b.Run("ReadChanges", func(b *testing.B) {
		s := open(b)
		Seed(b, s, 10000, writers)
		benchReadChanges(b, s)
	})
	b.Run("ChangeReads", func(b *testing.B) {
		s := open(b)
		Seed(b, s, 10000, writers)
		benchChangeReads(b, s)
	})
	// 100 attempts of one integration per transaction, from 100 requests
	// and from one batched request, and one attempt each of 100
	// integrations, as a group commit of 100 caught-up dispatchers has.
	b.Run("CommitDeliveries/1x100", func(b *testing.B) { benchCommitDeliveries(b, open(b), 1, 100, false) })
	b.Run("CommitDeliveries/1x100-batched", func(b *testing.B) { benchCommitDeliveries(b, open(b), 1, 100, true) })
	b.Run("CommitDeliveries/100x1", func(b *testing.B) { benchCommitDeliveries(b, open(b), 100, 1, false) })
}

// benchCommitDeliveries writes delivery attempts with CommitDeliveries,
// each transaction with one commit for each of integrations integrations
// and perCommit attempts in each commit. With batched set, the attempts of
// a commit are one request's, which the store packs into one row.
func benchCommitDeliveries(b *testing.B, s store.Store, integrations, perCommit int, batched bool) {
	ctx := context.Background()
	ids := make([]string, integrations)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%03d", i)
		err := s.CreateIntegration(ctx, knowledge.Integration{
			ID: ids[i], Name: ids[i], Pattern: knowledge.PatternPush, Freshness: time.Minute,
			Reasons: []string{}, WebhookURL: "https://hooks.example.com/" + ids[i], CreatedAt: time.Now(),
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	var cursor int64
	attempts := 0
	start := time.Now()
	for b.Loop() {
		commits := make([]store.DeliveryCommit, integrations)
		for i := range commits {
			commits[i] = store.DeliveryCommit{IntegrationID: ids[i], LastSuccessAt: time.Now()}
			request, started := fmt.Sprintf("batch_%d", cursor+1), time.Now()
			for range perCommit {
				cursor++
				if !batched {
					request, started = fmt.Sprintf("evt_%d", cursor), time.Now()
				}
				commits[i].Attempts = append(commits[i].Attempts, store.Attempt{
					EventID: request, Cursor: cursor, ArticleID: fmt.Sprintf("a%04d", cursor%1000),
					Version: cursor, Type: knowledge.ChangeUpdated, Attempt: 1, StatusCode: 204,
					Latency: time.Millisecond, StartedAt: started, Outcome: store.OutcomeDelivered,
				})
			}
			commits[i].PushCursor = cursor
		}
		if _, err := s.CommitDeliveries(ctx, commits); err != nil {
			b.Fatal(err)
		}
		attempts += integrations * perCommit
	}
	b.ReportMetric(float64(attempts)/time.Since(start).Seconds(), "attempts/s")
}

// benchSave writes new versions of 1000 articles in turn, one transaction
// per write.
func benchSave(b *testing.B, s store.Store) {
	gen := NewArticleGen(3)
	articles := make([]knowledge.Article, 1000)
	for i := range articles {
		articles[i] = gen.Next(fmt.Sprintf("a%04d", i))
	}
	ctx := context.Background()
	writes := 0
	start := time.Now()
	for b.Loop() {
		a := articles[writes%len(articles)]
		a.Body += fmt.Sprintf(" Revision %d.", writes)
		if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
			b.Fatal(err)
		}
		writes++
	}
	b.ReportMetric(float64(writes)/time.Since(start).Seconds(), "writes/s")
}

// BenchSearch runs one sub-benchmark per query class. By the Zipf
// distribution, "common" words are expected in nearly every article,
// "medium" ones in about one in twenty and "rare" ones in about one in
// three hundred. An empty result fails, so a broken index cannot look fast.
func BenchSearch(b *testing.B, s store.Store) {
	text := func(words ...int) string {
		var parts []string
		for _, w := range words {
			parts = append(parts, Vocabulary[w])
		}
		return strings.Join(parts, " ")
	}
	queries := []struct {
		name  string
		query store.SearchQuery
	}{
		{"common", store.SearchQuery{Text: text(0)}},
		{"common-pair", store.SearchQuery{Text: text(0, 1)}},
		{"medium", store.SearchQuery{Text: text(200)}},
		{"medium-pair", store.SearchQuery{Text: text(150, 200)}},
		{"rare", store.SearchQuery{Text: text(3000)}},
		{"rare-filtered", store.SearchQuery{Text: text(3000), Filters: []knowledge.Scope{{Collections: []string{"ops"}}}}},
	}
	ctx := context.Background()
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				res, err := s.Search(ctx, q.query)
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Hits) == 0 {
					b.Fatalf("Search(%q) found nothing", q.query.Text)
				}
			}
		})
	}
}

// benchReadChanges reads the whole log from the start in pages of 500,
// unfiltered.
func benchReadChanges(b *testing.B, s store.Store) {
	benchReadLog(b, s.ReadChanges)
}

// benchChangeReads compares ReadChanges with ReadChangeEntries over the
// whole log, without a filter and with the scope of one collection and two
// classes, which matches about two ninths of the generated articles.
func benchChangeReads(b *testing.B, s store.Store) {
	scope := knowledge.Scope{Collections: []string{"ops"}, Classes: []knowledge.Class{knowledge.ClassRunbook, knowledge.ClassPolicy}}
	reads := []struct {
		name string
		read func(context.Context, int64, int, ...knowledge.Scope) (store.ChangePage, error)
	}{
		{"ReadChanges", s.ReadChanges},
		{"ReadChangeEntries", s.ReadChangeEntries},
	}
	for _, r := range reads {
		b.Run(r.name, func(b *testing.B) { benchReadLog(b, r.read) })
		b.Run(r.name+"-scoped", func(b *testing.B) { benchReadLog(b, r.read, scope) })
	}
}

// benchReadLog reads the whole change log with read in pages of 500 per
// iteration and reports the entries read per second.
func benchReadLog(b *testing.B, read func(context.Context, int64, int, ...knowledge.Scope) (store.ChangePage, error), filters ...knowledge.Scope) {
	ctx := context.Background()
	entries := 0
	start := time.Now()
	for b.Loop() {
		after := int64(0)
		for {
			page, err := read(ctx, after, 500, filters...)
			if err != nil {
				b.Fatal(err)
			}
			if len(page.Changes) == 0 {
				break
			}
			entries += len(page.Changes)
			after = page.ScannedTo
		}
	}
	b.ReportMetric(float64(entries)/time.Since(start).Seconds(), "entries/s")
}
