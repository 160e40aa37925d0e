package deploy

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

var (
	// configKeyRE is a shell variable name: what `export KEY=…` accepts.
	configKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// reservedConfigRE are names the schedulers set for every instance
	// (PORT, PORT0…, HOST) and the FLOCK_ namespace, kept for Flock.
	reservedConfigRE = regexp.MustCompile(`^(PORT[0-9]*|HOST|FLOCK_.*)$`)
)

// Limits of config vars: as the descriptor's env (docs/config.md).
const (
	MaxConfigKey   = 256
	MaxConfigValue = 32768
	MaxConfigVars  = 1000
)

// CheckConfigKey says why key cannot name a config var: it must be a
// shell variable name and not one Flock sets itself. The error names the
// key, never a value, and wraps ErrInvalid.
func CheckConfigKey(key string) error {
	switch {
	case len(key) > MaxConfigKey:
		return fmt.Errorf("config key %.40q…: longer than %d characters: %w", key, MaxConfigKey, ErrInvalid)
	case !configKeyRE.MatchString(key):
		return fmt.Errorf("config key %q is not a shell variable name (letters, digits and '_', not starting with a digit): %w", key, ErrInvalid)
	case reservedConfigRE.MatchString(key):
		return fmt.Errorf("config key %q is reserved: Flock sets PORT, PORT<n>, HOST and FLOCK_* for every instance: %w", key, ErrInvalid)
	}
	return nil
}

// CheckConfigValue says why value cannot be key's value. The error names
// the key and the rule, not the value (it may be a secret).
func CheckConfigValue(key, value string) error {
	if strings.ContainsRune(value, 0) {
		return fmt.Errorf("config %s: the value holds a NUL byte, which no environment can carry: %w", key, ErrInvalid)
	}
	if len(value) > MaxConfigValue {
		return fmt.Errorf("config %s: the value is longer than %d bytes: %w", key, MaxConfigValue, ErrInvalid)
	}
	return nil
}

// ApplyConfig returns config with patch applied: a key with a nil value
// is removed, any other is set. It checks every key and value first and
// returns an error (config untouched) if one breaks a rule.
func ApplyConfig(config map[string]string, patch map[string]*string) (map[string]string, error) {
	for _, k := range slices.Sorted(maps.Keys(patch)) {
		if err := CheckConfigKey(k); err != nil {
			return nil, err
		}
		if v := patch[k]; v != nil {
			if err := CheckConfigValue(k, *v); err != nil {
				return nil, err
			}
		}
	}
	out := maps.Clone(config)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range patch {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = *v
		}
	}
	if len(out) > MaxConfigVars {
		return nil, fmt.Errorf("an app may have at most %d config vars: %w", MaxConfigVars, ErrInvalid)
	}
	return out, nil
}

// ConfigKeys lists config's keys, sorted: what API reads show of config
// vars (never their values).
func ConfigKeys(config map[string]string) []string {
	if len(config) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(config))
}

// MergeEnv is the environment a release runs with, before RunEnv's
// defaults and the scheduler's own variables: the descriptor's env,
// overridden by the app's config vars.
func MergeEnv(env, config map[string]string) map[string]string {
	if len(config) == 0 {
		return env
	}
	out := maps.Clone(env)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, config)
	return out
}
