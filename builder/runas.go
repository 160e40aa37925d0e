package builder

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A build's box. When Config.RunAs gives an app a uid (Flock is root and
// the scheduler runs the app's instances as that uid), every build step
// that runs the app's code or its dependencies' (npm, yarn, pnpm, the
// package.json scripts, go build, python -m venv, pip) runs as that uid:
//
//   - <cache>/uid/<uid>/ is the uid's own folder (0700, owned by it): its
//     HOME, so npm's, yarn's, pnpm's, corepack's, pip's and Go's caches
//     live there, one set per app; and node_modules/, the app's own
//     node_modules cache.
//   - <cache>/work/<app>-<release>-<random>/ is the build's work folder,
//     made and filled by Flock in a folder only root may write to, then
//     given to the uid: app/ (the tree) and tmp/ (TMPDIR).
//   - <cache>, <cache>/uid and <cache>/work are 0711: the uid passes
//     through to its own folders and lists nothing; the folders above
//     <cache> get o+x (never r or w) where it is missing, as the local
//     scheduler does for its own.
//   - each step is the first process of a new pid namespace: when it
//     exits, the kernel kills whatever it left behind, so no build process
//     outlives its step and races Flock on the tree.
//
// Flock (root) touches the tree after a step only through an os.Root
// opened on it before the uid got it, so a link the build made never
// leads Flock out of the tree; and the slug takes only files the uid
// owns (a hard link to another user's file is refused).

// box is who runs a build's steps and where they keep their files. A nil
// *box runs them as Flock's own user, in Flock's environment.
type box struct {
	uid  int
	app  string
	home string // <cache>/uid/<uid>
	tmp  string // the build's TMPDIR
	path string // the folders of Flock's PATH the uid can reach
}

// openBox returns the box app's build runs in: nil when Config.RunAs is
// nil or gives no uid. It prepares the uid's folder and the passable
// folders above it.
func (b *Builder) openBox(app string) (*box, error) {
	if b.runAs == nil {
		return nil, nil
	}
	uid, ok, err := b.runAs(app)
	if err != nil {
		return nil, fmt.Errorf("the app's uid: %w", err)
	}
	if !ok {
		return nil, nil
	}
	if uid <= 0 {
		return nil, fmt.Errorf("RunAs gave app %s uid %d: builds never run as root through RunAs", app, uid)
	}
	if err := b.passable(); err != nil {
		return nil, err
	}
	home := filepath.Join(b.cache, "uid", strconv.Itoa(uid))
	if err := ownFolder(home, uid); err != nil {
		return nil, err
	}
	return &box{uid: uid, app: app, home: home, path: reachablePath(os.Getenv("PATH"))}, nil
}

// passable makes <cache>, <cache>/uid and <cache>/work 0711, closes
// <cache>/node_modules (0700) and gives o+x to the folders above <cache>
// that lack it.
func (b *Builder) passable() error {
	for _, d := range []string{b.cache, filepath.Join(b.cache, "uid"), filepath.Join(b.cache, "work")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("build folders: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return fmt.Errorf("build folders: %w", err)
		}
	}
	// The shared cache of builds as Flock's user stays Flock's alone, also
	// when an older Flock left it open.
	if err := os.Chmod(b.nodeCacheDir(), 0o700); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("build folders: %w", err)
	}
	for d := filepath.Dir(b.cache); ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("let builds reach %s: %w", b.cache, err)
			}
			b.logger.Info("made a folder passable (o+x) so builds reach their own folders under it", "dir", d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// ownFolder makes dir (in a folder only root writes to) a folder of uid's,
// 0700, with home/ and node_modules/ in it. One that exists must already
// be uid's: Flock never writes inside it then.
func ownFolder(dir string, uid int) error {
	st, err := os.Lstat(dir)
	if err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); !ok || !st.IsDir() || int(sys.Uid) != uid {
			return fmt.Errorf("build folder %s is not uid %d's own folder", dir, uid)
		}
		return nil
	}
	if !os.IsNotExist(err) {
		return fmt.Errorf("build folder: %w", err)
	}
	// Made as root's, filled, and given to uid last: uid cannot enter it
	// before everything in it is its own.
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("build folder: %w", err)
	}
	for _, d := range []string{filepath.Join(dir, "home"), filepath.Join(dir, "node_modules")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("build folder: %w", err)
		}
	}
	return chownTree(dir, uid)
}

