package engine

import (
	"encoding/json"

	"github.com/flock-paas/flock/deploy"

	bolt "go.etcd.io/bbolt"
)

// storedRelease is a release as the store keeps it: with its config vars,
// which deploy.Release never marshals (json:"-"), so that no API answer,
// event or log built from a Release can carry a value.
type storedRelease struct {
	deploy.Release
	Config map[string]string `json:"config,omitempty"`
}

func encodeRelease(r deploy.Release) storedRelease {
	r.ConfigKeys = deploy.ConfigKeys(r.Config)
	return storedRelease{Release: r, Config: r.Config}
}

// decodeRelease reads a stored release, config vars included.
func decodeRelease(data []byte, r *deploy.Release) error {
	var sr storedRelease
	if err := json.Unmarshal(data, &sr); err != nil {
		return err
	}
	*r = sr.Release
	r.Config = sr.Config
	r.ConfigKeys = deploy.ConfigKeys(sr.Config)
	return nil
}

func getRelease(tx *bolt.Tx, key string, r *deploy.Release) error {
	data := tx.Bucket(bucketReleases).Get([]byte(key))
	if data == nil {
		return deploy.ErrNotFound
	}
	return decodeRelease(data, r)
}
