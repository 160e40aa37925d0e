package marathontest

import "fmt"

// Placement as Marathon validates and applies it.
//
// Constraints: each is [field, OPERATOR] or [field, OPERATOR, value]
// with an operator of Marathon's list (docs/docs/constraints.md: UNIQUE,
// CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS; AppDefinition.json bounds
// the array to 2 or 3 strings). BRIDGE networking publishes the ports of
// container.docker.portMappings and takes no portDefinitions (Marathon
// 1.4's AppDefinition.json; "Migrating Tools to the 1.5 Networking API"
// says 1.5 and later still accept that shape). An invalid app answers
// 422 "Object is not valid" with the path of the fault, as Marathon's
// validation does.

var constraintOps = map[string]bool{"UNIQUE": true, "CLUSTER": true, "GROUP_BY": true,
	"LIKE": true, "UNLIKE": true, "MAX_PER": true, "IS": true}

// invalidPlacement returns Marathon's 422 details for a, or nil.
func invalidPlacement(a map[string]any) []any {
	var details []any
	fault := func(path, msg string) {
		details = append(details, map[string]any{"path": path, "errors": []any{msg}})
	}
	cs, _ := a["constraints"].([]any)
	for i, c := range cs {
		parts, _ := c.([]any)
		path := fmt.Sprintf("/constraints(%d)", i)
		if len(parts) < 2 || len(parts) > 3 {
			fault(path, "Each constraint must have either 2 or 3 fields")
			continue
		}
		if op, _ := parts[1].(string); !constraintOps[op] {
			fault(path, fmt.Sprintf("Constraint operator must be one of the following: [UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS], not %v", parts[1]))
		}
	}
	if bridged(a) {
		if pd, _ := a["portDefinitions"].([]any); len(pd) > 0 {
			fault("/portDefinitions", "Port definitions must be empty when using BRIDGE networking")
		}
	}
	return details
}

// docker returns a's container.docker object, or nil.
func docker(a map[string]any) map[string]any {
	c, _ := a["container"].(map[string]any)
	d, _ := c["docker"].(map[string]any)
	return d
}

// bridged reports whether a runs in Docker BRIDGE networking.
func bridged(a map[string]any) bool { return docker(a)["network"] == "BRIDGE" }

// portCount is how many host ports a task of a gets: one per port
// mapping in BRIDGE networking, else one per port definition (1 when the
// app names none, as Marathon's default portDefinitions do).
func portCount(a map[string]any) int {
	if bridged(a) {
		pm, _ := docker(a)["portMappings"].([]any)
		return len(pm)
	}
	if pd, ok := a["portDefinitions"].([]any); ok {
		return len(pd)
	}
	return 1
}
