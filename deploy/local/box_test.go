package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// runTests runs the package's tests. As root, apps run under uids of
// their own that cannot enter go test's private build folder, so the test
// binary (the test app) is copied where every uid may run it first; its
// path reaches the apps (and the "parent" role) as FLOCK_TEST_APP_BIN.
func runTests(m *testing.M) int {
	if os.Geteuid() == 0 && os.Getenv("FLOCK_TEST_APP_BIN") == "" {
		dir, err := os.MkdirTemp("", "flock-test-app-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		self, err := os.Executable()
		if err != nil {
			panic(err)
		}
		bin := filepath.Join(dir, filepath.Base(self))
		if err := exec.Command("cp", self, bin).Run(); err != nil {
			panic(err)
		}
		os.Chmod(bin, 0o755)
		os.Setenv("FLOCK_TEST_APP_BIN", bin)
	}
	return m.Run()
}

// requireBoxes skips a test that needs root and writable cgroups where
// they are missing, unless FLOCK_REQUIRE_CGROUPS=1 (CI) makes that a
// failure.
func requireBoxes(t *testing.T, s *Scheduler) {
	t.Helper()
	reason := ""
	if !s.cg.enforcesMemory() {
		reason = "no writable cgroup hierarchy with a memory controller: " + s.cg.reason
	}
	testkit.RequireCgroups(t, reason)
}

// runBoxApp is the test app of the box tests (FLOCK_TEST_ROLE=box): an
// HTTP server on PORT that tries what a hostile app would.
func runBoxApp() {
	if mb, _ := strconv.Atoi(os.Getenv("BOX_ALLOC_AT_BOOT")); mb > 0 {
		hog(mb)
	}
	if d, err := time.ParseDuration(os.Getenv("BOX_BOOT")); err == nil {
		time.Sleep(d)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/id", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d %d %s", os.Getuid(), os.Getgid(), os.Getenv("HOME"))
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("path")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			ents, err := os.ReadDir(p)
			if err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			for _, e := range ents {
				fmt.Fprintln(w, e.Name())
			}
			return
		}
		b, err := os.ReadFile(p)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile(r.URL.Query().Get("path"), []byte("x"), 0o644); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
		}
	})
	mux.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		hog(mb)
	})
	mux.HandleFunc("/bomb", func(w http.ResponseWriter, r *http.Request) {
		exec.Command("/bin/sh", "-c", "b() { b | b & }; b").Start()
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) { os.Exit(3) })
	mux.HandleFunc("/burn", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for range n {
			go func() {
				for x := 0; ; x++ {
				}
			}()
		}
	})
	l, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("HOST"), os.Getenv("PORT")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	fmt.Println("box app up")
	http.Serve(l, mux)
}

var hogged [][]byte

// hog allocates mb MiB and touches every page, so it is really used.
func hog(mb int) {
	for range mb {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hogged = append(hogged, b)
	}
}

// boxSpec is a release of the box test app, with files in its slug.
func boxSpec(t *testing.T, app string, mem int, files map[string]string, env ...string) deploy.Spec {
	spec := appSpec(app, "v1", 1, env...)
	spec.Env["FLOCK_TEST_ROLE"] = "box"
	spec.Descriptor.Mem = mem
	spec.Descriptor.CPUs = 1
	if files != nil {
		spec.SlugPath = makeSlug(t, files)
	}
	return spec
}

func deployBox(t *testing.T, s *Scheduler, spec deploy.Spec) deploy.Instance {
	t.Helper()
	if err := s.Deploy(context.Background(), spec, io.Discard); err != nil {
		t.Fatalf("deploy %s: %v", spec.App, err)
	}
	return instances(t, s, spec.App)[0]
}

