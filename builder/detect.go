package builder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// procfileWeb returns the command of the Procfile's "web:" line, and
// whether the tree has a Procfile at all.
func procfileWeb(tree string) (string, bool, error) {
	f, err := os.Open(filepath.Join(tree, "Procfile"))
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
func (b *Builder) buildGo(ctx context.Context, tree string, lw *lineWriter) (string, error) {
	lw.printf("-----> Go app detected")
	if err := run(ctx, lw, tree, []string{"CGO_ENABLED=0"}, "go", "build", "-o", "app", "."); err != nil {
		return "", err
	}
	return "./app", nil
}

// buildPython makes a virtualenv in .venv and installs requirements.txt
// into it when the file lists anything. The start command comes from the
// Procfile.
func (b *Builder) buildPython(ctx context.Context, tree string, lw *lineWriter) error {
	data, err := os.ReadFile(filepath.Join(tree, "requirements.txt"))
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
	if err := run(ctx, lw, tree, nil, "python3", args...); err != nil {
		return err
	}
	if !listed {
		lw.printf("-----> requirements.txt lists nothing: skipping pip")
		return nil
	}
	lw.printf("-----> Installing requirements.txt with pip")
	err = run(ctx, lw, tree, []string{"PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1"},
		filepath.Join(tree, ".venv", "bin", "python3"), "-m", "pip", "install", "-r", "requirements.txt")
	if err != nil {
		return err
	}
	return relocateScripts(filepath.Join(tree, ".venv", "bin"))
}

// relocateScripts rewrites the absolute shebangs pip writes into the
// venv's scripts (they name the build's work folder) to find python3 on
// PATH, where the start command puts the venv first.
func relocateScripts(bin string) error {
	entries, err := os.ReadDir(bin)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(bin, e.Name())
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(p)
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
		if err := os.WriteFile(p, []byte("#!/usr/bin/env python3\n"+rest), 0o755); err != nil {
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
