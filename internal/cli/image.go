package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/manifest"
)

// resolveImages pins every image function's image to the digest its tag names now, in parallel,
// through ECR's API. An image that does not exist is bad input, reported for every function at
// once, naming its field, before anything changes.
func resolveImages(ctx context.Context, fleet *lambdafleet.Fleet, bs []built) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		missing  []string
		failures []error
	)
	for i := range bs {
		if bs[i].fn.Image == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := &bs[i]
			r, err := fleet.ResolveImage(ctx, *b.fn.Image)
			mu.Lock()
			defer mu.Unlock()
			var nf *lambdafleet.ImageNotFoundError
			switch {
			case errors.As(err, &nf):
				missing = append(missing, fmt.Sprintf("functions.%s.image: %v", b.fn.Name, nf))
			case err != nil:
				failures = append(failures, fmt.Errorf("functions.%s.image: %w", b.fn.Name, err))
			default:
				b.image = r
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		return errors.Join(failures...)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return usageError{fmt.Errorf("nothing was changed: %s", strings.Join(missing, "; "))}
	}
	return nil
}

// imageRepository names an image's repository for iam-policy: ACCOUNT/NAME when the image names
// an ECR registry, else NAME (the policy's account).
func imageRepository(img *manifest.Image) string {
	if m := ecrRegistryRE.FindStringSubmatch(img.Registry); m != nil {
		return m[1] + "/" + img.Repository
	}
	return img.Repository
}

// printImages says, under the plan's table, which digest each image function's tag names now:
// what the release ships.
func printImages(w io.Writer, p *prepared) {
	for _, b := range p.built {
		if b.fn.Image != nil && b.image.URI != "" {
			fmt.Fprintf(w, "  %s: image %s is %s\n", safe(b.fn.Name), safe(b.fn.Image.Raw), safe(b.image.URI))
		}
	}
}

// shippingRights is what publishing an environment's image and configured functions needs of
// IAM beyond zip code: the images' repositories and the managed configuration (nil: none). The
// controller's role needs them as CI's does (controller install builds it from its own Input).
func shippingRights(m *manifest.Manifest, env *manifest.Environment) ([]string, *iampolicy.Configuration) {
	var repos []string
	for _, fn := range m.Functions {
		if fn.Image != nil {
			repos = append(repos, imageRepository(fn.Image))
		}
	}
	return repos, configurationPolicy(m, env)
}
