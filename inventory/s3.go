package inventory

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3API is the part of *s3.Client the inventory reads the artifact bucket with.
type S3API interface {
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetBucketLifecycleConfiguration(context.Context, *s3.GetBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.GetBucketLifecycleConfigurationOutput, error)
	GetBucketVersioning(context.Context, *s3.GetBucketVersioningInput, ...func(*s3.Options)) (*s3.GetBucketVersioningOutput, error)
}

// HeadAPI reads one object, and lists its key when HeadObject is forbidden (see HeadObject).
type HeadAPI interface {
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListAPI
}

// ListAPI lists a bucket's keys.
type ListAPI interface {
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// AccountAPI is the part of *lambda.Client that reads the account's code storage.
type AccountAPI interface {
	GetAccountSettings(context.Context, *lambda.GetAccountSettingsInput, ...func(*lambda.Options)) (*lambda.GetAccountSettingsOutput, error)
}

var (
	_ S3API      = (*s3.Client)(nil)
	_ AccountAPI = (*lambda.Client)(nil)
)

// Object is one object of the artifact bucket, as a listing or HeadObject reports it.
type Object struct {
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	LastModified time.Time `json:"lastModified"`
	// ChecksumSHA256 is the SHA-256 S3 recorded at upload (base64), when the uploader sent one
	// and the object is not multipart; empty otherwise. Only HeadObject reports it.
	ChecksumSHA256 string `json:"checksumSha256,omitempty"`
	// StorageClass is STANDARD when S3 names none.
	StorageClass string `json:"storageClass,omitempty"`
	// ArchiveStatus is INTELLIGENT_TIERING's archive tier (ARCHIVE_ACCESS, DEEP_ARCHIVE_ACCESS)
	// when the object is in one; empty otherwise. Only HeadObject reports it.
	ArchiveStatus string `json:"archiveStatus,omitempty"`
}

// ListObjects lists every object under prefix, every page.
func ListObjects(ctx context.Context, c S3API, bucket, prefix string) ([]Object, error) {
	var out []Object
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	p := s3.NewListObjectsV2Paginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			sc := string(o.StorageClass)
			if sc == "" {
				sc = "STANDARD"
			}
			out = append(out, Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), LastModified: aws.ToTime(o.LastModified), StorageClass: sc})
		}
	}
	return out, nil
}

// HeadObject reads one object's size, checksum and storage class; found is false when there is
// no such key.
//
// S3 answers a HeadObject of a missing key with 404 only when the caller may list the bucket
// (s3:ListBucket); without that permission it answers 403. The policy `aviary iam-policy`
// writes grants s3:ListBucket only on the condition s3:prefix = PREFIX/*, which S3 does not
// apply to HeadObject: a missing artifact then answers 403. So a 403 is followed by a
// ListObjectsV2 with Prefix=key (which the condition allows): a key not listed is missing; a
// listed one, or a listing that fails too, is the HeadObject's error.
func HeadObject(ctx context.Context, c HeadAPI, bucket, key string) (obj Object, found bool, err error) {
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: s3types.ChecksumModeEnabled})
	if err != nil {
		if NotFound(err) {
			return Object{Key: key}, false, nil
		}
		if Forbidden(err) {
			if listed, lerr := KeyListed(ctx, c, bucket, key); lerr == nil && !listed {
				return Object{Key: key}, false, nil
			}
		}
		return Object{Key: key}, false, fmt.Errorf("head s3://%s/%s: %w", bucket, key, err)
	}
	sc := string(out.StorageClass)
	if sc == "" {
		sc = "STANDARD" // S3 omits the header for STANDARD
	}
	return Object{Key: key, Size: aws.ToInt64(out.ContentLength), LastModified: aws.ToTime(out.LastModified),
		ChecksumSHA256: aws.ToString(out.ChecksumSHA256), StorageClass: sc, ArchiveStatus: string(out.ArchiveStatus)}, true, nil
}

// NotFound reports whether S3 answered that the key does not exist.
func NotFound(err error) bool {
	var nf *s3types.NotFound
	var nk *s3types.NoSuchKey
	return errors.As(err, &nf) || errors.As(err, &nk)
}

// Forbidden reports whether S3 refused a request: AccessDenied (with a body), or Forbidden / a
// bare 403 (HeadObject's answer has no body, so the SDK knows only the status).
func Forbidden(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDenied", "Forbidden":
			return true
		}
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden
}

// KeyListed reports whether ListObjectsV2 with Prefix=key lists key itself: whether it exists,
// asked in a way a prefix-conditioned s3:ListBucket allows.
func KeyListed(ctx context.Context, c ListAPI, bucket, key string) (bool, error) {
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return false, fmt.Errorf("list s3://%s/%s: %w", bucket, key, err)
		}
		for _, o := range page.Contents {
			if aws.ToString(o.Key) == key {
				return true, nil
			}
		}
	}
	return false, nil
}

// Transition moves objects to another storage class after Days (or on Date).
type Transition struct {
	Days         int32      `json:"days,omitempty"`
	Date         *time.Time `json:"date,omitempty"`
	StorageClass string     `json:"storageClass"`
}

