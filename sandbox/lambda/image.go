package lambda

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Container-image functions (PackageType Image). Their code is an image in the sandbox's ECR,
// named by Code.ImageUri and pinned, when the function is created or updated, to the digest its
// tag named then (ResolvedImageUri), as Lambda does: moving the tag later changes nothing until
// the next UpdateFunctionCode. CodeSha256 is the manifest digest's hex. Invoke runs the image's
// entrypoint and command from its unpacked layers, with no container engine: a Go binary on a
// provided base image (or on an empty one) runs as it would in Lambda.

// ImageSource is the registry image functions come from (the sandbox's ECR).
type ImageSource interface {
	// ResolveImage finds the image an ImageUri names: the URI pinned to its digest
	// (HOST:PORT/REPO@sha256:...), the digest and the manifest's media type. ok is false when no
	// such image exists or the URI names another registry.
	ResolveImage(uri string) (resolved, digest, mediaType string, ok bool)
	// UnpackImage returns the root filesystem of a resolved image and what its config runs.
	UnpackImage(resolved string) (ImageRoot, error)
}

// ImageRoot is an unpacked image.
type ImageRoot struct {
	Dir        string
	Entrypoint []string
	Cmd        []string
	WorkingDir string
	Env        []string
}

// imageConfig is the ImageConfig shape: overrides of the image's own config.
type imageConfig struct {
	EntryPoint       []string `json:"EntryPoint,omitempty"`
	Command          []string `json:"Command,omitempty"`
	WorkingDirectory string   `json:"WorkingDirectory,omitempty"`
}

type imageConfigResponse struct {
	ImageConfig imageConfig `json:"ImageConfig"`
}

const (
	packageZip   = "Zip"
	packageImage = "Image"
	imageKey     = "image:" // RunKey prefix of an image function's code
)

// resolveImage checks an ImageUri and pins it to its digest.
func (s *Service) resolveImage(uri string) (resolved, codeSha256 string, err *APIError) {
	if s.cfg.Images == nil {
		return "", "", invalidParam("Source image %s does not exist. Provide a valid source image.", uri)
	}
	resolved, digest, mediaType, ok := s.cfg.Images.ResolveImage(uri)
	if !ok {
		return "", "", invalidParam("Source image %s does not exist. Provide a valid source image.", uri)
	}
	if indexMediaTypes[mediaType] {
		// Lambda runs single-platform images only: a multi-platform index (what docker buildx
		// pushes by default, with its provenance attestation) is refused, not resolved to one of
		// its images.
		return "", "", invalidParam("The image manifest, config or layer media type for the source image %s is not supported.", uri)
	}
	return resolved, strings.TrimPrefix(digest, "sha256:"), nil
}

// indexMediaTypes are the media types of multi-platform image indexes.
var indexMediaTypes = map[string]bool{
	"application/vnd.oci.image.index.v1+json":                   true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
}

func checkImageConfig(c *imageConfig) *APIError {
	if c == nil {
		return nil
	}
	if len(c.EntryPoint) > 1500 || len(c.Command) > 1500 {
		return validation("imageConfig", fmt.Sprint(c), "Member must have length less than or equal to 1500")
	}
	if len(c.WorkingDirectory) > 1000 {
		return validation("imageConfig.workingDirectory", c.WorkingDirectory, "Member must have length less than or equal to 1000")
	}
	return nil
}

func cloneImageConfig(c *imageConfig) *imageConfig {
	if c == nil {
		return nil
	}
	return &imageConfig{EntryPoint: slices.Clone(c.EntryPoint), Command: slices.Clone(c.Command), WorkingDirectory: c.WorkingDirectory}
}

// imagePathEnv are variables an image's config may set whose values are paths in the image; the
// sandbox sets its own, naming the unpacked image's directories.
var imagePathEnv = map[string]bool{"PATH": true, "LD_LIBRARY_PATH": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true}

// imageRun is how an execution environment of an image function starts.
type imageRun struct {
	program  string
	args     []string
	dir      string // the working directory
	taskRoot string
	handler  string
	env      []string
}

