package hap

import "testing"

func TestBackendNames(t *testing.T) {
	if got := BackendName("hello"); got != "app_hello" {
		t.Errorf("BackendName = %q", got)
	}
	for _, tc := range []struct {
		backend, app string
		ok           bool
	}{{"app_hello", "hello", true}, {"be_default", "", false}, {"stats", "", false}} {
		if app, ok := AppOf(tc.backend); app != tc.app || ok != tc.ok {
			t.Errorf("AppOf(%q) = %q, %v", tc.backend, app, ok)
		}
	}
}
