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
	// RunAs gives the uid an app's build steps run as: the steps that run
	// the app's code or its dependencies' (npm, yarn, pnpm and the
	// package.json scripts, go build, python -m venv and pip). Give the
	// uid the app's instances run as, so a build can do no more than the
	// app itself (runas.go says what the uid may reach). Flock must be
	// root then. Nil, or ok false, runs builds as Flock's own user, in
	// Flock's environment.
	RunAs func(app string) (uid int, ok bool, err error)
}

// Builder builds slugs and keeps them in the artifact store. It is safe
// for concurrent builds.
type Builder struct {
	dir    string
	cache  string
	logger *slog.Logger
	static []string
	runAs  func(string) (int, bool, error)
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
	return &Builder{dir: dir, cache: cache, logger: logger, static: cfg.StaticServer, runAs: cfg.RunAs}, nil
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
	x, err := b.openBox(app)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(filepath.Join(b.cache, "work"), 0o755); err != nil {
		return "", "", err
	}
	work, err := os.MkdirTemp(filepath.Join(b.cache, "work"), app+"-"+release+"-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(work) // RemoveAll follows no link the build made
	tree := filepath.Join(work, "app")
	if err := copyTree(src, tree); err != nil {
		return "", "", fmt.Errorf("copy source: %w", err)
	}
	// Opened while the tree is Flock's alone: Flock reads and changes the
	// tree only through root from here on (runas.go).
	root, err := os.OpenRoot(tree)
	if err != nil {
		return "", "", err
	}
	defer root.Close()
	owner := -1
	if x != nil {
		x.tmp = filepath.Join(work, "tmp")
		if err := os.Mkdir(x.tmp, 0o700); err != nil {
			return "", "", err
		}
		if err := chownTree(work, x.uid); err != nil {
			return "", "", err
		}
		owner = x.uid
		lw.printf("-----> Building as uid %d, the app's own", x.uid)
	}
	command, shown, err = b.compile(ctx, &job{tree: tree, root: root, box: x, lw: lw}, cmd)
	if err != nil {
		return "", "", err
	}
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	lw.printf("-----> Writing slug %s/%s.tar.gz", app, release)
	if err := writeSlug(root, slug, owner); err != nil {
		return "", "", fmt.Errorf("write slug: %w", err)
	}
	return command, shown, nil
}

// job is one build's work tree: its path (for the steps), the os.Root
// Flock reads and changes it through, who runs the steps, and the log.
type job struct {
	tree string
	root *os.Root
	box  *box // nil: the steps run as Flock's user
	lw   *lineWriter
}

// run runs a build step in the tree.
func (j *job) run(ctx context.Context, env []string, name string, args ...string) error {
	return run(ctx, j.lw, j.box, j.tree, env, name, args...)
}

// has reports whether name exists in the tree.
func (j *job) has(name string) bool { return has(j.root, name) }

// compile detects the kind of app in the job's tree, builds it in place
// and returns its start command, and that command as the build log shows it.
func (b *Builder) compile(ctx context.Context, j *job, cmd string) (command, shown string, err error) {
	lw := j.lw
	web, hasProcfile, err := procfileWeb(j.root)
	if err != nil {
		return "", "", err
	}
	switch {
	case j.has("package.json"):
		command, shown, err = b.buildNode(ctx, j)
	case j.has("go.mod"):
		command, err = b.buildGo(ctx, j)
	case j.has("requirements.txt"):
		err = b.buildPython(ctx, j)
	case hasProcfile:
		lw.printf("-----> Procfile app detected")
	case j.has("index.html"):
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
		if command, shown, err = b.staticSite(j.root, lw); err != nil {
			return "", "", err
		}
	}
	if command == "" {
		return "", "", errors.New("no start command: add a Procfile with a line \"web: <command>\", " +
			"a \"start\" script or \"main\" file in package.json, an index.html to serve as a static site, or set flock.cmd")
	}
	if j.has(".venv/bin/python3") {
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

// has reports whether name exists in r (links followed inside r only).
func has(r *os.Root, name string) bool {
	_, err := r.Stat(name)
	return err == nil
}