// startImage unpacks an image function's image (once per digest) and says what to run: the
// entrypoint and command (ImageConfig's overrides first), with absolute paths inside the image's
// root. AWS base images' /lambda-entrypoint.sh runs $LAMBDA_RUNTIME_DIR/bootstrap with the
// command as the handler; it is emulated so that the image needs no shell.
func (s *Service) startImage(spec envSpec) (imageRun, error) {
	if s.cfg.Images == nil {
		return imageRun{}, fmt.Errorf("the sandbox has no image registry")
	}
	root, err := s.cfg.Images.UnpackImage(strings.TrimPrefix(spec.CodeKey, imageKey))
	if err != nil {
		return imageRun{}, err
	}
	ep, cmd, wd := root.Entrypoint, root.Cmd, root.WorkingDir
	if c := spec.ImageConfig; c != nil {
		if len(c.EntryPoint) > 0 {
			ep = c.EntryPoint
		}
		if len(c.Command) > 0 {
			cmd = c.Command
		}
		if c.WorkingDirectory != "" {
			wd = c.WorkingDirectory
		}
	}
	in := func(p string) string { return resolveIn(root.Dir, p) }
	run := imageRun{taskRoot: in("/var/task"), env: root.Env}
	if len(cmd) > 0 {
		run.handler = cmd[0]
	}
	argv := append(slices.Clone(ep), cmd...)
	if len(ep) > 0 && ep[0] == "/lambda-entrypoint.sh" {
		argv = append([]string{"/var/runtime/bootstrap"}, cmd...)
	}
	if len(argv) == 0 {
		return imageRun{}, fmt.Errorf("the image has neither an entrypoint nor a command (set ImageConfig)")
	}
	switch prog := argv[0]; {
	case strings.HasPrefix(prog, "/"):
		run.program = in(prog)
	default:
		for _, d := range []string{"/usr/local/bin", "/usr/bin", "/bin", "/var/task", "/var/runtime"} {
			if fi, err := os.Stat(in(d + "/" + prog)); err == nil && !fi.IsDir() {
				run.program = in(d + "/" + prog)
				break
			}
		}
		if wd != "" && run.program == "" {
			run.program = in(wd + "/" + prog)
		}
	}
	if _, err := os.Stat(run.program); run.program == "" || err != nil {
		return imageRun{}, fmt.Errorf("exec: %q: no such file in the image", argv[0])
	}
	run.args = argv[1:]
	run.dir = run.taskRoot
	if wd != "" {
		run.dir = in(wd)
	}
	// A container engine creates the working directory when the image lacks it (WORKDIR
	// /var/task on a base without it); so does the sandbox.
	if err := os.MkdirAll(run.dir, 0o755); err != nil {
		return imageRun{}, err
	}
	return run, nil
}

