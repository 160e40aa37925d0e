package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAPIHosts(t *testing.T) {
	tests := []struct {
		name, api string
		urls      []string
		want      []string
	}{
		{"defaults", "127.0.0.1:8080", []string{"http://127.0.0.1:8080"}, []string{"127.0.0.1", "127.0.0.1"}},
		{"every address", ":8080", []string{"https://Flock.example.com/", ""}, []string{"flock.example.com"}},
		{"a name", "flock.lan:8080", nil, []string{"flock.lan"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, apiHosts(tt.api, tt.urls...)); diff != "" {
				t.Error(diff)
			}
		})
	}
}
