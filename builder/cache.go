package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// keepCached is how many node_modules trees the cache keeps; the least
// recently used go first.
const keepCached = 20

// nodeCacheKey is the sha256 of the lockfile, the node version (native
// modules built for one node do not load in another) and the variant:
// "full" (with devDependencies) or "prod" (pruned).
func nodeCacheKey(lockfile, nodeVersion, variant string) (string, error) {
	f, err := os.Open(lockfile)
	if err != nil {
		return "", fmt.Errorf("read lockfile: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read lockfile: %w", err)
	}
	fmt.Fprintf(h, "\x00node %s\x00%s", nodeVersion, variant)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (b *Builder) nodeCacheDir() string { return filepath.Join(b.cache, "node_modules") }

// restoreNodeModules links the cached node_modules for key into tree and
// reports whether there was one. Hard links make a restore cost one
// syscall per file; the work tree is deleted after the slug is written, so
// the shared files are never changed.
func (b *Builder) restoreNodeModules(key, tree string) (bool, error) {
	entry := filepath.Join(b.nodeCacheDir(), key)
	src := filepath.Join(entry, "node_modules")
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	dst := filepath.Join(tree, "node_modules")
	if err := os.RemoveAll(dst); err != nil {
		return false, fmt.Errorf("restore node_modules: %w", err)
	}
	if err := linkTree(src, dst); err != nil {
		_ = os.RemoveAll(dst)
		return false, fmt.Errorf("restore node_modules: %w", err)
	}
	now := time.Now()
	_ = os.Chtimes(entry, now, now) // mark as recently used for pruning
	return true, nil
}

// storeNodeModules copies tree's node_modules into the cache under key:
// into a temporary folder first, renamed into place, so a half-written
// entry is never used. A tree without node_modules caches an empty one.
func (b *Builder) storeNodeModules(key, tree string) error {
	if err := os.MkdirAll(b.nodeCacheDir(), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(b.nodeCacheDir(), ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tree, "node_modules")
	dst := filepath.Join(tmp, "node_modules")
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		err = os.Mkdir(dst, 0o755)
		if err != nil {
			return err
		}
	} else if err := linkTree(src, dst); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(b.nodeCacheDir(), key)); err != nil {
		if exists(b.nodeCacheDir(), key) {
			return nil // a concurrent build stored the same key
		}
		return err
	}
	b.pruneNodeCache()
	return nil
}

// pruneNodeCache removes all but the keepCached most recently used
// entries.
func (b *Builder) pruneNodeCache() {
	entries, err := os.ReadDir(b.nodeCacheDir())
	if err != nil {
		return
	}
	type used struct {
		name string
		at   time.Time
	}
	var list []used
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.IsDir() && e.Name()[0] != '.' {
			list = append(list, used{e.Name(), info.ModTime()})
		}
	}
	slices.SortFunc(list, func(a, b used) int { return b.at.Compare(a.at) })
	for _, u := range list[min(len(list), keepCached):] {
		_ = os.RemoveAll(filepath.Join(b.nodeCacheDir(), u.name))
	}
}
