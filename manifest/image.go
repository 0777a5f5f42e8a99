package manifest

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Image is a function's `image:`, a container image in ECR instead of a zip: [REGISTRY/]REPOSITORY
// then :TAG or @sha256:DIGEST (no suffix: :latest). A plan resolves a tag to the digest it names
// then and ships exactly that digest.
type Image struct {
	Raw string
	// Registry is the host written before the repository (ACCOUNT.dkr.ecr.REGION.amazonaws.com,
	// or the sandbox's HOST:PORT); empty: the environment's account's registry.
	Registry   string
	Repository string
	Tag        string
	Digest     string // sha256:<hex>; when set, Tag is empty
}

// Ref is the tag or the digest, as ECR's imageIds name it.
func (i Image) Ref() string {
	if i.Digest != "" {
		return "@" + i.Digest
	}
	return ":" + i.Tag
}

var (
	imageRepoRE   = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	imageTagRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	imageDigestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// ParseImage reads an image reference as a manifest's `image:` writes it.
func ParseImage(s string) (Image, error) {
	img := Image{Raw: s}
	rest := s
	if first, after, ok := strings.Cut(s, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		img.Registry, rest = first, after
	}
	switch repo, digest, ok := strings.Cut(rest, "@"); {
	case ok:
		if !imageDigestRE.MatchString(digest) {
			return img, fmt.Errorf("%q: the digest must be sha256: and 64 lowercase hex digits", digest)
		}
		img.Repository, img.Digest = repo, digest
	default:
		img.Repository, img.Tag = rest, "latest"
		if i := strings.LastIndex(rest, ":"); i >= 0 {
			img.Repository, img.Tag = rest[:i], rest[i+1:]
			if !imageTagRE.MatchString(img.Tag) {
				return img, fmt.Errorf("%q is not a valid tag (letters, digits, _ . -, at most 128)", img.Tag)
			}
		}
	}
	if len(img.Repository) < 2 || len(img.Repository) > 256 || !imageRepoRE.MatchString(img.Repository) {
		return img, fmt.Errorf("%q is not an ECR repository name (lowercase letters, digits, . _ - and / between parts)", img.Repository)
	}
	return img, nil
}

// image reads a function's `image:`; it reports whether the function names one.
func (p *parser) image(n *yaml.Node, field string, fn *Function) bool {
	s, ok := p.str(n, field)
	if !ok {
		return n != nil
	}
	img, err := ParseImage(s)
	if err != nil {
		p.problem(n, field, "%v: write REPOSITORY:TAG or REPOSITORY@sha256:DIGEST (an ECR repository, optionally after its registry host)", err)
	}
	fn.Image = &img
	return true
}
