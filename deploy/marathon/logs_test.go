package marathon

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// logsApp deploys an app of n real tasks through the fake Marathon: each
// writes a line to stdout and one to stderr, 20,000 numbered lines (more
// than Logs shows at first), then "tick" every 50 ms beside the app's
// HTTP server.
func logsApp(t *testing.T, f *marathontest.Server, s *Scheduler, n int) {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sp := testSpec("hello", "v1", n)
	sp.SlugURL = slugServer(t, "logs") + "/artifacts/hello/v1.tar.gz"
	sp.Command = `echo "hello on stdout"; echo "hello on stderr" >&2; seq 1 20000; ` +
		`(while :; do echo tick; sleep 0.05; done) & exec ` + strconv.Quote(bin)
	sp.Env = map[string]string{appEnv: "1"}
	sp.Descriptor.Checks[0].IntervalSeconds = 1
	var log bytes.Buffer
	if err := s.Deploy(context.Background(), sp, &log); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, log.String())
	}
}

// TestLogsFromAgents reads the tasks' output through the Mesos agent
// stand-in: the end of every task's stdout and stderr, each line prefixed
// with its task's id, cut on a line boundary.
func TestLogsFromAgents(t *testing.T) {
	f := newFake(t, marathontest.Options{RunTasks: true, CheckEvery: 20 * time.Millisecond})
	s := newSched(t, Config{URLs: []string{f.URL}, AgentPort: f.Agent().Port, DeployTimeout: 20 * time.Second})
	run(t, s)
	logsApp(t, f, s, 2)
	ctx := context.Background()
	ins, err := s.Instances(ctx, "hello")
	if err != nil || len(ins) != 2 {
		t.Fatalf("Instances = %v, %v", ins, err)
	}
	// The sequence is written before the ticks: wait until it is all out.
	var out string
	testkit.WaitFor(t, 10*time.Second, "both tasks' output", func() bool {
		var b bytes.Buffer
		if err := s.Logs(ctx, "hello", false, &b); err != nil {
			t.Fatalf("Logs: %v", err)
		}
		out = b.String()
		return strings.Contains(out, ins[0].ID+" tick") && strings.Contains(out, ins[1].ID+" tick")
	})
	for _, in := range ins {
		if !strings.Contains(out, in.ID+" hello on stderr\n") {
			t.Errorf("no stderr line of %s in\n%.2000s", in.ID, out)
		}
		// stdout is long: only its end shows, from a whole line on.
		var nums []int
		for _, l := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(l, in.ID+" "); ok {
				if n, err := strconv.Atoi(rest); err == nil {
					nums = append(nums, n)
				}
			}
		}
		if len(nums) == 0 || nums[len(nums)-1] != 20000 || nums[0] == 1 {
			t.Fatalf("%s: numbered lines %d…%d of %d, want the end only", in.ID, nums[0], nums[len(nums)-1], len(nums))
		}
		for i := 1; i < len(nums); i++ {
			if nums[i] != nums[i-1]+1 {
				t.Fatalf("%s: line %d after %d: a line was cut or lost", in.ID, nums[i], nums[i-1])
			}
		}
		if strings.Contains(out, in.ID+" hello on stdout") {
			t.Errorf("%s: the start of a long stdout was shown", in.ID)
		}
	}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(l, ins[0].ID+" ") && !strings.HasPrefix(l, ins[1].ID+" ") {
			t.Fatalf("line without a task prefix: %q", l)
		}
	}
}

