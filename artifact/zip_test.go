package artifact_test

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/artifact"
)

func TestZipIsReproducible(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o700)
	os.MkdirAll(filepath.Join(dir, "lib"), 0o755)
	os.WriteFile(filepath.Join(dir, "lib", "data.json"), []byte(`{}`), 0o600)
	first, err := artifact.Collect(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := artifact.Zip(first)
	if err != nil {
		t.Fatal(err)
	}
	// Different times and modes that do not matter, files collected in another order.
	later := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, "bootstrap"), later, later)
	os.Chmod(filepath.Join(dir, "lib", "data.json"), 0o644)
	second, _ := artifact.Collect(dir)
	second[0], second[1] = second[1], second[0]
	b, _ := artifact.Zip(second)
	if !bytes.Equal(a, b) {
		t.Fatal("the same files gave different zips")
	}
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{}
	for _, f := range zr.File {
		modes[f.Name] = f.Mode().Perm()
	}
	if modes["bootstrap"] != 0o755 || modes["lib/data.json"] != 0o644 {
		t.Errorf("modes: %v, want bootstrap 0755 and data 0644", modes)
	}
	d := artifact.DigestOf(a)
	if got, want := artifact.Key("/builds/", d), "builds/"+d.Hex+".zip"; got != want {
		t.Errorf("Key = %s, want %s", got, want)
	}
	if _, err := artifact.Zip([]artifact.File{{Name: "a"}, {Name: "a"}}); err == nil {
		t.Error("a duplicate entry was accepted")
	}
}
