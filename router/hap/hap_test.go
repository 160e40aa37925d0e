package hap

import "testing"

func TestBackendNames(t *testing.T) {
	if got := BackendName("hello"); got != "app_hello" {
		t.Errorf("BackendName = %q", got)
	}
}
