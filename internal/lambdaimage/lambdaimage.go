// Package lambdaimage builds Lambda container images from function zips with
// go-containerregistry, with no Docker: the layout AWS's provided base images use, so that the
// image runs unchanged on Lambda and in the sandbox. Tests and the demo build images with it.
//
// The rule it keeps: the image is what a Dockerfile on public.ecr.aws/lambda/provided:al2023
// would make — ENTRYPOINT /lambda-entrypoint.sh, WORKDIR /var/task, the bootstrap in
// /var/runtime (LAMBDA_RUNTIME_DIR) and the zip's other files in /var/task — or, with Bare, an
// image whose entrypoint is the bootstrap itself.
package lambdaimage

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Options shape an image.
type Options struct {
	// Bare makes ENTRYPOINT the bootstrap itself (/var/task/bootstrap), with no
	// /lambda-entrypoint.sh.
	Bare bool
	// Label is set as the image's label aviary.label, so that two builds of the same zip can
	// differ in digest.
	Label string
}

// entrypoint is what AWS's base images run: the runtime interface emulator outside Lambda, the
// bootstrap in Lambda.
const entrypoint = `#!/bin/sh
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  exec /usr/local/bin/aws-lambda-rie "${LAMBDA_RUNTIME_DIR:-/var/runtime}/bootstrap" "$@"
fi
export _HANDLER="$1"
exec "${LAMBDA_RUNTIME_DIR:-/var/runtime}/bootstrap"
`

// FromZip builds an image from a function zip whose bootstrap is at its root.
func FromZip(zipBytes []byte, o Options) (v1.Image, error) {
	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		return nil, fmt.Errorf("read the zip: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	mkdir := func(d string) error {
		for _, p := range parents(d) {
			if dirs[p] {
				continue
			}
			dirs[p] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755, ModTime: epoch}); err != nil {
				return err
			}
		}
		return nil
	}
	file := func(name string, mode int64, data []byte) error {
		if err := mkdir(path.Dir(name)); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if !o.Bare {
		if err := file("lambda-entrypoint.sh", 0o755, []byte(entrypoint)); err != nil {
			return nil, err
		}
	}
	found := false
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		dest := "var/task/" + f.Name
		mode := int64(0o644)
		if f.Mode()&0o111 != 0 || f.Name == "bootstrap" {
			mode = 0o755
		}
		if f.Name == "bootstrap" {
			found = true
			if !o.Bare {
				dest = "var/runtime/bootstrap"
			}
		}
		if err := file(dest, mode, data); err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, fmt.Errorf("the zip has no bootstrap at its root")
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.WorkingDir = "/var/task"
	cf.Config.Env = []string{"LAMBDA_TASK_ROOT=/var/task", "LAMBDA_RUNTIME_DIR=/var/runtime"}
	if o.Bare {
		cf.Config.Entrypoint = []string{"/var/task/bootstrap"}
	} else {
		cf.Config.Entrypoint = []string{"/lambda-entrypoint.sh"}
		cf.Config.Cmd = []string{"function.handler"}
	}
	if o.Label != "" {
		cf.Config.Labels = map[string]string{"aviary.label": o.Label}
	}
	return mutate.ConfigFile(img, cf)
}

func parents(d string) []string {
	if d == "." || d == "/" || d == "" {
		return nil
	}
	return append(parents(path.Dir(d)), d)
}

// Push pushes img to ref (HOST/REPO:TAG) over plain HTTP or HTTPS as the host answers, with
// basic credentials user:password (ECR's are AWS and GetAuthorizationToken's password), and
// returns its digest.
func Push(ctx context.Context, img v1.Image, ref, user, password string) (v1.Hash, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return v1.Hash{}, err
	}
	auth := authn.Anonymous
	if user != "" {
		auth = &authn.Basic{Username: user, Password: password}
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuth(auth)); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return img.Digest()
}

// Index wraps img in a multi-platform image index naming it linux/amd64, as docker buildx pushes
// an image by default (there with a provenance attestation beside it). Lambda refuses such an
// index: a test's way to make one.
func Index(img v1.Image) v1.ImageIndex {
	return mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
}

// PushIndex is Push for an image index.
func PushIndex(ctx context.Context, idx v1.ImageIndex, ref, user, password string) (v1.Hash, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return v1.Hash{}, err
	}
	auth := authn.Anonymous
	if user != "" {
		auth = &authn.Basic{Username: user, Password: password}
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx), remote.WithAuth(auth)); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return idx.Digest()
}