// boxGet asks the instance's app for path and returns the status and body.
func boxGet(t *testing.T, in deploy.Instance, path string) (int, string) {
	t.Helper()
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", in.Port, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// cgroupOf returns the name of the instance's cgroup.
func cgroupOf(t *testing.T, s *Scheduler, app, id string) string {
	t.Helper()
	s.mu.Lock()
	in := s.apps[app].instances[id]
	s.mu.Unlock()
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cgroup == "" {
		t.Fatalf("instance %s has no cgroup", id)
	}
	return in.cgroup
}

// pidsFile reads a file of the pids controller of cgroup name.
func pidsFile(t *testing.T, name, file string) string {
	return cgroupFile(t, name, cgroup1.Pids, file)
}

// cgroupFile reads a file of cgroup name (v1: in controller's hierarchy).
func cgroupFile(t *testing.T, name string, controller cgroup1.Name, file string) string {
	t.Helper()
	var path string
	if v2, err := v2Base(); err == nil && cgroupV2() {
		path = filepath.Join(v2Mount, v2, name, file)
	} else {
		p, err := cgroup1.NestedPath(name)(controller)
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join("/sys/fs/cgroup", string(controller), p, file)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func cgroupV2() bool {
	_, err := os.Stat(filepath.Join(v2Mount, "cgroup.controllers"))
	return err == nil
}

// TestAppsAreBoxed: an app runs under a uid of its own, not root; it reads
// and writes its own folders, and cannot read another app's release or
// sandbox, Flock's token, Flock's scheduler state, or Flock's environment.
func TestAppsAreBoxed(t *testing.T) {
	data := t.TempDir()                       // as Flock's data dir: the token beside the scheduler's folder
	os.Chmod(data, 0o700)                     // as flock up makes it,
	defer syscall.Umask(syscall.Umask(0o077)) // and with its umask
	token := filepath.Join(data, "token")
	if err := os.WriteFile(token, []byte("secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startScheduler(t, func(c *Config) { c.Dir = filepath.Join(data, "instances") })
	requireBoxes(t, s)
	os.Setenv("FLOCK_TEST_SECRET", "in-flocks-environment")
	defer os.Unsetenv("FLOCK_TEST_SECRET")

	a := deployBox(t, s, boxSpec(t, "alpha", 64, map[string]string{"mine.txt": "alpha's own"}))
	b := deployBox(t, s, boxSpec(t, "bravo", 64, map[string]string{"secret.txt": "bravo's secret"}))

	_, idA := boxGet(t, a, "/id")
	_, idB := boxGet(t, b, "/id")
	var uidA, uidB, gidA int
	var home string
	fmt.Sscan(idA, &uidA, &gidA, &home)
	fmt.Sscan(idB, &uidB)
	if uidA == 0 || gidA == 0 || uidA == uidB || uidA < uidFirst || uidA > uidLast {
		t.Fatalf("uids: alpha %q, bravo %q; want distinct, unprivileged, in %d-%d", idA, idB, uidFirst, uidLast)
	}
	sandboxA := filepath.Join(s.cfg.Dir, "apps", "alpha", "instances", a.ID)
	if home != sandboxA {
		t.Errorf("alpha's HOME = %q, want its sandbox %s", home, sandboxA)
	}
	relA := filepath.Join(s.cfg.Dir, "apps", "alpha", "releases", "v1")
	relB := filepath.Join(s.cfg.Dir, "apps", "bravo", "releases", "v1")
	allowed := []string{"/read?path=" + filepath.Join(relA, "mine.txt"), "/write?path=" + filepath.Join(home, "note"),
		"/write?path=" + filepath.Join(home, "tmp", "scratch"), "/write?path=" + filepath.Join(relA, "cache")}
	for _, p := range allowed {
		if code, body := boxGet(t, a, p); code != http.StatusOK {
			t.Errorf("alpha %s: %d %s; want allowed", p, code, body)
		}
	}
	denied := []string{
		filepath.Join(relB, "secret.txt"),
		filepath.Join(s.cfg.Dir, "apps", "bravo", "instances", b.ID),
		filepath.Join(s.cfg.Dir, "apps", "bravo"),
		filepath.Join(s.cfg.Dir, "apps"),
		filepath.Join(s.cfg.Dir, "uids.json"),
		token,
		data,
		fmt.Sprintf("/proc/%d/environ", os.Getpid()),
	}
	for _, p := range denied {
		code, body := boxGet(t, a, "/read?path="+p)
		if code == http.StatusOK || strings.Contains(body, "bravo's secret") || strings.Contains(body, "secret-token") {
			t.Errorf("alpha read %s: %d %q; want it denied", p, code, body)
		}
	}
	if code, _ := boxGet(t, a, "/write?path="+filepath.Join(relB, "planted")); code == http.StatusOK {
		t.Error("alpha wrote into bravo's release")
	}

	// The uid is kept for the next Flock on the same folder.
	var kept map[string]int
	raw, _ := os.ReadFile(filepath.Join(s.cfg.Dir, "uids.json"))
	if err := json.Unmarshal(raw, &kept); err != nil || kept["alpha"] != uidA {
		t.Errorf("uids.json = %s (%v); want alpha kept as %d", raw, err, uidA)
	}
	if st, err := os.Stat(filepath.Join(s.cfg.Dir, "uids.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("uids.json: %v %v, want 0600", st.Mode(), err)
	}
}

// TestMemoryLimitKillsAndSaysSo: an app that allocates past its "mem" is
// killed by the kernel, restarted, and its instance says why; during a
// deploy, the deploy fails saying why.
func TestMemoryLimitKillsAndSaysSo(t *testing.T) {
	s := startScheduler(t, nil)
	requireBoxes(t, s)
	if !s.MemoryEnforced() {
		t.Fatal("MemoryEnforced is false with a writable memory cgroup")
	}
	in := deployBox(t, s, boxSpec(t, "hog", 64, nil))
	oldPid := in.StartedAt
	client.Get(fmt.Sprintf("http://127.0.0.1:%d/alloc?mb=200", in.Port)) // killed while it answers
	want := "out of memory (limit 64 MiB)"
	testkit.WaitFor(t, 20*time.Second, "the instance to say it ran out of memory", func() bool {
		list := instances(t, s, "hog")
		return len(list) == 1 && list[0].LastExit == want
	})
	testkit.WaitFor(t, 20*time.Second, "the instance to run again", func() bool {
		list := instances(t, s, "hog")
		return len(list) == 1 && list[0].Healthy && list[0].StartedAt.After(oldPid)
	})
	log, _ := os.ReadFile(filepath.Join(s.cfg.Dir, "apps", "hog", "app.log"))
	if !strings.Contains(string(log), want) {
		t.Errorf("app.log does not say %q:\n%s", want, log)
	}

	var out testkit.Buffer
	spec := boxSpec(t, "boothog", 48, nil, "BOX_ALLOC_AT_BOOT", "100")
	err := s.Deploy(context.Background(), spec, &out)
	if err == nil || !strings.Contains(err.Error(), "out of memory (limit 48 MiB)") {
		t.Fatalf("deploy of an app that needs 100 MiB under 48: %v; want it to fail saying out of memory", err)
	}
}

// TestForkBombStopsAtPidsLimit: a fork bomb fills the instance's pids
// limit and no more, and stopping the instance kills every process of it.
func TestForkBombStopsAtPidsLimit(t *testing.T) {
	s := startScheduler(t, nil)
	requireBoxes(t, s)
	s.pidsMax = 64
	in := deployBox(t, s, boxSpec(t, "bomb", 256, nil))
	cg := cgroupOf(t, s, "bomb", in.ID)
	if got := pidsFile(t, cg, "pids.max"); got != "64" {
		t.Fatalf("pids.max = %s, want 64", got)
	}
	client.Get(fmt.Sprintf("http://127.0.0.1:%d/bomb", in.Port))
	testkit.WaitFor(t, 20*time.Second, "the fork bomb to hit the limit", func() bool {
		ev := pidsFile(t, cg, "pids.events") // "max N": forks refused
		n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(ev, "max")))
		return n > 0
	})
	for range 20 {
		if n, _ := strconv.Atoi(pidsFile(t, cg, "pids.current")); n > 64 {
			t.Fatalf("pids.current = %d past the limit of 64", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := exec.Command("true").Run(); err != nil { // the machine can still fork
		t.Fatalf("fork outside the bomb: %v", err)
	}
	if err := s.Remove(context.Background(), "bomb"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "every process of the bomb to be gone", func() bool {
		_, err := openCgroup(cg) // removed once it holds no process
		return err != nil
	})
}

// TestCPUShare: an app that spins on two cores gets no more than its
// "cpus" share of one, measured from its cgroup's CPU accounting.
func TestCPUShare(t *testing.T) {
	s := startScheduler(t, nil)
	requireBoxes(t, s)
	spec := boxSpec(t, "spin", 64, nil)
	spec.Descriptor.CPUs = 0.2
	in := deployBox(t, s, spec)
	g, err := openCgroup(cgroupOf(t, s, "spin", in.ID))
	if err != nil {
		t.Fatal(err)
	}
	client.Get(fmt.Sprintf("http://127.0.0.1:%d/burn?n=2", in.Port))
	start, _ := g.cpuUsage()
	t0 := time.Now()
	var used time.Duration
	testkit.WaitFor(t, 10*time.Second, "2 s of wall time", func() bool {
		u, err := g.cpuUsage()
		if err != nil {
			t.Fatal(err)
		}
		used = u - start
		return time.Since(t0) >= 2*time.Second
	})
	share := used.Seconds() / time.Since(t0).Seconds()
	t.Logf("spinning on 2 goroutines with cpus 0.2: %.2f CPUs used", share)
	if share > 0.2*1.5 {
		t.Errorf("used %.2f CPUs, want at most its share of 0.2 (+50%%)", share)
	}
	if share < 0.05 {
		t.Errorf("used %.2f CPUs: the app did not spin, the test proves nothing", share)
	}
}

// TestStartupBoost: a run boots with a whole CPU and gets its "cpus"
// share once it passes its check.
func TestStartupBoost(t *testing.T) {
	s := startScheduler(t, nil)
	requireBoxes(t, s)
	quota := func(name string) string {
		if cgroupV2() {
			return strings.Fields(cgroupFile(t, name, cgroup1.Cpu, "cpu.max"))[0]
		}
		return cgroupFile(t, name, cgroup1.Cpu, "cpu.cfs_quota_us")
	}
	// It boots for 3 s: the quota is read while it boots, after a wait
	// for its cgroup that a busy machine may hold up.
	spec := boxSpec(t, "boost", 64, nil, "BOX_BOOT", "3s")
	spec.Descriptor.CPUs = 0.2
	done := make(chan error, 1)
	go func() { done <- s.Deploy(context.Background(), spec, io.Discard) }()
	var cg string
	testkit.WaitFor(t, 10*time.Second, "the instance's cgroup", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if a := s.apps["boost"]; a != nil {
			for _, in := range a.instances {
				in.mu.Lock()
				cg = in.cgroup
				in.mu.Unlock()
			}
		}
		return cg != ""
	})
	if got := quota(cg); got != "100000" {
		t.Errorf("CPU quota while booting = %s, want a whole CPU (100000)", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "the quota to fall to cpus 0.2 (20000)", func() bool { return quota(cg) == "20000" })

	// Restarted within the minute: no boost, however long it boots.
	in := instances(t, s, "boost")[0]
	client.Get(fmt.Sprintf("http://127.0.0.1:%d/exit", in.Port))
	testkit.WaitFor(t, 10*time.Second, "the restarted run", func() bool {
		list := instances(t, s, "boost")
		return len(list) == 1 && list[0].StartedAt.After(in.StartedAt)
	})
	if got := quota(cg); got != "20000" {
		t.Errorf("CPU quota of a run restarted within the minute = %s, want its share (20000)", got)
	}
}
