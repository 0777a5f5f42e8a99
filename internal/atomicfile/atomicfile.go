// Package atomicfile writes a file whole or not at all: to a temporary file beside it, then
// renamed over it, so that a crash leaves the old file or the new one, never half of one.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes b to path, making its directory if needed.
func Write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
