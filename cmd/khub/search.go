package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/khub-dev/khub/client"
)

// maxSearchLimit is the largest --limit the API accepts.
const maxSearchLimit = 100

func newSearchCmd() *cobra.Command {
	var r remote
	var opts client.SearchOptions
	var meta []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "search QUERY",
		Short: "Search the knowledge base within the token's scope",
		Example: `  khub search "database failover"
  khub search failover --class runbook --meta team=platform --limit 5
  khub search failover --facets
  khub search failover --cursor NEXT   # the next page, NEXT as printed after the hits
  khub search ""                       # the newest articles`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf(`search needs the words to look for, as in: khub search "database failover", or "" for the newest articles: khub search ""`)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Limit < 1 || opts.Limit > maxSearchLimit {
				return fmt.Errorf("--limit %d is invalid: give a number of hits from 1 to %d", opts.Limit, maxSearchLimit)
			}
			var err error
			if opts.Metadata, err = keyValues("--meta", "team=platform", meta, false); err != nil {
				return err
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			res, err := c.Search(cmd.Context(), strings.Join(args, " "), opts)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return printJSON(w, res)
			}
			if len(res.Hits) == 0 {
				fmt.Fprintln(w, "no matches")
			}
			if res.AnyTerm {
				fmt.Fprintln(cmd.ErrOrStderr(), "no article has every word, so these hits match any of them")
			}
			ids := make([]string, len(res.Hits))
			for i, h := range res.Hits {
				ids[i] = h.ID
			}
			width := idWidth(ids)
			for _, h := range res.Hits {
				fmt.Fprintf(w, "%-*s v%-3d %-10s %s%s\n    %s\n", width, h.ID, h.Version, oneLine(h.Class), oneLine(h.Title), statusNote(h.Status), oneLine(h.Snippet))
			}
			if res.Facets != nil {
				printFacets(w, res.Facets)
			}
			// The hint goes to standard error, so standard output holds
			// only hits and facets.
			if res.Next != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more hits: run the same search with --cursor %s\n", res.Next)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Cursor, "cursor", "", "continue a search from the cursor printed after its previous page")
	cmd.Flags().BoolVar(&opts.Facets, "facets", false, "also print the number of matches per class, collection and tag")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON result instead of text")
	cmd.Flags().StringSliceVar(&opts.Classes, "class", nil, "only these classes (repeatable)")
	cmd.Flags().StringSliceVar(&opts.Tags, "tag", nil, "only articles with one of these tags (repeatable)")
	cmd.Flags().StringSliceVar(&opts.Collections, "collection", nil, "only these collections (repeatable)")
	cmd.Flags().StringArrayVar(&meta, "meta", nil, "only articles whose metadata KEY equals VALUE, as KEY=VALUE (repeatable, all must match)")
	cmd.Flags().IntVar(&opts.Limit, "limit", 10, fmt.Sprintf("number of hits, 1 to %d", maxSearchLimit))
	r.addReadFlags(cmd)
	return cmd
}

// idWidth returns the width of the id column for ids: the longest, from
// 20 to 60 characters, so that short ids leave no wide gap and a long one
// shifts only its own line.
func idWidth(ids []string) int {
	w := 20
	for _, id := range ids {
		w = max(w, min(utf8.RuneCountInString(id), 60))
	}
	return w
}

// statusNote returns what to print after a hit's title: its status unless
// it is published, the usual case, and the notes, in brackets, as in
// " (deprecated, use rb-2)". It returns "" when there is neither.
func statusNote(status string, notes ...string) string {
	var parts []string
	if status != "" && status != "published" {
		parts = append(parts, status)
	}
	parts = append(parts, notes...)
	if len(parts) == 0 {
		return ""
	}
	return " (" + oneLine(strings.Join(parts, ", ")) + ")"
}

// oneLine collapses every run of white space, newlines included, into one
// space, so that a snippet taken from the middle of Markdown keeps to its
// line of the output. Other control characters and bidirectional overrides
// are printed as Go escapes such as \x1b, because article text is written
// by others and must not drive the reader's terminal.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if !strings.ContainsFunc(s, unprintable) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unprintable(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// unprintable reports whether r would change how a terminal shows the text
// around it: control characters, and format characters such as U+202E,
// which reverses the text after it.
func unprintable(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// printFacets prints the match counts of a search, one group per line.
func printFacets(w io.Writer, f *client.Facets) {
	groups := []struct {
		name   string
		counts []client.FacetCount
	}{{"classes", f.Classes}, {"collections", f.Collections}, {"tags", f.Tags}}
	for _, g := range groups {
		parts := make([]string, len(g.counts))
		for i, c := range g.counts {
			parts[i] = fmt.Sprintf("%s %d", oneLine(c.Value), c.Count)
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fmt.Fprintf(w, "%s: %s\n", g.name, strings.Join(parts, ", "))
	}
}
