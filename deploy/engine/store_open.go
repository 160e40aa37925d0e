package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Names of the store's files in the data dir.
const (
	storeFile  = "flock.db"
	backupFile = "flock.db.bak"
)

// lockWait is how long OpenStore waits for another Flock to let go of the
// store before it says that one holds the data dir.
const lockWait = time.Second

// StoreError says why the store at Path cannot be used and how to recover:
// Flock refuses to start on a damaged, empty or missing store rather than
// start with no apps and overwrite its good copy.
type StoreError struct {
	Path   string // the store file, <data-dir>/flock.db
	Reason string // what is wrong with it
	Fix    string // what the operator does next
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("store %s %s; %s", e.Path, e.Reason, e.Fix)
}

// OpenStore opens the store at <dir>/flock.db, creating it in a new data
// dir. It refuses, with a *StoreError naming the file and the way back, a
// store that is empty, damaged, or missing while its copy exists, and it
// says so when another Flock holds the data dir. Once the store is open
// and every record reads back, it writes its consistent copy,
// flock.db.bak, from which a damaged store is restored.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	path := filepath.Join(dir, storeFile)
	bak := filepath.Join(dir, backupFile)
	// Copies a killed Flock left half-written; the copy itself is whole.
	if tmps, err := filepath.Glob(filepath.Join(dir, backupFile+".*.tmp")); err == nil {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, berr := os.Stat(bak); berr == nil {
			fix := fmt.Sprintf("to start with no apps instead, move the copy away (mv %s %s.old); ", bak, bak) + restoreFix(path, bak, false)
			return nil, &StoreError{Path: path, Reason: "is missing but its copy " + bak + " exists", Fix: fix}
		}
	case err != nil:
		return nil, fmt.Errorf("open store: %w", err)
	case fi.Size() == 0:
		return nil, &StoreError{Path: path, Reason: "is empty (0 bytes): all apps and releases are gone from it", Fix: restoreFix(path, bak, true)}
	}
	db, err := openVerified(path, false)
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: another Flock holds the data dir %s (stop it, or give this one its own --data-dir)", path, dir)
	}
	if err != nil {
		return nil, &StoreError{Path: path, Reason: "is damaged (" + err.Error() + ")", Fix: restoreFix(path, bak, true)}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketApps, bucketReleases, bucketDeploys} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, backup: bak}
	if err := s.Backup(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// restoreFix tells the operator how to get back to a working store: from
// the copy when it opens and reads back, else by starting empty.
func restoreFix(path, bak string, moveAway bool) string {
	move := ""
	if moveAway {
		move = fmt.Sprintf("mv %s %s.damaged && ", path, path)
	}
	fi, err := os.Stat(bak)
	if err != nil {
		return fmt.Sprintf("there is no copy (%s) to restore from; to start with no apps, move the file away: mv %s %s.damaged", bak, path, path)
	}
	db, err := openVerified(bak, true)
	if err != nil {
		return fmt.Sprintf("its copy %s is damaged too (%v); to start with no apps, move both away", bak, err)
	}
	apps := 0
	db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketApps); b != nil {
			apps = b.Stats().KeyN
		}
		return nil
	})
	db.Close()
	return fmt.Sprintf("to restore the copy Flock made at %s (%d apps; later changes are lost), run: %scp %s %s",
		fi.ModTime().UTC().Format(time.RFC3339), apps, move, bak, path)
}

// openVerified opens a bbolt file and reads every page and record of it.
// bbolt trusts its file: a damaged one panics (or faults on a page past
// the end of a truncated file) at the first read, so the whole file is
// read here, once, with the panic turned into an error.
func openVerified(path string, readOnly bool) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, fmt.Errorf("unreadable: %v", r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait, ReadOnly: readOnly})
	if err != nil {
		return nil, err
	}
	if err := db.View(func(tx *bolt.Tx) error { return verify(tx, true) }); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// verify checks that the file holds every page the store refers to and
// that the records of Flock's buckets are JSON; deep checks every record
// and adds bbolt's own page check, which is only right while no write
// runs (at open).
func verify(tx *bolt.Tx, deep bool) error {
	fi, err := os.Stat(tx.DB().Path())
	if err != nil {
		return err
	}
	if fi.Size() < tx.Size() {
		return fmt.Errorf("truncated: %d bytes of %d", fi.Size(), tx.Size())
	}
	for _, name := range [][]byte{bucketApps, bucketReleases, bucketDeploys} {
		b := tx.Bucket(name)
		if b == nil {
			continue
		}
		// deploy.Rollout records are mostly logs: at open they are read whole; a
		// copy only walks them (reading every page), so copying a large
		// store stays cheap.
		whole := deep || !bytes.Equal(name, bucketDeploys)
		err := b.ForEach(func(k, v []byte) error {
			if whole && !json.Valid(v) {
				return fmt.Errorf("record %s/%q is not JSON", name, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if !deep {
		return nil
	}
	// Check's goroutine reads the transaction until its channel is
	// drained, so read it all before the transaction ends.
	var first error
	for err := range tx.Check() {
		if first == nil {
			first = err
		}
	}
	return first
}

// Backup writes a consistent copy of the store to flock.db.bak: it reads
// the store back in one transaction and writes it to a temp file that
// replaces the copy only once complete and synced, so the copy is never
// half-written and never a copy of a damaged store.
func (s *Store) Backup() (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("back up store: unreadable: %v", r)
		}
	}()
	tmp, err := os.CreateTemp(filepath.Dir(s.backup), backupFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("back up store: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = s.db.View(func(tx *bolt.Tx) error {
		if err := verify(tx, false); err != nil {
			return err
		}
		_, err := tx.WriteTo(tmp)
		return err
	})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.backup)
	}
	if err == nil {
		err = syncDir(filepath.Dir(s.backup))
	}
	if err != nil {
		return fmt.Errorf("back up store: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
