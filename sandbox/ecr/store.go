// Package ecr is the sandbox's Amazon ECR: the control calls deploy tools make (repositories,
// DescribeImages, ListImages, BatchGetImage, BatchDeleteImage, lifecycle policies,
// GetAuthorizationToken) over awsJson1_1, and the OCI distribution API (/v2/...) that image tools
// (crane, go-containerregistry, docker, podman) push to and pull from.
//
// The rule it keeps: one store. A manifest pushed through /v2 is an image DescribeImages lists at
// once, with its tags, size and push time; an image BatchDeleteImage removes can no longer be
// pulled. Repository URIs are the sandbox's own address, HOST:PORT/REPOSITORY (AWS's are
// ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY; Lambda in the sandbox accepts both, mapping the
// latter to this registry when its account and Region are the sandbox's).
package ecr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/aviary-deploy/aviary/internal/atomicfile"
)

// Config sets up a Service.
type Config struct {
	Region  string
	Account string
	// BaseURL is the sandbox's URL; its host:port is the registry's, in repository URIs and
	// GetAuthorizationToken's proxyEndpoint.
	BaseURL string
	// DataDir keeps repositories, images and blobs across restarts; empty keeps them in memory.
	DataDir string
	Now     func() time.Time
	Logger  *slog.Logger
}

// Service is the sandbox's ECR.
type Service struct {
	cfg   Config
	host  string
	blobs *blobStore

	mu    sync.Mutex
	repos map[string]*repository

	unpackMu sync.Mutex
	rootfs   string // where unpacked images are cached, one directory per digest
	tempRoot bool
}

// repository is one ECR repository. Exported fields are what DataDir persists.
type repository struct {
	Name       string
	CreatedAt  time.Time
	Mutability string            // MUTABLE or IMMUTABLE
	Images     map[string]*image // by digest (sha256:...)
	Tags       map[string]string // tag → digest
	Lifecycle  string            // the lifecycle policy's text; "" is none
	Tagged     map[string]string `json:",omitempty"` // resource tags
}

// image is one manifest in a repository.
type image struct {
	Digest    string
	MediaType string
	Manifest  []byte
	Size      int64 // the sum of the layers' sizes, as ECR reports imageSizeInBytes
	PushedAt  time.Time
}

// New starts an ECR.
func New(cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, host: strings.TrimPrefix(strings.TrimPrefix(cfg.BaseURL, "http://"), "https://"), repos: map[string]*repository{}}
	blobDir := ""
	if cfg.DataDir != "" {
		blobDir = filepath.Join(cfg.DataDir, "ecr", "blobs")
		s.rootfs = filepath.Join(cfg.DataDir, "ecr", "rootfs")
		for _, d := range []string{blobDir, s.rootfs} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
		}
		if err := s.load(); err != nil {
			return nil, err
		}
	} else {
		dir, err := os.MkdirTemp("", "aviary-sandbox-images-")
		if err != nil {
			return nil, err
		}
		s.rootfs, s.tempRoot = dir, true
	}
	s.blobs = &blobStore{dir: blobDir, mem: map[string][]byte{}}
	return s, nil
}

// Close removes the unpacked images of an in-memory sandbox.
func (s *Service) Close() error {
	if s.tempRoot {
		return os.RemoveAll(s.rootfs)
	}
	return nil
}

// Host is the registry's host:port, as repository URIs name it.
func (s *Service) Host() string { return s.host }

func (s *Service) statePath() string { return filepath.Join(s.cfg.DataDir, "ecr", "state.json") }

func (s *Service) load() error {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, &s.repos)
}

// save persists the repositories; the caller holds s.mu.
func (s *Service) save() {
	if s.cfg.DataDir == "" {
		return
	}
	b, err := json.Marshal(s.repos)
	if err == nil {
		err = atomicfile.Write(s.statePath(), b)
	}
	if err != nil {
		s.cfg.Logger.Error("persist ecr", "err", err)
	}
}

var repoNameRE = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// tagRE is the OCI distribution spec's tag grammar.
var tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

var digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tagsOf lists an image's tags, sorted; the caller holds s.mu.
func (r *repository) tagsOf(digest string) []string {
	var tags []string
	for t, d := range r.Tags {
		if d == digest {
			tags = append(tags, t)
		}
	}
	sort.Strings(tags)
	return tags
}

// sortedImages lists a repository's images, oldest push first (digest breaks ties).
func (r *repository) sortedImages() []*image {
	out := make([]*image, 0, len(r.Images))
	for _, im := range r.Images {
		out = append(out, im)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].PushedAt.Equal(out[j].PushedAt) {
			return out[i].PushedAt.Before(out[j].PushedAt)
		}
		return out[i].Digest < out[j].Digest
	})
	return out
}

