package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/flock-paas/flock/deploy/engine"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/router"
)

// demoMark is the file in the data dir that remembers which release of
// which app the demo source became, and the digest of that source, so
// that `make run` started again does not add a release each time.
const demoMark = "demo.deployed"

// deployDemo deploys the demo app (flock up --demo) once HAProxy serves,
// unless the app already runs a release made from the same source: it
// deploys only when the app is missing, its release is no longer the
// demo's, or a file of the demo changed.
func deployDemo(ctx context.Context, svc *engine.Service, rt *router.Router, dir, dataDir string, logger *slog.Logger) error {
	select {
	case <-rt.Ready():
	case <-ctx.Done():
		return nil
	}
	if _, err := os.Stat(dir); err != nil {
		logger.Error("demo: the demo app is not there; run flock up --demo from the repository, or pass --demo-dir", "dir", dir)
		return nil
	}
	digest, err := treeDigest(dir)
	if err != nil {
		logger.Error("demo: read the demo app", "dir", dir, "err", err)
		return nil
	}
	mark := filepath.Join(dataDir, demoMark)
	if app, rel, ok := readDemoMark(mark, digest); ok {
		if a, err := svc.App(ctx, app); err == nil && a.Release == rel {
			logger.Info("demo app is up to date; not deployed again", "app", app, "release", rel, "url", svc.URL(app))
			return nil
		}
	}
	w := &logWriter{logger: logger.With("app", "demo")}
	r, err := svc.Deploy(ctx, deploy.DeployRequest{Dir: dir, Trigger: "demo"}, w)
	if err != nil && ctx.Err() != nil {
		logger.Info("demo deploy stopped: Flock is stopping")
		return nil
	}
	if err != nil {
		logger.Error("demo deploy failed", "err", err)
		return nil
	}
	if err := os.WriteFile(mark, fmt.Appendf(nil, "%s %s %s\n", r.App, r.Name, digest), 0o600); err != nil {
		logger.Warn("demo: remember the deployed demo", "err", err)
	}
	logger.Info("demo app deployed", "url", svc.URL(r.App))
	return nil
}

// readDemoMark returns the app and release the mark names when it was
// written for a source with this digest.
func readDemoMark(path, digest string) (app, release string, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", false
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[2] != digest {
		return "", "", false
	}
	return f[0], f[1], true
}

// treeDigest hashes the names, modes and contents of the files under dir
// (node_modules and .git aside, as the build ignores them), in walk order.
func treeDigest(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", filepath.ToSlash(rel), info.Mode().Perm(), info.Size())
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(h, f)
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// logWriter turns a deploy log into log lines.
type logWriter struct{ logger *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.logger.Info(line)
		}
	}
	return len(p), nil
}
