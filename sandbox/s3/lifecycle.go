package s3

import (
	"encoding/xml"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Lifecycle rules are stored as S3 stores them and, on request (ApplyLifecycle, or the admin call
// POST /_aviary/s3/lifecycle/apply), run once as S3 would run them after some days had passed, so
// a rehearsal can see what a rule would remove. What runs:
//
//   - Expiration (Days or Date): an unversioned bucket loses the current object; a versioned one
//     gets a delete marker on it. ExpiredObjectDeleteMarker removes a delete marker that is the
//     only version left of its key.
//   - NoncurrentVersionExpiration: noncurrent versions older than NoncurrentDays (counted from
//     when a newer version replaced them) are removed, keeping the NewerNoncurrentVersions newest.
//   - Transition and NoncurrentVersionTransition set the storage class (HeadObject then reports
//     x-amz-storage-class; GetObject of GLACIER or DEEP_ARCHIVE answers 403 InvalidObjectState).
//   - Filters: Prefix (legacy and Filter.Prefix), Filter.Tag, ObjectSizeGreaterThan/LessThan and
//     And; tags are those set with PutObjectTagging or the x-amz-tagging header.
//
// AbortIncompleteMultipartUpload is ignored, Disabled rules do nothing, and ages are exact (S3
// rounds to the next midnight UTC; the sandbox does not).

// LifecycleOptions chooses what ApplyLifecycle runs.
type LifecycleOptions struct {
	// Bucket limits the run to one bucket; empty runs every bucket's rules.
	Bucket string `json:"bucket,omitempty"`
	// Days runs the rules as if this many more days had passed. Nil runs every action whatever
	// its Days or Date, as if all of them had passed.
	Days *int `json:"days,omitempty"`
}

// LifecycleReport says what ApplyLifecycle did.
type LifecycleReport struct {
	Expired              []ObjectRef  `json:"expired"`
	DeleteMarkersRemoved []ObjectRef  `json:"deleteMarkersRemoved"`
	NoncurrentRemoved    []ObjectRef  `json:"noncurrentRemoved"`
	Transitioned         []Transition `json:"transitioned"`
}

// ObjectRef names an object version.
type ObjectRef struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"versionId,omitempty"`
	Rule      string `json:"rule,omitempty"`
}

// Transition is an object version moved to another storage class.
type Transition struct {
	ObjectRef
	StorageClass string `json:"storageClass"`
}

type lcConfig struct {
	Rules []lcRule `xml:"Rule"`
}

type lcRule struct {
	ID         string    `xml:"ID"`
	Status     string    `xml:"Status"`
	Prefix     *string   `xml:"Prefix"`
	Filter     *lcFilter `xml:"Filter"`
	Expiration *struct {
		Days                      *int   `xml:"Days"`
		Date                      string `xml:"Date"`
		ExpiredObjectDeleteMarker *bool  `xml:"ExpiredObjectDeleteMarker"`
	} `xml:"Expiration"`
	NoncurrentVersionExpiration *struct {
		NoncurrentDays          *int `xml:"NoncurrentDays"`
		NewerNoncurrentVersions *int `xml:"NewerNoncurrentVersions"`
	} `xml:"NoncurrentVersionExpiration"`
	Transitions []struct {
		Days         *int   `xml:"Days"`
		Date         string `xml:"Date"`
		StorageClass string `xml:"StorageClass"`
	} `xml:"Transition"`
	NoncurrentVersionTransitions []struct {
		NoncurrentDays          *int   `xml:"NoncurrentDays"`
		NewerNoncurrentVersions *int   `xml:"NewerNoncurrentVersions"`
		StorageClass            string `xml:"StorageClass"`
	} `xml:"NoncurrentVersionTransition"`
}

type lcTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type lcFilter struct {
	Prefix                *string `xml:"Prefix"`
	Tag                   *lcTag  `xml:"Tag"`
	ObjectSizeGreaterThan *int64  `xml:"ObjectSizeGreaterThan"`
	ObjectSizeLessThan    *int64  `xml:"ObjectSizeLessThan"`
	And                   *struct {
		Prefix                *string `xml:"Prefix"`
		Tags                  []lcTag `xml:"Tag"`
		ObjectSizeGreaterThan *int64  `xml:"ObjectSizeGreaterThan"`
		ObjectSizeLessThan    *int64  `xml:"ObjectSizeLessThan"`
	} `xml:"And"`
}

// matches reports whether a rule's filter selects an object version.
func (r *lcRule) matches(key string, v *objectVersion) bool {
	prefix := ""
	if r.Prefix != nil {
		prefix = *r.Prefix
	}
	var tags []lcTag
	var gt, lt *int64
	if f := r.Filter; f != nil {
		if f.Prefix != nil {
			prefix = *f.Prefix
		}
		if f.Tag != nil {
			tags = append(tags, *f.Tag)
		}
		gt, lt = f.ObjectSizeGreaterThan, f.ObjectSizeLessThan
		if a := f.And; a != nil {
			if a.Prefix != nil {
				prefix = *a.Prefix
			}
			tags = append(tags, a.Tags...)
			if a.ObjectSizeGreaterThan != nil {
				gt = a.ObjectSizeGreaterThan
			}
			if a.ObjectSizeLessThan != nil {
				lt = a.ObjectSizeLessThan
			}
		}
	}
	if !strings.HasPrefix(key, prefix) {
		return false
	}
	for _, t := range tags {
		if got, ok := v.Tags[t.Key]; !ok || got != t.Value {
			return false
		}
	}
	if !v.DeleteMarker {
		if gt != nil && v.Size <= *gt {
			return false
		}
		if lt != nil && v.Size >= *lt {
			return false
		}
	}
	return true
}

// due decides whether an action with the given Days or Date is due, asOf being now plus the
// days asked for; all means every action is due.
func due(days *int, date string, since, asOf time.Time, all bool) bool {
	if all {
		return days != nil || date != ""
	}
	if date != "" {
		d, err := time.Parse(time.RFC3339, date)
		if err != nil {
			d, err = time.Parse("2006-01-02", date)
		}
		return err == nil && !asOf.Before(d)
	}
	return days != nil && !asOf.Before(since.Add(time.Duration(*days)*24*time.Hour))
}

// ApplyLifecycle runs the enabled lifecycle rules as S3 would after opts.Days more days.
func (s *Service) ApplyLifecycle(opts LifecycleOptions) (LifecycleReport, error) {
	return s.backend.applyLifecycle(opts)
}

func (b *backend) applyLifecycle(opts LifecycleOptions) (LifecycleReport, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rep := LifecycleReport{Expired: []ObjectRef{}, DeleteMarkersRemoved: []ObjectRef{}, NoncurrentRemoved: []ObjectRef{}, Transitioned: []Transition{}}
	names := slices.Sorted(maps.Keys(b.buckets))
	if opts.Bucket != "" {
		if _, err := b.bucket(opts.Bucket); err != nil {
			return rep, err
		}
		names = []string{opts.Bucket}
	}
	all := opts.Days == nil
	asOf := b.now()
	if !all {
		asOf = asOf.Add(time.Duration(*opts.Days) * 24 * time.Hour)
	}
	var dropped []string
	for _, name := range names {
		bk := b.buckets[name]
		if len(bk.Lifecycle) == 0 {
			continue
		}
		var cfg lcConfig
		if err := xml.Unmarshal(bk.Lifecycle, &cfg); err != nil {
			return rep, fmt.Errorf("lifecycle of %s: %w", name, err)
		}
		for _, r := range cfg.Rules {
			if r.Status != "Enabled" {
				continue
			}
			dropped = append(dropped, b.applyRule(bk, &r, asOf, all, &rep)...)
		}
	}
	b.dropUnreferenced(dropped...)
	return rep, b.save()
}

// applyRule runs one rule over a bucket: noncurrent versions first, then current ones, then
// delete markers left alone.
func (b *backend) applyRule(bk *bucket, r *lcRule, asOf time.Time, all bool, rep *LifecycleReport) (dropped []string) {
	ref := func(key string, v *objectVersion) ObjectRef {
		id := ""
		if bk.Versioning != "" {
			id = v.ID
		}
		return ObjectRef{Bucket: bk.Name, Key: key, VersionID: id, Rule: r.ID}
	}
	for _, key := range slices.Sorted(maps.Keys(bk.Objects)) {
		vs := bk.Objects[key]
		// Noncurrent versions, newest first; each became noncurrent when the next one was written.
		if n := r.NoncurrentVersionExpiration; n != nil || len(r.NoncurrentVersionTransitions) > 0 {
			var keep []*objectVersion
			newer := 0
			for i := len(vs) - 2; i >= 0; i-- {
				v := vs[i]
				since := vs[i+1].LastModified
				if v.DeleteMarker || !r.matches(key, v) {
					keep = append(keep, v)
					continue
				}
				newer++
				if n != nil && due(n.NoncurrentDays, "", since, asOf, all) &&
					(n.NewerNoncurrentVersions == nil || newer > *n.NewerNoncurrentVersions) {
					rep.NoncurrentRemoved = append(rep.NoncurrentRemoved, ref(key, v))
					dropped = append(dropped, v.Blob)
					continue
				}
				for _, t := range r.NoncurrentVersionTransitions {
					if due(t.NoncurrentDays, "", since, asOf, all) && (t.NewerNoncurrentVersions == nil || newer > *t.NewerNoncurrentVersions) &&
						v.StorageClass != t.StorageClass {
						v.StorageClass = t.StorageClass
						rep.Transitioned = append(rep.Transitioned, Transition{ObjectRef: ref(key, v), StorageClass: t.StorageClass})
					}
				}
				keep = append(keep, v)
			}
			slices.Reverse(keep)
			vs = append(keep, vs[len(vs)-1])
			bk.Objects[key] = vs
		}
		cur := vs[len(vs)-1]
		if !cur.DeleteMarker && r.matches(key, cur) {
			if x := r.Expiration; x != nil && due(x.Days, x.Date, cur.LastModified, asOf, all) {
				rep.Expired = append(rep.Expired, ref(key, cur))
				_, d := b.deleteCurrent(bk, key)
				dropped = append(dropped, d...)
				continue
			}
			for _, t := range r.Transitions {
				if due(t.Days, t.Date, cur.LastModified, asOf, all) && cur.StorageClass != t.StorageClass {
					cur.StorageClass = t.StorageClass
					rep.Transitioned = append(rep.Transitioned, Transition{ObjectRef: ref(key, cur), StorageClass: t.StorageClass})
				}
			}
		}
		if x := r.Expiration; x != nil && x.ExpiredObjectDeleteMarker != nil && *x.ExpiredObjectDeleteMarker &&
			len(vs) == 1 && cur.DeleteMarker && r.matches(key, cur) {
			rep.DeleteMarkersRemoved = append(rep.DeleteMarkersRemoved, ref(key, cur))
			delete(bk.Objects, key)
		}
	}
	return dropped
}

// archived reports whether an object version sits in a storage class GetObject cannot read
// without a restore.
func archived(class string) bool { return class == "GLACIER" || class == "DEEP_ARCHIVE" }

// storageClass is the storage class of the version a GET or HEAD names ("" for STANDARD).
func (b *backend) storageClass(bucketName, key, versionID string) string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var v *objectVersion
	if versionID == "" {
		_, cur, err := b.current(bucketName, key)
		if err != nil {
			return ""
		}
		v = cur
	} else {
		found, err := b.version(bucketName, key, versionID)
		if err != nil {
			return ""
		}
		v = found
	}
	return v.StorageClass
}
