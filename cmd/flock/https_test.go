package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// curlHTTPS fetches https://<host>:<port><path> through Flock's HTTPS
// address with real curl, trusting <data-dir>/ca.pem alone. It returns
// the body and the HTTP version curl negotiated.
func (f *flock) curlHTTPS(host, addr, path string) (body, version string, err error) {
	_, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("curl", "-sS", "--max-time", "70", "--cacert", filepath.Join(f.dataDir, "ca.pem"),
		"--resolve", host+":"+port+":127.0.0.1", "-w", "\n%{http_version}", "https://"+host+":"+port+path).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("curl: %v: %s", err, out)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	return s[:i], s[i+1:], nil
}

// echoApp writes a Node app that answers with what Flock told it about
// the request.
func echoApp(t testing.TB) string {
	dir := filepath.Join(t.TempDir(), "echo")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"echo","scripts":{"start":"node server.js"}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "server.js"), []byte(`require('http').createServer((req, res) => {
  res.end(req.headers['x-forwarded-proto'] + ' ' + req.headers['x-forwarded-for'] + ' ' + req.headers['x-flock-app']);
}).listen(Number(process.env.PORT));
`), 0o644)
	return dir
}

// TestHTTPSLocalCA: with --https, a deployed app answers over HTTPS to
// curl trusting only <data-dir>/ca.pem, over HTTP/2, and learns the
// request came over HTTPS; a sleeping app woken over HTTPS answers; the
// CA is the same after a restart; HTTPS goes on while Flock is killed and
// after the next Flock adopts HAProxy.
func TestHTTPSLocalCA(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	https := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	f := newFlock(t, "--https", https)
	f.start()
	f.mustCLI("deploy", echoApp(t))
	var body, version string
	testkit.WaitFor(t, 10*time.Second, "https://echo.localhost", func() bool {
		var err error
		body, version, err = f.curlHTTPS("echo.localhost", https, "/")
		return err == nil
	})
	if body != "https 127.0.0.1 echo" || version != "2" {
		t.Errorf("https://echo.localhost: %q over HTTP/%s, want \"https 127.0.0.1 echo\" over HTTP/2", body, version)
	}
	if code, body, _ := f.get("echo.localhost"); code != 200 || body != "http 127.0.0.1 echo" {
		t.Errorf("http://echo.localhost: %d %q, want 200 \"http 127.0.0.1 echo\" (the local CA does not redirect)", code, body)
	}

	f.mustCLI("sleep", "echo")
	testkit.WaitFor(t, 10*time.Second, "asleep", func() bool { return len(f.apps()["echo"].Instances) == 0 })
	// The waker holds the request and proxies it to the woken instance.
	if body, _, err := f.curlHTTPS("echo.localhost", https, "/"); err != nil || !strings.HasPrefix(body, "https 127.0.0.1 ") {
		t.Errorf("waking over HTTPS: %q %v, want the app's answer", body, err)
	}

	ca, _ := os.ReadFile(filepath.Join(f.dataDir, "ca.pem"))
	f.stop()
	f.start()
	again, _ := os.ReadFile(filepath.Join(f.dataDir, "ca.pem"))
	if len(ca) == 0 || !bytes.Equal(ca, again) {
		t.Fatal("ca.pem changed across a restart: users would have to trust a new CA")
	}
	testkit.WaitFor(t, 30*time.Second, "https://echo.localhost after a restart", func() bool {
		body, _, err := f.curlHTTPS("echo.localhost", https, "/")
		return err == nil && body == "https 127.0.0.1 echo"
	})

	// Flock killed: HAProxy goes on serving HTTPS, and the next Flock
	// adopts it with every certificate.
	f.kill()
	if body, _, err := f.curlHTTPS("echo.localhost", https, "/"); err != nil || body != "https 127.0.0.1 echo" {
		t.Errorf("HTTPS while Flock is down: %q %v", body, err)
	}
	f.start()
	if body, _, err := f.curlHTTPS("echo.localhost", https, "/"); err != nil || body != "https 127.0.0.1 echo" {
		t.Errorf("HTTPS after the adoption: %q %v", body, err)
	}
}
