package e2e

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/sandbox"
)

// BenchmarkDeployMemory deploys a fleet whose functions ship big prebuilt zips (zip: in the
// manifest; incompressible random data beside the example bootstrap, a different zip for every
// function) and measures the peak memory of the aviary process: it runs as a child process, its
// peak resident set read from the kernel (see watchPeak). The sandbox, which keeps what it
// receives on disk, is this process and is not counted. The goal: a deploy's memory does not
// grow with the fleet, peak ≤ 150 MB + the largest zip.
//
//	go test ./e2e -run '^$' -bench DeployMemory -benchtime 1x
//
// AVIARY_BENCH_MEMORY_FUNCTIONS (default 100) and AVIARY_BENCH_MEMORY_MB (the random data per
// zip, default 50) shrink it for a quick look. At the defaults it writes about 20 GB to the temp
// dir (the zips, aviary's artifact cache, the sandbox's S3 and Lambda code), removed at the end.
func BenchmarkDeployMemory(b *testing.B) {
	n, mb := envInt(b, "AVIARY_BENCH_MEMORY_FUNCTIONS", 100), envInt(b, "AVIARY_BENCH_MEMORY_MB", 50)
	f := newFleet(b, n, sandbox.Options{ControlRate: -1, DataDir: b.TempDir()}, "      all-at-once")
	manifest := filepath.Join(f.dir, "aviary.yaml")
	raw, err := os.ReadFile(manifest)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(f.dir, "zips"), 0o755); err != nil {
		b.Fatal(err)
	}
	var largest int64
	for i, name := range f.names {
		size, err := writeRandomZip(filepath.Join(f.dir, "zips", name+".zip"), mb<<20, uint64(i))
		if err != nil {
			b.Fatal(err)
		}
		largest = max(largest, size)
		raw = []byte(strings.Replace(string(raw), "dir: functions/"+name+"\n", "zip: zips/"+name+".zip\n", 1))
	}
	if err := os.WriteFile(manifest, raw, 0o644); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	start := time.Now()
	cmd := exec.Command(built.aviary, "deploy", "-e", "production", "--api-rate", "1000")
	var out bytes.Buffer
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = f.dir, os.Environ(), &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	peaks := make(chan int64)
	exited := make(chan struct{})
	go func() { peaks <- watchPeak(cmd.Process.Pid, exited) }()
	err = cmd.Wait()
	took := time.Since(start)
	close(exited)
	peak := <-peaks
	b.StopTimer()
	if err != nil {
		b.Fatalf("deploy: %v\n%s", err, out.String())
	}
	for _, name := range f.names {
		if v, _ := f.alias(name); v == "" {
			b.Fatalf("%s has no alias after the deploy:\n%s", name, out.String())
		}
	}
	if peak == 0 {
		b.Fatal("the aviary process's peak memory could not be read from /proc")
	}
	bound := 150<<20 + largest
	b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
	b.ReportMetric(float64(peak)/float64(bound), "peak/bound")
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\naviary deploy of prebuilt zips (all-at-once, sandbox unthrottled), peak memory of the aviary process (its VmHWM)\n")
	fmt.Fprintf(&tbl, "%10s %12s %12s %22s %7s %10s\n", "functions", "zip size", "peak", "bound (150 MB + zip)", "ratio", "took")
	fmt.Fprintf(&tbl, "%10d %12s %12s %22s %7.2f %10s\n", n, mib(largest), mib(peak), mib(bound), float64(peak)/float64(bound), took.Round(100*time.Millisecond))
	fmt.Fprint(os.Stdout, tbl.String())
	if peak > bound {
		b.Errorf("peak %s is above the bound %s", mib(peak), mib(bound))
	}
}

// watchPeak follows the peak resident set of process pid (VmHWM in /proc/PID/status, a
// high-water mark the kernel keeps) until exited is closed, and returns it in bytes. Not the
// child's getrusage max RSS: Go starts children with vfork (CLONE_VM), and Linux carries the
// parent's peak into the child's at exec, so it would report this process — the sandbox, which
// holds what it receives — rather than aviary. Polled every 10 ms, it can miss only growth in the
// process's last 10 ms.
func watchPeak(pid int, exited <-chan struct{}) int64 {
	var peak int64
	path := fmt.Sprintf("/proc/%d/status", pid)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if raw, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(raw), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					var kb int64
					if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
						peak = max(peak, kb*1024)
					}
				}
			}
		}
		select {
		case <-exited:
			return peak
		case <-tick.C:
		}
	}
}

// writeRandomZip writes a zip of the example bootstrap and size bytes of random data (stored:
// it does not compress), different for every seed, and returns the zip's size.
func writeRandomZip(path string, size int, seed uint64) (int64, error) {
	out, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	zw := zip.NewWriter(out)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, ExternalAttrs: 0o755 << 16, CreatorVersion: 3 << 8})
	if err != nil {
		return 0, err
	}
	if _, err := w.Write(built.bootstrap); err != nil {
		return 0, err
	}
	if w, err = zw.CreateHeader(&zip.FileHeader{Name: "random.bin", Method: zip.Store}); err != nil {
		return 0, err
	}
	if _, err := io.CopyN(w, rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}), int64(size)); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	if err := out.Close(); err != nil {
		return 0, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }
