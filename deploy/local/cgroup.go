package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	cgmode "github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Each instance runs in a cgroup of its own, "flock/<instance id>" under
// Flock's own cgroup, that holds its memory ("mem", no swap), its CPU time
// ("cpus", as a CFS quota) and its number of tasks (pidsLimit). The same
// code serves cgroup v1 (one hierarchy per controller, as on these
// machines) and v2 (one unified hierarchy), through
// github.com/containerd/cgroups/v3. Without a writable hierarchy (not
// root, or a container without cgroup access) instances run without
// limits and MemoryEnforced reports false.

// pidsLimit caps the tasks (processes and threads) of one instance: a
// fork bomb stops there instead of exhausting the machine's pid space.
// Node needs about a dozen threads; npm scripts a few processes more.
const pidsLimit = 512

// cgroupParent is the cgroup under Flock's own that holds the instances'.
const cgroupParent = "flock"

// cpuPeriod is the CFS period (µs) the "cpus" quota is a share of.
const cpuPeriod = 100_000

// v1Controllers are the cgroup v1 hierarchies an instance joins: the
// limits, CPU accounting, and the freezer to kill a forking group at once.
var v1Controllers = []cgroup1.Name{cgroup1.Memory, cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Pids, cgroup1.Freezer}

// limits are what one instance may use; zero means unlimited.
type limits struct {
	memMiB int
	cpus   float64
	pids   int
}

// cgroups creates and finds instances' cgroups. The zero value (and nil)
// is disabled.
type cgroups struct {
	on     bool
	v2     bool
	memory bool     // the memory controller is available: "mem" is enforced
	ctl    []string // v2: the controllers the instances' cgroups may use
	swap   bool     // v1 memsw / v2 memory.swap.max exist: swap is limited too
	reason string   // why limits are not enforced, when !on or !memory
}

// detectCgroups finds out whether this process may create cgroups with the
// controllers it needs, and creates the parent of the instances' cgroups.
func detectCgroups() *cgroups {
	switch cgmode.Mode() {
	case cgmode.Legacy, cgmode.Hybrid:
		return detectV1()
	case cgmode.Unified:
		return detectV2()
	}
	return &cgroups{reason: "no cgroup hierarchy mounted"}
}

func detectV1() *cgroups {
	parent, err := cgroup1.New(v1Path(cgroupParent), &specs.LinuxResources{}, v1Opts()...)
	if err != nil {
		return &cgroups{reason: fmt.Sprintf("cgroup v1: create %s: %v", cgroupParent, err)}
	}
	c := &cgroups{on: true}
	for _, s := range parent.Subsystems() {
		if s.Name() == cgroup1.Memory {
			c.memory = true
			if p, err := v1Path(cgroupParent)(cgroup1.Memory); err == nil {
				_, err := os.Stat(filepath.Join(s.(interface{ Path(string) string }).Path(p), "memory.memsw.limit_in_bytes"))
				c.swap = err == nil
			}
		}
	}
	if !c.memory {
		c.reason = "cgroup v1 without a memory hierarchy"
	}
	return c
}

func detectV2() *cgroups {
	base, err := v2Base()
	if err != nil {
		return &cgroups{reason: fmt.Sprintf("cgroup v2: %v", err)}
	}
	// Ask for the controllers Flock's cgroup offers, of those it needs.
	offered, err := os.ReadFile(filepath.Join(v2Mount, base, "cgroup.controllers"))
	if err != nil {
		return &cgroups{reason: fmt.Sprintf("cgroup v2: %v", err)}
	}
	res := &cgroup2.Resources{}
	for _, c := range strings.Fields(string(offered)) {
		switch c {
		case "memory":
			res.Memory = &cgroup2.Memory{}
		case "cpu":
			res.CPU = &cgroup2.CPU{}
		case "pids":
			res.Pids = &cgroup2.Pids{}
		}
	}
	_, err = cgroup2.NewManager(v2Mount, filepath.Join(base, cgroupParent), res)
	if err != nil && base != "/" {
		// cgroup v2 allows controllers for the children of a cgroup only
		// while it holds no process itself: move Flock into a leaf
		// beside the apps, then enable them.
		leaf, lerr := cgroup2.NewManager(v2Mount, filepath.Join(base, v2Supervisor), &cgroup2.Resources{})
		if lerr == nil {
			lerr = leaf.AddProc(uint64(os.Getpid()))
		}
		if lerr != nil {
			return &cgroups{reason: fmt.Sprintf("cgroup v2: %v (moving Flock to a leaf: %v)", err, lerr)}
		}
		_, err = cgroup2.NewManager(v2Mount, filepath.Join(base, cgroupParent), res)
	}
	if err != nil {
		return &cgroups{reason: fmt.Sprintf("cgroup v2: %v", err)}
	}
	ctl, _ := os.ReadFile(filepath.Join(v2Mount, base, cgroupParent, "cgroup.controllers"))
	c := &cgroups{on: true, v2: true, ctl: strings.Fields(string(ctl))}
	c.memory = slices.Contains(c.ctl, "memory")
	_, serr := os.Stat(filepath.Join(v2Mount, base, cgroupParent, "memory.swap.max"))
	c.swap = serr == nil
	if !c.memory {
		c.reason = "cgroup v2 without the memory controller"
	}
	return c
}

