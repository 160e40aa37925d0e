package deploy

import "time"

// Check is one health check of an app (docs/descriptor.md, "Checks").
// An empty Path means a TCP check on the first port.
type Check struct {
	Path                   string `json:"path,omitempty"`
	PortIndex              int    `json:"portIndex,omitempty"`
	IntervalSeconds        int    `json:"intervalSeconds"`        // default 10
	TimeoutSeconds         int    `json:"timeoutSeconds"`         // default 5 (at most the interval)
	GracePeriodSeconds     int    `json:"gracePeriodSeconds"`     // default 30
	MaxConsecutiveFailures int    `json:"maxConsecutiveFailures"` // default 3
}

// Interval returns the check interval as a duration.
func (c Check) Interval() time.Duration { return time.Duration(c.IntervalSeconds) * time.Second }

// Timeout returns the check timeout as a duration.
func (c Check) Timeout() time.Duration { return time.Duration(c.TimeoutSeconds) * time.Second }

// GracePeriod returns the check grace period as a duration.
func (c Check) GracePeriod() time.Duration { return time.Duration(c.GracePeriodSeconds) * time.Second }

// Descriptor is an app's "flock" descriptor with defaults applied.
type Descriptor struct {
	Name      string            `json:"name"`
	Instances int               `json:"instances"` // default 1
	CPUs      float64           `json:"cpus"`      // default 0.1
	Mem       int               `json:"mem"`       // MiB, default 64
	Ports     int               `json:"ports"`     // default 1
	Cmd       string            `json:"cmd,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	// Idle is the idle time before the app sleeps: "" (the platform's
	// default), a Go duration ("15m") or "never".
	Idle         string   `json:"idle,omitempty"`
	MinInstances *int     `json:"minInstances,omitempty"`
	MaxInstances *int     `json:"maxInstances,omitempty"`
	Domains      []string `json:"domains,omitempty"`
	Checks       []Check  `json:"checks"`           // default: one TCP check on the first port
	Image        string   `json:"image,omitempty"`  // Docker image (Marathon only)
	Branch       string   `json:"branch,omitempty"` // branch deployed by the GitHub webhook; default: the repository's default branch
	// StableSeconds is how long a new instance must stay up and healthy
	// after its first passed check before its release counts as live and
	// the old release is retired; nil: DefaultStableSeconds.
	StableSeconds *int `json:"stableSeconds,omitempty"`
	// ReleaseCommand is the Procfile's "release:" line: run once per
	// release, in the release's slug, before any of its instances starts.
	ReleaseCommand string `json:"releaseCommand,omitempty"`
	// Processes are the Procfile's process types besides web and release
	// ("worker", "clock"), by type: they run beside the app, unrouted
	// (processes.go).
	Processes map[string]string `json:"processes,omitempty"`
	// Constraints are Marathon placement constraints, each [field,
	// OPERATOR] or [field, OPERATOR, value] ("one instance per host":
	// [["hostname", "UNIQUE"]]). The local scheduler ignores them.
	Constraints [][]string `json:"constraints,omitempty"`
	// Network is a Docker app's networking, NetworkHost (the default,
	// "") or NetworkBridge with PortMappings (Marathon only).
	Network      string        `json:"network,omitempty"`
	PortMappings []PortMapping `json:"portMappings,omitempty"`
	// ForcePullImage pulls the Docker image at every launch, for moving
	// tags such as "latest" (Marathon only).
	ForcePullImage bool `json:"forcePullImage,omitempty"`
	// HTTPS holds the app's HTTPS options; nil: the defaults.
	HTTPS *HTTPSOptions `json:"https,omitempty"`
	// File is where the descriptor came from ("package.json", "flock.json").
	File string `json:"file,omitempty"`
}

// HTTPSOptions is the descriptor's "https" object.
type HTTPSOptions struct {
	// Redirect false keeps plain HTTP answering for an app whose
	// certificate is publicly trusted (ACME); nil or true: HTTP is
	// redirected to HTTPS (308).
	Redirect *bool `json:"redirect,omitempty"`
}

// RedirectsHTTP reports whether HTTP requests to the app may be
// redirected to HTTPS once its certificate is publicly trusted: unless
// the descriptor says "https": {"redirect": false}.
func (d Descriptor) RedirectsHTTP() bool {
	return d.HTTPS == nil || d.HTTPS.Redirect == nil || *d.HTTPS.Redirect
}

// DefaultStableSeconds is the stability window of a release whose
// descriptor does not set stableSeconds: long enough to see an app that
// listens and then exits (a missing build, a crash on the first tick).
const DefaultStableSeconds = 2

// Stable returns the stability window: how long each new instance must
// stay up and pass its checks after its first pass before the deploy
// succeeds (0: the first pass is enough).
func (d Descriptor) Stable() time.Duration {
	if d.StableSeconds == nil {
		return DefaultStableSeconds * time.Second
	}
	return time.Duration(*d.StableSeconds) * time.Second
}

// IdleTimeout resolves the descriptor's idle time against the platform's
// default: 0 means never sleep.
func (d Descriptor) IdleTimeout(def time.Duration) time.Duration {
	switch d.Idle {
	case "":
		return def
	case "never":
		return 0
	}
	v, err := time.ParseDuration(d.Idle)
	if err != nil {
		return def
	}
	return v
}

// DescriptorError is a bad descriptor: it names the file, the key and the
// rule. It wraps ErrInvalid.
type DescriptorError struct {
	File string // "package.json"
	Key  string // "flock.instances"
	Rule string // "must be an integer between 0 and 100"
}

func (e *DescriptorError) Error() string {
	if e.Key == "" {
		return e.File + ": " + e.Rule
	}
	return e.File + ": " + e.Key + " " + e.Rule
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *DescriptorError) Unwrap() error { return ErrInvalid }

var _ error = (*DescriptorError)(nil)
