package webhook

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// stubbornDeploy is a DeployFunc that returns when its caller leaves while
// its job goes on logging, as Flock's pipeline does: the deploy outlives
// the push. It counts the job's writes the log refused.
type stubbornDeploy struct {
	lines   int
	jobs    sync.WaitGroup
	refused atomic.Int64
	started atomic.Int64
}

func (s *stubbornDeploy) deploy(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
	s.started.Add(1)
	s.jobs.Add(1)
	done := make(chan struct{})
	go func() {
		defer s.jobs.Done()
		defer close(done)
		for i := range s.lines {
			if _, err := fmt.Fprintf(log, "-----> step %d of %d\n", i+1, s.lines); err != nil {
				s.refused.Add(1)
			}
			time.Sleep(200 * time.Microsecond) // the pace of a build's output, not a wait
		}
	}()
	select {
	case <-done:
		return "http://" + p.Name + ".localhost:8000", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// pushAndKill runs git push and SIGKILLs it (and its helpers) after it
// has printed lines "remote:" lines, or when the push is over.
func pushAndKill(t *testing.T, dir, url string, lines int) {
	t.Helper()
	cmd := exec.Command("git", "push", url, "main")
	cmd.Dir, cmd.Env = dir, testGitEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for n := 0; n < lines && sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "remote:") {
			n++
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	io.Copy(io.Discard, stderr)
	cmd.Wait()
}

// TestPusherKilledMidPush: git push is killed at random moments of the
// deploy it started. The remote stops streaming to it (the job's later
// lines are refused, never written to a finished response), stays up, and
// the next push deploys and streams as usual.
func TestPusherKilledMidPush(t *testing.T) {
	work, _ := newApp(t, "hello")
	sd := &stubbornDeploy{lines: 300}
	_, base, _ := newTestRemote(t, sd.deploy)
	url := remoteURL(base, testToken, "hello")
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	for i := range 8 {
		commit(t, work, "server.js", fmt.Sprintf("// push %d\n", i))
		pushAndKill(t, work, url, rng.IntN(60))
	}
	sd.jobs.Wait()
	if sd.started.Load() == 0 {
		t.Fatal("no killed push reached the deploy")
	}
	t.Logf("%d deploys started by killed pushes; %d late log lines refused", sd.started.Load(), sd.refused.Load())

	commit(t, work, "server.js", "// the last push\n")
	out, err := push(t, work, url, "main", nil)
	if err != nil || !strings.Contains(out, "remote: -----> step 300 of 300\n") || !strings.Contains(out, "remote: -----> Deployed hello") {
		t.Fatalf("a whole push after the killed ones: %v\n%s", err, out)
	}
}

// TestRemoteDeployPanic: a panic in the deploy of a push rejects that push
// with the reason; the remote stays up and the next push deploys.
func TestRemoteDeployPanic(t *testing.T) {
	work, _ := newApp(t, "hello")
	var calls atomic.Int64
	deploy := func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
		if calls.Add(1) == 1 {
			var m map[string]int
			m["boom"]++
		}
		fmt.Fprintln(log, "-----> deployed")
		return "http://hello.localhost:8000", nil
	}
	_, base, _ := newTestRemote(t, deploy)
	url := remoteURL(base, testToken, "hello")
	out, err := push(t, work, url, "main", nil)
	if err == nil || !strings.Contains(out, "panic") {
		t.Errorf("push whose deploy panicked: %v, want rejected naming the panic:\n%s", err, out)
	}
	commit(t, work, "server.js", "// again\n")
	if out, err := push(t, work, url, "main", nil); err != nil || !strings.Contains(out, "remote: -----> Deployed hello") {
		t.Errorf("the push after the panic: %v\n%s", err, out)
	}
}
