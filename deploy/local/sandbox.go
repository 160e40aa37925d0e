package local

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// Layout of Config.Dir:
//
//	state.json                         pids and pgids of running instances (leftover reaping)
//	apps/<app>/app.log                 every instance's output, prefixed with its id
//	apps/<app>/releases/<release>/     the slug, unpacked once per release (read-only by convention)
//	apps/<app>/instances/<id>/         the instance's sandbox: output.log and tmp/ (TMPDIR)
//
// Instances of a release share the unpacked release folder as their working
// directory instead of each getting a copy: a copy of node_modules costs
// seconds and disk per instance, and start→healthy must stay within a few
// milliseconds. What an instance writes for itself belongs in TMPDIR, which
// points into its own sandbox folder.

var (
	releaseRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	envKeyRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// validate checks everything in spec that reaches a path, an environment
// or a shell before anything is created.
func validate(spec deploy.Spec) error {
	if !deploy.ValidName(spec.App) {
		return fmt.Errorf("app name %q is not a lower-case DNS label: %w", spec.App, deploy.ErrInvalid)
	}
	if !releaseRE.MatchString(spec.Release) || strings.Contains(spec.Release, "..") {
		return fmt.Errorf("release name %q: %w", spec.Release, deploy.ErrInvalid)
	}
	if strings.TrimSpace(spec.Command) == "" || strings.ContainsRune(spec.Command, 0) {
		return fmt.Errorf("release %s has no start command: %w", spec.Release, deploy.ErrInvalid)
	}
	if spec.Instances < 0 {
		return fmt.Errorf("instances %d: %w", spec.Instances, deploy.ErrInvalid)
	}
	for k, v := range spec.Env {
		if !envKeyRE.MatchString(k) || strings.ContainsRune(v, 0) {
			return fmt.Errorf("env %q is not a valid variable: %w", k, deploy.ErrInvalid)
		}
	}
	if _, err := checksOf(spec.Descriptor); err != nil {
		return err
	}
	return nil
}

// release is one release of an app, unpacked and ready to start.
type release struct {
	name    string
	dir     string // working directory of its instances
	command string
	env     map[string]string
	ports   int
	mem     int
	cpus    float64
	uid     int // its instances' uid; -1: Flock's own (Flock is not root)
	checks  []check
	stable  time.Duration // how long a new instance must stay healthy before a deploy counts it
}

// prepare unpacks spec's slug once into the release cache and returns the
// release. The slug is unpacked into a temporary folder and renamed into
// place, so a folder that exists is complete (also after a crash).
func (s *Scheduler) prepare(spec deploy.Spec) (*release, error) {
	checks, err := checksOf(spec.Descriptor)
	if err != nil {
		return nil, err
	}
	uid, err := s.appUID(spec.App)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.appDir(spec.App), "releases", spec.Release)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := s.unpack(spec, dir, uid); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("release folder: %w", err)
	} else if uid >= 0 && !ownedBy(dir, uid) { // unpacked before apps had uids
		if err := chownTree(dir, uid); err != nil {
			return nil, err
		}
	}
	return &release{
		name: spec.Release, dir: dir, command: spec.Command, env: maps.Clone(spec.Env),
		ports: max(spec.Descriptor.Ports, 0), mem: spec.Descriptor.Mem, cpus: spec.Descriptor.CPUs,
		uid: uid, checks: checks, stable: spec.Descriptor.Stable(),
	}, nil
}

// unpack extracts the slug into dir, given to uid (when >= 0) before it
// is renamed into place, where the app could reach it.
func (s *Scheduler) unpack(spec deploy.Spec, dir string, uid int) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("release folder: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".unpack-*")
	if err != nil {
		return fmt.Errorf("release folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	if spec.SlugPath != "" {
		if s.cfg.Unpack == nil {
			return fmt.Errorf("unpack %s: no Unpack function configured", spec.SlugPath)
		}
		if err := s.cfg.Unpack(spec.SlugPath, tmp); err != nil {
			return fmt.Errorf("unpack %s: %w", spec.SlugPath, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("release folder: %w", err)
	}
	if uid >= 0 {
		if err := chownTree(tmp, uid); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("release folder: %w", err)
	}
	return nil
}

// removeReleases deletes the unpacked releases of app except keep.
func (s *Scheduler) removeReleases(app string, keep ...string) {
	root := filepath.Join(s.appDir(app), "releases")
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !slices.Contains(keep, e.Name()) {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

func (s *Scheduler) appDir(app string) string { return filepath.Join(s.cfg.Dir, "apps", app) }

// newID names an instance "<app>.<release>.<6 hex>": unique across restarts
// of Flock, readable in logs, and safe as a file name and an HAProxy server
// name.
func newID(app, rel string) string {
	var b [3]byte
	rand.Read(b[:])
	return app + "." + rel + "." + hex.EncodeToString(b[:])
}

// environ builds an instance's environment: a few basics of Flock's own
// environment, the descriptor's env, then what the scheduler sets (which
// wins, so an app cannot lie about its own ports). An app with a uid of
// its own gets its sandbox as HOME (npm keeps its cache there) and its
// name as USER: Flock's home is not its to read.
func (s *Scheduler) environ(in *instance, sandbox string) []string {
	env := map[string]string{}
	for _, k := range []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	if env["PATH"] == "" {
		env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
	}
	env["TMPDIR"] = filepath.Join(sandbox, "tmp")
	if in.rel.uid >= 0 {
		env["HOME"], env["USER"], env["LOGNAME"] = sandbox, in.app, in.app
	}
	for k, v := range in.rel.env {
		env[k] = v
	}
	for i, p := range in.ports {
		env["PORT"+strconv.Itoa(i)] = strconv.Itoa(p)
	}
	if len(in.ports) > 0 {
		env["PORT"] = strconv.Itoa(in.ports[0])
	}
	env["HOST"] = s.cfg.Host
	env["FLOCK_APP"], env["FLOCK_PROCESS"] = in.app, "web"
	if app, typ, ok := deploy.ParentApp(in.app); ok { // a worker of app
		env["FLOCK_APP"], env["FLOCK_PROCESS"] = app, typ
	}
	env["FLOCK_RELEASE"] = in.rel.name
	env["FLOCK_INSTANCE"] = in.id
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
