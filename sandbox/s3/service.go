// Package s3 is the sandbox's Amazon S3: buckets, objects, ListObjectsV2, multipart uploads and
// versioning served by gofakes3, over a backend of ours that keeps S3's versioning rules and
// persists to disk; and bucket lifecycle configurations, stored and answered as S3 does (and applied
// on request, see ApplyLifecycle), so that a
// client reading them (to check that no rule expires the artifacts a rollback needs) sees what S3
// would answer.
package s3

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/johannesboyne/gofakes3"
)

// Config sets up a Service.
type Config struct {
	// DataDir keeps buckets and objects across restarts; empty keeps them in memory.
	DataDir string
	Now     func() time.Time
	Logger  *slog.Logger
}

// Service is the sandbox's S3.
type Service struct {
	backend *backend
	fake    http.Handler
}

// New creates a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dir := ""
	if cfg.DataDir != "" {
		dir = filepath.Join(cfg.DataDir, "s3")
	}
	b, err := newBackend(dir, cfg.Now)
	if err != nil {
		return nil, err
	}
	fake := gofakes3.New(b, gofakes3.WithTimeSource(clock(cfg.Now)))
	return &Service{backend: b, fake: fake.Server()}, nil
}

type clock func() time.Time

func (c clock) Now() time.Time                  { return c() }
func (c clock) Since(t time.Time) time.Duration { return c().Sub(t) }

// ObjectError is an S3 error code and message, as Lambda quotes them when it cannot fetch code.
type ObjectError struct{ Code, Message string }

func (e *ObjectError) Error() string { return e.Code + ": " + e.Message }

// GetObject returns an object's bytes (a given version, or the current one).
func (s *Service) GetObject(bucket, key, versionID string) ([]byte, error) {
	b, err := s.backend.GetBody(bucket, key, versionID)
	if err == nil {
		return b, nil
	}
	code, msg := string(gofakes3.ErrInternal), err.Error()
	var coded interface{ ErrorCode() gofakes3.ErrorCode }
	if errors.As(err, &coded) {
		code = string(coded.ErrorCode())
		switch coded.ErrorCode() {
		case gofakes3.ErrNoSuchKey:
			msg = "The specified key does not exist."
		case gofakes3.ErrNoSuchBucket:
			msg = "The specified bucket does not exist"
		case gofakes3.ErrNoSuchVersion:
			msg = "The specified version does not exist."
		}
	}
	return nil, &ObjectError{Code: code, Message: msg}
}

// PutObject stores an object, for tests and tools that seed the sandbox from Go.
func (s *Service) PutObject(bucket, key string, body []byte) error {
	_, err := s.backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(body), int64(len(body)), nil)
	return err
}

// CreateBucket creates a bucket, for tests and tools that seed the sandbox from Go.
func (s *Service) CreateBucket(name string) error { return s.backend.CreateBucket(name) }

// Keys lists the current keys of a bucket under a prefix.
func (s *Service) Keys(bucket, prefix string) []string { return s.backend.keys(bucket, prefix) }

// Handler serves the S3 API.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hostStyle(r)
		bucket, key := splitPath(r.URL.Path)
		op := operation(r, bucket, key)
		if ref := limits.Admit(l, r, limits.Op{Service: "s3", Name: op, Resource: bucket}); ref != nil {
			writeRefusal(w, ref)
			return
		}
		if _, ok := r.URL.Query()["lifecycle"]; ok && bucket != "" && key == "" {
			s.serveLifecycle(w, r, bucket)
			return
		}
		if _, ok := r.URL.Query()["tagging"]; ok && bucket != "" && key != "" {
			s.serveTagging(w, r, bucket, key)
			return
		}
		if op == "GetObject" && archived(s.backend.storageClass(bucket, key, r.URL.Query().Get("versionId"))) {
			writeS3Error(w, http.StatusForbidden, "InvalidObjectState", "The operation is not valid for the object's storage class")
			return
		}
		if op == "PutObject" || op == "UploadPart" {
			if !checkSHA256(w, r) {
				return
			}
		}
		s.fake.ServeHTTP(w, r)
	})
}

// hostStyle rewrites a virtual-hosted request (bucket.localhost:4566/key) to path style.
func hostStyle(r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	bucket, ok := strings.CutSuffix(host, ".localhost")
	if !ok || bucket == "" || strings.Contains(bucket, ".") {
		return
	}
	r.URL.Path = "/" + bucket + r.URL.Path
	if r.URL.RawPath != "" {
		r.URL.RawPath = "/" + bucket + r.URL.RawPath
	}
}

func splitPath(p string) (bucket, key string) {
	p = strings.TrimPrefix(p, "/")
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}

// operation names the S3 API operation a request is, for the request log.
func operation(r *http.Request, bucket, key string) string {
	q := r.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	switch {
	case bucket == "":
		return "ListBuckets"
	case key == "":
		switch {
		case has("lifecycle"):
			return map[string]string{http.MethodGet: "GetBucketLifecycleConfiguration", http.MethodPut: "PutBucketLifecycleConfiguration", http.MethodDelete: "DeleteBucketLifecycle"}[r.Method]
		case has("versioning"):
			return map[string]string{http.MethodGet: "GetBucketVersioning", http.MethodPut: "PutBucketVersioning"}[r.Method]
		case has("versions"):
			return "ListObjectVersions"
		case has("uploads"):
			return "ListMultipartUploads"
		case has("location"):
			return "GetBucketLocation"
		case has("delete"):
			return "DeleteObjects"
		}
		switch r.Method {
		case http.MethodPut:
			return "CreateBucket"
		case http.MethodDelete:
			return "DeleteBucket"
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodGet:
			if q.Get("list-type") == "2" {
				return "ListObjectsV2"
			}
			return "ListObjects"
		}
	default:
		switch {
		case has("tagging"):
			return map[string]string{http.MethodGet: "GetObjectTagging", http.MethodPut: "PutObjectTagging", http.MethodDelete: "DeleteObjectTagging"}[r.Method]
		case has("uploads") && r.Method == http.MethodPost:
			return "CreateMultipartUpload"
		case has("uploadId"):
			return map[string]string{http.MethodPut: "UploadPart", http.MethodPost: "CompleteMultipartUpload", http.MethodDelete: "AbortMultipartUpload", http.MethodGet: "ListParts"}[r.Method]
		}
		switch r.Method {
		case http.MethodGet:
			return "GetObject"
		case http.MethodHead:
			return "HeadObject"
		case http.MethodPut:
			if r.Header.Get("x-amz-copy-source") != "" {
				return "CopyObject"
			}
			return "PutObject"
		case http.MethodDelete:
			return "DeleteObject"
		}
	}
	return r.Method
}

