package ecr

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageRef is an image URI resolved against the registry.
type ImageRef struct {
	Repository string
	// Digest is the manifest's digest (sha256:...).
	Digest string
	// Resolved is the URI pinned to the digest, in the sandbox's form: HOST:PORT/REPO@sha256:....
	Resolved string
	// MediaType is the manifest's media type, as it was pushed.
	MediaType string
}

// ErrNoImage is an image URI that names no image in the registry.
var ErrNoImage = errors.New("no such image")

// ErrNotThisRegistry is an image URI that names another registry.
var ErrNotThisRegistry = errors.New("not an image in this registry")

var ecrHostRE = regexp.MustCompile(`^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)

// Resolve finds the image an ImageUri names: HOST:PORT/REPO:TAG or @DIGEST (the sandbox's form),
// or ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG or @DIGEST for the sandbox's account and
// Region. A URI without tag or digest names the tag latest.
func (s *Service) Resolve(uri string) (ImageRef, error) {
	host, rest, ok := strings.Cut(uri, "/")
	if !ok {
		return ImageRef{}, ErrNotThisRegistry
	}
	if host != s.host {
		m := ecrHostRE.FindStringSubmatch(host)
		if m == nil || m[1] != s.cfg.Account || m[2] != s.cfg.Region {
			return ImageRef{}, ErrNotThisRegistry
		}
	}
	repo, ref := rest, "latest"
	if r, d, ok := strings.Cut(rest, "@"); ok {
		repo, ref = r, d
	} else if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		repo, ref = rest[:i], rest[i+1:]
	}
	if !repoNameRE.MatchString(repo) || (strings.HasPrefix(ref, "sha256:") && !digestRE.MatchString(ref)) || (!strings.HasPrefix(ref, "sha256:") && !tagRE.MatchString(ref)) {
		return ImageRef{}, ErrNotThisRegistry
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repo]
	if r == nil {
		return ImageRef{}, ErrNoImage
	}
	im := r.lookup(ref)
	if im == nil {
		return ImageRef{}, ErrNoImage
	}
	return ImageRef{Repository: repo, Digest: im.Digest, Resolved: s.host + "/" + repo + "@" + im.Digest, MediaType: im.MediaType}, nil
}

// Image is an unpacked image: its root filesystem and what its config says to run.
type Image struct {
	Dir        string
	Entrypoint []string
	Cmd        []string
	WorkingDir string
	Env        []string
}

// Unpack returns the root filesystem of the image repo@digest, unpacking its layers on first use
// (once per digest; the directory is kept until the sandbox closes, or across restarts with a
// data directory). An index is unpacked as its linux/amd64 image, else its first.
func (s *Service) Unpack(repo, digest string) (Image, error) {
	s.mu.Lock()
	var manifest []byte
	if r := s.repos[repo]; r != nil {
		if im := r.Images[digest]; im != nil {
			manifest = im.Manifest
		}
	}
	s.mu.Unlock()
	if manifest == nil {
		return Image{}, fmt.Errorf("%s@%s: %w", repo, digest, ErrNoImage)
	}
	m, err := v1.ParseManifest(bytes.NewReader(manifest))
	if err != nil {
		return Image{}, fmt.Errorf("%s@%s: manifest: %w", repo, digest, err)
	}
	if len(m.Layers) == 0 && m.Config.Digest.Hex == "" {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(manifest))
		if err != nil || len(idx.Manifests) == 0 {
			return Image{}, fmt.Errorf("%s@%s: neither an image nor an index", repo, digest)
		}
		pick := idx.Manifests[0]
		for _, d := range idx.Manifests {
			if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
				pick = d
				break
			}
		}
		return s.Unpack(repo, pick.Digest.String())
	}
	cfgBytes, err := s.blobs.read(m.Config.Digest)
	if err != nil {
		return Image{}, err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(cfgBytes))
	if err != nil {
		return Image{}, fmt.Errorf("%s@%s: config: %w", repo, digest, err)
	}
	out := Image{Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd, WorkingDir: cf.Config.WorkingDir, Env: cf.Config.Env}
	s.unpackMu.Lock()
	defer s.unpackMu.Unlock()
	dir := filepath.Join(s.rootfs, strings.TrimPrefix(digest, "sha256:"))
	if _, err := os.Stat(dir); err == nil {
		out.Dir = dir
		return out, nil
	}
	tmp, err := os.MkdirTemp(s.rootfs, "unpack-")
	if err != nil {
		return Image{}, err
	}
	for _, l := range m.Layers {
		if err := s.extractLayer(tmp, l); err != nil {
			os.RemoveAll(tmp)
			return Image{}, fmt.Errorf("%s@%s: layer %s: %w", repo, digest, l.Digest, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return Image{}, err
	}
	out.Dir = dir
	return out, nil
}

// extractLayer applies one layer to dir: its files, and its whiteouts (.wh.NAME removes NAME,
// .wh..wh..opq empties the directory it is in). Nothing is written outside dir, nor through a
// symbolic link.
func (s *Service) extractLayer(dir string, l v1.Descriptor) error {
	blob, err := s.blobs.read(l.Digest)
	if err != nil {
		return err
	}
	var r io.Reader = bytes.NewReader(blob)
	if len(blob) > 2 && blob[0] == 0x1f && blob[1] == 0x8b {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	} else if strings.Contains(string(l.MediaType), "zstd") {
		return fmt.Errorf("zstd layers are not supported by the sandbox")
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(filepath.FromSlash(strings.TrimPrefix(h.Name, "/")))
		if name == "." {
			continue
		}
		if !filepath.IsLocal(name) {
			return fmt.Errorf("entry %q leaves the image's root", h.Name)
		}
		if err := noSymlinkParents(dir, name); err != nil {
			return err
		}
		target := filepath.Join(dir, name)
		base := filepath.Base(name)
		if base == ".wh..wh..opq" {
			entries, _ := os.ReadDir(filepath.Dir(target))
			for _, e := range entries {
				os.RemoveAll(filepath.Join(filepath.Dir(target), e.Name()))
			}
			continue
		}
		if victim, ok := strings.CutPrefix(base, ".wh."); ok {
			os.RemoveAll(filepath.Join(filepath.Dir(target), victim))
			continue
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			os.RemoveAll(target)
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if err := writeFile(target, data, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			os.RemoveAll(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			src := filepath.Clean(filepath.FromSlash(strings.TrimPrefix(h.Linkname, "/")))
			if !filepath.IsLocal(src) {
				return fmt.Errorf("hard link %q leaves the image's root", h.Linkname)
			}
			os.RemoveAll(target)
			if err := os.Link(filepath.Join(dir, src), target); err != nil {
				return err
			}
		default:
			// Devices, FIFOs: an unprivileged sandbox cannot make them and functions do not need them.
		}
	}
}

// noSymlinkParents refuses a path whose parent directories (within dir) include a symbolic
// link, which a later entry could otherwise write through.
func noSymlinkParents(dir, name string) error {
	parts := strings.Split(filepath.Dir(name), string(filepath.Separator))
	p := dir
	for _, part := range parts {
		if part == "." {
			continue
		}
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if err != nil {
			return nil // not there yet: created as a directory
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("entry %q is inside the symbolic link %s", name, part)
		}
	}
	return nil
}

// writeFile writes one file of an image. An executable is written holding syscall.ForkLock for
// reading, so that no process forked meanwhile holds it open for writing when it is started
// (ETXTBSY; see the Lambda sandbox's writeTaskFile).
func writeFile(path string, data []byte, mode os.FileMode) error {
	if mode&0o111 != 0 {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
	}
	return os.WriteFile(path, data, mode)
}