func (c *cgroups) enabled() bool { return c != nil && c.on }

// enforcesMemory reports whether an instance's "mem" is a hard limit.
func (c *cgroups) enforcesMemory() bool { return c.enabled() && c.memory }

// create makes the cgroup of instance id with l and returns its name, the
// handle state.json keeps and the other functions take.
func (c *cgroups) create(id string, l limits) (string, error) {
	name := cgroupParent + "/" + id
	if c.v2 {
		// Only controllers the parent offers: asking for another fails.
		res := &cgroup2.Resources{}
		if l.pids > 0 && slices.Contains(c.ctl, "pids") {
			res.Pids = &cgroup2.Pids{Max: int64(l.pids)}
		}
		if l.cpus > 0 && slices.Contains(c.ctl, "cpu") {
			q, p := int64(l.cpus*cpuPeriod), uint64(cpuPeriod)
			res.CPU = &cgroup2.CPU{Max: cgroup2.NewCPUMax(&q, &p)}
		}
		if l.memMiB > 0 && c.memory {
			limit, zero, group := int64(l.memMiB)<<20, int64(0), true
			res.Memory = &cgroup2.Memory{Max: &limit, OOMGroup: &group}
			if c.swap {
				res.Memory.Swap = &zero
			}
		}
		base, err := v2Base()
		if err == nil {
			_, err = cgroup2.NewManager(v2Mount, filepath.Join(base, name), res)
		}
		if err != nil {
			return "", fmt.Errorf("cgroup %s: %w", name, err)
		}
		return name, nil
	}
	res := &specs.LinuxResources{}
	if l.pids > 0 {
		n := int64(l.pids)
		res.Pids = &specs.LinuxPids{Limit: &n}
	}
	if l.cpus > 0 {
		q, p := int64(l.cpus*cpuPeriod), uint64(cpuPeriod)
		res.CPU = &specs.LinuxCPU{Quota: &q, Period: &p}
	}
	if l.memMiB > 0 && c.memory {
		limit := int64(l.memMiB) << 20
		res.Memory = &specs.LinuxMemory{Limit: &limit}
		if c.swap {
			res.Memory.Swap = &limit // memory+swap = memory: no swap
		}
	}
	if _, err := cgroup1.New(v1Path(name), res, v1Opts()...); err != nil {
		removeCgroup(name)
		return "", fmt.Errorf("cgroup %s: %w", name, err)
	}
	return name, nil
}

// setCgroupCPU changes the CPU quota of the cgroup name to cpus.
func setCgroupCPU(name string, cpus float64) error {
	g, err := openCgroup(name)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", name, err)
	}
	if err := g.setCPU(cpus); err != nil {
		return fmt.Errorf("cgroup %s: %w", name, err)
	}
	return nil
}

// group is one instance's cgroup, found by name, in either version.
type group interface {
	add(pid int) error
	setCPU(cpus float64) error
	kill() error
	remove() error
	oomKills() uint64
	cpuUsage() (time.Duration, error)
}

// openCgroup finds the cgroup name (as create returned it) in the
// hierarchy mounted here.
func openCgroup(name string) (group, error) {
	if name == "" || strings.Contains(name, "..") {
		return nil, fmt.Errorf("cgroup %q: bad name", name)
	}
	if cgmode.Mode() == cgmode.Unified {
		base, err := v2Base()
		if err != nil {
			return nil, err
		}
		m, err := cgroup2.Load(filepath.Join(base, name))
		if err != nil {
			return nil, err
		}
		return v2Group{m}, nil
	}
	cg, err := cgroup1.Load(v1Path(name), v1Opts()...)
	if err != nil {
		return nil, err
	}
	return v1Group{cg}, nil
}

// joinCgroup moves pid into the cgroup name (in every hierarchy).
func joinCgroup(name string, pid int) error {
	g, err := openCgroup(name)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", name, err)
	}
	if err := g.add(pid); err != nil {
		return fmt.Errorf("cgroup %s: %w", name, err)
	}
	return nil
}

