package main

import (
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// TestMarathonCredentials: `flock up` against a Marathon that demands
// basic auth, with the password from --marathon-password-file or in the
// URL. Every request (the event stream too) carries it; after Marathon
// goes away the errors in the log, the CLI's answers and /metrics do not
// show it.
func TestMarathonCredentials(t *testing.T) {
	testkit.RequireHAProxy(t)
	const pw = "s3cret-marathon-pw"
	for _, how := range []string{"password file", "url"} {
		t.Run(how, func(t *testing.T) {
			srv := marathontest.New(marathontest.Options{RunTasks: true, User: "flock", Password: pw})
			t.Cleanup(srv.Close)
			args := []string{"--scheduler", "marathon"}
			if how == "url" {
				args = append(args, "--marathon-url", strings.Replace(srv.URL, "http://", "http://flock:"+pw+"@", 1))
			} else {
				file := filepath.Join(t.TempDir(), "marathon-password")
				if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--marathon-url", srv.URL, "--marathon-user", "flock", "--marathon-password-file", file)
			}
			f := newFlock(t, args...)
			f.start()
			said := []string{f.mustCLI("deploy", copyExample(t, "hello"))}
			testkit.WaitFor(t, 20*time.Second, "hello routed", func() bool { c, _, _ := f.get("hello.localhost"); return c == 200 })
			events := false
			for _, r := range srv.Requests() {
				events = events || r.Path == "/v2/events"
				if !r.Authorized {
					t.Errorf("%s %s without credentials", r.Method, r.Path)
				}
			}
			if !events {
				t.Error("no event stream opened")
			}

			srv.SetDown(true)
			out, err := f.cli("scale", "hello", "2")
			if err == nil {
				t.Errorf("scale with Marathon down succeeded: %s", out)
			}
			said = append(said, out)
			testkit.WaitFor(t, 20*time.Second, "the stream failure logged", func() bool {
				return strings.Contains(f.out.String(), "marathon event stream unavailable")
			})
			req, _ := http.NewRequest("GET", "http://"+f.api+"/metrics", nil)
			req.Header.Set("Authorization", "Bearer "+f.token())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			said = append(said, string(metrics), f.out.String())
			all := strings.Join(said, "\n")
			for _, secret := range []string{pw, base64.StdEncoding.EncodeToString([]byte("flock:" + pw))} {
				if strings.Contains(all, secret) {
					t.Errorf("%q leaked into the log, the CLI or /metrics", secret)
				}
			}
		})
	}
}
