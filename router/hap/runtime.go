package hap

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

// Runtime talks to HAProxy's CLI (its runtime API) on a Unix socket. Each command uses
// its own connection: write the command and a newline, read until EOF.
//
// It lives here, beside the stats parser, so that every part of Flock that
// speaks to HAProxy does it one way. The router sends its commands through the master socket, prefixed with
// "@1" (the current worker): the admin socket's listening socket passes
// from the old worker to the new one on a reload, and for a moment either
// may answer, so a change sent there could land on a worker on its way out.
type Runtime struct {
	// Path is the socket.
	Path string
	// Master is set for the master socket, which keeps a connection open
	// after a command unless told to quit.
	Master bool
	// Prefix targets a process through the master: "@1 " is the current
	// worker.
	Prefix string
	// Trace, when set, sees every command before it is sent (tests).
	Trace func(command string)
}

// ErrRefused marks an answer from HAProxy that reports a failure.
var ErrRefused = errors.New("haproxy refused")

// Cmd sends one command and returns HAProxy's answer.
func (a Runtime) Cmd(ctx context.Context, command string) (string, error) {
	if strings.ContainsAny(command, "\n\r;") {
		return "", fmt.Errorf("command %q: contains a newline or ';'", command)
	}
	if a.Trace != nil {
		a.Trace(command)
	}
	line := a.Prefix + command
	if a.Master {
		line += ";quit"
	}
	return a.exchange(ctx, command, line+"\n")
}

// exchange sends msg on a connection of its own and reads the answer to
// its end, all within 10 s; command names it in errors.
func (a Runtime) exchange(ctx context.Context, command, msg string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := a.Dial(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %w", command, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
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

// Dial connects to the socket. The master re-executes itself on a reload
// and is deaf for a moment: its socket is retried for up to 3 s.
func (a Runtime) Dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	deadline := time.Now().Add(3 * time.Second)
	for delay := time.Millisecond; ; delay = min(delay*2, 20*time.Millisecond) {
		conn, err := d.DialContext(ctx, "unix", a.Path)
		if err == nil || !a.Master || time.Now().After(deadline) ||
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

// Do sends a command whose success is an empty answer or one that starts
// with one of ok; any other answer is an error wrapping ErrRefused.
func (a Runtime) Do(ctx context.Context, command string, ok ...string) error {
	out, err := a.Cmd(ctx, command)
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
	return fmt.Errorf("%s: %w: %s", command, ErrRefused, FirstLine(msg))
}

// FirstLine is the first line of an answer, for errors that quote HAProxy.
func FirstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Pid returns the process id of the worker answering on the socket.
func (a Runtime) Pid(ctx context.Context) (int, error) {
	out, err := a.Cmd(ctx, "show info")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pid: "); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("show info: no Pid in %q", FirstLine(out))
}

// Workers lists the pids of the master's workers, the current one first,
// from "show proc" on the master socket.
func (a Runtime) Workers(ctx context.Context) ([]int, error) {
	out, err := a.Cmd(ctx, "show proc")
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

// Payload sends a command followed by a multi-line payload, HAProxy's
// "<<" form: the payload ends at the first empty line, so body must hold
// none (see pemPayload). It returns HAProxy's answer.
func (a Runtime) Payload(ctx context.Context, command string, body []byte) (string, error) {
	if strings.ContainsAny(command, "\n\r;") {
		return "", fmt.Errorf("command %q: contains a newline or ';'", command)
	}
	if len(body) == 0 || body[len(body)-1] != '\n' || strings.Contains(string(body), "\n\n") || strings.HasPrefix(string(body), "\n") {
		return "", fmt.Errorf("%s: payload must be non-empty lines ending in a newline", command)
	}
	msg := a.Prefix + command + " <<\n" + string(body) + "\n"
	if a.Master {
		// The master keeps the connection open after a payload command
		// until told to quit.
		msg += "quit\n"
	}
	return a.exchange(ctx, command, msg)
}

// Expect sends a command (with a payload unless body is nil) whose answer
// must contain one of ok; any other answer is an error wrapping
// ErrRefused.
func (a Runtime) Expect(ctx context.Context, command string, body []byte, ok ...string) error {
	var out string
	var err error
	if body != nil {
		out, err = a.Payload(ctx, command, body)
	} else {
		out, err = a.Cmd(ctx, command)
	}
	if err != nil {
		return err
	}
	for _, o := range ok {
		if strings.Contains(out, o) {
			return nil
		}
	}
	return fmt.Errorf("%s: %w: %s", command, ErrRefused, strings.Join(strings.Fields(out), " "))
}
