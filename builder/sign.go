package builder

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Signer signs slug URLs for fetchers that send no token (Mesos'
// fetcher). A signed URL names its expiry and is refused after it:
// .../artifacts/app/v3.tar.gz becomes
// .../artifacts/s/<expiry>/<signature>/app/v3.tar.gz. Expiry and signature
// go in the path, not the query, and the file name stays last, because
// the fetcher picks how to extract a download by the name it ends with.
type Signer struct {
	key    []byte
	period time.Duration
}

// NewSigner derives a signing key from secret (the Flock token, so that a
// new token voids every URL signed with the old one). URLs that SignURL
// makes stay valid for at least period and at most twice as long.
func NewSigner(secret string, period time.Duration) (*Signer, error) {
	if secret == "" {
		return nil, errors.New("builder: signer needs a secret")
	}
	if period < time.Second {
		return nil, fmt.Errorf("builder: signed URL period %s: must be at least 1s", period)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("flock artifacts"))
	return &Signer{key: m.Sum(nil), period: period}, nil
}

// SignURL signs url's artifact path. Its expiry is the end of the period
// after the current one, so every URL signed within one period is the
// same: handing a scheduler the same release again (Flock's reconcile at
// start) does not change its definition, which would make Marathon
// restart the app's tasks. URLs without "/artifacts/" come back unchanged.
func (s *Signer) SignURL(url string) string {
	p := int64(s.period / time.Second)
	exp := (time.Now().Unix()/p + 2) * p
	return s.SignUntil(url, time.Unix(exp, 0))
}

// SignUntil signs url's artifact path, valid until exp.
func (s *Signer) SignUntil(url string, exp time.Time) string {
	i := strings.Index(url, "/artifacts/")
	if i < 0 {
		return url
	}
	e := strconv.FormatInt(exp.Unix(), 10)
	return url[:i] + "/artifacts/s/" + e + "/" + s.sig(e, url[i:]) + "/" + url[i+len("/artifacts/"):]
}

func (s *Signer) sig(exp, path string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(exp + "\n" + path))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signed artifact path and returns the plain path
// (/artifacts/app/v3.tar.gz) it stands for. A path that is not a signed
// one gives "" and no error; a wrong or expired signature, an error that
// says which.
func (s *Signer) Verify(path string) (string, error) {
	rest, ok := strings.CutPrefix(path, "/artifacts/s/")
	if !ok {
		return "", nil
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 {
		return "", errors.New("signed artifact URL: want /artifacts/s/<expiry>/<signature>/<app>/<release>.tar.gz (URLs signed before expiries existed are signed anew at the next deploy or restart)")
	}
	exp, sig := parts[0], parts[1]
	plain := "/artifacts/" + parts[2] + "/" + parts[3]
	if !hmac.Equal([]byte(sig), []byte(s.sig(exp, plain))) {
		return "", errors.New("signed artifact URL: wrong signature")
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return "", errors.New("signed artifact URL: bad expiry")
	}
	if at := time.Unix(n, 0); time.Now().After(at) {
		return "", fmt.Errorf("signed artifact URL expired at %s", at.UTC().Format(time.RFC3339))
	}
	return plain, nil
}

// Resign signs again, for the current period, a URL that SignURL made,
// expired or not; the old signature must be right, so that no other path
// gets blessed. Any other URL comes back unchanged.
func (s *Signer) Resign(url string) string {
	i := strings.Index(url, "/artifacts/s/")
	if i < 0 {
		return url
	}
	parts := strings.SplitN(url[i+len("/artifacts/s/"):], "/", 3)
	if len(parts) != 3 {
		return url
	}
	plain := "/artifacts/" + parts[2]
	if !hmac.Equal([]byte(parts[1]), []byte(s.sig(parts[0], plain))) {
		return url
	}
	return s.SignURL(url[:i] + plain)
}
