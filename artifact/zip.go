// Package artifact packages function code and names it by content.
//
// The rule it keeps: packaging is reproducible. The same inputs give the same zip bytes — entries
// sorted by name, one fixed modification time, modes normalised to 0755 for executables and 0644
// otherwise — so the same code always has the same SHA-256, the same S3 key and the same
// CodeSha256 on Lambda, and a lost artifact can be proven identical when it is restored. And
// a deploy's memory does not grow with its zips: they are written straight into the local cache,
// hashed as they are written (Cache.Produce), and uploaded from there as files.
package artifact

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// File is one entry of a zip.
type File struct {
	Name       string // slash-separated path inside the zip
	Executable bool
	Data       []byte
	// Path, when Data is nil, is the file the entry's bytes are read from as the zip is written
	// (what Collect returns): packaging holds one buffer, never the files.
	Path string
}

// epoch is the modification time of every entry: the earliest time a zip can carry.
var epoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Zip builds a reproducible zip of files in memory: for small zips (see WriteZip).
func Zip(files []File) ([]byte, error) {
	var buf bytes.Buffer
	if err := WriteZip(&buf, files); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteZip writes a reproducible zip of files to w, streaming: an entry read from its Path is
// compressed as it is read.
func WriteZip(w io.Writer, files []File) error {
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	zw := zip.NewWriter(w)
	for i, f := range sorted {
		if f.Name == "" || strings.HasPrefix(f.Name, "/") || strings.Contains(f.Name, "\\") {
			return fmt.Errorf("zip entry name %q must be a relative slash-separated path", f.Name)
		}
		if i > 0 && sorted[i-1].Name == f.Name {
			return fmt.Errorf("zip entry %q appears twice", f.Name)
		}
		h := &zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: epoch}
		mode := fs.FileMode(0o644)
		if f.Executable {
			mode = 0o755
		}
		h.SetMode(mode)
		ew, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if err := writeEntry(ew, f); err != nil {
			return fmt.Errorf("zip entry %s: %w", f.Name, err)
		}
	}
	return zw.Close()
}

func writeEntry(w io.Writer, f File) error {
	if f.Data != nil || f.Path == "" {
		_, err := w.Write(f.Data)
		return err
	}
	in, err := os.Open(f.Path)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = io.Copy(w, in)
	return err
}

// Collect lists files for a zip from paths: a regular file becomes an entry named by its base
// name; a directory contributes everything under it, named relative to it. Executable bits are
// kept; everything else about the files (owner, times) is dropped. The entries name their files
// (File.Path); the bytes are read when the zip is written.
func Collect(paths ...string) ([]File, error) {
	var files []File
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			if !info.Mode().IsRegular() {
				return nil, fmt.Errorf("%s: only regular files can be packaged", p)
			}
			files = append(files, File{Name: filepath.Base(p), Executable: info.Mode()&0o111 != 0, Path: p})
			continue
		}
		err = filepath.WalkDir(p, func(full string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			if !d.Type().IsRegular() {
				return fmt.Errorf("%s: only regular files can be packaged", full)
			}
			rel, err := filepath.Rel(p, full)
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			files = append(files, File{Name: path.Clean(filepath.ToSlash(rel)), Executable: fi.Mode()&0o111 != 0, Path: full})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// Digest names a zip by content.
type Digest struct {
	Hex        string // SHA-256 in hex: the artifact's S3 key is PREFIX/<Hex>.zip
	CodeSha256 string // SHA-256 in base64: what Lambda reports as CodeSha256
}

// DigestOf computes a zip's digest.
func DigestOf(zip []byte) Digest {
	sum := sha256.Sum256(zip)
	return digestOfSum(sum[:])
}

func digestOfSum(sum []byte) Digest {
	return Digest{Hex: hex.EncodeToString(sum), CodeSha256: base64.StdEncoding.EncodeToString(sum)}
}

// DigestOfFile computes the digest of the zip at path, streaming it.
func DigestOfFile(path string) (Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digest{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Digest{}, fmt.Errorf("read %s: %w", path, err)
	}
	return digestOfSum(h.Sum(nil)), nil
}

// Key is where an artifact lives in the bucket: PREFIX/<sha256>.zip.
func Key(prefix string, d Digest) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return d.Hex + ".zip"
	}
	return prefix + "/" + d.Hex + ".zip"
}

// WriteFile writes a reproducible zip of files to path, streaming, and returns its digest and
// size. The zip is written under a temporary name beside path and renamed once complete: a
// failure leaves path as it was.
func WriteFile(path string, files []File) (Digest, int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return Digest{}, 0, err
	}
	h := sha256.New()
	n := &counter{w: io.MultiWriter(tmp, h)}
	err = WriteZip(n, files)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return Digest{}, 0, err
	}
	return digestOfSum(h.Sum(nil)), n.n, nil
}
