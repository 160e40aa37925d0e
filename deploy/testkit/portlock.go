package testkit

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// A port FreePort hands out is also claimed for the life of the test
// binary with an flock(2) on a file named after it, so that no other test
// binary on the machine hands it out meanwhile. The bind check alone does
// not suffice: two binaries (go test runs packages in parallel) could both
// find a port free before either server binds it, and HAProxy binds with
// SO_REUSEPORT, so both HAProxies would then serve the port, each
// answering about half of the other's requests with 404. The kernel drops
// the locks when the binary exits, however it exits.
var portLocks = struct {
	sync.Mutex
	dir  string     // where the lock files are; "" once it cannot be made
	held []*os.File // open for the life of the binary
}{dir: filepath.Join(os.TempDir(), "flock-testkit-ports")}

// claimPort locks port p for this binary. It reports false when another
// binary holds it, and true when it is claimed or the locks cannot be used
// at all (then the bind check is all there is, as before).
func claimPort(p int) (claimed bool, release func()) {
	portLocks.Lock()
	defer portLocks.Unlock()
	noop := func() {}
	if portLocks.dir == "" {
		return true, noop
	}
	if err := os.MkdirAll(portLocks.dir, 0o777); err != nil {
		portLocks.dir = ""
		return true, noop
	}
	_ = os.Chmod(portLocks.dir, 0o777|os.ModeSticky) // shared by every user's tests
	f, err := os.OpenFile(filepath.Join(portLocks.dir, strconv.Itoa(p)), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return true, noop // another user's file: the bind check decides
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false, noop
	}
	portLocks.held = append(portLocks.held, f)
	return true, func() {
		portLocks.Lock()
		defer portLocks.Unlock()
		for i, h := range portLocks.held {
			if h == f {
				portLocks.held = append(portLocks.held[:i], portLocks.held[i+1:]...)
				break
			}
		}
		f.Close()
	}
}