// putManifest stores a pushed manifest under its digest and, when ref is a tag, moves the tag
// to it. It answers an OCI error code when the push is refused.
func (s *Service) putManifest(repo, ref, mediaType string, body []byte) (string, *regError) {
	digest := digestOf(body)
	if strings.HasPrefix(ref, "sha256:") && ref != digest {
		return "", &regError{Status: 400, Code: "DIGEST_INVALID", Message: "the manifest's digest is " + digest + ", not " + ref}
	}
	if !strings.HasPrefix(ref, "sha256:") && !tagRE.MatchString(ref) {
		return "", &regError{Status: 400, Code: "TAG_INVALID", Message: "invalid tag " + ref}
	}
	size, rerr := s.checkReferences(repo, mediaType, body)
	if rerr != nil {
		return "", rerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repo]
	if !ok {
		return "", nameUnknown(repo, s.cfg.Account)
	}
	if !strings.HasPrefix(ref, "sha256:") {
		if old, tagged := r.Tags[ref]; tagged && old != digest && r.Mutability == "IMMUTABLE" {
			return "", &regError{Status: 400, Code: "TAG_INVALID", Message: fmt.Sprintf("The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.", ref, repo)}
		}
	}
	if _, exists := r.Images[digest]; !exists {
		r.Images[digest] = &image{Digest: digest, MediaType: mediaType, Manifest: body, Size: size, PushedAt: s.cfg.Now().UTC()}
	}
	if !strings.HasPrefix(ref, "sha256:") {
		r.Tags[ref] = digest
	}
	s.save()
	return digest, nil
}

// checkReferences checks that the blobs (or, for an index, the manifests) a manifest names were
// pushed, and returns the image's size.
func (s *Service) checkReferences(repo, mediaType string, body []byte) (int64, *regError) {
	var m struct {
		MediaType string          `json:"mediaType"`
		Config    v1.Descriptor   `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return 0, &regError{Status: 400, Code: "MANIFEST_INVALID", Message: "the manifest is not JSON: " + err.Error()}
	}
	if len(m.Manifests) > 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		var size int64
		for _, d := range m.Manifests {
			r := s.repos[repo]
			if r == nil || r.Images[d.Digest.String()] == nil {
				return 0, &regError{Status: 400, Code: "MANIFEST_BLOB_UNKNOWN", Message: "manifest " + d.Digest.String() + " is not in the repository"}
			}
			size += r.Images[d.Digest.String()].Size
		}
		return size, nil
	}
	var size int64
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if d.Digest.Hex == "" {
			return 0, &regError{Status: 400, Code: "MANIFEST_INVALID", Message: "the manifest names a blob without a digest"}
		}
		if _, err := s.blobs.Stat(context.Background(), repo, d.Digest); err != nil {
			return 0, &regError{Status: 400, Code: "MANIFEST_BLOB_UNKNOWN", Message: "blob " + d.Digest.String() + " is not in the registry"}
		}
	}
	for _, l := range m.Layers {
		size += l.Size
	}
	return size, nil
}

// lookup finds an image by digest or tag; the caller holds s.mu.
func (r *repository) lookup(ref string) *image {
	if strings.HasPrefix(ref, "sha256:") {
		return r.Images[ref]
	}
	if d, ok := r.Tags[ref]; ok {
		return r.Images[d]
	}
	return nil
}

// remove untags (ref a tag) or deletes (ref a digest) an image; an image left without tags by
// untagging is deleted, as ECR does. The caller holds s.mu.
func (r *repository) remove(ref string) bool {
	if strings.HasPrefix(ref, "sha256:") {
		if _, ok := r.Images[ref]; !ok {
			return false
		}
		for _, t := range r.tagsOf(ref) {
			delete(r.Tags, t)
		}
		delete(r.Images, ref)
		return true
	}
	d, ok := r.Tags[ref]
	if !ok {
		return false
	}
	delete(r.Tags, ref)
	if len(r.tagsOf(d)) == 0 {
		delete(r.Images, d)
	}
	return true
}

// blobStore keeps blobs by digest, shared by every repository (as ECR's layer storage is); it is
// the go-containerregistry registry's blob handler, so uploads are its protocol code.
type blobStore struct {
	dir string
	mu  sync.Mutex
	mem map[string][]byte
}

var (
	_ registry.BlobHandler       = (*blobStore)(nil)
	_ registry.BlobStatHandler   = (*blobStore)(nil)
	_ registry.BlobPutHandler    = (*blobStore)(nil)
	_ registry.BlobDeleteHandler = (*blobStore)(nil)
)

func (b *blobStore) path(h v1.Hash) string { return filepath.Join(b.dir, h.Algorithm, h.Hex) }

func (b *blobStore) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	if b.dir == "" {
		b.mu.Lock()
		defer b.mu.Unlock()
		data, ok := b.mem[h.String()]
		if !ok {
			return 0, registry.ErrNotFound
		}
		return int64(len(data)), nil
	}
	fi, err := os.Stat(b.path(h))
	if err != nil {
		return 0, registry.ErrNotFound
	}
	return fi.Size(), nil
}

func (b *blobStore) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	if b.dir == "" {
		b.mu.Lock()
		defer b.mu.Unlock()
		data, ok := b.mem[h.String()]
		if !ok {
			return nil, registry.ErrNotFound
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	f, err := os.Open(b.path(h))
	if err != nil {
		return nil, registry.ErrNotFound
	}
	return f, nil
}

func (b *blobStore) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if b.dir == "" {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.mem[h.String()] = data
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(b.path(h)), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(b.path(h), data)
}

// Delete keeps the blob: layers are shared between images and repositories, and the sandbox
// does not garbage-collect them.
func (b *blobStore) Delete(context.Context, string, v1.Hash) error { return nil }

func (b *blobStore) read(h v1.Hash) ([]byte, error) {
	rc, err := b.Get(context.Background(), "", h)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
