package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/khub-dev/khub/client"
)

func newSearchCmd() *cobra.Command {
	var r remote
	var opts client.SearchOptions
	cmd := &cobra.Command{
		Use:   "search QUERY",
		Short: "Search the knowledge base within the token's scope",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			res, err := c.Search(cmd.Context(), strings.Join(args, " "), opts)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(res.Hits) == 0 {
				fmt.Fprintln(w, "no matches")
			}
			for _, h := range res.Hits {
				fmt.Fprintf(w, "%-40s v%-3d %-10s %s\n    %s\n", h.ID, h.Version, h.Class, h.Title, h.Snippet)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&opts.Classes, "class", nil, "only these classes (repeatable)")
	cmd.Flags().StringSliceVar(&opts.Tags, "tag", nil, "only articles with one of these tags (repeatable)")
	cmd.Flags().StringSliceVar(&opts.Collections, "collection", nil, "only these collections (repeatable)")
	cmd.Flags().IntVar(&opts.Limit, "limit", 10, "number of hits, 1 to 100")
	r.addFlags(cmd)
	return cmd
}
