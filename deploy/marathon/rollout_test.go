package marathon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestCreateSendsDocumentedAppDefinition deploys a new app and checks the
// POST body field by field against Marathon's documented app definition:
// every key Flock sends must exist there with the same JSON type.
func TestCreateSendsDocumentedAppDefinition(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	var log bytes.Buffer
	if err := s.Deploy(context.Background(), testSpec("hello", "v1", 2), &log); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, log.String())
	}
	sent := lastBody(t, f, "POST", "/v2/apps")
	var doc map[string]any
	if err := json.Unmarshal(fixture(t, "v2_app_definition_post_request_and_response.json"), &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range shapeDiff("", sent, doc) {
		t.Errorf("not as documented: %s", p)
	}

	// The fake says it is Marathon 1.5: Mesos health checks.
	want := map[string]any{
		"id": "/flock/hello/web", "cmd": "node server.js", "cpus": 0.1, "mem": 32.0, "instances": 2.0,
		"fetch":           []any{map[string]any{"uri": "http://flock.example:8080/artifacts/hello/v1.tar.gz", "extract": true, "executable": false, "cache": false}},
		"portDefinitions": []any{map[string]any{"port": 0.0, "protocol": "tcp", "name": "port0"}},
		"env":             map[string]any{"GREETING": "hi", "FLOCK_APP": "hello", "FLOCK_PROCESS": "web", "FLOCK_RELEASE": "v1"},
		"healthChecks": []any{map[string]any{"protocol": "MESOS_HTTP", "path": "/", "portIndex": 0.0, "intervalSeconds": 15.0,
			"timeoutSeconds": 5.0, "gracePeriodSeconds": 30.0, "maxConsecutiveFailures": 3.0}},
		"upgradeStrategy": map[string]any{"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
		"labels": map[string]any{"FLOCK_MANAGED": "true", "FLOCK_APP": "hello", "FLOCK_RELEASE": "v1",
			"FLOCK_VERSION": "1", "FLOCK_COMMIT": "abc123", "FLOCK_AWAKE_INSTANCES": "2"},
		"taskKillGracePeriodSeconds": 30.0,
		"dependencies":               []any{},
		"ports":                      nil, // go-marathon v0.7.1 always sends it; null leaves it unset
	}
	if diff := cmp.Diff(want, sent); diff != "" {
		t.Errorf("POST /v2/apps body (-want +got):\n%s", diff)
	}
	ins, err := s.Instances(context.Background(), "hello")
	if err != nil || len(ins) != 2 || !ins[0].Healthy || ins[0].Release != "v1" || ins[0].Port == 0 {
		t.Errorf("Instances = %+v, %v; want 2 healthy v1 instances", ins, err)
	}
	if !strings.Contains(log.String(), "created /flock/hello/web") || !strings.Contains(log.String(), "2/2 instances healthy") {
		t.Errorf("deploy log lacks progress:\n%s", log.String())
	}
}

// shapeDiff lists the paths of got that doc does not have, or has with
// another JSON type. env and labels are free-form maps of strings.
func shapeDiff(path string, got, doc map[string]any) []string {
	var out []string
	for k, v := range got {
		p := path + "." + k
		d, ok := doc[k]
		switch {
		case k == "ports" && v == nil && path == "":
			// go-marathon's Application has no omitempty on ports.
		case !ok:
			out = append(out, p+" is not in Marathon's app definition")
		case k == "env" || k == "labels":
			for ek, ev := range v.(map[string]any) {
				if _, isStr := ev.(string); !isStr {
					out = append(out, fmt.Sprintf("%s.%s is %T, want string", p, ek, ev))
				}
			}
		default:
			out = append(out, sameType(p, v, d)...)
		}
	}
	return out
}

func sameType(p string, v, d any) []string {
	switch v := v.(type) {
	case map[string]any:
		dm, ok := d.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s is an object, documented as %T", p, d)}
		}
		return shapeDiff(p, v, dm)
	case []any:
		da, ok := d.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s is an array, documented as %T", p, d)}
		}
		var out []string
		for i, e := range v {
			if len(da) == 0 {
				break
			}
			out = append(out, sameType(fmt.Sprintf("%s[%d]", p, i), e, da[len(da)-1])...)
		}
		return out
	}
	if fmt.Sprintf("%T", v) != fmt.Sprintf("%T", d) {
		return []string{fmt.Sprintf("%s is %T, documented as %T", p, v, d)}
	}
	return nil
}

