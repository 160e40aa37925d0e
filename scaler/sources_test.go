package scaler

// The stats sources below read HAProxy directly. Flock itself feeds the
// scaler from the router (scaler.Stats: Router.StatsAll, every worker through
// the master socket), so these serve the tests against a real HAProxy.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxStats bounds what a stats source reads: 10,000 apps take about 10 MB.
const maxStats = 256 << 20

// cliTimeout bounds one command on a HAProxy socket when ctx has no
// earlier deadline.
const cliTimeout = 10 * time.Second

// HTTPStats reads the CSV of HAProxy's stats page, e.g.
// "http://127.0.0.1:9090/stats;csv". It sees only the current worker: after
// a reload, the sessions still open on old workers are missed, so prefer
// MasterStats where the master socket is at hand.
func HTTPStats(url string) StatsFunc {
	client := &http.Client{Timeout: cliTimeout}
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("stats %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("stats %s: %s", url, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxStats))
		if err != nil {
			return nil, fmt.Errorf("stats %s: %w", url, err)
		}
		return b, nil
	}
}

// SocketStats runs `show stat` on HAProxy's stats (admin) socket, a unix
// socket path. Like HTTPStats it sees only the current worker.
func SocketStats(socket string) StatsFunc {
	return func(ctx context.Context) ([]byte, error) {
		b, err := cli(ctx, socket, "show stat")
		if err != nil {
			return nil, fmt.Errorf("show stat: %w", err)
		}
		if !isCSV(b) {
			return nil, fmt.Errorf("show stat on %s: %q", socket, firstLine(b))
		}
		return b, nil
	}
}

// MasterStats reads the stats of every HAProxy worker through the master
// CLI (the socket of `haproxy -W -S <socket>`): `show proc` lists the
// current worker and the old workers that a reload left serving their open
// connections, then `@!<pid> show stat` is asked of each, current worker
// first. The dumps are concatenated, so a websocket held by an old worker
// still counts as a session of its app. An old worker that exits between
// the two steps is skipped; the current worker must answer.
func MasterStats(masterSocket string) StatsFunc {
	return func(ctx context.Context) ([]byte, error) {
		procs, err := cli(ctx, masterSocket, "show proc")
		if err != nil {
			return nil, fmt.Errorf("show proc: %w", err)
		}
		current, old, err := parseProc(procs)
		if err != nil {
			return nil, fmt.Errorf("show proc on %s: %w", masterSocket, err)
		}
		var out bytes.Buffer
		for i, pid := range append([]int{current}, old...) {
			b, err := cli(ctx, masterSocket, "@!"+strconv.Itoa(pid)+" show stat")
			if err == nil && !isCSV(b) {
				err = fmt.Errorf("%q", firstLine(b))
			}
			if err != nil {
				if i == 0 || ctx.Err() != nil {
					return nil, fmt.Errorf("show stat on worker %d: %w", pid, err)
				}
				continue // the old worker is gone: its sessions are too
			}
			out.Write(b)
			if len(b) > 0 && b[len(b)-1] != '\n' {
				out.WriteByte('\n')
			}
		}
		return out.Bytes(), nil
	}
}

// procColumn matches a column name in the header of `show proc`.
var procColumn = regexp.MustCompile(`<[^>]+>`)

// parseProc reads the master's `show proc`: the master line, then
// "# workers", then "# old workers" (2.6; 2.2–2.4 list old workers under
// "# workers" with a reload count above the newest), then "# programs".
func parseProc(b []byte) (current int, old []int, err error) {
	section, reloadsAt := "", 2
	type worker struct{ pid, reloads int }
	var workers []worker
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#<") {
			// "#<PID> <type> [<relative PID>] <reloads> <uptime> …"
			for i, col := range procColumn.FindAllString(line, -1) {
				if col == "<reloads>" {
					reloadsAt = i
				}
			}
			continue
		}
		if strings.HasPrefix(line, "#") {
			section = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			continue
		}
		f := strings.Fields(line)
		if len(f) <= reloadsAt || f[1] != "worker" {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || pid <= 0 {
			continue
		}
		reloads, _ := strconv.Atoi(f[reloadsAt])
		switch section {
		case "workers":
			workers = append(workers, worker{pid, reloads})
		case "old workers":
			old = append(old, pid)
		}
	}
	if len(workers) == 0 {
		return 0, nil, fmt.Errorf("no worker listed: %q", firstLine(b))
	}
	// The current worker has the fewest reloads; older versions list the
	// others in the same section.
	cur := workers[0]
	for _, w := range workers[1:] {
		if w.reloads < cur.reloads {
			cur = w
		}
	}
	for _, w := range workers {
		if w != cur {
			old = append(old, w.pid)
		}
	}
	return cur.pid, old, nil
}

// reloadGrace is how long cli retries a socket that refuses connections:
// during a reload the master re-executes itself and its socket is gone
// for a few milliseconds.
const reloadGrace = 2 * time.Second

// dial connects to a HAProxy unix socket, retrying for reloadGrace while
// it refuses connections.
func dial(ctx context.Context, socket string) (net.Conn, error) {
	var d net.Dialer
	give := time.Now().Add(reloadGrace)
	for {
		conn, err := d.DialContext(ctx, "unix", socket)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) ||
			time.Now().After(give) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// cli sends one command to a HAProxy unix socket and reads the answer
// until HAProxy closes the connection. Closing our write side tells the
// master CLI that no more command comes (it would otherwise wait).
func cli(ctx context.Context, socket, cmd string) ([]byte, error) {
	conn, err := dial(ctx, socket)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline := time.Now().Add(cliTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return nil, err
	}
	if uc, ok := conn.(*net.UnixConn); ok {
		if err := uc.CloseWrite(); err != nil {
			return nil, err
		}
	}
	b, err := io.ReadAll(io.LimitReader(conn, maxStats))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return b, nil
}

// isCSV reports whether a socket's answer is a stats dump rather than an
// error message ("Can't find the target PID…", "Unknown command").
func isCSV(b []byte) bool {
	return len(bytes.TrimSpace(b)) > 0 && bytes.TrimSpace(b)[0] == '#'
}

func firstLine(b []byte) string {
	b = bytes.TrimSpace(b)
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}
