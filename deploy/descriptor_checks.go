// The "checks" key: health checks, with Marathon's protocol names.

package deploy

import (
	"encoding/json"
	"fmt"
	"strings"
)

// flockChecks reads the checks, inside the "flock" object or beside it
// (package.json's original form), once the ports are known.
func (p parser) flockChecks(d *Descriptor, prefix string, m map[string]json.RawMessage, beside json.RawMessage) error {
	var err error
	checksKey, checks := prefix+"checks", m["checks"]
	if beside != nil {
		if checks != nil {
			return p.fail("checks", "must not be given both beside and inside flock")
		}
		checksKey, checks = "checks", beside
	}
	if checks != nil {
		if d.Checks, err = p.checks(checksKey, checks, d.Ports); err != nil {
			return err
		}
	}
	return nil
}

// checks parses the health checks; an empty list means the default TCP
// check, as no list at all.
func (p parser) checks(key string, raw json.RawMessage, ports int) ([]Check, error) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || list == nil {
		return nil, p.fail(key, "must be an array of checks")
	}
	if len(list) > 10 {
		return nil, p.fail(key, "must hold at most 10 checks")
	}
	if len(list) == 0 {
		return []Check{defaultCheck()}, nil
	}
	out := make([]Check, 0, len(list))
	for i, r := range list {
		c, err := p.check(fmt.Sprintf("%s[%d].", key, i), r, ports)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (p parser) check(prefix string, raw json.RawMessage, ports int) (Check, error) {
	m, err := p.object(strings.TrimSuffix(prefix, "."), raw)
	if err != nil {
		return Check{}, err
	}
	if err := p.unknown(prefix, m, checkKeys); err != nil {
		return Check{}, err
	}
	c := defaultCheck()
	if r, ok := m["path"]; ok {
		if c.Path, err = p.str(prefix+"path", r); err != nil {
			return Check{}, err
		}
		if !ValidCheckPath(c.Path) {
			return Check{}, p.fail(prefix+"path", "must start with \"/\" and hold only URL characters "+
				"(no spaces, quotes, '#', '\\' or control characters), at most 1024")
		}
	}
	if r, ok := m["protocol"]; ok {
		proto, err := p.str(prefix+"protocol", r)
		if err != nil {
			return Check{}, err
		}
		switch strings.ToUpper(proto) {
		case "HTTP":
			if c.Path == "" {
				c.Path = "/"
			}
		case "TCP":
			if c.Path != "" {
				return Check{}, p.fail(prefix+"path", "must not be set on a TCP check")
			}
		default:
			return Check{}, p.fail(prefix+"protocol", "must be \"HTTP\" or \"TCP\"")
		}
	}
	if r, ok := m["portIndex"]; ok {
		if c.PortIndex, err = p.integer(prefix+"portIndex", r, 0, int64(ports-1)); err != nil {
			return Check{}, err
		}
	}
	fields := []struct {
		key      string
		dst      *int
		min, max int64
	}{
		{"intervalSeconds", &c.IntervalSeconds, 1, 3600},
		{"timeoutSeconds", &c.TimeoutSeconds, 1, 3600},
		{"gracePeriodSeconds", &c.GracePeriodSeconds, 0, 3600},
		{"maxConsecutiveFailures", &c.MaxConsecutiveFailures, 1, 100},
	}
	for _, f := range fields {
		if r, ok := m[f.key]; ok {
			if *f.dst, err = p.integer(prefix+f.key, r, f.min, f.max); err != nil {
				return Check{}, err
			}
		}
	}
	if c.TimeoutSeconds > c.IntervalSeconds {
		if _, set := m["timeoutSeconds"]; set {
			return Check{}, p.fail(prefix+"timeoutSeconds", "must not be greater than intervalSeconds (%d)", c.IntervalSeconds)
		}
		c.TimeoutSeconds = c.IntervalSeconds // the default timeout shrinks to a short interval
	}
	return c, nil
}
