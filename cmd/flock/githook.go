package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/flock-paas/flock/webhook"
)

// gitHookCmd is the pre-receive hook of Flock's git remote: git runs it
// inside the push, and it streams the deploy's log back as "remote:" lines.
func gitHookCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "git-hook",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			os.Exit(webhook.HookMain(args, os.Stdin, os.Stdout, os.Stderr))
			return nil
		},
	}
}
