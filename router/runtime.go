package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runtimeAPI talks to HAProxy's CLI on a Unix socket. Each command uses
// its own connection: write the command and a newline, read until EOF.
//
// The router sends its commands through the master socket, prefixed with
// "@1" (the current worker): the admin socket's listening socket passes
// from the old worker to the new one on a reload, and for a moment either
// may answer, so a change sent there could land on a worker on its way out.
type runtimeAPI struct {
	path string
	// master is set for the master socket, which keeps a connection open
	// after a command unless told to quit.
	master bool
	// prefix targets a process through the master: "@1 " is the current
	// worker.
	prefix string
	// trace, when set, sees every command before it is sent (tests).
	trace func(command string)
}

// errRuntime marks an answer from HAProxy that reports a failure.
var errRuntime = errors.New("haproxy refused")

// cmd sends one command and returns HAProxy's answer.
func (a runtimeAPI) cmd(ctx context.Context, command string) (string, error) {
	if strings.ContainsAny(command, "\n\r;") {
		return "", fmt.Errorf("command %q: contains a newline or ';'", command)
	}
	if a.trace != nil {
		a.trace(command)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := a.dial(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %w", command, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	line := a.prefix + command
	if a.master {
		line += ";quit"
	}
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", fmt.Errorf("%s: %w", command, err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("%s: %w", command, err)
	}
	return string(out), nil
}

// dial connects to the socket. The master re-executes itself on a reload
// and is deaf for a moment: its socket is retried for up to 3 s.
func (a runtimeAPI) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	deadline := time.Now().Add(3 * time.Second)
	for delay := time.Millisecond; ; delay = min(delay*2, 20*time.Millisecond) {
		conn, err := d.DialContext(ctx, "unix", a.path)
		if err == nil || !a.master || time.Now().After(deadline) ||
			!(errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
	}
}

// do sends a command whose success is an empty answer or one that starts
// with one of ok; any other answer is an error wrapping errRuntime.
func (a runtimeAPI) do(ctx context.Context, command string, ok ...string) error {
	out, err := a.cmd(ctx, command)
	if err != nil {
		return err
	}
	msg := strings.TrimSpace(out)
	if msg == "" {
		return nil
	}
	for _, o := range ok {
		if strings.HasPrefix(msg, o) {
			return nil
		}
	}
	return fmt.Errorf("%s: %w: %s", command, errRuntime, firstLine(msg))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// pid returns the process id of the worker answering on the socket.
func (a runtimeAPI) pid(ctx context.Context) (int, error) {
	out, err := a.cmd(ctx, "show info")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pid: "); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("show info: no Pid in %q", firstLine(out))
}

// workers lists the pids of the master's workers, the current one first,
// from "show proc" on the master socket.
func (a runtimeAPI) workers(ctx context.Context) ([]int, error) {
	out, err := a.cmd(ctx, "show proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// "#<PID> <type> <reloads> <uptime> <version>"; old workers are
		// listed under "# old workers" with the same columns.
		if len(f) < 2 || f[1] != "worker" {
			continue
		}
		if pid, err := strconv.Atoi(f[0]); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// payload sends a command followed by a multi-line payload, HAProxy's
// "<<" form: the payload ends at the first empty line, so body must hold
// none (see pemPayload). It returns HAProxy's answer.
func (a runtimeAPI) payload(ctx context.Context, command string, body []byte) (string, error) {
	if strings.ContainsAny(command, "\n\r;") {
		return "", fmt.Errorf("command %q: contains a newline or ';'", command)
	}
	if len(body) == 0 || body[len(body)-1] != '\n' || strings.Contains(string(body), "\n\n") || strings.HasPrefix(string(body), "\n") {
		return "", fmt.Errorf("%s: payload must be non-empty lines ending in a newline", command)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := a.dial(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %w", command, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	msg := a.prefix + command + " <<\n" + string(body) + "\n"
	if a.master {
		// The master keeps the connection open after a payload command
		// until told to quit.
		msg += "quit\n"
	}
	if _, err := io.WriteString(conn, msg); err != nil {
		return "", fmt.Errorf("%s: %w", command, err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("%s: %w", command, err)
	}
	return string(out), nil
}

// expect sends a command (with a payload unless body is nil) whose answer
// must contain one of ok; any other answer is an error wrapping
// errRuntime.
func (a runtimeAPI) expect(ctx context.Context, command string, body []byte, ok ...string) error {
	var out string
	var err error
	if body != nil {
		out, err = a.payload(ctx, command, body)
	} else {
		out, err = a.cmd(ctx, command)
	}
	if err != nil {
		return err
	}
	for _, o := range ok {
		if strings.Contains(out, o) {
			return nil
		}
	}
	return fmt.Errorf("%s: %w: %s", command, errRuntime, strings.Join(strings.Fields(out), " "))
}
