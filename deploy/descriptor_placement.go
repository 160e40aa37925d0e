// Placement keys: where and how Marathon runs an app's tasks. The local
// scheduler runs everything on this machine and ignores them; they are
// validated the same on every scheduler, so a descriptor that deploys
// locally deploys on Marathon too.

package deploy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
)

// placementKeys are the placement keys a "flock" object may hold.
var placementKeys = []string{"constraints", "network", "portMappings", "forcePullImage"}

// Constraint operators, as Marathon's constraints documentation lists
// them (docs/docs/constraints.md): the value each one takes.
var constraintOps = map[string]constraintValue{
	"UNIQUE":   valueNone,
	"CLUSTER":  valueOptional,
	"GROUP_BY": valueOptionalInt,
	"LIKE":     valueRegexp,
	"UNLIKE":   valueRegexp,
	"MAX_PER":  valueInt,
	"IS":       valueText,
}

type constraintValue int

const (
	valueNone constraintValue = iota
	valueOptional
	valueOptionalInt
	valueRegexp
	valueInt
	valueText
)

var (
	// constraintFieldRE is "hostname", "@hostname", "@region", "@zone" or
	// a Mesos agent attribute name (Mesos' attribute text type).
	constraintFieldRE = regexp.MustCompile(`^(@hostname|@region|@zone|[A-Za-z0-9_/.-]{1,128})$`)
	// constraintTextRE is a Mesos text or scalar value.
	constraintTextRE = regexp.MustCompile(`^[A-Za-z0-9_/.-]{1,128}$`)
)

// Network modes of a Docker app (Marathon's container.docker.network).
const (
	NetworkHost   = "HOST"
	NetworkBridge = "BRIDGE"
)

// PortMapping maps a container port to a host port in BRIDGE networking
// (Marathon's container.docker.portMappings).
type PortMapping struct {
	// ContainerPort is the port the app listens on in its container; 0:
	// the same as the host port Marathon picks.
	ContainerPort int `json:"containerPort"`
	// HostPort is the agent's port; 0 (the default): any port of the
	// offer, as Flock's routing expects.
	HostPort int `json:"hostPort"`
	// Protocol is "tcp" (the default), "udp" or "udp,tcp".
	Protocol string `json:"protocol"`
}

// placement fills d's placement keys from m. It runs before the checks
// are read: BRIDGE networking decides how many ports the app has.
func (p parser) placement(d *Descriptor, prefix string, m map[string]json.RawMessage) error {
	var err error
	if raw, ok := m["constraints"]; ok {
		if d.Constraints, err = p.constraints(prefix+"constraints", raw); err != nil {
			return err
		}
	}
	if raw, ok := m["forcePullImage"]; ok {
		if err := json.Unmarshal(raw, &d.ForcePullImage); err != nil || (raw[0] != 't' && raw[0] != 'f') {
			return p.fail(prefix+"forcePullImage", "must be true or false")
		}
		if d.Image == "" {
			return p.fail(prefix+"forcePullImage", "needs %simage: only a Docker image is pulled", prefix)
		}
	}
	if raw, ok := m["network"]; ok {
		if d.Network, err = p.str(prefix+"network", raw); err != nil {
			return err
		}
		switch d.Network {
		case NetworkHost, NetworkBridge:
		default:
			return p.fail(prefix+"network", "must be \"HOST\" or \"BRIDGE\"")
		}
		if d.Network == NetworkBridge && d.Image == "" {
			return p.fail(prefix+"network", "\"BRIDGE\" needs %simage: only a Docker container has a bridge", prefix)
		}
	}
	raw, ok := m["portMappings"]
	switch {
	case ok && d.Network != NetworkBridge:
		return p.fail(prefix+"portMappings", "needs %snetwork \"BRIDGE\"", prefix)
	case !ok && d.Network == NetworkBridge:
		return p.fail(prefix+"network", "\"BRIDGE\" needs %sportMappings: the container ports to publish", prefix)
	case !ok:
		return nil
	}
	if d.PortMappings, err = p.portMappings(prefix+"portMappings", raw); err != nil {
		return err
	}
	if _, set := m["ports"]; set && d.Ports != len(d.PortMappings) {
		return p.fail(prefix+"ports", "must be the number of %sportMappings (%d) with network \"BRIDGE\"", prefix, len(d.PortMappings))
	}
	d.Ports = len(d.PortMappings)
	return nil
}

