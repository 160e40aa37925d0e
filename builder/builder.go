// Package builder turns a source tree into a slug: a .tar.gz of the built
// tree that runs with one command from its root. It detects Node, Go and
// Python apps, any app with a Procfile, and static sites (served by the
// program Config.StaticServer names), streams the build log a line at
// a time, caches node_modules by the lockfile's hash, keeps the slugs in an
// artifact store on disk and serves them over HTTP to schedulers.
//
// builder imports nothing of Flock: deploy declares the Builder interface
// that *Builder satisfies with plain types.
package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Config configures a Builder.
type Config struct {
	// Dir is the artifact store's root: slugs live at
	// <Dir>/<app>/<release>.tar.gz. Required.
	Dir string
	// CacheDir holds the node_modules cache and the builds' work folders.
	// Default: <Dir>/.cache (app names never start with a dot).
	CacheDir string
	// Logger receives one record per build. Default: slog.Default().
	Logger *slog.Logger
	// StaticServer is the program, with its first arguments, that serves
	// a static site's folder on $HOST:$PORT: `flock static` of the flock
	// binary that runs the apps (given an absolute path, as the start
	// command runs from the slug's root). The builder appends
	// `--dir <folder>` when the site is not the slug's root. Default:
	// none, and static sites fail to build with a message saying why.
	StaticServer []string
}

// Builder builds slugs and keeps them in the artifact store. It is safe
// for concurrent builds.
type Builder struct {
	dir    string
	cache  string
	logger *slog.Logger
	static []string
}

// New validates cfg and returns a Builder. It creates nothing on disk.
func New(cfg Config) (*Builder, error) {
	if cfg.Dir == "" {
		return nil, errors.New("builder: Config.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("builder: %w", err)
	}
	cache := cfg.CacheDir
	if cache == "" {
		cache = filepath.Join(dir, ".cache")
	}
	if cache, err = filepath.Abs(cache); err != nil {
		return nil, fmt.Errorf("builder: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Builder{dir: dir, cache: cache, logger: logger, static: cfg.StaticServer}, nil
}

var (
	appRE     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	releaseRE = regexp.MustCompile(`^v[0-9]{1,9}$`)
)

// checkNames validates app and release before any path is built from them.
func checkNames(app, release string) error {
	if !appRE.MatchString(app) {
		return fmt.Errorf("invalid app name %q: must be a lower-case DNS label", app)
	}
	if !releaseRE.MatchString(release) {
		return fmt.Errorf("invalid release name %q: must be v followed by a number", release)
	}
	return nil
}

// Path returns where the slug of app's release lives in the artifact
// store, whether or not it exists yet.
func (b *Builder) Path(app, release string) (string, error) {
	if err := checkNames(app, release); err != nil {
		return "", err
	}
	return filepath.Join(b.dir, app, release+".tar.gz"), nil
}

// Build builds the source tree in dir as release of app. It works in a
// copy of dir (dir is left as it is), writes the log a line at a time to
// log, and stores the slug atomically at Path(app, release). cmd, when
// set, is the start command; else it comes from the Procfile's web line or
// the detected kind of app. It returns the slug's path and the start
// command. Cancelling ctx kills the running build step.
func (b *Builder) Build(ctx context.Context, dir, app, release, cmd string, log io.Writer) (slug, command string, err error) {
	start := time.Now()
	slug, err = b.Path(app, release)
	if err != nil {
		return "", "", fmt.Errorf("build: %w", err)
	}
	if log == nil {
		log = io.Discard
	}
	lw := &lineWriter{w: log}
	command, shown, err := b.build(ctx, dir, app, release, cmd, slug, lw)
	if err != nil {
		lw.printf(" !     Build failed: %v", err)
		b.logger.Info("build failed", "app", app, "release", release, "err", err)
		return "", "", fmt.Errorf("build %s %s: %w", app, release, err)
	}
	lw.printf("-----> Built %s %s in %s; start command: %s", app, release, time.Since(start).Round(10*time.Millisecond), shown)
	b.logger.Info("build done", "app", app, "release", release, "duration", time.Since(start), "command", command)
	return slug, command, nil
}

func (b *Builder) build(ctx context.Context, src, app, release, cmd, slug string, lw *lineWriter) (command, shown string, err error) {
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return "", "", fmt.Errorf("source %s is not a folder", src)
	}
	if err := os.MkdirAll(filepath.Join(b.cache, "work"), 0o755); err != nil {
		return "", "", err
	}
	work, err := os.MkdirTemp(filepath.Join(b.cache, "work"), app+"-"+release+"-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "app")
	if err := copyTree(src, tree); err != nil {
		return "", "", fmt.Errorf("copy source: %w", err)
	}
	command, shown, err = b.compile(ctx, tree, cmd, lw)
	if err != nil {
		return "", "", err
	}
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	lw.printf("-----> Writing slug %s/%s.tar.gz", app, release)
	if err := writeSlug(tree, slug); err != nil {
		return "", "", fmt.Errorf("write slug: %w", err)
	}
	return command, shown, nil
}

// compile detects the kind of app in tree, builds it in place and returns
// its start command, and that command as the build log shows it.
func (b *Builder) compile(ctx context.Context, tree, cmd string, lw *lineWriter) (command, shown string, err error) {
	web, hasProcfile, err := procfileWeb(tree)
	if err != nil {
		return "", "", err
	}
	switch {
	case exists(tree, "package.json"):
		command, shown, err = b.buildNode(ctx, tree, lw)
	case exists(tree, "go.mod"):
		command, err = b.buildGo(ctx, tree, lw)
	case exists(tree, "requirements.txt"):
		err = b.buildPython(ctx, tree, lw)
	case hasProcfile:
		lw.printf("-----> Procfile app detected")
	case exists(tree, "index.html"):
		// A static site, unless flock.cmd says otherwise: nothing to build.
	default:
		return "", "", errors.New("no start command: the source has no package.json, go.mod, requirements.txt, " +
			"Procfile or index.html; add a Procfile with a line \"web: <command>\" or set flock.cmd")
	}
	if err != nil {
		return "", "", err
	}
	switch {
	case cmd != "":
		command, shown = cmd, cmd
	case web != "":
		command, shown = web, web
	case shown == "":
		shown = command
	}
	if command == "" {
		if command, shown, err = b.staticSite(tree, lw); err != nil {
			return "", "", err
		}
	}
	if command == "" {
		return "", "", errors.New("no start command: add a Procfile with a line \"web: <command>\", " +
			"a \"start\" script or \"main\" file in package.json, an index.html to serve as a static site, or set flock.cmd")
	}
	if exists(tree, ".venv/bin/python3") {
		// The venv lives in the slug; put it first on PATH wherever the
		// slug is unpacked.
		command = `export PATH="$PWD/.venv/bin:$PATH" VIRTUAL_ENV="$PWD/.venv"; ` + command
	}
	return command, shown, nil
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}
