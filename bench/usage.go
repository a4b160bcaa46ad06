package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Machine is where a run ran.
type Machine struct {
	CPU       string  `json:"cpu"`
	Cores     int     `json:"cores"`
	MemoryGB  float64 `json:"memory_gb"`
	Go        string  `json:"go"`
	OS        string  `json:"os"`
	Kernel    string  `json:"kernel,omitempty"`
	GitCommit string  `json:"git_commit"`
	GitDirty  bool    `json:"git_dirty"`
	// LoadAvg is the 1-minute load average when the bench started (other work on
	// the machine shows here).
	LoadAvg float64 `json:"load_avg_start"`
}

// LoadAvg1 is the 1-minute load average (0 when unknown).
func LoadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// ReadMachine describes this machine and the checkout in the working directory.
func ReadMachine() Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadAvg: LoadAvg1()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemoryGB = math.Round(kb/1024/1024*10) / 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output(); err == nil {
		m.GitCommit = strings.TrimSpace(string(out))
	} else {
		m.GitCommit = "unknown"
	}
	if out, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		m.GitDirty = len(bytes.TrimSpace(out)) > 0
	}
	return m
}

// Usage is what a run cost in CPU and memory.
type Usage struct {
	// This process (the load generator, and the system too when it runs in process).
	CPUSeconds float64              `json:"cpu_s"`
	CPUCores   float64              `json:"cpu_cores"` // CPU seconds per wall second
	PeakHeapMB float64              `json:"peak_heap_mb"`
	PeakRSSMB  float64              `json:"peak_rss_mb"`
	GCs        uint32               `json:"gcs"`
	Goroutines int                  `json:"peak_goroutines"`
	Services   map[string]ProcUsage `json:"services,omitempty"`
}

// ProcUsage is one external process's share.
type ProcUsage struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"`
	CPUCores   float64 `json:"cpu_cores"`
	RSSMB      float64 `json:"rss_mb"`
}

// Service is an external process to account for, by its pid file.
type Service struct {
	Name    string
	PIDFile string
	Want    string // a substring its command line must hold, so a recycled pid is not read
}

// ServicesIn lists the pid files deploy/services.sh writes under dir
// (/tmp/seckill-services unless SECKILL_STATE_DIR says otherwise).
func ServicesIn(dir string) []Service {
	return []Service{
		{"mariadbd", filepath.Join(dir, "mariadb", "mariadbd.pid"), "mariadbd"},
		{"redis-server", filepath.Join(dir, "redis", "redis.pid"), "redis-server"},
		{"rocketmq-broker", filepath.Join(dir, "rocketmq", "broker.pid"), "java"},
		{"rocketmq-namesrv", filepath.Join(dir, "rocketmq", "namesrv.pid"), "java"},
	}
}

// ResolveServices keeps the services whose pid file names a live process, and says
// why the others are left out.
func ResolveServices(svcs []Service) (map[string]int, []string) {
	pids := map[string]int{}
	var notes []string
	for _, s := range svcs {
		b, err := os.ReadFile(s.PIDFile)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: no pid file %s, not measured", s.Name, s.PIDFile))
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			notes = append(notes, fmt.Sprintf("%s: unreadable pid file %s, not measured", s.Name, s.PIDFile))
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(cmd, []byte(s.Want)) {
			notes = append(notes, fmt.Sprintf("%s: pid %d is not running, not measured", s.Name, pid))
			continue
		}
		pids[s.Name] = pid
	}
	return pids, notes
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux
// architecture Go supports.
const clockTick = 100

// procStat reads a process's CPU seconds (user + system) and resident memory.
func procStat(pid int) (cpu float64, rssMB float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 { // fields from the state (3rd) on
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)  // field 14
	st, _ := strconv.ParseFloat(f[12], 64)  // field 15
	rss, _ := strconv.ParseFloat(f[21], 64) // field 24, pages
	return (ut + st) / clockTick, rss * float64(os.Getpagesize()) / (1 << 20), nil
}

func selfRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseFloat(f[1], 64)
	return pages * float64(os.Getpagesize()) / (1 << 20)
}

// meter measures one run: CPU of this process and of the services from start to
// stop, and peaks of memory sampled every half second.
type meter struct {
	start     time.Time
	cpu0      float64
	gc0       uint32
	svc0      map[string]float64
	pids      map[string]int
	mu        sync.Mutex
	peakHeap  uint64
	peakRSS   float64
	peakGorou int
	stopCh    chan struct{}
	done      chan struct{}
}

func startMeter(pids map[string]int) *meter {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := &meter{start: time.Now(), cpu0: selfCPU(), gc0: ms.NumGC, svc0: map[string]float64{}, pids: pids,
		stopCh: make(chan struct{}), done: make(chan struct{})}
	for name, pid := range pids {
		if c, _, err := procStat(pid); err == nil {
			m.svc0[name] = c
		}
	}
	m.sample()
	go func() {
		defer close(m.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stopCh:
				return
			case <-t.C:
				m.sample()
			}
		}
	}()
	return m
}

func (m *meter) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := selfRSSMB()
	g := runtime.NumGoroutine()
	m.mu.Lock()
	m.peakHeap = max(m.peakHeap, ms.HeapInuse)
	m.peakRSS = max(m.peakRSS, rss)
	m.peakGorou = max(m.peakGorou, g)
	m.mu.Unlock()
}

func (m *meter) stop() Usage {
	close(m.stopCh)
	<-m.done
	m.sample()
	wall := time.Since(m.start).Seconds()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cpu := selfCPU() - m.cpu0
	u := Usage{CPUSeconds: round2(cpu), CPUCores: round2(cpu / wall), PeakHeapMB: round1(float64(m.peakHeap) / (1 << 20)),
		PeakRSSMB: round1(m.peakRSS), GCs: ms.NumGC - m.gc0, Goroutines: m.peakGorou}
	for name, pid := range m.pids {
		c, rss, err := procStat(pid)
		c0, ok := m.svc0[name]
		if err != nil || !ok {
			continue
		}
		if u.Services == nil {
			u.Services = map[string]ProcUsage{}
		}
		u.Services[name] = ProcUsage{PID: pid, CPUSeconds: round2(c - c0), CPUCores: round2((c - c0) / wall), RSSMB: round1(rss)}
	}
	return u
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
func round2(x float64) float64 { return math.Round(x*100) / 100 }
