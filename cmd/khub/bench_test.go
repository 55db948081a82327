package main

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
)

// largestCorpus returns the corpus folder with the most Markdown bytes.
func largestCorpus(b *testing.B) (name, dir string) {
	root := os.Getenv("KHUB_CORPORA_DIR")
	if root == "" {
		b.Skip("KHUB_CORPORA_DIR is not set: point it at a folder of Markdown knowledge bases to run the corpus benchmarks")
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		b.Fatal(err)
	}
	var most int64
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var size int64
		filepath.WalkDir(filepath.Join(root, e.Name()), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
				if info, err := d.Info(); err == nil {
					size += info.Size()
				}
			}
			return nil
		})
		if size > most {
			most, name = size, e.Name()
		}
	}
	if name == "" {
		b.Skip("no corpus folders under KHUB_CORPORA_DIR")
	}
	return name, filepath.Join(root, name)
}

// BenchmarkImportLargestCorpus imports the largest corpus through the HTTP
// API into a fresh hub per iteration, as `khub import` does.
func BenchmarkImportLargestCorpus(b *testing.B) {
	name, dir := largestCorpus(b)
	var articles int
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		_, c := startHub(b)
		b.StartTimer()
		sum, err := runImport(context.Background(), c, dir, importOptions{collection: name, workers: 4}, io.Discard, false)
		if err != nil {
			b.Fatal(err)
		}
		articles += sum.Created
		elapsed += sum.Elapsed
	}
	b.ReportMetric(float64(articles)/elapsed.Seconds(), "articles/s")
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/import")
}

// BenchmarkSearchHTTP runs search requests with a pull token against the
// largest corpus and reports latency percentiles as seen by the client.
func BenchmarkSearchHTTP(b *testing.B) {
	name, dir := largestCorpus(b)
	_, admin := startHub(b)
	ctx := context.Background()
	if _, err := runImport(ctx, admin, dir, importOptions{collection: name, workers: 4}, io.Discard, false); err != nil {
		b.Fatal(err)
	}
	in, err := admin.CreateIntegration(ctx, client.IntegrationRequest{
		Name: "bench", Freshness: "15m", Pattern: "pull",
		Scope: client.Scope{Collections: []string{name}}, Lookups: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	c := client.New(admin.BaseURL(), in.Token)
	queries := []string{"password", "session token", "cross site scripting", "injection", "logging", "kubernetes", "certificate rotation", "authentication"}
	lat := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		start := time.Now()
		if _, err := c.Search(ctx, queries[i%len(queries)], client.SearchOptions{Limit: 10}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		i++
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
