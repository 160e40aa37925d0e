package deploy

import (
	"errors"
	"strings"
	"testing"
)

func TestApplyConfig(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		name  string
		patch map[string]*string
		want  string // error text, or "" for success
	}{
		{"set", map[string]*string{"A": s("1"), "_b2": s("")}, ""},
		{"unset", map[string]*string{"OLD": nil}, ""},
		{"PORT", map[string]*string{"PORT": s("1")}, `"PORT" is reserved`},
		{"PORT3", map[string]*string{"PORT3": s("1")}, `"PORT3" is reserved`},
		{"HOST", map[string]*string{"HOST": s("1")}, `"HOST" is reserved`},
		{"FLOCK_", map[string]*string{"FLOCK_X": nil}, `"FLOCK_X" is reserved`},
		{"digit first", map[string]*string{"1A": s("1")}, "not a shell variable name"},
		{"dash", map[string]*string{"A-B": s("1")}, "not a shell variable name"},
		{"empty key", map[string]*string{"": s("1")}, "not a shell variable name"},
		{"equals", map[string]*string{"A=B": s("1")}, "not a shell variable name"},
		{"long key", map[string]*string{strings.Repeat("K", 257): s("1")}, "longer than"},
		{"NUL", map[string]*string{"A": s("x\x00y")}, "NUL"},
		{"huge value", map[string]*string{"A": s(strings.Repeat("v", MaxConfigValue+1))}, "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := map[string]string{"OLD": "secret"}
			got, err := ApplyConfig(old, tc.patch)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.patch {
					if v == nil && hasKey(got, k) || v != nil && got[k] != *v {
						t.Errorf("key %s: got %v", k, got)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want ErrInvalid naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "x\x00y") {
				t.Errorf("error shows a value: %v", err)
			}
			if old["OLD"] != "secret" || len(old) != 1 {
				t.Errorf("a refused patch changed the config: %v", old)
			}
		})
	}
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

func TestMergeEnv(t *testing.T) {
	got := RunEnv(MergeEnv(map[string]string{"A": "desc", "B": "desc"}, map[string]string{"A": "config", "NODE_ENV": "staging"}))
	if got["A"] != "config" || got["B"] != "desc" || got["NODE_ENV"] != "staging" || got["PYTHONUNBUFFERED"] != "1" {
		t.Errorf("merged env %v", got)
	}
}

// FuzzApplyConfig: whatever a client sends, a patch is either refused
// with ErrInvalid or leaves only valid keys and NUL-free values.
func FuzzApplyConfig(f *testing.F) {
	f.Add("A", "1", true)
	f.Add("PORT", "x", false)
	f.Add("FLOCK_X", "\x00", true)
	f.Fuzz(func(t *testing.T, key, value string, set bool) {
		patch := map[string]*string{key: nil}
		if set {
			patch[key] = &value
		}
		got, err := ApplyConfig(nil, patch)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		for k, v := range got {
			if CheckConfigKey(k) != nil || CheckConfigValue(k, v) != nil {
				t.Fatalf("kept %q=%q", k, v)
			}
		}
	})
}
