package artifact_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aviary-deploy/aviary/artifact"
)

func TestCacheProduceNamesTheFileByItsHash(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "bootstrap"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.WriteFile(filepath.Join(src, "data.bin"), bytes.Repeat([]byte("0123456789abcdef"), 1<<16), 0o644)
	cache := artifact.Cache{Dir: t.TempDir()}
	ctx := context.Background()

	d, size, err := cache.Produce(ctx, artifact.Source{Function: "api", Dir: src})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cache.Path(d))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got, want := d.Hex, hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("digest %s, want the file's sha256 %s", got, want)
	}
	if got, want := size, int64(len(b)); got != want {
		t.Errorf("size %d, want %d", got, want)
	}
	// The streamed zip is the zip built in memory, byte for byte: the digest a release records
	// does not change.
	files, _ := artifact.Collect(src)
	inMemory, err := artifact.Zip(files)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(inMemory, b) {
		t.Error("the cached zip differs from the one artifact.Zip builds")
	}
	written := filepath.Join(t.TempDir(), "api.zip")
	if wd, n, err := artifact.WriteFile(written, files); err != nil || wd != d || n != size {
		t.Errorf("WriteFile = %v, %d, %v; want %v, %d", wd, n, err, d, size)
	}
	entries(t, filepath.Dir(written), "api.zip")
	if h, n, err := artifact.Hash(ctx, artifact.Source{Function: "api", Dir: src}); err != nil || h != d || n != size {
		t.Errorf("Hash = %v, %d, %v; want %v, %d", h, n, err, d, size)
	}

	// A prebuilt zip is only hashed when the cache holds it already, and read from there.
	prebuilt := filepath.Join(t.TempDir(), "api.zip")
	os.WriteFile(prebuilt, b, 0o644)
	if got, _, err := cache.Produce(ctx, artifact.Source{Function: "api", Zip: prebuilt}); err != nil || got != d {
		t.Errorf("Produce(zip) = %v, %v; want %v", got, err, d)
	}
	other := artifact.Cache{Dir: t.TempDir()}
	if got, _, err := other.Produce(ctx, artifact.Source{Function: "api", Zip: prebuilt}); err != nil || got != d {
		t.Errorf("Produce(zip) into an empty cache = %v, %v; want %v", got, err, d)
	}
	if read, err := other.Read(artifact.Key("releases", d)); err != nil || !bytes.Equal(read, b) {
		t.Errorf("Read after Produce(zip): %v", err)
	}
	entries(t, cache.Dir, d.Hex+".zip")
	entries(t, other.Dir, d.Hex+".zip")
}

func TestCacheProduceLeavesNothingAfterAFailedBuild(t *testing.T) {
	cache := artifact.Cache{Dir: t.TempDir()}
	ctx := context.Background()
	// The command writes a file, then fails: its output is never packaged.
	_, _, err := cache.Produce(ctx, artifact.Source{Function: "api", Command: `echo partial > "$AVIARY_OUT/bootstrap"; exit 3`, CommandDir: t.TempDir()})
	if err == nil {
		t.Fatal("a failing build command produced a zip")
	}
	// Interrupted while it writes (the signal came as the zip was written): the partial file goes.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "bootstrap"), bytes.Repeat([]byte("a"), 1<<20), 0o755)
	prebuilt := filepath.Join(t.TempDir(), "api.zip")
	os.WriteFile(prebuilt, []byte("PK not really"), 0o644)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, s := range []artifact.Source{{Function: "api", Dir: src}, {Function: "api", Zip: prebuilt}} {
		if _, _, err := cache.Produce(cancelled, s); !errors.Is(err, context.Canceled) {
			t.Errorf("Produce(%+v) on a cancelled context: %v, want context.Canceled", s, err)
		}
	}
	// A file removed between the listing and the write fails the zip after its first entry.
	files, err := artifact.Collect(src)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "z.txt"), nil, 0o644)
	files, _ = artifact.Collect(src)
	os.Remove(filepath.Join(src, "z.txt"))
	if err := artifact.WriteZip(io.Discard, files); err == nil {
		t.Error("WriteZip of a removed file succeeded")
	}
	if _, _, err := cache.Produce(ctx, artifact.Source{Function: "api", Zip: filepath.Join(src, "missing.zip")}); err == nil {
		t.Error("a missing zip was produced")
	}
	entries(t, cache.Dir)
}

// entries checks that dir holds exactly the names given (no temporary files left over).
func entries(t *testing.T, dir string, want ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var got []string
	for _, de := range des {
		got = append(got, de.Name())
	}
	if len(got) != len(want) {
		t.Fatalf("%s holds %v, want %v", dir, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s holds %v, want %v", dir, got, want)
		}
	}
}