// killCgroup sends SIGKILL to every process of the cgroup: also those that
// left the instance's process group or forked faster than a group kill.
func killCgroup(name string) {
	if g, err := openCgroup(name); err == nil {
		g.kill()
	}
}

// removeCgroup deletes a cgroup whose processes are gone. A process that
// was just killed may take a moment to leave it, so it tries for a second.
func removeCgroup(name string) {
	g, err := openCgroup(name)
	if err != nil {
		return
	}
	deadline := time.Now().Add(time.Second)
	for g.remove() != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// cgroupOOMKills counts the processes of the cgroup the kernel killed for
// going past its memory limit.
func cgroupOOMKills(name string) uint64 {
	g, err := openCgroup(name)
	if err != nil {
		return 0
	}
	return g.oomKills()
}

type v1Group struct{ cg cgroup1.Cgroup }

func (g v1Group) add(pid int) error { return g.cg.AddProc(uint64(pid)) }

// kill freezes the group so no process forks meanwhile, kills every one,
// and thaws it so the signals are delivered.
func (g v1Group) kill() error {
	frozen := g.cg.Freeze() == nil
	procs, err := g.cg.Processes(cgroup1.Memory, true)
	if err != nil {
		procs, err = g.cg.Processes(cgroup1.Pids, true)
	}
	for _, p := range procs {
		syscall.Kill(p.Pid, syscall.SIGKILL)
	}
	if frozen {
		g.cg.Thaw()
	}
	return err
}

func (g v1Group) remove() error { return g.cg.Delete() }

func (g v1Group) setCPU(cpus float64) error {
	q, p := int64(cpus*cpuPeriod), uint64(cpuPeriod)
	return g.cg.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &q, Period: &p}})
}

func (g v1Group) oomKills() uint64 {
	st, err := g.cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil || st.MemoryOomControl == nil {
		return 0
	}
	return st.MemoryOomControl.OomKill
}

func (g v1Group) cpuUsage() (time.Duration, error) {
	st, err := g.cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return 0, err
	}
	if st.CPU == nil || st.CPU.Usage == nil {
		return 0, errors.New("no cpuacct hierarchy")
	}
	return time.Duration(st.CPU.Usage.Total), nil
}

type v2Group struct{ m *cgroup2.Manager }

func (g v2Group) add(pid int) error { return g.m.AddProc(uint64(pid)) }
func (g v2Group) kill() error       { return g.m.Kill() }
func (g v2Group) remove() error     { return g.m.Delete() }

func (g v2Group) setCPU(cpus float64) error {
	q, p := int64(cpus*cpuPeriod), uint64(cpuPeriod)
	return g.m.Update(&cgroup2.Resources{CPU: &cgroup2.CPU{Max: cgroup2.NewCPUMax(&q, &p)}})
}

func (g v2Group) oomKills() uint64 {
	st, err := g.m.Stat()
	if err != nil || st.MemoryEvents == nil {
		return 0
	}
	return st.MemoryEvents.OomKill
}

func (g v2Group) cpuUsage() (time.Duration, error) {
	st, err := g.m.Stat()
	if err != nil {
		return 0, err
	}
	if st.CPU == nil {
		return 0, errors.New("no cpu statistics")
	}
	return time.Duration(st.CPU.UsageUsec) * time.Microsecond, nil
}

// v1Path places name under this process's own cgroup in each hierarchy
// (Flock's cgroup may differ per controller, as it does in containers).
func v1Path(name string) cgroup1.Path { return cgroup1.NestedPath(name) }

// v1Opts restricts cgroup v1 to the controllers an instance needs; one
// that is not mounted is skipped.
func v1Opts() []cgroup1.InitOpts {
	return []cgroup1.InitOpts{
		cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) {
			all, err := cgroup1.Default()
			if err != nil {
				return nil, err
			}
			var out []cgroup1.Subsystem
			for _, s := range all {
				if slices.Contains(v1Controllers, s.Name()) {
					out = append(out, s)
				}
			}
			return out, nil
		}),
		func(c *cgroup1.InitConfig) error { c.InitCheck = cgroup1.AllowAny; return nil },
	}
}

const (
	v2Mount      = "/sys/fs/cgroup"
	v2Supervisor = "flock-supervisor"
)

// v2Base is the cgroup v2 group Flock was started in: its own, or the
// parent of the leaf detectV2 moved it into.
func v2Base() (string, error) {
	own, err := cgroup2.NestedGroupPath("")
	if err != nil {
		return "", fmt.Errorf("own cgroup: %w", err)
	}
	own = filepath.Clean("/" + own)
	if filepath.Base(own) == v2Supervisor {
		own = filepath.Dir(own)
	}
	return own, nil
}
