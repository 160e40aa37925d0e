// Command flock is the Flock platform in one binary: `flock up` runs the
// platform; the other commands are its client. docs/architecture.md
// describes how `flock up` wires the parts and in which order they start.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "flock:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "flock",
		Short:         "Flock: git push to deploy, HAProxy routing, idle apps asleep",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("data-dir", envOr("FLOCK_DATA_DIR", defaultDataDir()), "where Flock keeps its state (env FLOCK_DATA_DIR)")
	root.AddCommand(upCmd(), gitHookCmd(), staticCmd())
	addClientCommands(root)
	root.AddCommand(openCmd())
	return root
}

func defaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".flock"
	}
	return filepath.Join(home, ".flock")
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
