package procgroup

import (
	"errors"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ErrExited is Watch's error for a process that is gone, or no longer
// the one the caller meant, by the time it is watched.
var ErrExited = errors.New("process exited")

// Watch returns a channel closed once process pid exits, for a process
// that is not our child (one a previous Flock started), so that there is
// no wait(2). still tells whether pid is still the process the caller
// means (its start time, its command line); Watch checks it after it has
// a handle on pid, so the channel can never follow a process that took
// over the pid meanwhile, and fails with ErrExited when it is false.
//
// The handle is a pidfd, readable once the process exits and waited for
// by Go's poller, so a watched process costs no thread. Without pidfds
// (Linux before 5.3) Watch polls /proc every 100 ms instead.
func Watch(pid int, still func() bool) (<-chan struct{}, error) {
	done := make(chan struct{})
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if !still() {
			return nil, ErrExited
		}
		go func() {
			for still() && Alive(pid) {
				time.Sleep(100 * time.Millisecond)
			}
			close(done)
		}()
		return done, nil
	}
	if !still() {
		unix.Close(fd)
		return nil, ErrExited
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	go func() {
		defer f.Close()
		rc.Read(func(fd uintptr) bool {
			n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
			return n > 0
		})
		close(done)
	}()
	return done, nil
}
