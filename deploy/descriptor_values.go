// The value rules of descriptor keys: types, ranges, names, hosts and
// branches, shared by every key that parseDescriptor reads.

package deploy

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// unknown rejects keys that are not in known, the first in sorted order.
func (p parser) unknown(prefix string, m map[string]json.RawMessage, known []string) error {
	var bad []string
	for k := range m {
		if !slices.Contains(known, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return p.fail(prefix+bad[0], "is not a known key (known: %s)", strings.Join(known, ", "))
}

func (p parser) integer(key string, raw json.RawMessage, min, max int64) (int, error) {
	if n, ok := number(raw); ok {
		if v, err := strconv.ParseInt(n.String(), 10, 64); err == nil && v >= min && v <= max {
			return int(v), nil
		}
	}
	return 0, p.fail(key, "must be an integer between %d and %d", min, max)
}

// number decodes a JSON number literal; a quoted number is not one.
func number(raw json.RawMessage) (json.Number, bool) {
	var n json.Number
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) || json.Unmarshal(raw, &n) != nil {
		return "", false
	}
	return n, true
}

func (p parser) str(key string, raw json.RawMessage) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", p.fail(key, "must be a string")
	}
	return s, nil
}

func (p parser) env(key string, raw json.RawMessage) (map[string]string, error) {
	m, err := p.object(key, raw)
	if err != nil {
		return nil, err
	}
	if len(m) > 1000 {
		return nil, p.fail(key, "must hold at most 1000 variables")
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	env := make(map[string]string, len(m))
	for _, k := range names {
		if !envKeyRE.MatchString(k) || len(k) > 256 {
			return nil, p.fail(key+"."+k, "is not a valid variable name (letters, digits and '_', not starting with a digit)")
		}
		if reservedEnv.MatchString(k) {
			return nil, p.fail(key+"."+k, "is set by Flock for every instance and cannot be overridden")
		}
		v, err := p.str(key+"."+k, m[k])
		if err != nil {
			return nil, err
		}
		if strings.ContainsRune(v, 0) || len(v) > 32768 {
			return nil, p.fail(key+"."+k, "must be a string of at most 32768 characters without NUL")
		}
		env[k] = v
	}
	return env, nil
}

func (p parser) idle(key string, raw json.RawMessage) (string, error) {
	const rule = "must be \"never\" or a duration of at least 1s such as \"15m\" or \"1h30m\""
	var s string
	if json.Unmarshal(raw, &s) != nil || len(raw) == 0 || raw[0] != '"' {
		return "", p.fail(key, rule)
	}
	if s == "never" {
		return s, nil
	}
	if v, err := time.ParseDuration(s); err != nil || v < time.Second {
		return "", p.fail(key, rule)
	}
	return s, nil
}

func (p parser) domains(key string, raw json.RawMessage) ([]string, error) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || list == nil {
		return nil, p.fail(key, "must be an array of host names")
	}
	if len(list) > 100 {
		return nil, p.fail(key, "must hold at most 100 host names")
	}
	var out []string
	for i, r := range list {
		k := fmt.Sprintf("%s[%d]", key, i)
		s, err := p.str(k, r)
		if err != nil {
			return nil, err
		}
		if rule := domainRule(s); rule != "" {
			return nil, p.fail(k, "%s %s", quote(s), rule)
		}
		if slices.Contains(out, s) {
			return nil, p.fail(k, "%s is listed twice", quote(s))
		}
		out = append(out, s)
	}
	return out, nil
}

// IsAddress reports whether a host is an IP literal, including the short
// and numeric forms browsers read as IPv4 ("127.1", "2130706433"): no
// top-level domain is all digits.
func IsAddress(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	last := h[strings.LastIndex(h, ".")+1:]
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// validHost reports whether s is a lower-case host name of DNS labels.
func validHost(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !ValidName(l) {
			return false
		}
	}
	return true
}

// validBranch applies git's ref-name rules (git check-ref-format) to a
// branch name.
func validBranch(s string) bool {
	if s == "" || len(s) > 255 || s == "@" || strings.HasPrefix(s, "-") || strings.HasPrefix(s, "/") ||
		strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".") || strings.HasSuffix(s, ".lock") ||
		strings.Contains(s, "..") || strings.Contains(s, "//") || strings.Contains(s, "@{") ||
		strings.ContainsAny(s, " ~^:?*[\\\x7f") {
		return false
	}
	for _, r := range s {
		if r < 0x20 {
			return false
		}
	}
	for _, c := range strings.Split(s, "/") {
		if strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
			return false
		}
	}
	return true
}
