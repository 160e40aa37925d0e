package deploy

import (
	"strings"
	"testing"
	"time"
)

// TestStableSeconds: the stability window defaults to 2 s (also for
// releases stored before the key existed), may be 0 to 300, and anything
// else is refused naming the key.
func TestStableSeconds(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       time.Duration
		err        string
	}{
		{"default", `{"name":"a"}`, 2 * time.Second, ""},
		{"zero", `{"name":"a","flock":{"stableSeconds":0}}`, 0, ""},
		{"five", `{"name":"a","flock":{"stableSeconds":5}}`, 5 * time.Second, ""},
		{"negative", `{"name":"a","flock":{"stableSeconds":-1}}`, 0, "flock.stableSeconds"},
		{"too long", `{"name":"a","flock":{"stableSeconds":301}}`, 0, "flock.stableSeconds"},
		{"a string", `{"name":"a","flock":{"stableSeconds":"2"}}`, 0, "flock.stableSeconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseDescriptor("package.json", []byte(tc.json))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Stable(); got != tc.want {
				t.Errorf("Stable() = %v, want %v", got, tc.want)
			}
		})
	}
	if got := (Descriptor{}).Stable(); got != 2*time.Second {
		t.Errorf("a stored release without the key: %v", got)
	}
}
