package backup

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// probeTimeout bounds one probe; a probe of a local port that nothing
// listens on fails at once, so this only matters for remote hosts.
const probeTimeout = time.Second

// probe runs the app's first check against one instance, as HAProxy
// would: a TCP connect, or an HTTP GET of the check's path answered
// 2xx or 3xx.
func (w *Waker) probe(ctx context.Context, chk deploy.Check, in deploy.Instance) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	port := in.Port
	if chk.PortIndex > 0 && chk.PortIndex < len(in.Ports) {
		port = in.Ports[chk.PortIndex]
	}
	host := in.Host
	if host == "" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if chk.Path == "" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	path := chk.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return false
	}
	resp, err := w.probeHC.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}
