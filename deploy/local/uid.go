package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/procgroup"
)

// When Flock runs as root, each app's instances run under a uid of their
// own, as systemd's DynamicUser does: allocated from a fixed range, with
// no /etc/passwd entry, the same for every instance of the app and kept in
// uids.json so a restart of Flock reuses it. The app owns its release and
// sandbox folders and nothing else: apps/<app> is root:<app gid> 0750, so
// one app cannot enter another's folder, and everything Flock keeps for
// itself stays 0700/0600. Its instances cannot signal Flock, read
// /proc/<flock>/environ, or reach another app's processes.
//
// The folders above Dir must let the app pass (o+x) to reach its own:
// boxes adds that bit (never r or w) where it is missing, so whoever owns
// the data dir must keep its other entries closed (cmd/flock does).

// The range systemd reserves for DynamicUser (61184–65519): outside the
// ranges distributions give to system and human users, and below 65536 so
// it maps into the user namespaces of most containers.
const (
	uidFirst = 61184
	uidLast  = 65519
)

// boxes allocates and remembers apps' uids. A nil *boxes means Flock is not
// root: instances run as Flock's own user.
type boxes struct {
	path string // uids.json
	mu   sync.Mutex
	uids map[string]int // app → uid (= gid)
}

// setupBoxes decides whether apps get uids of their own (Flock is root)
// and prepares Dir for them: nobody but root lists Dir, and its ancestors
// can be passed through.
func (s *Scheduler) setupBoxes() error {
	if os.Geteuid() != 0 {
		s.log.Warn("flock is not root: every app, and its builds, run as flock's own user and can read the other apps' files and flock's data dir",
			"uid", os.Geteuid(), "docs", "docs/local-scheduler.md")
		return nil
	}
	b := &boxes{path: filepath.Join(s.cfg.Dir, "uids.json"), uids: map[string]int{}}
	raw, err := os.ReadFile(b.path)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &b.uids); err != nil {
			return fmt.Errorf("read %s: %w", b.path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read app uids: %w", err)
	}
	for _, d := range []string{s.cfg.Dir, filepath.Join(s.cfg.Dir, "apps")} {
		if err := os.Chmod(d, 0o711); err != nil {
			return fmt.Errorf("app folders: %w", err)
		}
	}
	for d := filepath.Dir(s.cfg.Dir); ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("let apps reach %s: %w", s.cfg.Dir, err)
			}
			s.log.Info("made a folder passable (o+x) so apps reach their own folders under it", "dir", d)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	s.boxes = b
	return nil
}

// uid returns app's uid, allocating one at its first release: the lowest
// of the range that no other app holds, no /etc/passwd entry names and no
// running process uses. An app's process types (<app>--worker) share the
// app's uid, as its builds do: one app, one user.
func (b *boxes) uid(app string) (int, error) {
	if parent, _, ok := deploy.ParentApp(app); ok {
		app = parent
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if u, ok := b.uids[app]; ok {
		return u, nil
	}
	taken := map[int]bool{}
	for _, u := range b.uids {
		taken[u] = true
	}
	for u := range systemUIDs() {
		taken[u] = true
	}
	for u := uidFirst; u <= uidLast; u++ {
		if taken[u] {
			continue
		}
		b.uids[app] = u
		if err := b.save(); err != nil {
			delete(b.uids, app)
			return 0, err
		}
		return u, nil
	}
	return 0, fmt.Errorf("app %s: every uid from %d to %d is taken", app, uidFirst, uidLast)
}

// save writes uids.json (0600) through a temporary file and a rename.
func (b *boxes) save() error {
	raw, _ := json.MarshalIndent(b.uids, "", "  ")
	tmp := b.path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("save app uids: %w", err)
	}
	if err := os.Rename(tmp, b.path); err != nil {
		return fmt.Errorf("save app uids: %w", err)
	}
	return nil
}

// systemUIDs lists the uids of /etc/passwd and of running processes (a
// uid in use that no file names, like another DynamicUser's).
func systemUIDs() map[int]bool {
	out := map[int]bool{}
	if raw, err := os.ReadFile("/etc/passwd"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if f := strings.Split(line, ":"); len(f) > 2 {
				if u, err := strconv.Atoi(f[2]); err == nil {
					out[u] = true
				}
			}
		}
	}
	for _, pid := range procgroup.List() {
		if uid, ok := procgroup.Owner(pid); ok {
			out[uid] = true
		}
	}
	return out
}

// appUID returns the uid app's instances run as, and closes apps/<app>
// (and its releases/ and instances/) to everybody but root and that uid's
// group; -1 when Flock is not root.
func (s *Scheduler) appUID(app string) (int, error) {
	if s.boxes == nil {
		return -1, nil
	}
	uid, err := s.boxes.uid(app)
	if err != nil {
		return 0, err
	}
	dir := s.appDir(app)
	// Explicit modes: Flock may run with umask 077 (flock up does).
	for _, d := range []string{dir, filepath.Join(dir, "releases"), filepath.Join(dir, "instances")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return 0, fmt.Errorf("app folder: %w", err)
		}
		if err := os.Lchown(d, 0, uid); err != nil {
			return 0, fmt.Errorf("app folder: %w", err)
		}
		if err := os.Chmod(d, 0o750); err != nil {
			return 0, fmt.Errorf("app folder: %w", err)
		}
	}
	return uid, nil
}

// chownTree gives dir and everything in it to uid. Symbolic links are
// changed themselves, never followed. Run it before the app can write
// there (a freshly unpacked release): in a folder the app controls, it
// could swap a file for a link meanwhile.
func chownTree(dir string, uid int) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		return fmt.Errorf("give %s to uid %d: %w", dir, uid, err)
	}
	return nil
}

// ownedBy reports whether path (not followed) belongs to uid.
func ownedBy(path string, uid int) bool {
	st, err := os.Lstat(path)
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == uid
}

// UID returns the uid app's instances run as, allocating it at the app's
// first use as appUID does, so that its builds run as the same uid
// (builder.Config.RunAs). ok is false when Flock is not root: apps and
// builds run as Flock's own user then.
func (s *Scheduler) UID(app string) (uid int, ok bool, err error) {
	if s.boxes == nil {
		return 0, false, nil
	}
	if uid, err = s.boxes.uid(app); err != nil {
		return 0, false, err
	}
	return uid, true, nil
}
