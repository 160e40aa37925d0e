package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// examples is where the runnable example apps live.
var examples = filepath.Join("..", "docs", "examples")

// testUIDs gives each app of the tests a uid of its own when the tests
// run as root, as the local scheduler does: every build of the tests then
// runs as its app's uid (runas.go), and as the user otherwise.
var testUIDs = struct {
	sync.Mutex
	m map[string]int
}{m: map[string]int{}}

func testRunAs(app string) (int, bool, error) {
	if os.Geteuid() != 0 {
		return 0, false, nil
	}
	testUIDs.Lock()
	defer testUIDs.Unlock()
	u, ok := testUIDs.m[app]
	if !ok {
		u = 64000 + len(testUIDs.m)
		testUIDs.m[app] = u
	}
	return u, true, nil
}

func newBuilder(t testing.TB, cache string) *Builder {
	t.Helper()
	b, err := New(Config{Dir: t.TempDir(), CacheDir: cache, RunAs: testRunAs})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// app is a slug started the way a scheduler starts it.
type app struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	url  string
}

// runSlug unpacks slug into a fresh folder, starts command there with
// sh -c and PORT set, and waits until path answers 200 with want in its
// body. The app is stopped when the test ends.
func runSlug(t *testing.T, slug, command, path, want string) *app {
	t.Helper()
	f, err := os.Open(slug)
	if err != nil {
		t.Fatalf("open slug: %v", err)
	}
	defer f.Close()
	dir := t.TempDir()
	if err := Unpack(f, dir, 1<<30); err != nil {
		t.Fatalf("unpack slug: %v", err)
	}
	port := testkit.FreePort(t)
	a := &app{done: make(chan struct{}), url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	// Like a scheduler, exec the app's own process in the shell's place so
	// that its exit status is the app's.
	if i := strings.LastIndex(command, "; "); strings.Contains(command, "exec ") {
		// the command execs its app itself
	} else if i >= 0 {
		command = command[:i+2] + "exec " + command[i+2:]
	} else {
		command = "exec " + command
	}
	a.cmd = exec.Command("sh", "-c", command)
	a.cmd.Dir = dir
	a.cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "HOST=127.0.0.1", "FLOCK_RELEASE=v1", "FLOCK_APP=test")
	var out testkit.Buffer
	a.cmd.Stdout, a.cmd.Stderr = &out, &out
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start %q: %v", command, err)
	}
	go func() { a.err = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-a.done
	})
	var body string
	testkit.WaitFor(t, 20*time.Second, command+" to answer on "+path, func() bool {
		select {
		case <-a.done:
			t.Fatalf("app %q exited: %v\n%s", command, a.err, out.String())
		default:
		}
		resp, err := http.Get(a.url + path)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	if !strings.Contains(body, want) {
		t.Errorf("GET %s = %q, want it to contain %q", path, body, want)
	}
	return a
}

// stop sends SIGTERM to the app's process group and returns its exit error.
func (a *app) stop(t *testing.T) error {
	t.Helper()
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-a.done:
		return a.err
	case <-time.After(10 * time.Second):
		return errors.New("did not exit within 10s of SIGTERM")
	}
}

// entry is one member of a test archive.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

// tarGz builds a .tar.gz from entries; a zero typ is a regular file.
func tarGz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Size: int64(len(e.body))}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if hdr.Typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// files lists the regular files and links below dir as "path" or
// "path -> target", sorted.
func files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.Mode()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			rel += " -> " + target
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeTree creates files (path → content) below dir; a content of
// "@target" makes a symbolic link to target.
func writeTree(t testing.TB, dir string, tree map[string]string) {
	t.Helper()
	for name, body := range tree {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(body, "@"); ok { // "@target": a symbolic link
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var _ = context.Background