// createImageFunction creates a PackageType Image function: Code.ImageUri only, no runtime or
// handler, the image resolved to its digest now.
func (s *Service) createImageFunction(name string, in createFunctionInput) (functionConfiguration, *APIError) {
	c := in.Code
	switch {
	case c == nil || c.ImageURI == nil:
		return functionConfiguration{}, invalidParam("Please provide ImageUri when creating a function with packageType Image.")
	case len(c.ZipFile) > 0 || c.S3Bucket != nil || c.S3Key != nil:
		return functionConfiguration{}, invalidParam("Please don't provide ZipFile or S3 code when creating a function with packageType Image.")
	case in.Runtime != "" || in.Handler != "" || in.Layers != nil:
		return functionConfiguration{}, invalidParam("Please don't provide Handler or Runtime or Layer when the intended function PackageType is Image.")
	}
	if in.Role == "" || !strings.HasPrefix(in.Role, "arn:") || !strings.Contains(in.Role, ":role/") {
		return functionConfiguration{}, validation("role", in.Role, `Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`)
	}
	if err := checkImageConfig(in.ImageConfig); err != nil {
		return functionConfiguration{}, err
	}
	v := &version{
		Version: latest, Role: in.Role,
		Timeout: 3, MemorySize: 128, Tracing: "PassThrough", Architectures: []string{"x86_64"},
		Ephemeral: 512, PackageType: packageImage, ImageConfig: cloneImageConfig(in.ImageConfig),
		Logging: loggingConfig{LogFormat: "Text", LogGroup: "/aws/lambda/" + name},
	}
	if aerr := applyConfig(v, configChange{
		Description: in.Description, Timeout: in.Timeout, MemorySize: in.MemorySize, Environment: in.Environment,
		TracingConfig: in.TracingConfig, EphemeralStorage: in.EphemeralStorage, LoggingConfig: in.LoggingConfig,
	}); aerr != nil {
		return functionConfiguration{}, aerr
	}
	if err := checkArchitectures(in.Architectures); err != nil {
		return functionConfiguration{}, err
	}
	if len(in.Architectures) > 0 {
		v.Architectures = slices.Clone(in.Architectures)
	}
	resolved, sha, aerr := s.resolveImage(*c.ImageURI)
	if aerr != nil {
		return functionConfiguration{}, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	if _, exists := s.fns[name]; exists {
		return functionConfiguration{}, conflict("Function already exist: %s", name)
	}
	v.ImageURI, v.ResolvedImageURI, v.CodeSha256 = *c.ImageURI, resolved, sha
	v.CodeKey = imageKey + resolved
	v.LastModified, v.RevisionID = now, newRevisionID()
	v.RunKey, v.Generation = v.CodeKey, 1
	v.State, v.StateReason, v.StateReasonCode = statePending, "The function is being created.", "Creating"
	v.ReadyAt = now.Add(s.cfg.UpdateDelay)
	v.PendingRevisionNew = true
	f := &function{Name: name, Latest: v, Versions: map[string]*version{}, Aliases: map[string]*alias{}, Tags: maps.Clone(in.Tags)}
	s.fns[name] = f
	f.settle(now)
	out := s.configuration(f, v, "")
	if in.Publish {
		pv := s.publish(f, nil, now)
		out = s.configuration(f, pv, pv.Version)
	}
	s.save()
	return out, nil
}

// updateImageCode is UpdateFunctionCode of an image function: ImageUri only, resolved now.
func (s *Service) updateImageCode(raw string, in updateFunctionCodeInput) (functionConfiguration, *APIError) {
	switch {
	case in.ImageURI == nil:
		return functionConfiguration{}, invalidParam("Please provide ImageUri when updating a function with packageType Image.")
	case len(in.ZipFile) > 0 || in.S3Bucket != nil || in.S3Key != nil:
		return functionConfiguration{}, invalidParam("Please don't provide ZipFile or S3 code when updating a function with packageType Image.")
	}
	if err := checkArchitectures(in.Architectures); err != nil {
		return functionConfiguration{}, err
	}
	resolved, sha, aerr := s.resolveImage(*in.ImageURI)
	if aerr != nil {
		return functionConfiguration{}, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.changeable(raw, "UpdateFunctionCode", in.RevisionID)
	if err != nil {
		return functionConfiguration{}, err
	}
	now := s.cfg.Now()
	if in.DryRun {
		v := f.Latest.clone()
		v.ImageURI, v.ResolvedImageURI, v.CodeSha256 = *in.ImageURI, resolved, sha
		return s.configuration(f, v, ""), nil
	}
	v := f.Latest
	if len(in.Architectures) > 0 {
		v.Architectures = slices.Clone(in.Architectures)
	}
	v.ImageURI, v.ResolvedImageURI, v.CodeSha256 = *in.ImageURI, resolved, sha
	v.CodeKey = imageKey + resolved
	s.beginUpdate(f, now)
	out := s.configuration(f, v, "")
	if in.Publish {
		pv := s.publish(f, nil, now)
		out = s.configuration(f, pv, pv.Version)
	}
	s.save()
	return out, nil
}

// resolveIn maps a path in an image to the host, following the image's symbolic links as the
// image's own root would (an absolute target names the image's root, never the host's).
func resolveIn(root, p string) string {
	parts := strings.Split(strings.Trim(filepath.ToSlash(p), "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0 && hops < 40; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = filepath.ToSlash(filepath.Dir(cur))
			continue
		}
		next := filepath.ToSlash(filepath.Join(cur, part))
		target, err := os.Readlink(filepath.Join(root, filepath.FromSlash(next)))
		if err != nil {
			cur = next // not a link (or not there): taken as it is
			continue
		}
		hops++
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		parts = append(strings.Split(strings.Trim(target, "/"), "/"), parts...)
	}
	return filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(cur, "/")))
}
