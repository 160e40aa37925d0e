package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// detacher is a part that can leave what it runs running when Flock
// exits: the embedded scheduler (apps) and the router (HAProxy).
type detacher interface{ Detach() }

// detachOnSIGUSR2 returns a context that ends on SIGUSR2 (besides ctx's
// own end), after telling every part that can to leave its processes
// running: `kill -USR2` exits Flock for an upgrade while its apps and
// HAProxy go on serving, and the next `flock up` adopts them. SIGINT and
// SIGTERM still stop everything. stop releases the signal.
func detachOnSIGUSR2(ctx context.Context, logger *slog.Logger, parts ...any) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR2)
	go func() {
		select {
		case <-sig:
			logger.Info("SIGUSR2: exiting; apps and HAProxy keep running for the next flock up to adopt")
			for _, p := range parts {
				if d, ok := p.(detacher); ok {
					d.Detach()
				}
			}
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sig)
		cancel()
	}
}