// TestNewReleaseIsAPut deploys v2 over v1: a PUT with the new release,
// and after it only v2 instances remain.
func TestNewReleaseIsAPut(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 2), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	v1, _ := s.Instances(ctx, "hello")
	if err := s.Deploy(ctx, testSpec("hello", "v2", 2), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	put := lastBody(t, f, "PUT", "/v2/apps/flock/hello/web")
	if got := put["labels"].(map[string]any)[releaseLabel]; got != "v2" {
		t.Errorf("PUT labels FLOCK_RELEASE = %v, want v2", got)
	}
	if got := put["env"].(map[string]any)["FLOCK_RELEASE"]; got != "v2" {
		t.Errorf("PUT env FLOCK_RELEASE = %v, want v2", got)
	}
	if n := len(requests(f, "POST", "/v2/apps")); n != 1 {
		t.Errorf("%d POSTs, want 1 (only the first deploy creates)", n)
	}
	ins, _ := s.Instances(ctx, "hello")
	if len(ins) != 2 || ins[0].Release != "v2" || ins[1].Release != "v2" {
		t.Errorf("after v2: %+v", ins)
	}
	for _, in := range ins {
		for _, old := range v1 {
			if in.ID == old.ID {
				t.Errorf("v1 task %s still running", in.ID)
			}
		}
	}
}

// TestSleepAndWake scales to 0 and back: the awake count survives in
// FLOCK_AWAKE_INSTANCES, the tasks that go are drained, and a partial
// scale-down kills exactly the drained tasks.
func TestSleepAndWake(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	d := &drains{}
	s := newSched(t, Config{URLs: []string{f.URL}, Drainer: d})
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 2), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Instances(ctx, "hello")

	if err := s.Scale(ctx, "hello", 0); err != nil {
		t.Fatal(err)
	}
	put := lastBody(t, f, "PUT", "/v2/apps/flock/hello/web")
	if put["instances"] != 0.0 {
		t.Errorf("sleep PUT instances = %v", put["instances"])
	}
	if _, sent := put["labels"]; sent {
		t.Errorf("sleep PUT sent labels %v; the awake count was already 2", put["labels"])
	}
	if got := f.App("/flock/hello/web")["labels"].(map[string]any)[awakeLabel]; got != "2" {
		t.Errorf("asleep: %s = %v, want 2", awakeLabel, got)
	}
	if diff := cmp.Diff([]string{"hello/" + before[0].ID, "hello/" + before[1].ID}, d.list(), sortStrings); diff != "" {
		t.Errorf("drained before sleeping (-want +got):\n%s", diff)
	}
	testkit.WaitFor(t, 5*time.Second, "no task left", func() bool {
		ins, _ := s.Instances(ctx, "hello")
		_ = s.refresh(ctx, "hello")
		return len(ins) == 0
	})

	if err := s.Scale(ctx, "hello", 3); err != nil {
		t.Fatal(err)
	}
	if got := lastBody(t, f, "PUT", "/v2/apps/flock/hello/web")["labels"].(map[string]any)[awakeLabel]; got != "3" {
		t.Errorf("wake PUT %s = %v, want 3", awakeLabel, got)
	}
	testkit.WaitFor(t, 5*time.Second, "3 healthy instances", func() bool {
		_ = s.refresh(ctx, "hello")
		ins, _ := s.Instances(ctx, "hello")
		return len(ins) == 3 && ins[2].Healthy
	})

	ins, _ := s.Instances(ctx, "hello")
	d.mu.Lock()
	d.ids = nil
	d.mu.Unlock()
	if err := s.Scale(ctx, "hello", 1); err != nil {
		t.Fatal(err)
	}
	kill := requests(f, "POST", "/v2/tasks/delete")
	if len(kill) != 1 || query(kill[0]).Get("scale") != "true" || query(kill[0]).Get("force") != "true" {
		t.Fatalf("partial scale-down: %+v, want one POST /v2/tasks/delete?scale=true&force=true", kill)
	}
	var body struct{ IDs []string }
	json.Unmarshal(kill[0].Body, &body)
	var drained []string
	for _, id := range d.list() {
		drained = append(drained, strings.TrimPrefix(id, "hello/"))
	}
	if diff := cmp.Diff(body.IDs, drained, sortStrings); diff != "" || len(body.IDs) != 2 {
		t.Errorf("killed %v, drained %v: want the same 2 tasks", body.IDs, drained)
	}
	if !cmp.Equal(body.IDs, instanceIDs(ins)[1:], sortStrings) {
		t.Errorf("killed %v, want the youngest two of %v", body.IDs, instanceIDs(ins))
	}
	if got := f.App("/flock/hello/web")["instances"]; got != 1.0 {
		t.Errorf("instances after scale=true kill = %v, want 1", got)
	}
}

var sortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// TestRemove destroys an app: drained, DELETE sent, forgotten.
func TestRemove(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	d := &drains{}
	s := newSched(t, Config{URLs: []string{f.URL}, Drainer: d})
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	del := requests(f, "DELETE", "/v2/apps/flock/hello/web")
	if len(del) != 1 || query(del[0]).Get("force") != "true" {
		t.Errorf("DELETE requests: %+v", del)
	}
	if f.App("/flock/hello/web") != nil {
		t.Error("app still in Marathon")
	}
	if len(d.list()) != 1 {
		t.Errorf("drained %v, want the one instance", d.list())
	}
	if ins, err := s.Instances(ctx, "hello"); err != nil || len(ins) != 0 {
		t.Errorf("Instances after Remove: %v, %v; want none", ins, err)
	}
	if err := s.Remove(ctx, "hello"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// TestConflictRetried: a 409 (another deployment holds the app) is retried
// with backoff; one that persists is reported as deploy.ErrConflict.
func TestConflictRetried(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	f.Fail("PUT", "/v2/apps/flock/hello/web", 409, 2)
	var log bytes.Buffer
	if err := s.Deploy(ctx, testSpec("hello", "v2", 1), &log); err != nil {
		t.Fatalf("Deploy after two 409s: %v", err)
	}
	if n := len(requests(f, "PUT", "/v2/apps/flock/hello/web")); n != 3 {
		t.Errorf("%d PUTs, want 3 (two refused, one accepted)", n)
	}
	if !strings.Contains(log.String(), "retrying") {
		t.Errorf("log does not mention the retry:\n%s", log.String())
	}
	f.Fail("PUT", "/v2/apps/flock/hello/web", 409, 100)
	err := s.Scale(ctx, "hello", 3)
	if !errors.Is(err, deploy.ErrConflict) {
		t.Errorf("Scale under a lasting 409: %v, want ErrConflict", err)
	}
}

// TestFailedDeploymentRolledBack: v2's tasks never pass their checks, so
// Deploy fails with ErrUnhealthy, the deployment is cancelled (Marathon's
// rollback) and v1 serves on.
func TestFailedDeploymentRolledBack(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}, DeployTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 2), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	f.SetUnhealthy("/flock/hello/web", true)
	var log bytes.Buffer
	err := s.Deploy(ctx, testSpec("hello", "v2", 2), &log)
	if !errors.Is(err, deploy.ErrUnhealthy) {
		t.Fatalf("Deploy = %v, want ErrUnhealthy\n%s", err, log.String())
	}
	var cancelled bool
	for _, r := range f.Requests() {
		cancelled = cancelled || (r.Method == "DELETE" && strings.HasPrefix(r.Path, "/v2/deployments/"))
	}
	if !cancelled {
		t.Error("the failed deployment was not cancelled")
	}
	if got := f.App("/flock/hello/web")["labels"].(map[string]any)[releaseLabel]; got != "v1" {
		t.Errorf("Marathon runs %v after the rollback, want v1", got)
	}
	testkit.WaitFor(t, 5*time.Second, "v1 alone again", func() bool {
		_ = s.refresh(ctx, "hello")
		ins, _ := s.Instances(ctx, "hello")
		return len(ins) == 2 && ins[0].Release == "v1" && ins[1].Release == "v1" && ins[0].Healthy
	})
}

