package lambda

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr", "bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "var", "task"), 0o755)
	os.WriteFile(filepath.Join(root, "usr", "bin", "app"), []byte("x"), 0o755)
	os.Symlink("/usr/bin/app", filepath.Join(root, "var", "task", "bootstrap")) // absolute: the image's root
	os.Symlink("../var/task", filepath.Join(root, "var", "rt"))
	os.Symlink("/../../../../etc", filepath.Join(root, "escape"))
	for in, want := range map[string]string{
		"/var/task/bootstrap": filepath.Join(root, "usr", "bin", "app"),
		"/var/rt/bootstrap":   filepath.Join(root, "usr", "bin", "app"),
		"/escape/passwd":      filepath.Join(root, "etc", "passwd"),
		"/nope/x":             filepath.Join(root, "nope", "x"),
	} {
		if got := resolveIn(root, in); got != want {
			t.Errorf("resolveIn(%s) = %s, want %s", in, got, want)
		}
	}
}
