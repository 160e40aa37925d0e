package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

func randomSecret(t *testing.T, prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// writeSecret writes a secret file as an operator would: 0600, a newline at the end.
func writeSecret(t *testing.T, name, value string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// call sends an API or webhook request to f and returns the status.
func call(t *testing.T, f *flock, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+f.api+path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSecretsFromFiles: flock up reads its token and webhook secret from
// --token-file and --github-secret-file; neither is on its command line or
// in its environment, where apps and local users could read them; the API
// and the webhook accept them.
func TestSecretsFromFiles(t *testing.T) {
	token, secret := randomSecret(t, "tok-"), randomSecret(t, "whsec-")
	f := newFlock(t, "--token-file", writeSecret(t, "token", token), "--github-secret-file", writeSecret(t, "secret", secret))
	f.start()
	pid := strconv.Itoa(f.cmd.Process.Pid)
	for _, what := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile("/proc/" + pid + "/" + what)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), token) || strings.Contains(string(b), secret) {
			t.Errorf("/proc/<flock>/%s holds a secret: %q", what, b)
		}
	}
	if _, err := os.Stat(filepath.Join(f.dataDir, "token")); err == nil {
		t.Error("with --token-file, flock still made <data-dir>/token")
	}

	// Sleeping an app needs the token: with it, the answer is that there
	// is no such app.
	if code, body := call(t, f, "POST", "/api/v1/apps/nope/sleep", "", map[string]string{"Authorization": "Bearer wrong"}); code != 401 {
		t.Errorf("wrong token: %d %s, want 401", code, body)
	}
	if code, body := call(t, f, "POST", "/api/v1/apps/nope/sleep", "", map[string]string{"Authorization": "Bearer " + token}); code != 404 {
		t.Errorf("the token of --token-file: %d %s, want 404 (no such app)", code, body)
	}

	ping := `{"zen": "Keep it logically awesome.", "hook_id": 1}`
	sig := func(s string) string {
		m := hmac.New(sha256.New, []byte(s))
		m.Write([]byte(ping))
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	hook := func(s string) map[string]string {
		return map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "ping", "X-GitHub-Delivery": "1", "X-Hub-Signature-256": sig(s)}
	}
	if code, body := call(t, f, "POST", "/hooks/github", ping, hook("wrong")); code != 401 {
		t.Errorf("ping signed with another secret: %d %s, want 401", code, body)
	}
	if code, body := call(t, f, "POST", "/hooks/github", ping, hook(secret)); code != 200 || !strings.Contains(body, "pong") {
		t.Errorf("ping signed with the secret of --github-secret-file: %d %s, want 200 pong", code, body)
	}
	if strings.Contains(f.out.String(), "on the command line is readable") {
		t.Errorf("warned about the command line, though no secret was on it:\n%s", f.out.String())
	}
}

// TestSecretsOnCmdlineWarnAndTokenFileMode: a secret given on the command
// line still works but Flock warns; a token file left readable by others is
// made 0600 at start.
func TestSecretsOnCmdlineWarnAndTokenFileMode(t *testing.T) {
	f := newFlock(t, "--github-secret", "s3cret")
	path := filepath.Join(f.dataDir, "token")
	if err := os.WriteFile(path, []byte("old-token\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644) // whatever the umask
	f.start()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %04o after start, want 0600", fi.Mode().Perm())
	}
	testkit.WaitFor(t, 5*time.Second, "the warnings", func() bool {
		out := f.out.String()
		return strings.Contains(out, "--github-secret on the command line is readable") &&
			strings.Contains(out, "token file was readable by others")
	})
	if code, _ := call(t, f, "POST", "/api/v1/apps/nope/sleep", "", map[string]string{"Authorization": "Bearer old-token"}); code != 404 {
		t.Errorf("the kept token: %d, want 404 (no such app)", code)
	}
}

// TestSecretFileErrors: a missing or empty file, or a secret given twice,
// stops flock up with a message naming the flag.
func TestSecretFileErrors(t *testing.T) {
	empty := writeSecret(t, "empty", "")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing", []string{"--token-file", "/nonexistent/token"}, "--token-file: open /nonexistent/token"},
		{"empty", []string{"--github-secret-file", empty}, "--github-secret-file " + empty + " is empty"},
		{"both", []string{"--token", "x", "--token-file", empty}, "--token and --token-file both given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, flockBin, append([]string{"up", "--data-dir", t.TempDir()}, tc.args...)...)
			cmd.Env = append(os.Environ(), "FLOCK_TOKEN=")
			b, err := cmd.CombinedOutput()
			out := string(b)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("flock up %v: %v\n%s\nwant an error saying %q", tc.args, err, out, tc.want)
			}
		})
	}
}
