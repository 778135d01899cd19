package main

import (
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processCPU is this process' user+system CPU time (getrusage).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter measures the CPU used by this process, by the worker process
// (when the engine runs its worker in a child process) and by redis-server
// between its creation and stop.
type cpuMeter struct {
	rs                  *redisServer
	w                   *workerProc
	proc, worker, redis time.Duration
	wall                time.Time
}

func newCPUMeter(rs *redisServer, w *workerProc) *cpuMeter {
	m := &cpuMeter{rs: rs, w: w, proc: processCPU(), redis: rs.cpu(), wall: time.Now()}
	if w != nil {
		m.worker = w.cpu()
	}
	return m
}

// stop returns the process and redis-server CPU used since the meter began.
func (m *cpuMeter) stop() (proc, redis time.Duration) {
	return processCPU() - m.proc, m.rs.cpu() - m.redis
}

// workerCPU returns the worker process' CPU used since the meter began (0
// for an in-process worker).
func (m *cpuMeter) workerCPU() time.Duration {
	if m.w == nil {
		return 0
	}
	return m.w.cpu() - m.worker
}

// procStatus returns a field of /proc/self/status in bytes (VmRSS, VmHWM).
func procStatus(field string) int64 { return procStatusOf("self", field) }

// procStatusOf returns a field of /proc/<pid>/status in bytes.
func procStatusOf(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			n, _ := strconv.ParseInt(f[0], 10, 64)
			return n * 1024
		}
	}
	return 0
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(math.Round(p/100*float64(len(s)-1)))]
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
