package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy/testkit"
)

// BenchmarkExpressMemory deploys docs/examples/express through Flock,
// sends it b.N requests through HAProxy, and reports what one instance
// needs in memory: the peak charged to its cgroup (what "mem" limits:
// private memory plus page cache it brought in) and the peak RSS of its
// processes (npm start, then node; RSS counts the node binary's shared
// pages in each). Needs root (to read the instance's /proc) and cgroups.
// FLOCK_BENCH_MEM=N deploys it with "mem": N instead of its 128.
func BenchmarkExpressMemory(b *testing.B) {
	testkit.RequireTools(b, "npm")
	if os.Geteuid() != 0 {
		b.Skip("not root: cannot read the instances' /proc entries")
	}
	f := newFlock(b)
	f.start()
	dir := copyExample(b, "express")
	if mem := os.Getenv("FLOCK_BENCH_MEM"); mem != "" {
		pkg := filepath.Join(dir, "package.json")
		raw, _ := os.ReadFile(pkg)
		os.WriteFile(pkg, bytes.Replace(raw, []byte(`"mem": 128`), []byte(`"mem": `+mem), 1), 0o644)
	}
	f.mustCLI("deploy", dir)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if code, body := f.appGet("hello-express", "/"); code != 200 {
			b.Fatalf("GET: %d %s", code, body)
		}
	}
	b.StopTimer()
	in := f.apps()["hello-express"].Instances[0]
	var rss, sum int
	var cgroup string
	for _, pid := range markedPids("FLOCK_INSTANCE=" + in.ID) {
		hwm := statusKiB(pid, "VmHWM")
		rss = max(rss, hwm)
		sum += hwm
		cgroup = memoryCgroupFile(pid)
	}
	if cgroup == "" {
		b.Fatalf("no process of instance %s found", in.ID)
	}
	peak, err := os.ReadFile(cgroup)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(peak)))
	b.ReportMetric(float64(n)/(1<<20), "cgroup-peak-MiB")
	b.ReportMetric(float64(rss)/1024, "largest-rss-MiB")
	b.ReportMetric(float64(sum)/1024, "sum-rss-MiB")
}

// markedPids lists the processes whose environment holds marker.
func markedPids(marker string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if bytes.Contains(env, []byte(marker+"\x00")) {
			out = append(out, pid)
		}
	}
	return out
}

// statusKiB reads a "kB" field of /proc/<pid>/status.
func statusKiB(pid int, field string) int {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

// memoryCgroupFile is the peak-usage file of pid's memory cgroup (v1 or v2).
func memoryCgroupFile(pid int) string {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "memory" {
			return filepath.Join("/sys/fs/cgroup/memory", f[2], "memory.max_usage_in_bytes")
		}
		if f[0] == "0" && f[1] == "" {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				return filepath.Join("/sys/fs/cgroup", f[2], "memory.peak")
			}
		}
	}
	return ""
}
