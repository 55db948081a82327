package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/importer"
	"github.com/khub-dev/khub/internal/knowledge"
)

type importOptions struct {
	collection string
	class      string
	tags       []string
	workers    int
	dryRun     bool
}

func newImportCmd() *cobra.Command {
	var r remote
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import DIR",
		Short: "Import a folder of Markdown files into a running hub",
		Long: `Import every Markdown file (.md, .markdown) under DIR, recursively, through the
API of a running hub. YAML front matter gives id, title, class, tags, status
and metadata; other front matter keys become metadata. Without front matter
the first heading or the file name gives the title and the path gives the id.

Importing again is safe: unchanged files create no version and changed files
create one each. A file that cannot be imported is listed with its path and
reason, and the rest still import. Empty pages, such as Hugo section pages
with only front matter, are listed too; other skipped files make the command
exit with status 1.`,
		Example: `  khub import ./handbook --collection handbook --class policy
  khub import ./runbooks --collection ops --class runbook --tag oncall`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.workers < 1 || o.workers > maxImportWorkers {
				return fmt.Errorf("--workers %d is invalid: use 1 to %d concurrent uploads", o.workers, maxImportWorkers)
			}
			var c *client.Client
			if !o.dryRun {
				var err error
				if c, err = r.client(); err != nil {
					return err
				}
			}
			tty := term.IsTerminal(int(os.Stderr.Fd()))
			sum, err := runImport(cmd.Context(), c, args[0], o, cmd.ErrOrStderr(), tty)
			if errors.Is(err, context.Canceled) && sum.Cancelled > 0 {
				sum.Print(cmd.OutOrStdout())
				return fmt.Errorf("the import was interrupted and %d %s not sent: run the same command again to send the rest. Files already sent are unchanged, so they create no version", sum.Cancelled, plural(sum.Cancelled, "file was", "files were"))
			}
			if errors.Is(err, context.Canceled) {
				return errors.New("the import was interrupted while reading the files, so nothing was sent: run the same command again")
			}
			if err != nil {
				return err
			}
			sum.Print(cmd.OutOrStdout())
			// Empty pages are listed but hold nothing to import, so only
			// files that could not be read, parsed or sent fail the command.
			if n := sum.Failed(); n > 0 {
				return fmt.Errorf("%d %s could not be imported; see the list above for each path and how to fix it", n, plural(n, "file", "files"))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.collection, "collection", "", "collection the articles belong to (required)")
	f.StringVar(&o.class, "class", "", "class for files whose front matter gives none (default reference)")
	f.StringSliceVar(&o.tags, "tag", nil, "tags for files whose front matter gives none (repeatable)")
	f.IntVar(&o.workers, "workers", importer.DefaultWorkers, fmt.Sprintf("concurrent uploads, 1 to %d", maxImportWorkers))
	f.BoolVar(&o.dryRun, "dry-run", false, "parse and validate the files without sending them")
	cmd.MarkFlagRequired("collection")
	r.addFlags(cmd)
	return cmd
}

// maxImportWorkers bounds --workers, so that one import cannot open an
// unbounded number of connections to the hub.
const maxImportWorkers = 64

// runImport scans dir and uploads its articles through c, drawing progress
// on progress. A nil client parses only. When ctx ends, as on SIGINT or
// SIGTERM, it stops, waits for the uploads in flight and returns ctx.Err()
// with the summary so far, unless every document was sent already.
func runImport(ctx context.Context, c *client.Client, dir string, o importOptions, progress io.Writer, tty bool) (importer.Summary, error) {
	res, err := importer.ScanContext(ctx, dir, importer.Options{
		Collection: o.collection,
		Class:      knowledge.Class(o.class),
		Tags:       o.tags,
	})
	if err != nil {
		return importer.Summary{}, err
	}
	if c == nil {
		return res.DryRun(), nil
	}
	p := importer.NewProgress(progress, tty)
	sum := importer.Upload(ctx, res, apiSink{c}, o.workers, p.Update)
	p.Done()
	if sum.Cancelled > 0 {
		return sum, ctx.Err()
	}
	return sum, nil
}

// apiSink writes articles through the API.
type apiSink struct{ c *client.Client }

func (s apiSink) PutArticle(ctx context.Context, a knowledge.Article) (importer.Outcome, error) {
	out := client.Article{
		ID:         a.ID,
		Title:      a.Title,
		Body:       a.Body,
		Collection: a.Collection,
		Class:      string(a.Class),
		Tags:       a.Tags,
		Metadata:   a.Metadata,
		Status:     string(a.Status),
		Owner:      a.Owner,
	}
	if a.ReviewEvery > 0 {
		out.ReviewEvery = knowledge.FormatDuration(a.ReviewEvery)
	}
	_, outcome, err := s.c.PutArticle(ctx, out)
	return importer.Outcome(outcome), err
}

// plural returns one when n is 1 and many otherwise.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