// chownTree gives dir and everything in it to uid, dir itself last, so
// that uid enters it only when Flock is done there. Links are changed
// themselves, never followed. dir must be root's alone until then.
func chownTree(dir string, uid int) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err == nil {
		err = os.Lchown(dir, uid, uid)
	}
	if err != nil {
		return fmt.Errorf("give %s to uid %d: %w", dir, uid, err)
	}
	return nil
}

// env is the environment a step adds for the box: its HOME (where every
// tool keeps its cache), TMPDIR and PATH, and the tools' own variables
// set explicitly, so none of Flock's settings points a tool at Flock's
// folders.
func (x *box) env() []string {
	home := filepath.Join(x.home, "home")
	cache := filepath.Join(home, ".cache")
	return []string{
		"HOME=" + home, "USER=" + x.app, "LOGNAME=" + x.app, "TMPDIR=" + x.tmp, "PATH=" + x.path,
		"XDG_CACHE_HOME=" + cache, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"), "XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"npm_config_cache=" + filepath.Join(home, ".npm"), "npm_config_userconfig=" + filepath.Join(home, ".npmrc"),
		"COREPACK_HOME=" + filepath.Join(cache, "node", "corepack"), "YARN_CACHE_FOLDER=" + filepath.Join(cache, "yarn"),
		"GOCACHE=" + filepath.Join(cache, "go-build"), "GOPATH=" + filepath.Join(home, "go"),
		"GOMODCACHE=" + filepath.Join(home, "go", "pkg", "mod"), "GOENV=" + filepath.Join(home, ".config", "go", "env"),
		"PIP_CACHE_DIR=" + filepath.Join(cache, "pip"),
	}
}

// PATH returns the PATH a step starts with.
func (x *box) PATH() string {
	if x == nil {
		return os.Getenv("PATH")
	}
	return x.path
}

// attr is how a step's process starts: its own process group, and in a
// box as the uid (no supplementary groups) in a new pid namespace.
func (x *box) attr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if x != nil {
		u := uint32(x.uid)
		a.Credential = &syscall.Credential{Uid: u, Gid: u, Groups: []uint32{}}
		a.Cloneflags = syscall.CLONE_NEWPID
	}
	return a
}

// lookPath finds name as the step will: on Flock's PATH, or in a box on
// the folders of it the uid can reach (root's own tools, like a pyenv
// under a closed /root, are left out).
func (x *box) lookPath(name string) (string, error) {
	if x == nil || strings.Contains(name, "/") {
		return execLookPath(name)
	}
	for _, dir := range filepath.SplitList(x.path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o001 != 0 && reachable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in a folder of PATH that uid %d can reach", name, x.uid)
}

// reachablePath keeps the absolute folders of path that every user can
// pass through.
func reachablePath(path string) string {
	var keep []string
	for _, dir := range filepath.SplitList(path) {
		if filepath.IsAbs(dir) && reachable(filepath.Join(dir, ".")) {
			keep = append(keep, dir)
		}
	}
	return strings.Join(keep, string(os.PathListSeparator))
}

// reachable reports whether every folder above p (links resolved) lets
// others pass (o+x), and p itself when it is a folder.
func reachable(p string) bool {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return false
	}
	st, err := os.Stat(real)
	if err != nil {
		return false
	}
	d := real
	if !st.IsDir() {
		d = filepath.Dir(real)
	}
	for ; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}
