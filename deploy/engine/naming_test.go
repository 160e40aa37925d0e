package engine_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy"
)

// TestDeployOfUnnamedTree: a tree with no package.json and no name in
// flock.json (a Python, Go or static app) is refused with an error that
// says every way to name the app, not "package.json: name is required".
func TestDeployOfUnnamedTree(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: python3 app.py\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := p.svc.Deploy(context.Background(), deploy.DeployRequest{Dir: dir}, io.Discard)
	if !errors.Is(err, deploy.ErrInvalid) {
		t.Fatalf("Deploy = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"has no name", "flock.json", "--app NAME", "/git/NAME.git"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "package.json: name") {
		t.Errorf("error blames a package.json the app does not have: %v", err)
	}
}
