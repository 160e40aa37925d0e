package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/builder"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestClientsLeavingKeepFlockUp: a git push killed mid-deploy, a deploy
// upload and a rollback whose clients hang up after the first line of the
// log: Flock stays up, each deploy still finishes and is recorded, and the
// app serves the last release.
func TestClientsLeavingKeepFlockUp(t *testing.T) {
	testkit.RequireTools(t, "git")
	f := newFlock(t)
	f.start()
	dir := copyExample(t, "hello")
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-qm", "first"}} {
		if out, err := git(t, dir, args...); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}

	// Ctrl-C (here: SIGKILL) during git push, once the rollout has begun.
	cmd := exec.Command("git", "push", "http://flock:"+f.token()+"@"+f.api+"/git/left.git", "main")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "-----> Starting") {
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	f.settled("left", 1)

	// A client that hangs up after the first line of an upload, then of a
	// rollback.
	var src bytes.Buffer
	if err := builder.Pack(dir, &src); err != nil {
		t.Fatal(err)
	}
	f.hangUp("POST", "/api/v1/deploys?app=left", "application/gzip", src.String())
	f.settled("left", 2)
	f.hangUp("POST", "/api/v1/apps/left/rollback", "application/json", `{"release":"v1"}`)
	f.settled("left", 3)

	if code, body, _ := f.get("left.localhost"); code != 200 || !strings.Contains(body, "Hello from Flock") {
		t.Errorf("the app after its clients left: %d %q", code, body)
	}
	if a := f.apps()["left"]; a.Release != "v3" {
		t.Errorf("left serves %s, want v3 (the rollback)", a.Release)
	}
}

// hangUp sends a request to the API and leaves after the first line of
// the answer.
func (f *flock) hangUp(method, path, ctype, body string) {
	f.t.Helper()
	r, _ := http.NewRequest(method, "http://"+f.api+path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+f.token())
	r.Header.Set("Content-Type", ctype)
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(r)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	bufio.NewReader(resp.Body).ReadString('\n')
	resp.Body.Close() // before the end: the connection closes
}

// settled waits until app has n deploy records, all finished and
// succeeded, checking that Flock answers all along.
func (f *flock) settled(app string, n int) {
	f.t.Helper()
	testkit.WaitFor(f.t, 60*time.Second, fmt.Sprintf("%d finished deploys of %s", n, app), func() bool {
		select {
		case <-f.exited:
			f.t.Fatalf("flock died:\n%s", f.out.String())
		default:
		}
		r, _ := http.NewRequest("GET", "http://"+f.api+"/api/v1/apps/"+app+"/releases", nil)
		r.Header.Set("Authorization", "Bearer "+f.token())
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var v struct {
			Deploys []struct {
				Status, Error string
				FinishedAt    *time.Time
			}
		}
		if json.NewDecoder(resp.Body).Decode(&v) != nil || len(v.Deploys) != n {
			return false
		}
		for _, d := range v.Deploys {
			if d.FinishedAt == nil {
				return false
			}
			if d.Status != "succeeded" {
				f.t.Fatalf("a deploy whose client left ended %s: %s", d.Status, d.Error)
			}
		}
		return true
	})
}
