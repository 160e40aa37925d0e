package procgroup

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Info is what /proc/<pid>/stat says about a process (proc(5)).
type Info struct {
	State byte   // 'R', 'S', 'D', 'Z' (zombie), 'X' (dead)…
	PPID  int    // parent
	PGRP  int    // process group
	Start uint64 // start time in clock ticks after boot: with BootID, names one process for good
}

// Stat reads /proc/<pid>/stat; ok is false when pid is gone.
func Stat(pid int) (info Info, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Info{}, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Info{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || f[0] == "" {
		return Info{}, false
	}
	info.State = f[0][0]
	info.PPID, _ = strconv.Atoi(f[1])
	info.PGRP, _ = strconv.Atoi(f[2])
	info.Start, _ = strconv.ParseUint(f[19], 10, 64) // field 22 of stat(5)
	return info, true
}

// Alive reports whether pid exists and is neither a zombie nor dead.
func Alive(pid int) bool {
	info, ok := Stat(pid)
	return ok && info.State != 'Z' && info.State != 'X'
}

// StartTime returns pid's start time in clock ticks after boot, or 0.
func StartTime(pid int) uint64 {
	info, _ := Stat(pid)
	return info.Start
}

// ParentOf returns the parent of pid, or 0 when pid is gone.
func ParentOf(pid int) int {
	info, _ := Stat(pid)
	return info.PPID
}

// BootID names the current boot of the kernel: a pid and start time
// written down before a reboot name nothing after it.
func BootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Cmdline returns the arguments pid was started with (argv[0] first), or
// nil when pid is gone or its command line is not readable.
func Cmdline(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	b = bytes.TrimRight(b, "\x00")
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// List returns the pids of every process in /proc, or nil without /proc.
func List() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var list []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			list = append(list, pid)
		}
	}
	return list
}

// Environ returns the environment pid was started with ("KEY=value"
// entries), or nil when it is gone or not ours to read.
func Environ(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	b = bytes.TrimRight(b, "\x00")
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// Owner returns the uid pid runs as (the owner of /proc/<pid>).
func Owner(pid int) (uid int, ok bool) {
	st, err := os.Stat("/proc/" + strconv.Itoa(pid))
	if err != nil {
		return 0, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(sys.Uid), true
}

// groupHasLiving scans /proc for a member of the group that is not a
// zombie. Without /proc it assumes one is there.
func groupHasLiving(pgid int) bool {
	list := List()
	if list == nil {
		return true
	}
	for _, pid := range list {
		if info, ok := Stat(pid); ok && info.PGRP == pgid && info.State != 'Z' {
			return true
		}
	}
	return false
}

// Members returns the processes in group pgid or carrying marker
// ("KEY=value") in their environment, provided at least one of them
// carries marker: a recycled pgid of somebody else's processes gives
// nothing. This process is never listed.
func Members(pgid int, marker string) []int {
	if pgid <= 1 {
		return nil
	}
	var out []int
	marked := false
	want := append(append([]byte{0}, marker...), 0)
	self := os.Getpid()
	for _, pid := range List() {
		if pid == self {
			continue
		}
		env, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		has := bytes.Contains(append([]byte{0}, env...), want)
		if info, ok := Stat(pid); ok && (has || info.PGRP == pgid) {
			out = append(out, pid)
			marked = marked || has
		}
	}
	if !marked {
		return nil
	}
	return out
}
