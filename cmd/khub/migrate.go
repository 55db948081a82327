package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/khub-dev/khub/internal/app"
)

func newMigrateCmd() *cobra.Command {
	var cfg app.Config
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending schema migrations and exit",
		Long: `Apply the schema migrations embedded in this binary to the store and exit.

serve applies them too when it starts, so this command is for deployments
that migrate in a separate step before rolling out new nodes. Nodes that
start at once are safe either way: on PostgreSQL one node applies each
migration under an advisory lock while the others wait.`,
		Example: `  khub migrate --data ./khub-data
  khub migrate --db postgres://khub@db.internal:5432/khub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DatabaseURL != "" && !cmd.Flags().Changed("data") {
				cfg.DataDir = ""
			}
			if cfg.DatabaseURL == "" {
				if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
					return fmt.Errorf("create data directory: %w", err)
				}
			}
			// Migrating searches nothing, so the text index is not built.
			cfg.NoTextIndex = true
			st, err := app.OpenStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if err := st.Close(); err != nil {
				return err
			}
			where := cfg.DataDir
			if cfg.DatabaseURL != "" {
				where = "PostgreSQL schema " + cfg.DatabaseSchema
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schema of %s is up to date\n", where)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.DataDir, "data", envOr("KHUB_DATA", "khub-data"), "directory of the SQLite database (env KHUB_DATA)")
	addStoreFlags(cmd, &cfg)
	return cmd
}
