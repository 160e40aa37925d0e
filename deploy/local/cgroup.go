package local

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// cgroups places each instance in its own cgroup v2 with memory.max set
// from the descriptor's "mem". It needs a cgroup v2 hierarchy with the
// memory controller and a subtree Flock may write to (root, or a delegated
// systemd unit). Anything less and memory is simply not enforced:
// MemoryEnforced reports false and instances run without limits.
type cgroups struct {
	parent string // apps' cgroups are created under it; "" when disabled
}

// detectCgroups prepares <own cgroup>/flock-<hash of dir> with the memory
// controller enabled for its children. root is /sys/fs/cgroup and self is
// /proc/self/cgroup (parameters for tests).
func detectCgroups(root, self, dir string) (*cgroups, error) {
	ctl, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return &cgroups{}, fmt.Errorf("no cgroup v2 hierarchy at %s", root)
	}
	if !hasWord(string(ctl), "memory") {
		return &cgroups{}, fmt.Errorf("cgroup v2 without the memory controller")
	}
	own, err := ownCgroup(self)
	if err != nil {
		return &cgroups{}, err
	}
	base := filepath.Join(root, own)
	if err := enableMemory(base); err != nil {
		// cgroup v2 forbids controllers for the children of a cgroup that
		// holds processes itself: move Flock into a leaf beside the apps.
		leaf := filepath.Join(base, "flock-supervisor")
		if mkErr := os.Mkdir(leaf, 0o755); mkErr != nil && !errors.Is(mkErr, os.ErrExist) {
			return &cgroups{}, fmt.Errorf("cgroup %s: %w", base, err)
		}
		if werr := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(os.Getpid())); werr != nil {
			return &cgroups{}, fmt.Errorf("cgroup %s: %w", base, werr)
		}
		if err := enableMemory(base); err != nil {
			return &cgroups{}, fmt.Errorf("cgroup %s: %w", base, err)
		}
	}
	sum := sha256.Sum256([]byte(dir))
	parent := filepath.Join(base, "flock-"+hex.EncodeToString(sum[:4]))
	if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return &cgroups{}, fmt.Errorf("cgroup %s: %w", parent, err)
	}
	if err := enableMemory(parent); err != nil {
		return &cgroups{}, fmt.Errorf("cgroup %s: %w", parent, err)
	}
	return &cgroups{parent: parent}, nil
}

func (c *cgroups) enabled() bool { return c != nil && c.parent != "" }

// create makes the instance's cgroup and returns its path and an open
// descriptor for SysProcAttr.CgroupFD (the child starts inside it, so
// not even its first fork escapes the limit).
func (c *cgroups) create(id string, memMiB int) (string, *os.File, error) {
	path := filepath.Join(c.parent, id)
	if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", nil, fmt.Errorf("cgroup %s: %w", id, err)
	}
	limit := "max"
	if memMiB > 0 {
		limit = strconv.Itoa(memMiB << 20)
	}
	if err := writeFile(filepath.Join(path, "memory.max"), limit); err != nil {
		os.Remove(path)
		return "", nil, fmt.Errorf("cgroup %s: %w", id, err)
	}
	writeFile(filepath.Join(path, "memory.swap.max"), "0") // absent without swap accounting
	writeFile(filepath.Join(path, "memory.oom.group"), "1")
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		os.Remove(path)
		return "", nil, fmt.Errorf("cgroup %s: %w", id, err)
	}
	return path, f, nil
}

// join moves pid into the cgroup at path: the fallback when the kernel
// cannot start a process straight into a cgroup (before Linux 5.7).
func joinCgroup(path string, pid int) error {
	return writeFile(filepath.Join(path, "cgroup.procs"), strconv.Itoa(pid))
}

// removeCgroup deletes an instance's cgroup once its processes are gone.
func removeCgroup(path string) {
	if path != "" {
		os.Remove(path) // rmdir; fails harmlessly while a process remains
	}
}

func enableMemory(dir string) error {
	sub, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err == nil && hasWord(string(sub), "memory") {
		return nil
	}
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+memory")
}

// ownCgroup reads the v2 entry ("0::/path") of /proc/self/cgroup.
func ownCgroup(self string) (string, error) {
	f, err := os.Open(self)
	if err != nil {
		return "", fmt.Errorf("own cgroup: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			if rest == "" || strings.Contains(rest, "..") {
				break
			}
			return rest, nil
		}
	}
	return "", errors.New("own cgroup: no cgroup v2 entry")
}

func hasWord(s, w string) bool { return slices.Contains(strings.Fields(s), w) }

func writeFile(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