// LifecycleRule is one rule of the bucket's lifecycle configuration, its filter flattened: the
// legacy top-level Prefix, Filter.Prefix and Filter.And.Prefix all land in Prefix; Tag and
// And.Tags in Tags; the size bounds likewise (0: none).
type LifecycleRule struct {
	ID      string `json:"id"`
	Enabled bool   `json:"enabled"`

	Prefix          string            `json:"prefix,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	SizeGreaterThan int64             `json:"objectSizeGreaterThan,omitempty"`
	SizeLessThan    int64             `json:"objectSizeLessThan,omitempty"`

	ExpirationDays            int32      `json:"expirationDays,omitempty"`
	ExpirationDate            *time.Time `json:"expirationDate,omitempty"`
	ExpiredObjectDeleteMarker bool       `json:"expiredObjectDeleteMarker,omitempty"`
	NoncurrentExpirationDays  int32      `json:"noncurrentExpirationDays,omitempty"`
	// NoncurrentExpires says the rule has a NoncurrentVersionExpiration at all (NoncurrentDays
	// may be absent when only NewerNoncurrentVersions is set).
	NoncurrentExpires     bool         `json:"noncurrentExpires,omitempty"`
	Transitions           []Transition `json:"transitions,omitempty"`
	NoncurrentTransitions []Transition `json:"noncurrentTransitions,omitempty"`
}

// Lifecycle reads the bucket's lifecycle rules; a bucket without a configuration has none.
func Lifecycle(ctx context.Context, c S3API, bucket string) ([]LifecycleRule, error) {
	out, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchLifecycleConfiguration" {
			return nil, nil
		}
		return nil, fmt.Errorf("read the lifecycle configuration of %s: %w", bucket, err)
	}
	rules := make([]LifecycleRule, 0, len(out.Rules))
	for _, r := range out.Rules {
		rules = append(rules, lifecycleRule(r))
	}
	return rules, nil
}

func lifecycleRule(r s3types.LifecycleRule) LifecycleRule {
	lr := LifecycleRule{ID: aws.ToString(r.ID), Enabled: r.Status == s3types.ExpirationStatusEnabled, Prefix: aws.ToString(r.Prefix)}
	addTag := func(t s3types.Tag) {
		if lr.Tags == nil {
			lr.Tags = map[string]string{}
		}
		lr.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if f := r.Filter; f != nil {
		if f.Prefix != nil {
			lr.Prefix = *f.Prefix
		}
		if f.Tag != nil {
			addTag(*f.Tag)
		}
		lr.SizeGreaterThan, lr.SizeLessThan = aws.ToInt64(f.ObjectSizeGreaterThan), aws.ToInt64(f.ObjectSizeLessThan)
		if a := f.And; a != nil {
			if a.Prefix != nil {
				lr.Prefix = *a.Prefix
			}
			for _, t := range a.Tags {
				addTag(t)
			}
			if a.ObjectSizeGreaterThan != nil {
				lr.SizeGreaterThan = *a.ObjectSizeGreaterThan
			}
			if a.ObjectSizeLessThan != nil {
				lr.SizeLessThan = *a.ObjectSizeLessThan
			}
		}
	}
	if e := r.Expiration; e != nil {
		lr.ExpirationDays, lr.ExpirationDate = aws.ToInt32(e.Days), e.Date
		lr.ExpiredObjectDeleteMarker = aws.ToBool(e.ExpiredObjectDeleteMarker)
	}
	if n := r.NoncurrentVersionExpiration; n != nil {
		lr.NoncurrentExpires, lr.NoncurrentExpirationDays = true, aws.ToInt32(n.NoncurrentDays)
	}
	for _, t := range r.Transitions {
		lr.Transitions = append(lr.Transitions, Transition{Days: aws.ToInt32(t.Days), Date: t.Date, StorageClass: string(t.StorageClass)})
	}
	for _, t := range r.NoncurrentVersionTransitions {
		lr.NoncurrentTransitions = append(lr.NoncurrentTransitions, Transition{Days: aws.ToInt32(t.NoncurrentDays), StorageClass: string(t.StorageClass)})
	}
	return lr
}

// Versioning is the bucket's versioning status: "" (never enabled), Enabled or Suspended.
func Versioning(ctx context.Context, c S3API, bucket string) (string, error) {
	out, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	if err != nil {
		return "", fmt.Errorf("read the versioning of %s: %w", bucket, err)
	}
	return string(out.Status), nil
}

// CodeStorage is the account's Lambda code storage in the region: what the functions' code and
// layers use against the quota (75 GB by default).
type CodeStorage struct {
	Used  int64 `json:"used"`
	Limit int64 `json:"limit"`
}

// AccountCodeStorage reads the region's code storage from GetAccountSettings.
func AccountCodeStorage(ctx context.Context, c AccountAPI) (CodeStorage, error) {
	out, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		return CodeStorage{}, fmt.Errorf("read the Lambda account settings: %w", err)
	}
	var cs CodeStorage
	if out.AccountUsage != nil {
		cs.Used = out.AccountUsage.TotalCodeSize
	}
	if out.AccountLimit != nil {
		cs.Limit = out.AccountLimit.TotalCodeSize
	}
	return cs, nil
}
