package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/khub-dev/khub/client"
)

func newStatusCmd() *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print every integration's freshness against its window",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			if err := c.Health(cmd.Context()); err != nil {
				return fmt.Errorf("hub at %s is not healthy: %w", redacted(r.server), err)
			}
			all, err := c.ListIntegrations(cmd.Context())
			if err != nil {
				return err
			}
			printStatusTable(cmd.OutOrStdout(), all)
			return nil
		},
	}
	r.addFlags(cmd)
	return cmd
}

func printStatusTable(w io.Writer, all []client.Integration) {
	if len(all) == 0 {
		fmt.Fprintln(w, "no integrations yet: create one with khub integrations create")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPATTERN\tWINDOW\tSTALENESS\tSTATE\tLAST ERROR")
	for _, in := range all {
		state := withinText(in.Freshness.WithinWindow)
		if in.State != "" && in.State != "active" {
			// Delivery has stopped, which matters more than the window.
			state = strings.ToUpper(in.State) + ", " + state
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Name, in.Pattern, in.Freshness.Window,
			formatSeconds(in.Freshness.StalenessSeconds), state, oneLine(currentError(&in)))
	}
	tw.Flush()
}
