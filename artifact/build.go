package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
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

// Produce writes a source's zip to w, streaming: a built zip is copied, a directory (or what a
// build command wrote) is compressed file by file, so no zip is ever held in memory.
func Produce(ctx context.Context, s Source, w io.Writer) error {
	switch {
	case s.Zip != "":
		f, err := os.Open(s.Zip)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Function, err)
		}
		defer f.Close()
		if _, err := io.Copy(w, f); err != nil {
			return fmt.Errorf("%s: read %s: %w", s.Function, s.Zip, err)
		}
		return nil
	case s.Dir != "":
		return packageDir(s.Function, s.Dir, w)
	case s.Command != "":
		out, err := os.MkdirTemp("", "aviary-build-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(out)
		cmd := exec.CommandContext(ctx, "sh", "-c", s.Command)
		cmd.Dir = s.CommandDir
		cmd.Env = append(os.Environ(), "AVIARY_OUT="+out, "AVIARY_FUNCTION="+s.Function)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: build command failed (%v): %s\n%s", s.Function, err, s.Command, strings.TrimSpace(log.String()))
		}
		if err := packageDir(s.Function, out, w); err != nil {
			return fmt.Errorf("%s: the build command wrote nothing usable into $AVIARY_OUT: %w", s.Function, err)
		}
		return nil
	}
	return fmt.Errorf("%s: no zip, dir or build command", s.Function)
}

func packageDir(fn, dir string, w io.Writer) error {
	files, err := Collect(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("%s: %s holds no files", fn, dir)
	}
	if err := WriteZip(w, files); err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	return nil
}

// Hash produces a source's zip only to name it: its digest and size, nothing kept (what a plan
// needs).
func Hash(ctx context.Context, s Source) (Digest, int64, error) {
	if s.Zip != "" {
		return hashFile(s.Zip, s.Function)
	}
	h := sha256.New()
	n := &counter{ctx: ctx, w: h}
	if err := Produce(ctx, s, n); err != nil {
		return Digest{}, 0, err
	}
	return digestOfSum(h.Sum(nil)), n.n, nil
}

func hashFile(p, fn string) (Digest, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return Digest{}, 0, fmt.Errorf("%s: %w", fn, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Digest{}, 0, fmt.Errorf("%s: read %s: %w", fn, p, err)
	}
	return digestOfSum(h.Sum(nil)), n, nil
}

// counter counts what goes through it to w, until ctx (if any) ends.
type counter struct {
	ctx context.Context
	w   io.Writer
	n   int64
}

func (c *counter) Write(p []byte) (int, error) {
	if c.ctx != nil && c.ctx.Err() != nil {
		return 0, c.ctx.Err()
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Cache keeps a local copy of every artifact, by content, so that a lost S3 key can be restored.
// Every file in it is named <sha256>.zip by the hash of its bytes: a zip is written under a
// temporary name (.partial-*) and renamed to its digest's only once complete, so a build killed
// half-way leaves no half zip under a real name.
type Cache struct {
	Dir string
}

// Path is where the cache keeps the zip of digest d.
func (c Cache) Path(d Digest) string { return filepath.Join(c.Dir, d.Hex+".zip") }

// Produce makes a source's zip straight into the cache, hashing it as it is written, and returns
// its digest and size. A built zip (Source.Zip) already in the cache is only read, to hash it.
// Functions whose zips are the same bytes share one file.
func (c Cache) Produce(ctx context.Context, s Source) (Digest, int64, error) {
	if s.Zip != "" {
		d, n, err := hashFile(s.Zip, s.Function)
		if err != nil {
			return d, n, err
		}
		if _, err := os.Stat(c.Path(d)); err == nil {
			return d, n, nil
		}
		got, n, err := c.write(ctx, func(w io.Writer) error { return Produce(ctx, s, w) })
		if err == nil && got != d {
			return got, n, fmt.Errorf("%s: %s changed while it was read: build it again", s.Function, s.Zip)
		}
		return got, n, err
	}
	return c.write(ctx, func(w io.Writer) error { return Produce(ctx, s, w) })
}

// Put stores a zip (if not already there) and returns its digest.
func (c Cache) Put(zip []byte) (Digest, error) {
	d := DigestOf(zip)
	if _, err := os.Stat(c.Path(d)); err == nil {
		return d, nil
	}
	_, _, err := c.write(context.Background(), func(w io.Writer) error {
		_, err := w.Write(zip)
		return err
	})
	return d, err
}

// write stores what produce writes under its digest, through a temporary file. Once ctx ends
// the writes fail: an interrupted deploy stops packaging at once.
func (c Cache) write(ctx context.Context, produce func(io.Writer) error) (Digest, int64, error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return Digest{}, 0, fmt.Errorf("artifact cache: %w", err)
	}
	tmp, err := os.CreateTemp(c.Dir, ".partial-*")
	if err != nil {
		return Digest{}, 0, fmt.Errorf("artifact cache: %w", err)
	}
	h := sha256.New()
	n := &counter{ctx: ctx, w: io.MultiWriter(tmp, h)}
	err = produce(n)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("artifact cache: %w", cerr)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return Digest{}, 0, err
	}
	d := digestOfSum(h.Sum(nil))
	// Another build of the same bytes may have renamed its copy meanwhile: replacing it with
	// identical bytes is harmless, and the rename is atomic.
	if err := os.Rename(tmp.Name(), c.Path(d)); err != nil {
		os.Remove(tmp.Name())
		return d, n.n, fmt.Errorf("artifact cache: %w", err)
	}
	return d, n.n, nil
}

// Open opens the cached artifact named by key (PREFIX/<sha256>.zip or <sha256>.zip), for the
// caller to stream; the caller checks its bytes against the name as it reads them.
func (c Cache) Open(key string) (*os.File, error) {
	name := path.Base(key)
	f, err := os.Open(filepath.Join(c.Dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is not in the artifact cache %s", name, c.Dir)
	}
	return f, err
}

// Read returns the cached artifact named by key (PREFIX/<sha256>.zip or <sha256>.zip), after
// checking that its bytes still hash to that name.
func (c Cache) Read(key string) ([]byte, error) {
	f, err := c.Open(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	name := path.Base(key)
	if DigestOf(b).Hex != strings.TrimSuffix(name, ".zip") {
		return nil, fmt.Errorf("%s in the artifact cache %s is corrupt (its SHA-256 differs)", name, c.Dir)
	}
	return b, nil
}
