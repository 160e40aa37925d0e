// Package webhook turns a git push into a deploy. It has two doors: the
// GitHub push webhook (POST /hooks/github) and Flock's own git remote
// (/git/<app>.git over smart HTTP). Both end in the same place: a checked
// out source tree handed to a DeployFunc that the caller supplies.
//
// webhook imports nothing of Flock, so the release pipeline can change
// without touching how pushes arrive, and this package can be tested with
// real git and a trivial DeployFunc.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// Push describes one pushed commit that should be deployed.
type Push struct {
	// Delivery is GitHub's X-GitHub-Delivery id; empty for git pushes.
	Delivery string
	// Repo is the repository's full name ("owner/repo"); empty for git pushes.
	Repo string
	// Name is the default app name: the repository's name made a DNS label
	// ("Hello_World.js" → "hello-world-js"), or the <app> of /git/<app>.git.
	// The descriptor may name the app otherwise.
	Name string
	// CloneURL is where the commit was fetched from; empty for git pushes.
	CloneURL string
	// Ref is the full ref pushed ("refs/heads/main").
	Ref string
	// Branch is Ref without "refs/heads/".
	Branch string
	// Commit is the full SHA of the pushed commit, the one checked out.
	Commit string
	// Pusher names who or what pushed: the GitHub user, or "git push".
	Pusher string
}

// DeployFunc builds and rolls out the source tree in dir, writing its log to
// log as it goes, and returns the app's URL. dir belongs to the caller and is
// removed after DeployFunc returns, so DeployFunc must not keep it. A non-nil
// error means the deploy failed and the running release was left alone.
type DeployFunc func(ctx context.Context, p Push, dir string, log io.Writer) (url string, err error)

// nameRE is the DNS-label rule for app names. It repeats deploy.ValidName on
// purpose: this package imports nothing of Flock.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validName reports whether s is a valid app name: a lower-case DNS label.
func validName(s string) bool { return nameRE.MatchString(s) }

// defaultName turns a repository name into a valid app name: lower-case,
// every run of other characters a '-', at most 63 long. It returns "" when
// nothing is left.
func defaultName(repo string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(repo) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	name := b.String()
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	return name
}

// commitRE matches a full SHA-1 or SHA-256 object name.
var commitRE = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// zeroCommit reports whether c is git's all-zero name, used for "no commit"
// in deletions and creations.
func zeroCommit(c string) bool { return strings.Trim(c, "0") == "" }

// scpRE matches git's scp-like ssh syntax, user@host:path. User and host
// must start with a letter or digit so neither can be read as an option.
var scpRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9.-]*:[A-Za-z0-9._~/-]+$`)

// errCloneURL is wrapped by every refusal of a clone URL.
var errCloneURL = errors.New("clone_url must be an https, http or ssh URL")

// checkCloneURL accepts only network URLs git fetches over https, http or
// ssh. Local paths, file:// and transport helpers such as ext:: could make
// git read this machine's files or run commands, so they are refused.
func checkCloneURL(raw string) error {
	if scpRE.MatchString(raw) {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q does not parse", errCloneURL, raw)
	}
	switch u.Scheme {
	case "https", "http", "ssh":
	default:
		return fmt.Errorf("%w, not %q", errCloneURL, redact(raw))
	}
	if u.Opaque != "" || u.Hostname() == "" || strings.HasPrefix(u.Hostname(), "-") ||
		strings.HasPrefix(u.User.Username(), "-") || strings.ContainsAny(raw, " \t\r\n") {
		return fmt.Errorf("%w: bad host in %q", errCloneURL, redact(raw))
	}
	return nil
}

// redact removes a password from a URL before it is logged or shown.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// AppName is the app a GitHub repository deploys to: its name (owner/
// name or name) made a DNS label, as the webhook names pushes.
func AppName(repo string) string { return defaultName(path.Base(repo)) }
