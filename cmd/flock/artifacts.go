package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
)

// Slugs hold an app's source, so the artifact server does not hand them
// to anyone: a request must come from this machine, carry the token, or
// carry the signature Flock puts in the slug URLs it gives schedulers
// (Mesos' fetcher downloads them with no header of its own).

// signer signs artifact paths with a key derived from the token.
type signer struct{ key []byte }

func newSigner(token string) signer {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("flock artifacts"))
	return signer{key: m.Sum(nil)}
}

func (s signer) sig(path string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(path))
	return hex.EncodeToString(m.Sum(nil))
}

// signURL puts the signature of url's artifact path into the path:
// .../artifacts/app/v3.tar.gz becomes .../artifacts/s/<sig>/app/v3.tar.gz.
// In the path, not the query, because Mesos' fetcher decides how to
// extract a download by the name it ends with.
func (s signer) signURL(url string) string {
	i := strings.Index(url, "/artifacts/")
	if i < 0 {
		return url
	}
	return url[:i] + "/artifacts/s/" + s.sig(url[i:]) + "/" + url[i+len("/artifacts/"):]
}

// guard serves h only to callers from loopback, with the token, or on a
// signed path (which it turns back into the plain one).
func (s signer) guard(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/artifacts/s/"); ok {
			sig, plain, _ := strings.Cut(rest, "/")
			plain = "/artifacts/" + plain
			if !hmac.Equal([]byte(sig), []byte(s.sig(plain))) {
				deny(w)
				return
			}
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = plain, ""
			h.ServeHTTP(w, r2)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		ip := net.ParseIP(host)
		bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if (ip != nil && ip.IsLoopback()) || (bearer != "" && subtle.ConstantTimeCompare([]byte(bearer), []byte(token)) == 1) {
			h.ServeHTTP(w, r)
			return
		}
		deny(w)
	})
}

func deny(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	w.Write([]byte(`{"error":"artifacts need the token or a signed URL"}` + "\n"))
}
