package builder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// procfileWeb returns the command of the Procfile's "web:" line, and
// whether the tree has a Procfile at all.
func procfileWeb(tree *os.Root) (string, bool, error) {
	f, err := tree.Open("Procfile")
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read Procfile: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, cmd, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(name) == "web" {
			return strings.TrimSpace(cmd), true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", true, fmt.Errorf("read Procfile: %w", err)
	}
	return "", true, nil
}

// buildGo compiles the module at the root to ./app.
func (b *Builder) buildGo(ctx context.Context, j *job) (string, error) {
	j.lw.printf("-----> Go app detected")
	if err := j.run(ctx, []string{"CGO_ENABLED=0"}, "go", "build", "-o", "app", "."); err != nil {
		return "", err
	}
	return "./app", nil
}

// buildPython makes a virtualenv in .venv and installs requirements.txt
// into it when the file lists anything. The start command comes from the
// Procfile.
func (b *Builder) buildPython(ctx context.Context, j *job) error {
	lw := j.lw
	data, err := j.root.ReadFile("requirements.txt")
	if err != nil {
		return fmt.Errorf("read requirements.txt: %w", err)
	}
	listed := false
	for _, line := range strings.Split(string(data), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			listed = true
		}
	}
	lw.printf("-----> Python app detected")
	// --copies: symbolic links to the system's python would point out of
	// the slug, and a safe extractor rightly refuses those.
	args := []string{"-m", "venv", "--copies", ".venv"}
	if !listed {
		args = append(args, "--without-pip")
	}
	if err := j.run(ctx, nil, "python3", args...); err != nil {
		return err
	}
	if !listed {
		lw.printf("-----> requirements.txt lists nothing: skipping pip")
		return nil
	}
	lw.printf("-----> Installing requirements.txt with pip")
	err = j.run(ctx, []string{"PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1"},
		filepath.Join(j.tree, ".venv", "bin", "python3"), "-m", "pip", "install", "-r", "requirements.txt")
	if err != nil {
		return err
	}
	return relocateScripts(j.root, ".venv/bin")
}

// relocateScripts rewrites the absolute shebangs pip writes into the
// venv's scripts (they name the build's work folder) to find python3 on
// PATH, where the start command puts the venv first. It works through
// the tree's os.Root: a link the build left cannot lead it out.
func relocateScripts(tree *os.Root, bin string) error {
	entries, err := fs.ReadDir(tree.FS(), bin)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := path.Join(bin, e.Name())
		if !e.Type().IsRegular() {
			continue
		}
		data, err := tree.ReadFile(p)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(string(data), "#!/") {
			continue
		}
		first, rest, _ := strings.Cut(string(data), "\n")
		if !strings.Contains(first, "/.venv/bin/python") {
			continue
		}
		if err := tree.WriteFile(p, []byte("#!/usr/bin/env python3\n"+rest), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// shellQuote quotes s for sh unless it is plainly safe.
func shellQuote(s string) string {
	safe := s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+") == ""
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
