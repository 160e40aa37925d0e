package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/registration"
)

// The files an Issuer keeps in Config.Dir. Both are private (0600 in a 0700
// folder): the key signs every request to the ACME server, and whoever holds
// it can revoke the account's certificates.
const (
	keyFile     = "account.key"  // the account's ECDSA P-256 key, PEM
	accountFile = "account.json" // the registration (see account)
)

// account is what account.json holds: the registration the ACME server
// returned, and the directory and e-mail it was made for, so that pointing
// Flock at another ACME server (Pebble, then Let's Encrypt) registers there
// instead of sending a foreign account URL.
type account struct {
	Directory    string                 `json:"directory"`
	Email        string                 `json:"email"`
	Registration *registration.Resource `json:"registration"`
}

// user is the account as lego sees it (registration.User).
type user struct {
	email string
	key   crypto.PrivateKey
	reg   *registration.Resource
}

func (u *user) GetEmail() string                        { return u.email }
func (u *user) GetRegistration() *registration.Resource { return u.reg }
func (u *user) GetPrivateKey() crypto.PrivateKey        { return u.key }

// loadKey reads dir's account key, or makes one and writes it when there is
// none yet. A key that is there but unreadable is an error, not a reason to
// make a new one: a new key is a new account.
func loadKey(dir string) (crypto.PrivateKey, error) {
	path := filepath.Join(dir, keyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := certcrypto.ParsePEMPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("read account key %s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read account key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make account key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("make account key: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	if err := writePrivate(path, pemBytes); err != nil {
		return nil, fmt.Errorf("write account key: %w", err)
	}
	return key, nil
}

// loadAccount reads dir's registration; it returns nil, nil when there is
// none yet.
func loadAccount(dir string) (*account, error) {
	path := filepath.Join(dir, accountFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read account: %w", err)
	}
	var a account
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("read account %s: %w", path, err)
	}
	if a.Registration == nil || a.Registration.URI == "" {
		return nil, fmt.Errorf("read account %s: no account URL", path)
	}
	return &a, nil
}

func saveAccount(dir string, a *account) error {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("write account: %w", err)
	}
	if err := writePrivate(filepath.Join(dir, accountFile), append(b, '\n')); err != nil {
		return fmt.Errorf("write account: %w", err)
	}
	return nil
}

// writePrivate replaces path with b, mode 0600, so that a crash leaves the
// old file or the new one, never half of one: a temporary file in the same
// folder, synced, then renamed over path (renameio).
func writePrivate(path string, b []byte) error {
	return renameio.WriteFile(path, b, 0o600, renameio.WithStaticPermissions(0o600))
}

// privateDir makes dir (and its parents) if needed and closes it to others:
// it holds the account key.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}
