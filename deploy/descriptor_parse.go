package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// maxDescriptorBytes bounds a descriptor file: package.json files of real
// apps are a few KiB, so anything past 1 MiB is a mistake or an attack.
const maxDescriptorBytes = 1 << 20

// Descriptor defaults (docs/descriptor.md, "Keys" and "Checks").
const (
	defaultInstances   = 1
	defaultCPUs        = 0.1
	defaultMem         = 128
	defaultPorts       = 1
	defaultInterval    = 10
	defaultTimeout     = 5
	defaultGrace       = 30
	defaultMaxFailures = 3
)

var (
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// imageRE is a Docker image reference: optional registry (with port),
	// lower-case path components, optional tag and digest.
	imageRE = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?/)?` +
		`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*` +
		`(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`)
	// reservedEnv are variables every scheduler sets itself.
	reservedEnv = regexp.MustCompile(`^(PORT[0-9]*|HOST|FLOCK_APP|FLOCK_RELEASE)$`)
)

// flockKeys and checkKeys are the keys a descriptor may hold; anything else
// is a typo the user wants to hear about.
var (
	flockKeys = []string{"instances", "cpus", "mem", "ports", "cmd", "env", "idle",
		"minInstances", "maxInstances", "domains", "checks", "image", "branch", "stableSeconds", "https"}
	checkKeys = []string{"path", "protocol", "portIndex", "intervalSeconds", "timeoutSeconds",
		"gracePeriodSeconds", "maxConsecutiveFailures"}
)

// ReadDescriptor reads the descriptor of the source tree in dir: the
// "flock" object of package.json (with "checks" beside it or inside it),
// else flock.json at the root, else the defaults. Without a "flock" object
// the name comes from flock.json, else from package.json; a tree with
// neither has an empty Name and the caller must name the app.
func ReadDescriptor(dir string) (Descriptor, error) {
	d, err := readDescriptor(dir)
	if err != nil {
		return d, err
	}
	pf, err := readDescriptorFile(dir, "Procfile")
	if err != nil || pf == nil {
		return d, err
	}
	procs, err := ParseProcfile(pf)
	if err != nil {
		return Descriptor{}, err
	}
	d.ReleaseCommand = procs["release"]
	for name, cmd := range procs {
		if name == "web" || name == "release" {
			continue
		}
		if len(name) > 20 || strings.Contains(name, "--") || !ValidName(strings.ToLower(name)) || name != strings.ToLower(name) {
			return Descriptor{}, &DescriptorError{File: "Procfile", Rule: fmt.Sprintf("process type %q must be lower-case letters, digits and single '-', at most 20 characters", name)}
		}
		if d.Processes == nil {
			d.Processes = map[string]string{}
		}
		d.Processes[name] = cmd
	}
	return d, nil
}

// readDescriptor reads package.json's "flock" object or flock.json.
func readDescriptor(dir string) (Descriptor, error) {
	pkg, err := readDescriptorFile(dir, "package.json")
	if err != nil {
		return Descriptor{}, err
	}
	var fromPkg Descriptor
	if pkg != nil {
		d, hasFlock, err := parseDescriptor("package.json", pkg)
		if err != nil || hasFlock {
			return d, err
		}
		fromPkg = d
	}
	fj, err := readDescriptorFile(dir, "flock.json")
	if err != nil {
		return Descriptor{}, err
	}
	if fj == nil {
		if pkg != nil {
			return fromPkg, nil
		}
		return defaultDescriptor(""), nil
	}
	d, err := ParseDescriptor("flock.json", fj)
	if err == nil && d.Name == "" {
		d.Name = fromPkg.Name
	}
	return d, err
}

// readDescriptorFile returns the file's bytes, nil when it does not exist.
func readDescriptorFile(dir, name string) ([]byte, error) {
	fi, err := os.Lstat(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read descriptor: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &DescriptorError{File: name, Rule: "must be a regular file"}
	}
	if fi.Size() > maxDescriptorBytes {
		return nil, &DescriptorError{File: name, Rule: "is larger than 1 MiB"}
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("read descriptor: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDescriptorBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read descriptor: %w", err)
	}
	return data, nil
}

// ParseDescriptor parses and validates a descriptor file. file names it
// ("package.json", "flock.json") and decides its form: in package.json the
// descriptor is the "flock" object (its "checks" may stand beside it); in
// any other file the keys are at the root, next to "name". Every error is
// one *DescriptorError naming the file, the key and the rule.
func ParseDescriptor(file string, data []byte) (Descriptor, error) {
	d, _, err := parseDescriptor(file, data)
	return d, err
}

func defaultDescriptor(name string) Descriptor {
	return Descriptor{Name: name, Instances: defaultInstances, CPUs: defaultCPUs,
		Mem: defaultMem, Ports: defaultPorts, Checks: []Check{defaultCheck()}}
}

func defaultCheck() Check {
	return Check{IntervalSeconds: defaultInterval, TimeoutSeconds: defaultTimeout,
		GracePeriodSeconds: defaultGrace, MaxConsecutiveFailures: defaultMaxFailures}
}

// parser carries the file name into every error.
type parser struct{ file string }

func (p parser) fail(key, rule string, args ...any) error {
	return &DescriptorError{File: p.file, Key: key, Rule: fmt.Sprintf(rule, args...)}
}

// parseDescriptor also reports whether package.json held a "flock" object.
func parseDescriptor(file string, data []byte) (Descriptor, bool, error) {
	p := parser{file: file}
	if len(data) > maxDescriptorBytes {
		return Descriptor{}, false, p.fail("", "is larger than 1 MiB")
	}
	top, err := p.object("", data)
	if err != nil {
		return Descriptor{}, false, err
	}
	d := defaultDescriptor("")
	d.File = file
	if raw, ok := top["name"]; ok {
		if d.Name, err = p.name(raw); err != nil {
			return Descriptor{}, false, err
		}
	}
	if file != "package.json" {
		delete(top, "name")
		err := p.flock(&d, "", top, nil)
		return d, true, err
	}
	raw, ok := top["flock"]
	if !ok {
		return d, false, nil
	}
	fl, err := p.object("flock", raw)
	if err != nil {
		return Descriptor{}, true, err
	}
	if err := p.flock(&d, "flock.", fl, top["checks"]); err != nil {
		return Descriptor{}, true, err
	}
	return d, true, nil
}

// object decodes raw as a JSON object; at the root it also explains syntax
// errors with their line and column.
func (p parser) object(key string, raw []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	err := json.Unmarshal(raw, &m)
	var syn *json.SyntaxError
	switch {
	case key == "" && errors.As(err, &syn):
		line, col := lineCol(raw, syn.Offset)
		return nil, p.fail("", "is not valid JSON: line %d, column %d (offset %d): %v", line, col, syn.Offset, err)
	case key == "" && (err != nil || m == nil):
		return nil, p.fail("", "must hold a JSON object")
	case err != nil || m == nil:
		return nil, p.fail(key, "must be an object")
	}
	return m, nil
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}

func (p parser) name(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", p.fail("name", "must be a string")
	}
	if strings.HasPrefix(s, "@") {
		return "", p.fail("name", "%s is a scoped npm name: Flock does not guess an app name from it; "+
			"use a plain name that is a DNS label (lower-case letters, digits and '-', at most 63 characters)", quote(s))
	}
	n := strings.ToLower(s)
	if !ValidName(n) {
		return "", p.fail("name", "%s must be a DNS label: lower-case letters, digits and '-', "+
			"starting and ending with a letter or digit, at most 63 characters", quote(s))
	}
	return n, nil
}

// quote shows a user's value in a message, shortened and escaped.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

// flock fills d from the keys of a "flock" object (prefix "flock.") or of
// flock.json (prefix ""). beside is package.json's top-level "checks".
func (p parser) flock(d *Descriptor, prefix string, m map[string]json.RawMessage, beside json.RawMessage) error {
	if err := p.unknown(prefix, m, slices.Concat(flockKeys, placementKeys)); err != nil {
		return err
	}
	var err error
	ints := []struct {
		key      string
		dst      *int
		min, max int64
	}{{"instances", &d.Instances, 0, 100}, {"mem", &d.Mem, 1, 65536}, {"ports", &d.Ports, 1, 10}}
	for _, f := range ints {
		if raw, ok := m[f.key]; ok {
			if *f.dst, err = p.integer(prefix+f.key, raw, f.min, f.max); err != nil {
				return err
			}
		}
	}
	if raw, ok := m["cpus"]; ok {
		n, ok := number(raw)
		v, perr := n.Float64()
		if !ok || perr != nil || v <= 0 || v > 64 {
			return p.fail(prefix+"cpus", "must be a number greater than 0 and at most 64")
		}
		d.CPUs = v
	}
	if raw, ok := m["stableSeconds"]; ok {
		v, err := p.integer(prefix+"stableSeconds", raw, 0, 300)
		if err != nil {
			return err
		}
		d.StableSeconds = &v
	}
	for _, key := range []string{"minInstances", "maxInstances"} {
		if raw, ok := m[key]; ok {
			v, err := p.integer(prefix+key, raw, 0, 100)
			if err != nil {
				return err
			}
			if key == "minInstances" {
				d.MinInstances = &v
			} else {
				d.MaxInstances = &v
			}
		}
	}
	if d.MinInstances != nil && d.MaxInstances != nil && *d.MinInstances > *d.MaxInstances {
		return p.fail(prefix+"minInstances", "must not be greater than %smaxInstances", prefix)
	}
	if raw, ok := m["cmd"]; ok {
		if d.Cmd, err = p.str(prefix+"cmd", raw); err != nil {
			return err
		}
		if strings.TrimSpace(d.Cmd) == "" || len(d.Cmd) > 4096 || strings.ContainsRune(d.Cmd, 0) {
			return p.fail(prefix+"cmd", "must be a non-empty command of at most 4096 characters")
		}
	}
	if raw, ok := m["env"]; ok {
		if d.Env, err = p.env(prefix+"env", raw); err != nil {
			return err
		}
	}
	if raw, ok := m["idle"]; ok {
		if d.Idle, err = p.idle(prefix+"idle", raw); err != nil {
			return err
		}
	}
	if raw, ok := m["domains"]; ok {
		if d.Domains, err = p.domains(prefix+"domains", raw); err != nil {
			return err
		}
	}
	if raw, ok := m["image"]; ok {
		if d.Image, err = p.str(prefix+"image", raw); err != nil {
			return err
		}
		if len(d.Image) > 255 || !imageRE.MatchString(d.Image) {
			return p.fail(prefix+"image", "must be a Docker image reference such as \"redis:7\" or \"registry.example.com/team/app:1.2\"")
		}
	}
	if raw, ok := m["branch"]; ok {
		if d.Branch, err = p.str(prefix+"branch", raw); err != nil {
			return err
		}
		if !validBranch(d.Branch) {
			return p.fail(prefix+"branch", "must be a valid git branch name (no spaces, \"..\", \"~^:?*[\\\", leading '-' or '/', trailing \".lock\")")
		}
	}
	if err := p.placement(d, prefix, m); err != nil {
		return err
	}
	if raw, ok := m["https"]; ok {
		if d.HTTPS, err = p.https(prefix+"https", raw); err != nil {
			return err
		}
	}
	return p.flockChecks(d, prefix, m, beside)
}

// https parses the "https" object: {"redirect": false} keeps plain HTTP
// for an app with a publicly trusted certificate.
func (p parser) https(key string, raw json.RawMessage) (*HTTPSOptions, error) {
	m, err := p.object(key, raw)
	if err != nil {
		return nil, err
	}
	if err := p.unknown(key+".", m, []string{"redirect"}); err != nil {
		return nil, err
	}
	o := &HTTPSOptions{}
	if r, ok := m["redirect"]; ok {
		var v bool
		if string(r) != "true" && string(r) != "false" || json.Unmarshal(r, &v) != nil {
			return nil, p.fail(key+".redirect", "must be true or false")
		}
		o.Redirect = &v
	}
	return o, nil
}
