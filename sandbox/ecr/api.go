package ecr

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

//go:generate go run ../protocol/errorsgen -model ecr/2015-09-21 -o model_gen.go

type apiError = protocol.Error

func invalidParameter(format string, args ...any) *apiError {
	return protocol.Errorf("InvalidParameterException", format, args...)
}

func (s *Service) repoNotFound(name string) *apiError {
	return protocol.Errorf("RepositoryNotFoundException", "The repository with name '%s' does not exist in the registry with id '%s'", name, s.cfg.Account)
}

// Handler serves the ECR API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "ecr", Model: apiModel, Limits: l,
		Classify: func(req *protocol.Request, _ any) (string, string) {
			var in struct {
				RepositoryName  string   `json:"repositoryName"`
				RepositoryNames []string `json:"repositoryNames"`
			}
			_ = json.Unmarshal(req.Body, &in)
			if in.RepositoryName == "" && len(in.RepositoryNames) == 1 {
				return in.RepositoryNames[0], ""
			}
			return in.RepositoryName, ""
		},
	}
	protocol.Handle(api, "CreateRepository", s.createRepository)
	protocol.Handle(api, "DescribeRepositories", s.describeRepositories)
	protocol.Handle(api, "DeleteRepository", s.deleteRepository)
	protocol.Handle(api, "DescribeImages", s.describeImages)
	protocol.Handle(api, "ListImages", s.listImages)
	protocol.Handle(api, "BatchGetImage", s.batchGetImage)
	protocol.Handle(api, "BatchDeleteImage", s.batchDeleteImage)
	protocol.Handle(api, "PutLifecyclePolicy", s.putLifecyclePolicy)
	protocol.Handle(api, "GetLifecyclePolicy", s.getLifecyclePolicy)
	protocol.Handle(api, "DeleteLifecyclePolicy", s.deleteLifecyclePolicy)
	protocol.Handle(api, "GetAuthorizationToken", s.getAuthorizationToken)
	return api
}

type repositoryOut struct {
	RepositoryArn              string             `json:"repositoryArn"`
	RegistryID                 string             `json:"registryId"`
	RepositoryName             string             `json:"repositoryName"`
	RepositoryURI              string             `json:"repositoryUri"`
	CreatedAt                  protocol.Timestamp `json:"createdAt"`
	ImageTagMutability         string             `json:"imageTagMutability"`
	ImageScanningConfiguration map[string]bool    `json:"imageScanningConfiguration"`
	EncryptionConfiguration    map[string]string  `json:"encryptionConfiguration"`
}

func (s *Service) repositoryOut(r *repository) repositoryOut {
	return repositoryOut{
		RepositoryArn: fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", s.cfg.Region, s.cfg.Account, r.Name),
		RegistryID:    s.cfg.Account, RepositoryName: r.Name, RepositoryURI: s.host + "/" + r.Name,
		CreatedAt: protocol.Timestamp{Time: r.CreatedAt}, ImageTagMutability: r.Mutability,
		ImageScanningConfiguration: map[string]bool{"scanOnPush": false},
		EncryptionConfiguration:    map[string]string{"encryptionType": "AES256"},
	}
}

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type createRepositoryIn struct {
	RepositoryName     string `json:"repositoryName"`
	ImageTagMutability string `json:"imageTagMutability"`
	Tags               []tag  `json:"tags"`
}

type repositoryOutput struct {
	Repository repositoryOut `json:"repository"`
}

func (s *Service) checkName(name string) *apiError {
	if len(name) < 2 || len(name) > 256 || !repoNameRE.MatchString(name) {
		return invalidParameter("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''")
	}
	return nil
}

