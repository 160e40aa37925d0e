package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flock-paas/flock/deploy"

	bolt "go.etcd.io/bbolt"
)

// Store keeps Flock's desired state in a bbolt file in the data dir: apps,
// their releases and the record of every deploy. Everything the platform
// must bring back after a restart (or a SIGKILL) lives here.
type Store struct {
	db     *bolt.DB
	backup string // <data-dir>/flock.db.bak
	copier copier
}

var (
	bucketApps     = []byte("apps")
	bucketReleases = []byte("releases")
	bucketDeploys  = []byte("deploys")
)

// appRecord is an app's desired state.
type appRecord struct {
	Name string `json:"name"`
	// Current is the release that serves ("" before the first successful
	// deploy).
	Current string `json:"current"`
	// LastVersion is the highest release number handed out, so that a
	// failed rollout never reuses a number.
	LastVersion int `json:"lastVersion"`
	// Desired is how many instances run while the app is awake.
	Desired int `json:"desired"`
	// Asleep is set while the app is scaled to zero for idleness.
	Asleep      bool       `json:"asleep"`
	AsleepSince *time.Time `json:"asleepSince,omitempty"`
	// SavedSeconds sums desired × time asleep over past sleeps.
	SavedSeconds float64 `json:"savedSeconds"`
	// Failed says why the app is failed (deploy or wake); cleared by the
	// next success.
	Failed    string    `json:"failed,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Formation is how many instances of each non-web process type run
	// while the app is awake; a type not listed runs defaultProcessCount.
	Formation map[string]int `json:"formation,omitempty"`
	// Config is the app's config vars, what its next release runs with
	// (config.go); Domains are those added with flock domains add
	// (domains.go).
	Config  map[string]string `json:"config,omitempty"`
	Domains []string          `json:"domains,omitempty"`
}

// Close writes a last copy of the store and closes it.
func (s *Store) Close() error {
	s.copier.stopAndWait()
	return errors.Join(s.Backup(), s.db.Close())
}

func put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), data)
}

func get(tx *bolt.Tx, bucket []byte, key string, v any) error {
	data := tx.Bucket(bucket).Get([]byte(key))
	if data == nil {
		return deploy.ErrNotFound
	}
	return json.Unmarshal(data, v)
}

// releaseKey sorts releases of an app by version.
func releaseKey(app string, version int) string { return fmt.Sprintf("%s/%09d", app, version) }

func (s *Store) app(name string) (appRecord, error) {
	var r appRecord
	err := s.db.View(func(tx *bolt.Tx) error { return get(tx, bucketApps, name, &r) })
	return r, err
}

func (s *Store) apps() ([]appRecord, error) {
	var out []appRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketApps).ForEach(func(_, v []byte) error {
			var r appRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// appsWithCurrent lists every app record with its current release (zero
// when it has none) in one transaction: Service.Apps runs on every event
// and every second, and a transaction per app would cost more than the
// reads themselves.
func (s *Store) appsWithCurrent() ([]appRecord, []deploy.Release, error) {
	var recs []appRecord
	var rels []deploy.Release
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketApps).ForEach(func(_, v []byte) error {
			var r appRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			var rel deploy.Release
			if r.Current != "" {
				n, ok := deploy.ParseReleaseName(r.Current)
				if !ok {
					return fmt.Errorf("release %q of %s: %w", r.Current, r.Name, deploy.ErrNotFound)
				}
				if err := getRelease(tx, releaseKey(r.Name, n), &rel); err != nil {
					return fmt.Errorf("release %s of %s: %w", r.Current, r.Name, err)
				}
			}
			recs, rels = append(recs, r), append(rels, rel)
			return nil
		})
	})
	return recs, rels, err
}

// updateApp reads, changes and writes an app record in one transaction.
// create allows a missing app to start from a fresh record.
func (s *Store) updateApp(name string, create bool, fn func(*appRecord) error) (appRecord, error) {
	var r appRecord
	err := s.db.Update(func(tx *bolt.Tx) error {
		err := get(tx, bucketApps, name, &r)
		if errors.Is(err, deploy.ErrNotFound) && create {
			r = appRecord{Name: name, CreatedAt: time.Now().UTC()}
		} else if err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		return put(tx, bucketApps, name, r)
	})
	if err == nil {
		s.changed()
	}
	return r, err
}

func (s *Store) putRelease(r deploy.Release) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return put(tx, bucketReleases, releaseKey(r.App, r.Version), encodeRelease(r))
	})
	if err == nil {
		s.changed()
	}
	return err
}

func (s *Store) release(app, name string) (deploy.Release, error) {
	v, ok := deploy.ParseReleaseName(name)
	if !ok {
		return deploy.Release{}, fmt.Errorf("release %q: %w", name, deploy.ErrNotFound)
	}
	var r deploy.Release
	err := s.db.View(func(tx *bolt.Tx) error { return getRelease(tx, releaseKey(app, v), &r) })
	return r, err
}

func (s *Store) releases(app string) ([]deploy.Release, error) {
	var out []deploy.Release
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketReleases).Cursor()
		prefix := []byte(app + "/")
		for k, v := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = c.Next() {
			var r deploy.Release
			if err := decodeRelease(v, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

func (s *Store) putDeploy(d deploy.Rollout) error {
	return s.db.Update(func(tx *bolt.Tx) error { return put(tx, bucketDeploys, d.ID, d) })
}

func (s *Store) deploy(id string) (deploy.Rollout, error) {
	var d deploy.Rollout
	err := s.db.View(func(tx *bolt.Tx) error { return get(tx, bucketDeploys, id, &d) })
	return d, err
}

// deploys lists deploy records, newest first; app "" lists all.
func (s *Store) deploys(app string) ([]deploy.Rollout, error) {
	var out []deploy.Rollout
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeploys).ForEach(func(_, v []byte) error {
			var d deploy.Rollout
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			if app == "" || d.App == app {
				out = append(out, d)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, err
}

// deleteApp removes an app with its releases and deploy records.
func (s *Store) deleteApp(name string) error {
	defer s.changed()
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketApps).Get([]byte(name)) == nil {
			return deploy.ErrNotFound
		}
		if err := tx.Bucket(bucketApps).Delete([]byte(name)); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketReleases, bucketDeploys} {
			// Collect first: deleting under a bbolt cursor skips keys.
			var doomed [][]byte
			err := tx.Bucket(b).ForEach(func(k, v []byte) error {
				match := strings.HasPrefix(string(k), name+"/")
				if string(b) == string(bucketDeploys) {
					var d deploy.Rollout
					match = json.Unmarshal(v, &d) == nil && d.App == name
				}
				if match {
					doomed = append(doomed, append([]byte(nil), k...))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range doomed {
				if err := tx.Bucket(b).Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// keepDeploys is how many deploy records (with their logs, up to 1 MiB
// each) the store keeps per app; older ones are pruned.
const keepDeploys = 100

// pruneDeploys deletes an app's deploy records beyond the newest keep.
func (s *Store) pruneDeploys(app string, keep int) error {
	ds, err := s.deploys(app)
	if err != nil || len(ds) <= keep {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, d := range ds[keep:] {
			if err := tx.Bucket(bucketDeploys).Delete([]byte(d.ID)); err != nil {
				return err
			}
		}
		return nil
	})
}
