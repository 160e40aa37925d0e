package builder

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/flock-paas/flock/builder/static"
)

// TestMain lets the test binary play `flock static` (the StaticServer of
// the tests' builders) when FLOCK_TEST_ROLE=static: it serves the folder
// that `--dir` names, "." by default, on $HOST:$PORT.
func TestMain(m *testing.M) {
	if os.Getenv("FLOCK_TEST_ROLE") == "static" {
		if err := serveStatic(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "static:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func serveStatic(args []string) error {
	dir := "."
	if len(args) == 2 && args[0] == "--dir" {
		dir = args[1]
	} else if len(args) != 0 {
		return fmt.Errorf("usage: --dir FOLDER, got %q", args)
	}
	site, err := static.New(dir, nil)
	if err != nil {
		return err
	}
	defer site.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	return site.Run(ctx, net.JoinHostPort(os.Getenv("HOST"), os.Getenv("PORT")))
}
