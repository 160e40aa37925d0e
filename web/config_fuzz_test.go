package web

import (
	"errors"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy"
)

// FuzzConfigPatch: whatever body a client PATCHes, decodePatch refuses it
// with ErrInvalid or returns keys mapped to strings or nil, and
// ApplyConfig then keeps only keys and values that pass the rules.
func FuzzConfigPatch(f *testing.F) {
	f.Add(`{"A":"1","B":null}`)
	f.Add(`{"PORT":"1"}`)
	f.Add(`{"A":1}`)
	f.Add(`{"A":"x\u0000"}`)
	f.Add(`{"A":"1"}{"B":"2"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		patch, err := decodePatch(strings.NewReader(body))
		if err != nil {
			if !errors.Is(err, deploy.ErrInvalid) {
				t.Fatalf("decode error %v is not ErrInvalid", err)
			}
			return
		}
		cfg, err := deploy.ApplyConfig(nil, patch)
		if err != nil {
			if !errors.Is(err, deploy.ErrInvalid) {
				t.Fatalf("apply error %v is not ErrInvalid", err)
			}
			return
		}
		for k, v := range cfg {
			if deploy.CheckConfigKey(k) != nil || deploy.CheckConfigValue(k, v) != nil {
				t.Fatalf("kept %q", k)
			}
		}
	})
}