func writeRefusal(w http.ResponseWriter, ref *limits.Refusal) {
	switch ref.Kind {
	case limits.InjectedServerError:
		writeS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	default:
		writeS3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
	}
}

func writeS3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>%s</Code><Message>%s</Message><RequestId>%d</RequestId></Error>`,
		code, xmlEscape(msg), time.Now().UnixNano())
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// checkSHA256 verifies a body against the x-amz-checksum-sha256 its sender computed, as S3 does
// (a streamed body with a trailing checksum is left to the chunk decoder). It answers BadDigest
// and reports false on a mismatch.
func checkSHA256(w http.ResponseWriter, r *http.Request) bool {
	want := r.Header.Get("x-amz-checksum-sha256")
	if want == "" || strings.HasPrefix(r.Header.Get("x-amz-content-sha256"), "STREAMING-") {
		return true
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeS3Error(w, http.StatusBadRequest, "IncompleteBody", err.Error())
		return false
	}
	sum := sha256.Sum256(body)
	if base64.StdEncoding.EncodeToString(sum[:]) != want {
		writeS3Error(w, http.StatusBadRequest, "BadDigest", "The SHA256 you specified did not match the calculated checksum.")
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}

// lifecycleConfiguration is parsed only to validate what PutBucketLifecycleConfiguration stores.
type lifecycleConfiguration struct {
	XMLName xml.Name        `xml:"LifecycleConfiguration"`
	Rules   []lifecycleRule `xml:"Rule"`
}

type lifecycleRule struct {
	ID     string `xml:"ID"`
	Status string `xml:"Status"`
}

func (s *Service) serveLifecycle(w http.ResponseWriter, r *http.Request, bucket string) {
	switch r.Method {
	case http.MethodGet:
		raw, err := s.backend.lifecycle(bucket)
		if err != nil {
			writeS3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
			return
		}
		if len(raw) == 0 {
			writeS3Error(w, http.StatusNotFound, "NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist")
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Write(raw)
	case http.MethodPut:
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeS3Error(w, http.StatusBadRequest, "IncompleteBody", err.Error())
			return
		}
		var cfg lifecycleConfiguration
		if err := xml.Unmarshal(raw, &cfg); err != nil || len(cfg.Rules) == 0 {
			writeS3Error(w, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
			return
		}
		if len(cfg.Rules) > 1000 {
			writeS3Error(w, http.StatusBadRequest, "InvalidRequest", "The number of lifecycle rules must not exceed the allowed limit of 1000 rules")
			return
		}
		for _, rule := range cfg.Rules {
			if rule.Status != "Enabled" && rule.Status != "Disabled" {
				writeS3Error(w, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
				return
			}
		}
		if err := s.backend.setLifecycle(bucket, raw); err != nil {
			writeS3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
			return
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodDelete:
		if err := s.backend.setLifecycle(bucket, nil); err != nil {
			writeS3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeS3Error(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
}

type tagging struct {
	XMLName xml.Name `xml:"Tagging"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Tags    []lcTag  `xml:"TagSet>Tag"`
}

// serveTagging answers PutObjectTagging, GetObjectTagging and DeleteObjectTagging, which
// gofakes3 does not serve; lifecycle Tag filters match these tags.
func (s *Service) serveTagging(w http.ResponseWriter, r *http.Request, bucket, key string) {
	versionID := r.URL.Query().Get("versionId")
	fail := func(err error) {
		code := gofakes3.ErrNoSuchKey
		var coded interface{ ErrorCode() gofakes3.ErrorCode }
		if errors.As(err, &coded) {
			code = coded.ErrorCode()
		}
		writeS3Error(w, code.Status(), string(code), err.Error())
	}
	switch r.Method {
	case http.MethodGet:
		tags, id, err := s.backend.tags(bucket, key, versionID)
		if err != nil {
			fail(err)
			return
		}
		out := tagging{Xmlns: "http://s3.amazonaws.com/doc/2006-03-01/", Tags: []lcTag{}}
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			out.Tags = append(out.Tags, lcTag{Key: k, Value: tags[k]})
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("x-amz-version-id", id)
		w.Write([]byte(xml.Header))
		xml.NewEncoder(w).Encode(out)
	case http.MethodPut, http.MethodDelete:
		tags := map[string]string{}
		if r.Method == http.MethodPut {
			var in tagging
			raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err == nil {
				err = xml.Unmarshal(raw, &in)
			}
			if err != nil || len(in.Tags) > 10 {
				writeS3Error(w, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
				return
			}
			for _, t := range in.Tags {
				tags[t.Key] = t.Value
			}
		}
		id, err := s.backend.setTags(bucket, key, versionID, tags)
		if err != nil {
			fail(err)
			return
		}
		w.Header().Set("x-amz-version-id", id)
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		writeS3Error(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
}
