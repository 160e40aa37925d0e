package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"

	"github.com/flock-paas/flock/deploy"
	"github.com/gin-gonic/gin"
)

// commitRE is what a ?commit= may hold: a hash or a short ref, nothing that
// could surprise a log line, a file name or a shell.
var commitRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,80}$`)

// countingReader counts the bytes of the upload for the first log line.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// upload is POST /api/v1/deploys: the body is a .tar.gz of the source. It
// unpacks it into a temporary folder, deploys it and streams the log as
// text/plain. A problem with the request itself answers a JSON error;
// once the stream has begun (status 200) the last line tells the outcome:
// "deploy succeeded: <url>" or "deploy failed: <reason>".
func (s *Server) upload(c *gin.Context) {
	if s.cfg.Unpack == nil {
		s.fail(c, fmt.Errorf("source uploads: %w", deploy.ErrUnsupported))
		return
	}
	app, commit := c.Query("app"), c.Query("commit")
	if app != "" && !deploy.ValidName(app) {
		s.fail(c, fmt.Errorf("app name %q: must be a lower-case DNS label: %w", app, deploy.ErrInvalid))
		return
	}
	if commit != "" && !commitRE.MatchString(commit) {
		s.fail(c, fmt.Errorf("commit %q: must be letters, digits, '.', '_' or '-': %w", commit, deploy.ErrInvalid))
		return
	}
	dir, err := os.MkdirTemp(s.cfg.TempDir, "flock-upload-")
	if err != nil {
		s.fail(c, fmt.Errorf("upload: %w", err))
		return
	}
	defer os.RemoveAll(dir)

	body := &countingReader{r: http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxUpload)}
	if err := s.cfg.Unpack(body, dir); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(c, fmt.Errorf("%w: the limit is %d bytes", errTooLarge, s.cfg.MaxUpload))
			return
		}
		s.fail(c, fmt.Errorf("unpack the upload (want a .tar.gz of the source): %v: %w", err, deploy.ErrInvalid))
		return
	}

	ctx := c.Request.Context()
	lw := newLineWriter(c)
	defer lw.close()
	fmt.Fprintf(lw, "-----> received %s of source\n", byteSize(body.n))
	rel, err := s.actor.Deploy(ctx, deploy.DeployRequest{App: app, Dir: dir, Commit: commit, Trigger: "cli"}, lw)
	if err != nil {
		fmt.Fprintf(lw, "deploy failed: %s\n", oneLine(strings.TrimPrefix(err.Error(), "deploy: ")))
		return
	}
	fmt.Fprintf(lw, "deploy succeeded: %s\n", s.appURL(ctx, rel.App))
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
