package builder

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// BenchmarkRebuildTypeScriptCached: a rebuild of a TypeScript app after a
// source change, lockfile unchanged: node_modules from the cache, tsc
// runs, devDependencies pruned (target ≤ 3 s). The tsconfig is what
// `tsc --init` writes in spirit: strict, with skipLibCheck.
func BenchmarkRebuildTypeScriptCached(b *testing.B) {
	testkit.RequireTools(b, "node", "npm")
	src := b.TempDir()
	writeTree(b, src, map[string]string{
		"package.json": `{"name":"ts-app","version":"1.0.0","private":true,
  "scripts":{"build":"tsc","start":"node dist/server.js"},
  "devDependencies":{"typescript":"5.6.3","@types/node":"20.17.6"}}`,
		"tsconfig.json": `{"compilerOptions":{"target":"es2022","module":"commonjs","outDir":"dist","strict":true,"skipLibCheck":true,"types":["node"]},"include":["src"]}`,
		"src/server.ts": strings.Replace(tsServer, "MESSAGE", "v1", 1),
	})
	cmd := exec.Command("npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("lockfile: %v\n%s", err, out)
	}
	bl := newBuilder(b, b.TempDir())
	if _, _, err := bl.Build(context.Background(), src, "ts-app", "v1", "", io.Discard); err != nil {
		b.Fatal(err)
	}
	n := 1
	var ds []time.Duration
	for b.Loop() {
		n++
		writeTree(b, src, map[string]string{"src/server.ts": strings.Replace(tsServer, "MESSAGE", "v"+strconv.Itoa(n), 1)})
		start := time.Now()
		if _, _, err := bl.Build(context.Background(), src, "ts-app", "v"+strconv.Itoa(n), "", io.Discard); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	b.ReportMetric(median(ds), "median-ms")
}

// BenchmarkColdStartNpmStart: from starting an app's command to its first
// answer, for the same app started by its start script (as Flock runs it,
// without npm), with `node server.js`, and with `npm start` (what Flock
// ran before). Target: the start script within 30 ms of node.
func BenchmarkColdStartNpmStart(b *testing.B) {
	testkit.RequireTools(b, "node", "npm")
	src := b.TempDir()
	writeTree(b, src, map[string]string{
		"package.json": `{"name":"cold","version":"1.0.0","scripts":{"start":"node server.js"}}`,
		"server.js":    `require("http").createServer((q,r)=>r.end("ok")).listen(+process.env.PORT,"127.0.0.1");`,
	})
	bl := newBuilder(b, b.TempDir())
	slug, command, err := bl.Build(context.Background(), src, "cold", "v1", "", io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(slug)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := Unpack(f, dir, 1<<30); err != nil {
		b.Fatal(err)
	}
	f.Close()
	var script, node, npm []time.Duration
	for b.Loop() {
		script = append(script, coldStart(b, dir, command))
		node = append(node, coldStart(b, dir, "node server.js"))
		npm = append(npm, coldStart(b, dir, "npm start"))
	}
	b.ReportMetric(median(script), "start-script-ms")
	b.ReportMetric(median(node), "node-ms")
	b.ReportMetric(median(npm), "npm-start-ms")
	b.ReportMetric(median(script)-median(node), "overhead-vs-node-ms")
}

// coldStart runs command with sh -c in dir, as the local scheduler does,
// and returns the time until it answers HTTP; then it stops it.
func coldStart(b *testing.B, dir, command string) time.Duration {
	b.Helper()
	port := testkit.FreePort(b)
	cmd := exec.Command("sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "npm_config_update_notifier=false")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	c := &http.Client{Timeout: time.Second}
	for deadline := start.Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			return time.Since(start)
		}
	}
	b.Fatalf("%q did not answer within 20s", command)
	return 0
}

func median(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[len(s)/2].Microseconds()) / 1000
}