// constraints parses Marathon's [["field", "OPERATOR", "value"], …] form.
func (p parser) constraints(key string, raw json.RawMessage) ([][]string, error) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || list == nil {
		return nil, p.fail(key, "must be an array of constraints such as [[\"hostname\", \"UNIQUE\"]]")
	}
	if len(list) > 20 {
		return nil, p.fail(key, "must hold at most 20 constraints")
	}
	out := make([][]string, 0, len(list))
	for i, r := range list {
		k := fmt.Sprintf("%s[%d]", key, i)
		var c []json.RawMessage
		if json.Unmarshal(r, &c) != nil || len(c) < 2 || len(c) > 3 {
			return nil, p.fail(k, "must be [field, operator] or [field, operator, value]")
		}
		parts := make([]string, len(c))
		for j := range c {
			s, err := p.str(fmt.Sprintf("%s[%d]", k, j), c[j])
			if err != nil {
				return nil, err
			}
			parts[j] = s
		}
		if err := p.constraint(k, parts); err != nil {
			return nil, err
		}
		out = append(out, parts)
	}
	return out, nil
}

// constraint checks one constraint's field, operator and value.
func (p parser) constraint(key string, c []string) error {
	if !constraintFieldRE.MatchString(c[0]) {
		return p.fail(key+"[0]", "%s must be \"hostname\", \"@hostname\", \"@region\", \"@zone\" or an agent attribute name (letters, digits and _/.-)", quote(c[0]))
	}
	want, ok := constraintOps[c[1]]
	if !ok {
		return p.fail(key+"[1]", "%s must be one of Marathon's operators: UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS", quote(c[1]))
	}
	vkey := key + "[2]"
	if len(c) == 2 {
		switch want {
		case valueRegexp, valueInt, valueText:
			return p.fail(key, "%s needs a value", c[1])
		}
		return nil
	}
	v := c[2]
	switch want {
	case valueNone:
		return p.fail(vkey, "must be left out: %s takes no value", c[1])
	case valueOptional, valueText:
		if !constraintTextRE.MatchString(v) {
			return p.fail(vkey, "%s must be a Mesos text or scalar value (letters, digits and _/.-)", quote(v))
		}
	case valueOptionalInt, valueInt:
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
			return p.fail(vkey, "%s must be an integer between 1 and 1000", quote(v))
		}
	case valueRegexp:
		if _, err := regexp.Compile(v); err != nil || len(v) > 256 || v == "" {
			return p.fail(vkey, "%s must be a regular expression of at most 256 characters", quote(v))
		}
	}
	return nil
}

// portMappings parses BRIDGE port mappings; the first one is the port
// Flock routes to and checks, so it must carry TCP.
func (p parser) portMappings(key string, raw json.RawMessage) ([]PortMapping, error) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || list == nil {
		return nil, p.fail(key, "must be an array of port mappings such as [{\"containerPort\": 80}]")
	}
	if len(list) == 0 || len(list) > 10 {
		return nil, p.fail(key, "must hold between 1 and 10 port mappings")
	}
	out := make([]PortMapping, 0, len(list))
	for i, r := range list {
		k := fmt.Sprintf("%s[%d]", key, i)
		m, err := p.object(k, r)
		if err != nil {
			return nil, err
		}
		if err := p.unknown(k+".", m, []string{"containerPort", "hostPort", "protocol"}); err != nil {
			return nil, err
		}
		pm := PortMapping{Protocol: "tcp"}
		for _, f := range []struct {
			name string
			dst  *int
		}{{"containerPort", &pm.ContainerPort}, {"hostPort", &pm.HostPort}} {
			if r, ok := m[f.name]; ok {
				if *f.dst, err = p.integer(k+"."+f.name, r, 0, 65535); err != nil {
					return nil, err
				}
			}
		}
		if r, ok := m["protocol"]; ok {
			if pm.Protocol, err = p.str(k+".protocol", r); err != nil {
				return nil, err
			}
			switch {
			case pm.Protocol != "tcp" && pm.Protocol != "udp" && pm.Protocol != "udp,tcp":
				return nil, p.fail(k+".protocol", "must be \"tcp\", \"udp\" or \"udp,tcp\"")
			case i == 0 && pm.Protocol == "udp":
				return nil, p.fail(k+".protocol", "must carry tcp: the first mapping is the port Flock routes HTTP to")
			}
		}
		out = append(out, pm)
	}
	return out, nil
}
