package lambda

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// TestFreshBootstrapsStartWhileOthersFork unpacks many new zips and starts each one's bootstrap at
// once, from many goroutines, as a busy sandbox does when several functions get new code together.
// A bootstrap written while another goroutine forks must not be left open for writing in that
// child: exec of it would fail with "text file busy" (ETXTBSY), which Invoke reports as
// Runtime.InvalidEntrypoint.
func TestFreshBootstrapsStartWhileOthersFork(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	c, err := newCodeStore("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close() })

	const workers, perWorker = 8, 20
	// The padding makes each write take a little while, so that other goroutines fork during it.
	script := "#!/bin/sh\n#" + strings.Repeat("x", 1<<20) + "\nexit 0\n"
	var (
		mu     sync.Mutex
		busy   int
		others []error
		wg     sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				key, _, err := c.put(bootstrapZip(t, fmt.Sprintf("%s# %d/%d\n", script, w, i)))
				if err == nil {
					err = startBootstrap(c, key)
				}
				if err != nil {
					mu.Lock()
					if errors.Is(err, syscall.ETXTBSY) {
						busy++
					} else {
						others = append(others, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if busy > 0 {
		t.Errorf("%d of %d fresh bootstraps could not start: text file busy", busy, workers*perWorker)
	}
	for _, err := range others {
		t.Error(err)
	}
}

func startBootstrap(c *codeStore, key string) error {
	dir, err := c.unpack(key)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", key, err)
	}
	cmd := exec.Command(filepath.Join(dir, "bootstrap"))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("run the bootstrap of %s: %w", key, err)
	}
	return nil
}

// bootstrapZip is a zip holding an executable bootstrap with the given content.
func bootstrapZip(t *testing.T, content string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Store}
	h.SetMode(0o755)
	f, err := zw.CreateHeader(h)
	if err == nil {
		_, err = f.Write([]byte(content))
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Error(err)
	}
	return buf.Bytes()
}
