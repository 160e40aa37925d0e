package main

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/flock-paas/flock/builder/static"
	"github.com/spf13/cobra"
)

// staticCmd is what a static site's instances run: the builder makes
// their start command `exec <this binary> static [--dir F]`, so a site
// needs no runtime on the machine (docs/buildpacks.md#static-sites).
func staticCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    "static",
		Short:  "Serve a static site's folder on $HOST:$PORT (the start command of static sites)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			port := os.Getenv("PORT")
			if port == "" {
				return errors.New("static: PORT is not set (flock static runs as a static site's instance)")
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
			site, err := static.New(dir, logger)
			if err != nil {
				return err
			}
			defer site.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return site.Run(ctx, net.JoinHostPort(os.Getenv("HOST"), port))
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "the folder to serve")
	return cmd
}

// staticServer is the command the builder gives static sites: this
// binary's `flock static`. Only the embedded scheduler runs instances on
// this machine, where the binary is; Marathon's agents have no flock
// binary, so there the builder refuses static sites with a message
// saying so.
func staticServer(scheduler string) []string {
	if scheduler != "local" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	if abs, err := filepath.EvalSymlinks(exe); err == nil {
		exe = abs
	}
	return []string{exe, "static"}
}