// TestFailedFirstDeploy: a new app whose tasks never pass is rolled back
// to nothing: Marathon holds no app, the error says why.
func TestFailedFirstDeploy(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	f.SetUnhealthy("/flock/hello/web", true)
	s := newSched(t, Config{URLs: []string{f.URL}, DeployTimeout: 200 * time.Millisecond})
	err := s.Deploy(context.Background(), testSpec("hello", "v1", 1), &bytes.Buffer{})
	if !errors.Is(err, deploy.ErrUnhealthy) || !strings.Contains(err.Error(), "0 of 1 instances healthy") {
		t.Fatalf("Deploy = %v, want ErrUnhealthy with the count", err)
	}
	if f.App("/flock/hello/web") != nil {
		t.Error("the failed app is still in Marathon")
	}
}

// TestWakeResignsSlugURL: signed slug URLs expire, and Marathon fetches
// the slug again for every task it starts. Waking from zero (no task
// runs, so a fetch change restarts nothing) sends the re-signed URL;
// scaling a running app up does not, as it would restart its tasks.
func TestWakeResignsSlugURL(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	fresh := func(u string) string { return strings.Replace(u, "/artifacts/s/old/", "/artifacts/s/new/", 1) }
	s := newSched(t, Config{URLs: []string{f.URL}, Resign: fresh})
	ctx := context.Background()
	spec := testSpec("hello", "v1", 1)
	spec.SlugURL = "http://flock.example:8080/artifacts/s/old/hello/v1.tar.gz"
	if err := s.Deploy(ctx, spec, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	fetchOf := func(m map[string]any) any {
		if f, ok := m["fetch"].([]any); ok && len(f) == 1 {
			return f[0].(map[string]any)["uri"]
		}
		return m["fetch"]
	}
	if err := s.Scale(ctx, "hello", 2); err != nil {
		t.Fatal(err)
	}
	if put := lastBody(t, f, "PUT", "/v2/apps/flock/hello/web"); put["fetch"] != nil {
		t.Errorf("scaling a running app sent fetch %v: Marathon would restart its tasks", put["fetch"])
	}
	if err := s.Scale(ctx, "hello", 0); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "no task left", func() bool {
		_ = s.refresh(ctx, "hello")
		ins, _ := s.Instances(ctx, "hello")
		return len(ins) == 0
	})
	if err := s.Scale(ctx, "hello", 1); err != nil {
		t.Fatal(err)
	}
	put := lastBody(t, f, "PUT", "/v2/apps/flock/hello/web")
	if got := fetchOf(put); got != "http://flock.example:8080/artifacts/s/new/hello/v1.tar.gz" {
		t.Errorf("wake PUT fetch = %v, want the re-signed URL", got)
	}
	if f0 := put["fetch"].([]any)[0].(map[string]any); f0["extract"] != true {
		t.Errorf("wake PUT fetch = %v, want extract kept", f0)
	}
	if got := fetchOf(f.App("/flock/hello/web")); got != "http://flock.example:8080/artifacts/s/new/hello/v1.tar.gz" {
		t.Errorf("Marathon's fetch after wake = %v", got)
	}
}
