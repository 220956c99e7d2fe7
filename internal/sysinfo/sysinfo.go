// Package sysinfo measures the machine for benchmark reports: the memory
// bandwidth a streaming copy reaches, the process's peak resident set, and
// the CPU's model name.
package sysinfo

import (
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemoryBandwidth measures the bandwidth of a STREAM-style copy of a
// buffer far larger than the caches (256 MiB each way) with the given
// number of threads, counting bytes read plus bytes written, and returns
// the best of a few runs in bytes per second.
func MemoryBandwidth(threads int) float64 {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	const size = 256 << 20
	src := make([]byte, size)
	dst := make([]byte, size)
	for i := 0; i < size; i += 4096 {
		src[i], dst[i] = 1, 1 // fault the pages in
	}
	best := 0.0
	for range 5 {
		start := time.Now()
		var wg sync.WaitGroup
		chunk := size / threads
		for t := range threads {
			lo, hi := t*chunk, (t+1)*chunk
			if t == threads-1 {
				hi = size
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				copy(dst[lo:hi], src[lo:hi])
			}()
		}
		wg.Wait()
		if bw := 2 * size / time.Since(start).Seconds(); bw > best {
			best = bw
		}
	}
	return best
}

// PeakRSS returns the process's peak resident set size in bytes (Linux
// VmHWM), or 0 where unknown.
func PeakRSS() int64 { return status("VmHWM:") }

// RSS returns the process's current resident set size in bytes.
func RSS() int64 { return status("VmRSS:") }

// ResetPeakRSS starts a new peak (Linux 4.0+); harmless elsewhere.
func ResetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func status(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			if f := strings.Fields(l); len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// CPUModel returns the CPU's model name from /proc/cpuinfo, or GOARCH.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.IndexByte(l, ':'); i >= 0 {
					return strings.TrimSpace(l[i+1:])
				}
			}
		}
	}
	return runtime.GOARCH
}

// Stats are the median, minimum and maximum of a set of samples.
type Stats struct {
	Median, Min, Max float64
}

// Summarise returns the median, minimum and maximum of xs.
func Summarise(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stats{Median: m, Min: s[0], Max: s[len(s)-1]}
}
