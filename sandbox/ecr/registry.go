package ecr

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
)

// regError is an OCI distribution error.
type regError struct {
	Status  int
	Code    string
	Message string
}

func (e *regError) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": e.Code, "message": e.Message}}})
}

func nameUnknown(repo, account string) *regError {
	return &regError{Status: http.StatusNotFound, Code: "NAME_UNKNOWN",
		Message: fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '%s'", repo, account)}
}

// maxManifest bounds a pushed manifest, as registries do (4 MiB).
const maxManifest = 4 << 20

// Registry serves the OCI distribution API under /v2/. Blob uploads and downloads are
// go-containerregistry's registry, over this store's blobs; manifests, tags and the catalog are
// served here, from the repositories the ECR API sees. Authentication is accepted and not
// checked, as every other sandbox service accepts signatures.
func (s *Service) Registry() http.Handler {
	blobs := registry.New(registry.WithBlobHandler(s.blobs), registry.Logger(log.New(io.Discard, "", 0)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		p := strings.TrimPrefix(r.URL.Path, "/v2/")
		switch {
		case r.URL.Path == "/v2" || r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
			return
		case p == "_catalog":
			s.serveCatalog(w, r)
			return
		}
		for _, sep := range []string{"/manifests/", "/blobs/", "/tags/list"} {
			i := strings.LastIndex(p, sep)
			if i <= 0 {
				continue
			}
			repo, rest := p[:i], p[i+len(sep):]
			s.mu.Lock()
			_, exists := s.repos[repo]
			s.mu.Unlock()
			if !exists {
				nameUnknown(repo, s.cfg.Account).write(w)
				return
			}
			switch sep {
			case "/manifests/":
				s.serveManifest(w, r, repo, rest)
			case "/tags/list":
				s.serveTags(w, r, repo)
			default:
				blobs.ServeHTTP(w, r)
			}
			return
		}
		(&regError{Status: http.StatusNotFound, Code: "NAME_UNKNOWN", Message: "unknown path " + r.URL.Path}).write(w)
	})
}

func (s *Service) serveManifest(w http.ResponseWriter, r *http.Request, repo, ref string) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.mu.Lock()
		var im *image
		if rp := s.repos[repo]; rp != nil {
			im = rp.lookup(ref)
		}
		s.mu.Unlock()
		if im == nil {
			(&regError{Status: http.StatusNotFound, Code: "MANIFEST_UNKNOWN", Message: fmt.Sprintf("Requested image not found: %s:%s", repo, ref)}).write(w)
			return
		}
		w.Header().Set("Content-Type", im.MediaType)
		w.Header().Set("Docker-Content-Digest", im.Digest)
		w.Header().Set("Content-Length", strconv.Itoa(len(im.Manifest)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(im.Manifest)
		}
	case http.MethodPut:
		body, err := io.ReadAll(io.LimitReader(r.Body, maxManifest+1))
		if err != nil || len(body) > maxManifest {
			(&regError{Status: http.StatusRequestEntityTooLarge, Code: "SIZE_INVALID", Message: "the manifest is larger than 4 MiB"}).write(w)
			return
		}
		mt := r.Header.Get("Content-Type")
		if mt == "" {
			var m struct {
				MediaType string `json:"mediaType"`
			}
			_ = json.Unmarshal(body, &m)
			mt = m.MediaType
		}
		digest, rerr := s.putManifest(repo, ref, mt, body)
		if rerr != nil {
			rerr.write(w)
			return
		}
		w.Header().Set("Docker-Content-Digest", digest)
		w.Header().Set("Location", "/v2/"+repo+"/manifests/"+digest)
		w.WriteHeader(http.StatusCreated)
	case http.MethodDelete:
		s.mu.Lock()
		ok := false
		if rp := s.repos[repo]; rp != nil {
			ok = rp.remove(ref)
			s.save()
		}
		s.mu.Unlock()
		if !ok {
			(&regError{Status: http.StatusNotFound, Code: "MANIFEST_UNKNOWN", Message: fmt.Sprintf("Requested image not found: %s:%s", repo, ref)}).write(w)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		(&regError{Status: http.StatusMethodNotAllowed, Code: "UNSUPPORTED", Message: r.Method + " is not supported on manifests"}).write(w)
	}
}

func (s *Service) serveTags(w http.ResponseWriter, r *http.Request, repo string) {
	s.mu.Lock()
	var tags []string
	for t := range s.repos[repo].Tags {
		tags = append(tags, t)
	}
	s.mu.Unlock()
	sort.Strings(tags)
	tags = page(tags, r)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"name": repo, "tags": nonNil(tags)})
}

func (s *Service) serveCatalog(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.repos))
	for n := range s.repos {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	names = page(names, r)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"repositories": nonNil(names)})
}

// page applies the distribution API's n and last parameters to a sorted list.
func page(all []string, r *http.Request) []string {
	if last := r.URL.Query().Get("last"); last != "" {
		i := sort.SearchStrings(all, last)
		for i < len(all) && all[i] <= last {
			i++
		}
		all = all[i:]
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && n >= 0 && n < len(all) {
		all = all[:n]
	}
	return all
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
