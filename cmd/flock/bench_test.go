package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// median of durations, in milliseconds.
func medianMS(ds []time.Duration) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}

func copyExampleB(b *testing.B, name string) string {
	b.Helper()
	dst := filepath.Join(b.TempDir(), name)
	if out, err := exec.Command("cp", "-r", filepath.Join(repoRoot(b), "docs", "examples", name), dst).CombinedOutput(); err != nil {
		b.Fatalf("copy: %v %s", err, out)
	}
	return dst
}

// BenchmarkDeployHello: `flock deploy docs/examples/hello` until the new
// release is healthy and routed (the command returns), median of N.
func BenchmarkDeployHello(b *testing.B) {
	f := newFlock(b)
	f.start()
	dir := copyExampleB(b, "hello")
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
	if _, err := exec.LookPath("npm"); err != nil {
		b.Skip("npm is not installed")
	}
	f := newFlock(b)
	f.start()
	dir := copyExampleB(b, "express")
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
	dir := copyExampleB(b, "hello")
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
