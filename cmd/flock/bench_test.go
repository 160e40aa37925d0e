package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// median of durations, in milliseconds.
func medianMS(ds []time.Duration) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}

// BenchmarkDeployHello: `flock deploy docs/examples/hello` until the new
// release is healthy and routed (the command returns), median of N.
func BenchmarkDeployHello(b *testing.B) {
	f := newFlock(b)
	f.start()
	dir := copyExample(b, "hello")
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		f.mustCLI("deploy", dir)
		ds = append(ds, time.Since(start))
	}
	b.ReportMetric(medianMS(ds), "median-ms")
}

// BenchmarkRedeployExpressCached: a redeploy of docs/examples/express
// with an unchanged lockfile (node_modules from the build cache).
func BenchmarkRedeployExpressCached(b *testing.B) {
	testkit.RequireTools(b, "npm")
	f := newFlock(b)
	f.start()
	dir := copyExample(b, "express")
	f.mustCLI("deploy", dir) // fills the cache
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		f.mustCLI("deploy", dir)
		ds = append(ds, time.Since(start))
	}
	b.ReportMetric(medianMS(ds), "median-ms")
}

// BenchmarkGitPushHello: `git push` of docs/examples/hello to Flock's
// remote until the push returns with the release healthy.
func BenchmarkGitPushHello(b *testing.B) {
	f := newFlock(b)
	f.start()
	dir := copyExample(b, "hello")
	run := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@example.com",
			"GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run("init", "-q", "-b", "main")
	remote := "http://flock:" + f.token() + "@" + f.api + "/git/hello.git"
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.WriteFile(filepath.Join(dir, "BUILD"), []byte(time.Now().String()), 0o644)
		run("add", ".")
		run("commit", "-qm", "change")
		b.StartTimer()
		start := time.Now()
		run("push", "-q", remote, "main")
		ds = append(ds, time.Since(start))
	}
	b.ReportMetric(medianMS(ds), "median-ms")
}

// rssKiB reads a process's resident memory from /proc.
func rssKiB(b *testing.B, pid int) float64 {
	b.Helper()
	n, err := readRSS(pid)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// readRSS is rssKiB for a goroutine of a benchmark's own, which may not
// end the benchmark (b.Fatal belongs to the benchmark's goroutine).
func readRSS(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// BenchmarkTwentySleepingApps: 20 apps deployed then put to sleep leave
// no app process, and Flock's own memory grows by little for them.
func BenchmarkTwentySleepingApps(b *testing.B) {
	for i := 0; i < b.N; i++ {
		f := newFlock(b)
		f.start()
		before := rssKiB(b, f.cmd.Process.Pid)
		src := copyExample(b, "hello")
		for n := 0; n < 20; n++ {
			f.mustCLI("deploy", "--app", fmt.Sprintf("sleepy%d", n), src)
		}
		for n := 0; n < 20; n++ {
			f.mustCLI("sleep", fmt.Sprintf("sleepy%d", n))
		}
		procs := 0
		for _, a := range f.apps() {
			procs += len(a.Instances)
		}
		after := rssKiB(b, f.cmd.Process.Pid)
		b.ReportMetric(float64(procs), "app-processes")
		b.ReportMetric((after-before)/1024, "flock-rss-growth-MiB")
		f.stop()
	}
}