func (s *Service) createRepository(_ context.Context, _ *protocol.Request, in *createRepositoryIn) (*repositoryOutput, *apiError) {
	if err := s.checkName(in.RepositoryName); err != nil {
		return nil, err
	}
	mut := in.ImageTagMutability
	switch mut {
	case "":
		mut = "MUTABLE"
	case "MUTABLE", "IMMUTABLE":
	default:
		return nil, invalidParameter("Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE]'")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.repos[in.RepositoryName]; ok {
		return nil, protocol.Errorf("RepositoryAlreadyExistsException", "The repository with name '%s' already exists in the registry with id '%s'", in.RepositoryName, s.cfg.Account)
	}
	r := &repository{Name: in.RepositoryName, CreatedAt: s.cfg.Now().UTC(), Mutability: mut, Images: map[string]*image{}, Tags: map[string]string{}}
	if len(in.Tags) > 0 {
		r.Tagged = map[string]string{}
		for _, t := range in.Tags {
			r.Tagged[t.Key] = t.Value
		}
	}
	s.repos[r.Name] = r
	s.save()
	return &repositoryOutput{Repository: s.repositoryOut(r)}, nil
}

type describeRepositoriesIn struct {
	RepositoryNames []string `json:"repositoryNames"`
	NextToken       *string  `json:"nextToken"`
	MaxResults      *int     `json:"maxResults"`
}

type describeRepositoriesOut struct {
	Repositories []repositoryOut `json:"repositories"`
	NextToken    *string         `json:"nextToken,omitempty"`
}

func (s *Service) describeRepositories(_ context.Context, _ *protocol.Request, in *describeRepositoriesIn) (*describeRepositoriesOut, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(in.RepositoryNames) > 0 {
		if in.NextToken != nil || in.MaxResults != nil {
			return nil, invalidParameter("Invalid parameter: maxResults and nextToken cannot be used with repositoryNames")
		}
		out := &describeRepositoriesOut{Repositories: []repositoryOut{}}
		for _, n := range in.RepositoryNames {
			r, ok := s.repos[n]
			if !ok {
				return nil, s.repoNotFound(n)
			}
			out.Repositories = append(out.Repositories, s.repositoryOut(r))
		}
		return out, nil
	}
	names := make([]string, 0, len(s.repos))
	for n := range s.repos {
		names = append(names, n)
	}
	sort.Strings(names)
	page, next, err := paginate(names, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &describeRepositoriesOut{Repositories: []repositoryOut{}, NextToken: next}
	for _, n := range page {
		out.Repositories = append(out.Repositories, s.repositoryOut(s.repos[n]))
	}
	return out, nil
}

// paginate pages a list with ECR's nextToken (an opaque offset here) and maxResults (1–1000,
// default 100).
func paginate[T any](all []T, token *string, max *int) ([]T, *string, *apiError) {
	n := 100
	if max != nil {
		if *max < 1 || *max > 1000 {
			return nil, nil, invalidParameter("Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000 and greater than or equal to 1'")
		}
		n = *max
	}
	start := 0
	if token != nil {
		b, err := base64.RawURLEncoding.DecodeString(*token)
		i, cerr := strconv.Atoi(string(b))
		if err != nil || cerr != nil || i < 0 || i > len(all) {
			return nil, nil, invalidParameter("Invalid parameter at 'nextToken': the token is not valid")
		}
		start = i
	}
	end := min(start+n, len(all))
	var next *string
	if end < len(all) {
		t := base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
		next = &t
	}
	return all[start:end], next, nil
}

type deleteRepositoryIn struct {
	RepositoryName string `json:"repositoryName"`
	Force          bool   `json:"force"`
}

func (s *Service) deleteRepository(_ context.Context, _ *protocol.Request, in *deleteRepositoryIn) (*repositoryOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[in.RepositoryName]
	if !ok {
		return nil, s.repoNotFound(in.RepositoryName)
	}
	if len(r.Images) > 0 && !in.Force {
		return nil, protocol.Errorf("RepositoryNotEmptyException", "The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", r.Name, s.cfg.Account)
	}
	delete(s.repos, r.Name)
	s.save()
	return &repositoryOutput{Repository: s.repositoryOut(r)}, nil
}

type imageID struct {
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageTag    string `json:"imageTag,omitempty"`
}

func (id imageID) String() string {
	d, t := "'null'", "'null'"
	if id.ImageDigest != "" {
		d = "'" + id.ImageDigest + "'"
	}
	if id.ImageTag != "" {
		t = "'" + id.ImageTag + "'"
	}
	return fmt.Sprintf("{imageDigest:%s, imageTag:%s}", d, t)
}

type tagFilter struct {
	TagStatus string `json:"tagStatus"`
}

type describeImagesIn struct {
	RepositoryName string     `json:"repositoryName"`
	ImageIDs       []imageID  `json:"imageIds"`
	NextToken      *string    `json:"nextToken"`
	MaxResults     *int       `json:"maxResults"`
	Filter         *tagFilter `json:"filter"`
}

type imageDetail struct {
	RegistryID             string             `json:"registryId"`
	RepositoryName         string             `json:"repositoryName"`
	ImageDigest            string             `json:"imageDigest"`
	ImageTags              []string           `json:"imageTags,omitempty"`
	ImageSizeInBytes       int64              `json:"imageSizeInBytes"`
	ImagePushedAt          protocol.Timestamp `json:"imagePushedAt"`
	ImageManifestMediaType string             `json:"imageManifestMediaType,omitempty"`
	ArtifactMediaType      string             `json:"artifactMediaType,omitempty"`
	ImageStatus            string             `json:"imageStatus"`
}

type describeImagesOut struct {
	ImageDetails []imageDetail `json:"imageDetails"`
	NextToken    *string       `json:"nextToken,omitempty"`
}

// resolve finds the image an imageId names: its digest and tag must agree when both are given.
func (r *repository) resolve(id imageID) (*image, string) {
	switch {
	case id.ImageDigest == "" && id.ImageTag == "":
		return nil, "MissingDigestAndTag"
	case id.ImageDigest != "" && !digestRE.MatchString(id.ImageDigest):
		return nil, "InvalidImageDigest"
	case id.ImageTag != "" && !tagRE.MatchString(id.ImageTag):
		return nil, "InvalidImageTag"
	case id.ImageDigest != "" && id.ImageTag != "":
		im := r.Images[id.ImageDigest]
		if im == nil {
			return nil, "ImageNotFound"
		}
		if r.Tags[id.ImageTag] != id.ImageDigest {
			return nil, "ImageTagDoesNotMatchDigest"
		}
		return im, ""
	case id.ImageDigest != "":
		if im := r.Images[id.ImageDigest]; im != nil {
			return im, ""
		}
	default:
		if im := r.lookup(id.ImageTag); im != nil {
			return im, ""
		}
	}
	return nil, "ImageNotFound"
}

func (s *Service) detail(r *repository, im *image) imageDetail {
	return imageDetail{RegistryID: s.cfg.Account, RepositoryName: r.Name, ImageDigest: im.Digest, ImageTags: r.tagsOf(im.Digest),
		ImageSizeInBytes: im.Size, ImagePushedAt: protocol.Timestamp{Time: im.PushedAt}, ImageManifestMediaType: im.MediaType,
		ArtifactMediaType: configMediaType(im.Manifest), ImageStatus: "ACTIVE"}
}

func configMediaType(manifest []byte) string {
	var m struct {
		Config struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	_ = json.Unmarshal(manifest, &m)
	return m.Config.MediaType
}

func checkTagStatus(f *tagFilter) (string, *apiError) {
	if f == nil || f.TagStatus == "" {
		return "ANY", nil
	}
	switch f.TagStatus {
	case "TAGGED", "UNTAGGED", "ANY":
		return f.TagStatus, nil
	}
	return "", invalidParameter("Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]'")
}

func (s *Service) describeImages(_ context.Context, _ *protocol.Request, in *describeImagesIn) (*describeImagesOut, *apiError) {
	status, aerr := checkTagStatus(in.Filter)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[in.RepositoryName]
	if !ok {
		return nil, s.repoNotFound(in.RepositoryName)
	}
	out := &describeImagesOut{ImageDetails: []imageDetail{}}
	if len(in.ImageIDs) > 0 {
		if in.NextToken != nil || in.MaxResults != nil {
			return nil, invalidParameter("Invalid parameter: maxResults and nextToken cannot be used with imageIds")
		}
		seen := map[string]bool{}
		for _, id := range in.ImageIDs {
			im, failure := r.resolve(id)
			if failure != "" {
				return nil, protocol.Errorf("ImageNotFoundException", "The image with imageId %s does not exist within the repository with name '%s' in the registry with id '%s'", id, r.Name, s.cfg.Account)
			}
			if !seen[im.Digest] {
				seen[im.Digest] = true
				out.ImageDetails = append(out.ImageDetails, s.detail(r, im))
			}
		}
		return out, nil
	}
	var all []*image
	for _, im := range r.sortedImages() {
		tagged := len(r.tagsOf(im.Digest)) > 0
		if status == "ANY" || (status == "TAGGED") == tagged {
			all = append(all, im)
		}
	}
	page, next, aerr := paginate(all, in.NextToken, in.MaxResults)
	if aerr != nil {
		return nil, aerr
	}
	out.NextToken = next
	for _, im := range page {
		out.ImageDetails = append(out.ImageDetails, s.detail(r, im))
	}
	return out, nil
}

type listImagesIn struct {
	RepositoryName string     `json:"repositoryName"`
	NextToken      *string    `json:"nextToken"`
	MaxResults     *int       `json:"maxResults"`
	Filter         *tagFilter `json:"filter"`
}

type imageIDsOut struct {
	ImageIDs  []imageID `json:"imageIds"`
	NextToken *string   `json:"nextToken,omitempty"`
}

// listImages lists one imageId per tag of a tagged image and one (digest only) per untagged one.
func (s *Service) listImages(_ context.Context, _ *protocol.Request, in *listImagesIn) (*imageIDsOut, *apiError) {
	status, aerr := checkTagStatus(in.Filter)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[in.RepositoryName]
	if !ok {
		return nil, s.repoNotFound(in.RepositoryName)
	}
	var ids []imageID
	for _, im := range r.sortedImages() {
		tags := r.tagsOf(im.Digest)
		switch {
		case len(tags) == 0 && status != "TAGGED":
			ids = append(ids, imageID{ImageDigest: im.Digest})
		case len(tags) > 0 && status != "UNTAGGED":
			for _, t := range tags {
				ids = append(ids, imageID{ImageDigest: im.Digest, ImageTag: t})
			}
		}
	}
	page, next, aerr := paginate(ids, in.NextToken, in.MaxResults)
	if aerr != nil {
		return nil, aerr
	}
	if page == nil {
		page = []imageID{}
	}
	return &imageIDsOut{ImageIDs: page, NextToken: next}, nil
}

type batchImagesIn struct {
	RepositoryName     string    `json:"repositoryName"`
	ImageIDs           []imageID `json:"imageIds"`
	AcceptedMediaTypes []string  `json:"acceptedMediaTypes"`
}

type imageOut struct {
	RegistryID             string  `json:"registryId"`
	RepositoryName         string  `json:"repositoryName"`
	ImageID                imageID `json:"imageId"`
	ImageManifest          string  `json:"imageManifest"`
	ImageManifestMediaType string  `json:"imageManifestMediaType,omitempty"`
}

type imageFailure struct {
	ImageID       imageID `json:"imageId"`
	FailureCode   string  `json:"failureCode"`
	FailureReason string  `json:"failureReason"`
}

var failureReasons = map[string]string{
	"MissingDigestAndTag":        "Invalid request parameters: both tag and digest cannot be null",
	"InvalidImageDigest":         "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
	"InvalidImageTag":            "Invalid request parameters: image tag should satisfy the regex '[a-zA-Z0-9-_.]+'",
	"ImageTagDoesNotMatchDigest": "Invalid request parameters: given tag does not map to the given digest",
	"ImageNotFound":              "Requested image not found",
}

type batchGetImageOut struct {
	Images   []imageOut     `json:"images"`
	Failures []imageFailure `json:"failures"`
}

func (s *Service) checkBatch(ids []imageID) *apiError {
	if len(ids) < 1 || len(ids) > 100 {
		return invalidParameter("Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length less than or equal to 100 and greater than or equal to 1'")
	}
	return nil
}

func (s *Service) batchGetImage(_ context.Context, _ *protocol.Request, in *batchImagesIn) (*batchGetImageOut, *apiError) {
	if err := s.checkBatch(in.ImageIDs); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[in.RepositoryName]
	if !ok {
		return nil, s.repoNotFound(in.RepositoryName)
	}
	out := &batchGetImageOut{Images: []imageOut{}, Failures: []imageFailure{}}
	for _, id := range in.ImageIDs {
		im, failure := r.resolve(id)
		if failure != "" {
			out.Failures = append(out.Failures, imageFailure{ImageID: id, FailureCode: failure, FailureReason: failureReasons[failure]})
			continue
		}
		got := imageID{ImageDigest: im.Digest, ImageTag: id.ImageTag}
		out.Images = append(out.Images, imageOut{RegistryID: s.cfg.Account, RepositoryName: r.Name, ImageID: got,
			ImageManifest: string(im.Manifest), ImageManifestMediaType: im.MediaType})
	}
	return out, nil
}

type batchDeleteImageOut struct {
	ImageIDs []imageID      `json:"imageIds"`
	Failures []imageFailure `json:"failures"`
}

func (s *Service) batchDeleteImage(_ context.Context, _ *protocol.Request, in *batchImagesIn) (*batchDeleteImageOut, *apiError) {
	if err := s.checkBatch(in.ImageIDs); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[in.RepositoryName]
	if !ok {
		return nil, s.repoNotFound(in.RepositoryName)
	}
	out := &batchDeleteImageOut{ImageIDs: []imageID{}, Failures: []imageFailure{}}
	for _, id := range in.ImageIDs {
		im, failure := r.resolve(id)
		if failure != "" {
			out.Failures = append(out.Failures, imageFailure{ImageID: id, FailureCode: failure, FailureReason: failureReasons[failure]})
			continue
		}
		ref := id.ImageTag
		if id.ImageDigest != "" {
			ref = id.ImageDigest
		}
		deleted := imageID{ImageDigest: im.Digest, ImageTag: id.ImageTag}
		r.remove(ref)
		out.ImageIDs = append(out.ImageIDs, deleted)
	}
	s.save()
	return out, nil
}

type lifecycleIn struct {
	RepositoryName      string `json:"repositoryName"`
	LifecyclePolicyText string `json:"lifecyclePolicyText"`
}

type lifecycleOut struct {
	RegistryID          string              `json:"registryId"`
	RepositoryName      string              `json:"repositoryName"`
	LifecyclePolicyText string              `json:"lifecyclePolicyText"`
	LastEvaluatedAt     *protocol.Timestamp `json:"lastEvaluatedAt,omitempty"`
}

// LifecyclePolicy is an ECR lifecycle policy document, as PutLifecyclePolicy checks it.
type LifecyclePolicy struct {
	Rules []struct {
		RulePriority *int   `json:"rulePriority"`
		Description  string `json:"description"`
		Selection    *struct {
			TagStatus      string   `json:"tagStatus"`
			TagPrefixList  []string `json:"tagPrefixList"`
			TagPatternList []string `json:"tagPatternList"`
			CountType      string   `json:"countType"`
			CountUnit      string   `json:"countUnit"`
			CountNumber    *int     `json:"countNumber"`
		} `json:"selection"`
		Action *struct {
			Type string `json:"type"`
		} `json:"action"`
	} `json:"rules"`
}

func checkPolicy(text string) *apiError {
	var p LifecyclePolicy
	if err := json.Unmarshal([]byte(text), &p); err != nil {
		return invalidParameter("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: %v'", err)
	}
	bad := func(format string, args ...any) *apiError {
		return invalidParameter("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: %s'", fmt.Sprintf(format, args...))
	}
	if len(p.Rules) == 0 {
		return bad("object has missing required properties ([\"rules\"])")
	}
	prio := map[int]bool{}
	for i, r := range p.Rules {
		switch {
		case r.RulePriority == nil || *r.RulePriority < 1:
			return bad("rule %d: rulePriority must be a positive integer", i)
		case prio[*r.RulePriority]:
			return bad("rulePriority %d is used by more than one rule", *r.RulePriority)
		case r.Selection == nil:
			return bad("rule %d: selection is required", i)
		case r.Action == nil || r.Action.Type != "expire":
			return bad("rule %d: action.type must be \"expire\"", i)
		case r.Selection.CountNumber == nil || *r.Selection.CountNumber < 1:
			return bad("rule %d: countNumber must be a positive integer", i)
		}
		prio[*r.RulePriority] = true
		sel := r.Selection
		switch sel.TagStatus {
		case "tagged":
			if len(sel.TagPrefixList) == 0 && len(sel.TagPatternList) == 0 {
				return bad("rule %d: a tagged selection needs tagPrefixList or tagPatternList", i)
			}
		case "untagged", "any":
		default:
			return bad("rule %d: tagStatus must be tagged, untagged or any", i)
		}
		switch sel.CountType {
		case "imageCountMoreThan":
			if sel.CountUnit != "" {
				return bad("rule %d: countUnit is not allowed with imageCountMoreThan", i)
			}
		case "sinceImagePushed":
			if sel.CountUnit != "days" {
				return bad("rule %d: sinceImagePushed needs countUnit \"days\"", i)
			}
		default:
			return bad("rule %d: countType must be imageCountMoreThan or sinceImagePushed", i)
		}
	}
	return nil
}

func (s *Service) putLifecyclePolicy(_ context.Context, _ *protocol.Request, in *lifecycleIn) (*lifecycleOut, *apiError) {
	if len(in.LifecyclePolicyText) < 100 || len(in.LifecyclePolicyText) > 30720 {
		return nil, invalidParameter("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Member must have length less than or equal to 30720 and greater than or equal to 100'")
	}
	if err := checkPolicy(in.LifecyclePolicyText); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[in.RepositoryName]
	if !ok {
		return nil, s.repoNotFound(in.RepositoryName)
	}
	r.Lifecycle = in.LifecyclePolicyText
	s.save()
	return &lifecycleOut{RegistryID: s.cfg.Account, RepositoryName: r.Name, LifecyclePolicyText: r.Lifecycle}, nil
}

type repoIn struct {
	RepositoryName string `json:"repositoryName"`
}

func (s *Service) policyOf(name string) (*repository, *apiError) {
	r, ok := s.repos[name]
	if !ok {
		return nil, s.repoNotFound(name)
	}
	if r.Lifecycle == "" {
		return nil, protocol.Errorf("LifecyclePolicyNotFoundException", "Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", name, s.cfg.Account)
	}
	return r, nil
}

func (s *Service) getLifecyclePolicy(_ context.Context, _ *protocol.Request, in *repoIn) (*lifecycleOut, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.policyOf(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	return &lifecycleOut{RegistryID: s.cfg.Account, RepositoryName: r.Name, LifecyclePolicyText: r.Lifecycle}, nil
}

func (s *Service) deleteLifecyclePolicy(_ context.Context, _ *protocol.Request, in *repoIn) (*lifecycleOut, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.policyOf(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	out := &lifecycleOut{RegistryID: s.cfg.Account, RepositoryName: r.Name, LifecyclePolicyText: r.Lifecycle}
	r.Lifecycle = ""
	s.save()
	return out, nil
}

type getAuthorizationTokenIn struct {
	RegistryIDs []string `json:"registryIds"`
}

type authorizationData struct {
	AuthorizationToken string             `json:"authorizationToken"`
	ExpiresAt          protocol.Timestamp `json:"expiresAt"`
	ProxyEndpoint      string             `json:"proxyEndpoint"`
}

type getAuthorizationTokenOut struct {
	AuthorizationData []authorizationData `json:"authorizationData"`
}

// getAuthorizationToken answers a 12-hour token for the user AWS, as ECR does; the registry
// accepts it (and any other credentials).
func (s *Service) getAuthorizationToken(_ context.Context, _ *protocol.Request, in *getAuthorizationTokenIn) (*getAuthorizationTokenOut, *apiError) {
	token := base64.StdEncoding.EncodeToString([]byte("AWS:sandbox-" + strconv.FormatInt(s.cfg.Now().Unix(), 10)))
	ad := authorizationData{AuthorizationToken: token, ExpiresAt: protocol.Timestamp{Time: s.cfg.Now().Add(12 * time.Hour)}, ProxyEndpoint: s.cfg.BaseURL}
	return &getAuthorizationTokenOut{AuthorizationData: []authorizationData{ad}}, nil
}