// TestLogsFollow follows the output: new lines of running tasks, and the
// whole output of a task started while following.
func TestLogsFollow(t *testing.T) {
	f := newFake(t, marathontest.Options{RunTasks: true, CheckEvery: 20 * time.Millisecond})
	s := newSched(t, Config{URLs: []string{f.URL}, AgentPort: f.Agent().Port, DeployTimeout: 20 * time.Second})
	run(t, s)
	logsApp(t, f, s, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var out testkit.Buffer
	done := make(chan error, 1)
	go func() { done <- s.Logs(ctx, "hello", true, &out) }()

	ticks := func() int { return strings.Count(out.String(), " tick\n") }
	testkit.WaitFor(t, 10*time.Second, "ticks", func() bool { return ticks() > 0 })
	n := ticks()
	testkit.WaitFor(t, 10*time.Second, "more ticks while following", func() bool { return ticks() > n+5 })

	before, _ := s.Instances(context.Background(), "hello")
	if err := s.Scale(context.Background(), "hello", 2); err != nil {
		t.Fatal(err)
	}
	var added deploy.Instance
	testkit.WaitFor(t, 10*time.Second, "a second task", func() bool {
		ins, _ := s.Instances(context.Background(), "hello")
		for _, in := range ins {
			if in.ID != before[0].ID {
				added = in
				return true
			}
		}
		return false
	})
	testkit.WaitFor(t, 10*time.Second, "the new task's first lines", func() bool {
		o := out.String()
		return strings.Contains(o, added.ID+" hello on stdout\n") && strings.Contains(o, added.ID+" 1\n")
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Logs: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Logs did not return after its context ended")
	}
}

// TestLogsAgentDown: an agent that does not answer costs a note per file,
// not an error.
func TestLogsAgentDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	f := newFake(t, marathontest.Options{RunTasks: true, CheckEvery: 20 * time.Millisecond})
	s := newSched(t, Config{URLs: []string{f.URL}, AgentPort: port, DeployTimeout: 20 * time.Second})
	run(t, s)
	logsApp(t, f, s, 1)
	var b bytes.Buffer
	if err := s.Logs(context.Background(), "hello", false, &b); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if got := b.String(); strings.Count(got, "[flock] stdout unreadable: agent 127.0.0.1: ") != 1 ||
		strings.Count(got, "[flock] stderr unreadable") != 1 {
		t.Errorf("Logs wrote %q, want one note per file", got)
	}
}

// TestLogsNoApp: an app Marathon does not have has no output; a bad name
// is refused.
func TestLogsNoApp(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	var b bytes.Buffer
	if err := s.Logs(context.Background(), "nothing", false, &b); err != nil || b.Len() != 0 {
		t.Errorf("Logs = %v, %q; want nothing", err, b.String())
	}
	if err := s.Logs(context.Background(), "../x", false, &b); err == nil {
		t.Error("Logs accepted a bad name")
	}
}

// TestLogsFollowMarathonAway: while Marathon does not answer, following
// goes on with the tasks known (their agents still answer), says so once,
// and reads nothing twice when Marathon is back.
func TestLogsFollowMarathonAway(t *testing.T) {
	f := newFake(t, marathontest.Options{RunTasks: true, CheckEvery: 20 * time.Millisecond})
	s := newSched(t, Config{URLs: []string{f.URL}, AgentPort: f.Agent().Port, DeployTimeout: 20 * time.Second})
	run(t, s)
	logsApp(t, f, s, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out testkit.Buffer
	done := make(chan error, 1)
	go func() { done <- s.Logs(ctx, "hello", true, &out) }()
	ticks := func() int { return strings.Count(out.String(), " tick\n") }
	testkit.WaitFor(t, 10*time.Second, "ticks", func() bool { return ticks() > 0 })

	f.SetDown(true)
	testkit.WaitFor(t, 10*time.Second, "the note that Marathon is away", func() bool { return strings.Contains(out.String(), "[flock] task list: ") })
	n := ticks()
	testkit.WaitFor(t, 10*time.Second, "ticks while Marathon is away", func() bool { return ticks() > n+5 })
	f.SetDown(false)
	n = ticks()
	testkit.WaitFor(t, 10*time.Second, "ticks with Marathon back", func() bool { return ticks() > n+5 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Logs: %v", err)
	}
	o := out.String()
	if c := strings.Count(o, "[flock] task list: "); c != 1 {
		t.Errorf("%d notes about Marathon, want 1:\n%.3000s", c, o)
	}
	if strings.Contains(o, " hello on stdout\n") || strings.Contains(o, " 1\n") {
		t.Errorf("the start of stdout was read again after Marathon came back")
	}
}

// appEnv makes the test binary the conformance suite's app
// (schedtest.ServeIfApp in TestMain); it serves the slug's release.txt.
const appEnv = "FLOCK_SCHEDTEST_APP"

// slugServer serves a slug holding one file, release.txt, with text in
// it, as Flock's artifact store would.
func slugServer(t *testing.T, text string) string {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "release.txt", Mode: 0o644, Size: int64(len(text)), Typeflag: tar.TypeReg})
	io.WriteString(tw, text)
	tw.Close()
	gz.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(buf.Bytes()) }))
	t.Cleanup(srv.Close)
	return srv.URL
}
