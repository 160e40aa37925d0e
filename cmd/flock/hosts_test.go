package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostBelongsToOneApp drives the real binary: `flock deploy` of an app
// that claims another app's host fails with the owner's name and changes
// nothing, and HAProxy answers 400 to a request that names two hosts.
func TestHostBelongsToOneApp(t *testing.T) {
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", "--app", "b", copyExample(t, "hello"))
	f.mustCLI("deploy", "--app", "a", copyExample(t, "hello"))

	greedy := copyExample(t, "hello")
	pj := filepath.Join(greedy, "package.json")
	data, err := os.ReadFile(pj)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), `"instances": 1,`, `"instances": 1, "domains": ["b.localhost"],`, 1))
	if err := os.WriteFile(pj, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := f.cli("deploy", "--app", "a", greedy)
	if want := `flock.domains[0] "b.localhost" is app b's host`; err == nil || !strings.Contains(out, want) {
		t.Fatalf("flock deploy of a claiming b.localhost: %v\n%s\nwant it refused with %q", err, out, want)
	}
	apps := f.apps()
	if apps["a"].Release != "v1" || apps["b"].Release != "v1" {
		t.Errorf("after the refused deploy: a %s, b %s; want both still v1", apps["a"].Release, apps["b"].Release)
	}
	if code, _, _ := f.get("b.localhost"); code != 200 {
		t.Errorf("b.localhost answers %d after the refused deploy", code)
	}

	c, err := net.DialTimeout("tcp", f.http, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.localhost,b.localhost\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("Host: a.localhost,b.localhost got %d, want 400", resp.StatusCode)
	}
}
