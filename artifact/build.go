package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Source is how a function's zip is produced: exactly one of Zip (a built zip, used as it is),
// Dir (a directory, packaged) or Command (run with sh -c in CommandDir; it writes the files to
// package into $AVIARY_OUT).
type Source struct {
	Function   string
	Zip        string
	Dir        string
	Command    string
	CommandDir string
}

// Produce makes a source's zip.
func Produce(ctx context.Context, s Source) ([]byte, error) {
	switch {
	case s.Zip != "":
		b, err := os.ReadFile(s.Zip)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Function, err)
		}
		return b, nil
	case s.Dir != "":
		return packageDir(s.Function, s.Dir)
	case s.Command != "":
		out, err := os.MkdirTemp("", "aviary-build-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(out)
		cmd := exec.CommandContext(ctx, "sh", "-c", s.Command)
		cmd.Dir = s.CommandDir
		cmd.Env = append(os.Environ(), "AVIARY_OUT="+out, "AVIARY_FUNCTION="+s.Function)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s: build command failed (%v): %s\n%s", s.Function, err, s.Command, strings.TrimSpace(log.String()))
		}
		zip, err := packageDir(s.Function, out)
		if err != nil {
			return nil, fmt.Errorf("%s: the build command wrote nothing usable into $AVIARY_OUT: %w", s.Function, err)
		}
		return zip, nil
	}
	return nil, fmt.Errorf("%s: no zip, dir or build command", s.Function)
}

func packageDir(fn, dir string) ([]byte, error) {
	files, err := Collect(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: %s holds no files", fn, dir)
	}
	return Zip(files)
}

// Cache keeps a local copy of every artifact, by content, so that a lost S3 key can be restored.
type Cache struct {
	Dir string
}

// Put stores a zip (if not already there) and returns its digest.
func (c Cache) Put(zip []byte) (Digest, error) {
	d := DigestOf(zip)
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return d, fmt.Errorf("artifact cache: %w", err)
	}
	p := filepath.Join(c.Dir, d.Hex+".zip")
	if _, err := os.Stat(p); err == nil {
		return d, nil
	}
	tmp, err := os.CreateTemp(c.Dir, d.Hex+".tmp-")
	if err != nil {
		return d, fmt.Errorf("artifact cache: %w", err)
	}
	if _, err := tmp.Write(zip); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return d, err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return d, err
	}
	return d, os.Rename(tmp.Name(), p)
}

// Read returns the cached artifact named by key (PREFIX/<sha256>.zip or <sha256>.zip), after
// checking that its bytes still hash to that name.
func (c Cache) Read(key string) ([]byte, error) {
	name := path.Base(key)
	want := strings.TrimSuffix(name, ".zip")
	b, err := os.ReadFile(filepath.Join(c.Dir, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not in the artifact cache %s", name, c.Dir)
		}
		return nil, err
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != want {
		return nil, fmt.Errorf("%s in the artifact cache %s is corrupt (its SHA-256 differs)", name, c.Dir)
	}
	return b, nil
}
