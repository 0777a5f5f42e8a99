package s3

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// backend is a gofakes3 Backend with S3's versioning rules, kept in memory or, with a data
// directory, on disk (object bodies by content hash, and an index written on every change).
type backend struct {
	mu      sync.RWMutex
	dir     string
	now     func() time.Time
	buckets map[string]*bucket
	blobs   map[string][]byte // in-memory bodies by SHA-256, when dir is ""
	seq     uint64
}

var (
	_ gofakes3.Backend          = (*backend)(nil)
	_ gofakes3.VersionedBackend = (*backend)(nil)
)

type bucket struct {
	Name       string
	Created    time.Time
	Versioning gofakes3.VersioningStatus   // "", Enabled or Suspended
	Objects    map[string][]*objectVersion // by key; oldest first, the last is current
	Lifecycle  []byte                      // the stored LifecycleConfiguration XML, if any
}

type objectVersion struct {
	ID           string // "null" for objects written while versioning was never enabled or is suspended
	DeleteMarker bool
	Blob         string // SHA-256 of the body
	Size         int64
	MD5          []byte
	Meta         map[string]string
	LastModified time.Time
	StorageClass string            // "" is STANDARD; lifecycle transitions set others
	Tags         map[string]string // PutObjectTagging's
}

const nullVersion = "null"

func newBackend(dir string, now func() time.Time) (*backend, error) {
	b := &backend{dir: dir, now: now, buckets: map[string]*bucket{}, blobs: map[string][]byte{}}
	if dir == "" {
		return b, nil
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o755); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(b.indexPath())
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	var idx struct {
		Seq     uint64
		Buckets map[string]*bucket
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("read %s: %w", b.indexPath(), err)
	}
	b.seq = idx.Seq
	for name, bk := range idx.Buckets {
		if bk.Objects == nil {
			bk.Objects = map[string][]*objectVersion{}
		}
		b.buckets[name] = bk
	}
	return b, nil
}

func (b *backend) indexPath() string { return filepath.Join(b.dir, "index.json") }

// save writes the index; the caller holds the write lock.
func (b *backend) save() error {
	if b.dir == "" {
		return nil
	}
	raw, err := json.Marshal(struct {
		Seq     uint64
		Buckets map[string]*bucket
	}{b.seq, b.buckets})
	if err != nil {
		return err
	}
	tmp := b.indexPath() + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, b.indexPath())
}

func (b *backend) putBlob(body []byte) (string, error) {
	sum := sha256.Sum256(body)
	key := hex.EncodeToString(sum[:])
	if b.dir == "" {
		b.blobs[key] = body
		return key, nil
	}
	path := filepath.Join(b.dir, "blobs", key)
	if _, err := os.Stat(path); err == nil {
		return key, nil
	}
	tmp, err := os.CreateTemp(filepath.Join(b.dir, "blobs"), key+".tmp-")
	if err != nil {
		return "", err
	}
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return key, os.Rename(tmp.Name(), path)
}

func (b *backend) blob(key string) ([]byte, error) {
	if b.dir == "" {
		body, ok := b.blobs[key]
		if !ok {
			return nil, gofakes3.ErrInternal
		}
		return body, nil
	}
	return os.ReadFile(filepath.Join(b.dir, "blobs", key))
}

// dropUnreferenced removes bodies no version refers to any more; the caller holds the lock.
func (b *backend) dropUnreferenced(candidates ...string) {
	for _, key := range candidates {
		if key == "" || b.referenced(key) {
			continue
		}
		if b.dir == "" {
			delete(b.blobs, key)
		} else {
			os.Remove(filepath.Join(b.dir, "blobs", key))
		}
	}
}

func (b *backend) referenced(blob string) bool {
	for _, bk := range b.buckets {
		for _, vs := range bk.Objects {
			for _, v := range vs {
				if v.Blob == blob {
					return true
				}
			}
		}
	}
	return false
}

func (b *backend) nextVersionID() string {
	b.seq++
	// Sortable by creation, unique, and shaped like S3's 32-character version ids.
	return fmt.Sprintf("%016x%016x", uint64(b.now().UnixNano()), b.seq)
}

func (b *backend) bucket(name string) (*bucket, error) {
	bk, ok := b.buckets[name]
	if !ok {
		return nil, gofakes3.BucketNotFound(name)
	}
	return bk, nil
}

func noSuchKey() error {
	return gofakes3.ErrorMessage(gofakes3.ErrNoSuchKey, "The specified key does not exist.")
}

func noSuchVersion() error {
	return gofakes3.ErrorMessage(gofakes3.ErrNoSuchVersion, "The specified version does not exist.")
}

func (b *backend) ListBuckets() ([]gofakes3.BucketInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []gofakes3.BucketInfo
	for _, name := range slices.Sorted(maps.Keys(b.buckets)) {
		out = append(out, gofakes3.BucketInfo{Name: name, CreationDate: gofakes3.NewContentTime(b.buckets[name].Created)})
	}
	return out, nil
}

func (b *backend) ListBucket(name string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	bk, err := b.bucket(name)
	if err != nil {
		return nil, err
	}
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	out := gofakes3.NewObjectList()
	var match gofakes3.PrefixMatch
	var count int64
	keys := slices.Sorted(maps.Keys(bk.Objects))
	lastPrefix := ""
	for i, key := range keys {
		if page.Marker != "" && (key <= page.Marker || underCommonPrefix(prefix, page.Marker, key)) {
			continue
		}
		vs := bk.Objects[key]
		cur := vs[len(vs)-1]
		if cur.DeleteMarker || !prefix.Match(key, &match) {
			continue
		}
		if match.CommonPrefix {
			if match.MatchedPart == lastPrefix {
				continue
			}
			lastPrefix = match.MatchedPart
			out.AddPrefix(match.MatchedPart)
		} else {
			out.Add(&gofakes3.Content{
				Key: key, LastModified: gofakes3.NewContentTime(cur.LastModified),
				ETag: gofakes3.FormatETag(cur.MD5), Size: cur.Size, StorageClass: "STANDARD",
			})
		}
		count++
		if page.MaxKeys > 0 && count >= page.MaxKeys {
			if b.anyListable(bk, keys[i+1:], prefix, lastPrefix) {
				out.IsTruncated = true
				out.NextMarker = key
				if match.CommonPrefix {
					out.NextMarker = match.MatchedPart
				}
			}
			break
		}
	}
	return out, nil
}

// underCommonPrefix reports whether key was rolled into the common prefix a previous page ended
// with, so that a page never repeats it.
func underCommonPrefix(prefix *gofakes3.Prefix, marker, key string) bool {
	return prefix.HasDelimiter && prefix.Delimiter != "" && strings.HasSuffix(marker, prefix.Delimiter) &&
		strings.HasPrefix(key, marker)
}

func (b *backend) anyListable(bk *bucket, keys []string, prefix *gofakes3.Prefix, lastPrefix string) bool {
	var match gofakes3.PrefixMatch
	for _, key := range keys {
		vs := bk.Objects[key]
		if vs[len(vs)-1].DeleteMarker || !prefix.Match(key, &match) {
			continue
		}
		if match.CommonPrefix && match.MatchedPart == lastPrefix {
			continue
		}
		return true
	}
	return false
}

func (b *backend) CreateBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.buckets[name]; ok {
		return gofakes3.ResourceError(gofakes3.ErrBucketAlreadyExists, name)
	}
	b.buckets[name] = &bucket{Name: name, Created: b.now(), Objects: map[string][]*objectVersion{}}
	return b.save()
}

func (b *backend) BucketExists(name string) (bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.buckets[name]
	return ok, nil
}

func (b *backend) DeleteBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(name)
	if err != nil {
		return err
	}
	if len(bk.Objects) > 0 {
		return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, name)
	}
	delete(b.buckets, name)
	return b.save()
}

func (b *backend) ForceDeleteBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(name)
	if err != nil {
		return err
	}
	var blobs []string
	for _, vs := range bk.Objects {
		for _, v := range vs {
			blobs = append(blobs, v.Blob)
		}
	}
	delete(b.buckets, name)
	b.dropUnreferenced(blobs...)
	return b.save()
}

func (b *backend) object(v *objectVersion, name string, rng *gofakes3.ObjectRangeRequest, withBody bool, versioned bool) (*gofakes3.Object, error) {
	obj := &gofakes3.Object{Name: name, Metadata: maps.Clone(v.Meta), Size: v.Size, Hash: v.MD5, IsDeleteMarker: v.DeleteMarker}
	if versioned {
		obj.VersionID = gofakes3.VersionID(v.ID)
	}
	if obj.Metadata == nil {
		obj.Metadata = map[string]string{}
	}
	obj.Metadata["Last-Modified"] = v.LastModified.UTC().Format(http1123)
	if v.StorageClass != "" && v.StorageClass != "STANDARD" {
		obj.Metadata["X-Amz-Storage-Class"] = v.StorageClass // S3 omits the header for STANDARD
	}
	if !withBody || v.DeleteMarker {
		obj.Contents = io.NopCloser(bytes.NewReader(nil))
		return obj, nil
	}
	body, err := b.blob(v.Blob)
	if err != nil {
		return nil, err
	}
	r, err := rng.Range(v.Size)
	if err != nil {
		return nil, err
	}
	if r != nil {
		body = body[r.Start : r.Start+r.Length]
		obj.Range = r
	}
	obj.Contents = io.NopCloser(bytes.NewReader(body))
	return obj, nil
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

func (b *backend) current(bucketName, key string) (*bucket, *objectVersion, error) {
	bk, err := b.bucket(bucketName)
	if err != nil {
		return nil, nil, err
	}
	vs, ok := bk.Objects[key]
	if !ok || vs[len(vs)-1].DeleteMarker {
		return nil, nil, noSuchKey()
	}
	return bk, vs[len(vs)-1], nil
}

func (b *backend) GetObject(bucketName, key string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	bk, v, err := b.current(bucketName, key)
	if err != nil {
		return nil, err
	}
	return b.object(v, key, rng, true, bk.Versioning != "")
}

func (b *backend) HeadObject(bucketName, key string) (*gofakes3.Object, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	bk, v, err := b.current(bucketName, key)
	if err != nil {
		return nil, err
	}
	return b.object(v, key, nil, false, bk.Versioning != "")
}

// GetBody returns an object's bytes, for Lambda's S3Bucket/S3Key code.
func (b *backend) GetBody(bucketName, key, versionID string) ([]byte, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var v *objectVersion
	if versionID == "" {
		_, cur, err := b.current(bucketName, key)
		if err != nil {
			return nil, err
		}
		v = cur
	} else {
		found, err := b.version(bucketName, key, versionID)
		if err != nil {
			return nil, err
		}
		v = found
	}
	if v.DeleteMarker {
		return nil, noSuchKey()
	}
	return b.blob(v.Blob)
}

// put adds a version as S3's versioning status says: replacing the only ("null") version when
// versioning was never enabled, stacking a new version when enabled, and replacing the "null"
// version while suspended. It returns the bodies no longer referenced.
func (bk *bucket) put(key string, v *objectVersion, id func() string) (dropped []string) {
	vs := bk.Objects[key]
	switch bk.Versioning {
	case gofakes3.VersioningEnabled:
		v.ID = id()
	default:
		v.ID = nullVersion
		kept := vs[:0]
		for _, old := range vs {
			if old.ID == nullVersion {
				dropped = append(dropped, old.Blob)
				continue
			}
			kept = append(kept, old)
		}
		vs = kept
	}
	bk.Objects[key] = append(vs, v)
	return dropped
}

func (b *backend) PutObject(bucketName, key string, meta map[string]string, input io.Reader, size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	body, err := gofakes3.ReadAll(input, size)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	if conditions != nil {
		info := &gofakes3.ConditionalObjectInfo{}
		if vs, ok := bk.Objects[key]; ok && !vs[len(vs)-1].DeleteMarker {
			info.Exists, info.Hash = true, vs[len(vs)-1].MD5
		}
		if err := gofakes3.CheckPutConditions(conditions, info); err != nil {
			return gofakes3.PutObjectResult{}, err
		}
	}
	blob, err := b.putBlob(body)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	sum := md5.Sum(body)
	v := &objectVersion{Blob: blob, Size: int64(len(body)), MD5: sum[:], Meta: maps.Clone(meta), LastModified: b.now()}
	dropped := bk.put(key, v, b.nextVersionID)
	b.dropUnreferenced(dropped...)
	if err := b.save(); err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	var res gofakes3.PutObjectResult
	if bk.Versioning != "" {
		res.VersionID = gofakes3.VersionID(v.ID)
	}
	return res, nil
}

func (b *backend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	return gofakes3.CopyObject(b, srcBucket, srcKey, dstBucket, dstKey, meta)
}

// deleteCurrent is a DELETE without a version id: a delete marker where versioning is (or was)
// on, the object itself where it never was.
func (b *backend) deleteCurrent(bk *bucket, key string) (gofakes3.ObjectDeleteResult, []string) {
	vs, ok := bk.Objects[key]
	if !ok && bk.Versioning == "" {
		return gofakes3.ObjectDeleteResult{}, nil
	}
	if bk.Versioning == "" {
		delete(bk.Objects, key)
		var blobs []string
		for _, v := range vs {
			blobs = append(blobs, v.Blob)
		}
		return gofakes3.ObjectDeleteResult{}, blobs
	}
	marker := &objectVersion{DeleteMarker: true, LastModified: b.now()}
	dropped := bk.put(key, marker, b.nextVersionID)
	return gofakes3.ObjectDeleteResult{IsDeleteMarker: true, VersionID: gofakes3.VersionID(marker.ID)}, dropped
}

func (b *backend) DeleteObject(bucketName, key string) (gofakes3.ObjectDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return gofakes3.ObjectDeleteResult{}, err
	}
	res, dropped := b.deleteCurrent(bk, key)
	b.dropUnreferenced(dropped...)
	return res, b.save()
}

func (b *backend) DeleteMulti(bucketName string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return gofakes3.MultiDeleteResult{}, err
	}
	var res gofakes3.MultiDeleteResult
	for _, key := range keys {
		_, dropped := b.deleteCurrent(bk, key)
		b.dropUnreferenced(dropped...)
		res.Deleted = append(res.Deleted, gofakes3.ObjectID{Key: key})
	}
	return res, b.save()
}

func (b *backend) VersioningConfiguration(bucketName string) (gofakes3.VersioningConfiguration, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return gofakes3.VersioningConfiguration{}, err
	}
	return gofakes3.VersioningConfiguration{Status: bk.Versioning}, nil
}

func (b *backend) SetVersioningConfiguration(bucketName string, v gofakes3.VersioningConfiguration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return err
	}
	switch {
	case v.Status == gofakes3.VersioningEnabled:
		bk.Versioning = gofakes3.VersioningEnabled
	case v.Status == gofakes3.VersioningSuspended && bk.Versioning != "":
		bk.Versioning = gofakes3.VersioningSuspended
	}
	return b.save()
}

func (b *backend) version(bucketName, key, id string) (*objectVersion, error) {
	bk, err := b.bucket(bucketName)
	if err != nil {
		return nil, err
	}
	for _, v := range bk.Objects[key] {
		if v.ID == id {
			return v, nil
		}
	}
	return nil, noSuchVersion()
}

func (b *backend) GetObjectVersion(bucketName, key string, id gofakes3.VersionID, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	if id == "" {
		return b.GetObject(bucketName, key, rng)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	v, err := b.version(bucketName, key, string(id))
	if err != nil {
		return nil, err
	}
	if v.DeleteMarker {
		return nil, gofakes3.ErrorMessage(gofakes3.ErrMethodNotAllowed, "The specified method is not allowed against this resource.")
	}
	return b.object(v, key, rng, true, true)
}

func (b *backend) HeadObjectVersion(bucketName, key string, id gofakes3.VersionID) (*gofakes3.Object, error) {
	if id == "" {
		return b.HeadObject(bucketName, key)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	v, err := b.version(bucketName, key, string(id))
	if err != nil {
		return nil, err
	}
	return b.object(v, key, nil, false, true)
}

func (b *backend) DeleteObjectVersion(bucketName, key string, id gofakes3.VersionID) (gofakes3.ObjectDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return gofakes3.ObjectDeleteResult{}, err
	}
	vs := bk.Objects[key]
	for i, v := range vs {
		if v.ID != string(id) {
			continue
		}
		vs = append(vs[:i:i], vs[i+1:]...)
		if len(vs) == 0 {
			delete(bk.Objects, key)
		} else {
			bk.Objects[key] = vs
		}
		b.dropUnreferenced(v.Blob)
		return gofakes3.ObjectDeleteResult{IsDeleteMarker: v.DeleteMarker, VersionID: id}, b.save()
	}
	// S3 answers success for a version that does not exist.
	return gofakes3.ObjectDeleteResult{VersionID: id}, nil
}

func (b *backend) DeleteMultiVersions(bucketName string, objects ...gofakes3.ObjectID) (gofakes3.MultiDeleteResult, error) {
	var res gofakes3.MultiDeleteResult
	for _, o := range objects {
		var err error
		if o.VersionID != "" {
			_, err = b.DeleteObjectVersion(bucketName, o.Key, gofakes3.VersionID(o.VersionID))
		} else {
			_, err = b.DeleteObject(bucketName, o.Key)
		}
		if err != nil {
			res.Error = append(res.Error, gofakes3.ErrorResultFromError(err))
			continue
		}
		res.Deleted = append(res.Deleted, o)
	}
	return res, nil
}

// ListBucketVersions lists keys in order and, within a key, versions newest first, as S3 does.
func (b *backend) ListBucketVersions(bucketName string, prefix *gofakes3.Prefix, page *gofakes3.ListBucketVersionsPage) (*gofakes3.ListBucketVersionsResult, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	if page == nil {
		page = &gofakes3.ListBucketVersionsPage{}
	}
	res := gofakes3.NewListBucketVersionsResult(bucketName, prefix, page)
	bk, err := b.bucket(bucketName)
	if err != nil {
		return res, err
	}
	maxKeys := page.MaxKeys
	if maxKeys <= 0 {
		maxKeys = gofakes3.DefaultBucketVersionKeys
	}
	res.MaxKeys = maxKeys
	keys := slices.Sorted(maps.Keys(bk.Objects))
	var match gofakes3.PrefixMatch
	var count int64
	var lastKey, lastID string
	passedMarker := false
	for _, key := range keys {
		if page.HasKeyMarker && key < page.KeyMarker {
			continue
		}
		if !prefix.Match(key, &match) {
			continue
		}
		if match.CommonPrefix {
			res.AddPrefix(match.MatchedPart)
			continue
		}
		vs := bk.Objects[key]
		for i := len(vs) - 1; i >= 0; i-- {
			v := vs[i]
			if page.HasKeyMarker && key == page.KeyMarker {
				// The markers name the last version listed before: continue after it.
				if !page.HasVersionIDMarker {
					break
				}
				if !passedMarker {
					passedMarker = v.ID == string(page.VersionIDMarker)
					continue
				}
			}
			if count >= maxKeys {
				res.IsTruncated = true
				res.NextKeyMarker, res.NextVersionIDMarker = lastKey, gofakes3.VersionID(lastID)
				return res, nil
			}
			latest := i == len(vs)-1
			if v.DeleteMarker {
				res.Versions = append(res.Versions, &gofakes3.DeleteMarker{
					Key: key, VersionID: gofakes3.VersionID(v.ID), IsLatest: latest, LastModified: gofakes3.NewContentTime(v.LastModified),
				})
			} else {
				res.Versions = append(res.Versions, &gofakes3.Version{
					Key: key, VersionID: gofakes3.VersionID(v.ID), IsLatest: latest, LastModified: gofakes3.NewContentTime(v.LastModified),
					Size: v.Size, ETag: gofakes3.FormatETag(v.MD5), StorageClass: storageClassOf(v),
				})
			}
			count++
			lastKey, lastID = key, v.ID
		}
	}
	return res, nil
}

// lifecycle returns a bucket's stored lifecycle configuration.
func (b *backend) lifecycle(bucketName string) ([]byte, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return nil, err
	}
	return bk.Lifecycle, nil
}

func (b *backend) setLifecycle(bucketName string, raw []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.bucket(bucketName)
	if err != nil {
		return err
	}
	bk.Lifecycle = raw
	return b.save()
}

// keys lists every key under a prefix, for tests and the sandbox's admin view.
func (b *backend) keys(bucketName, prefix string) []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	bk, ok := b.buckets[bucketName]
	if !ok {
		return nil
	}
	var out []string
	for k, vs := range bk.Objects {
		if strings.HasPrefix(k, prefix) && !vs[len(vs)-1].DeleteMarker {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func storageClassOf(v *objectVersion) gofakes3.StorageClass {
	if v.StorageClass == "" {
		return gofakes3.StorageStandard
	}
	return gofakes3.StorageClass(v.StorageClass)
}

// tags returns the tags of the version a tagging call names.
func (b *backend) tags(bucketName, key, versionID string) (map[string]string, string, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	v, err := b.tagged(bucketName, key, versionID)
	if err != nil {
		return nil, "", err
	}
	return maps.Clone(v.Tags), v.ID, nil
}

func (b *backend) setTags(bucketName, key, versionID string, tags map[string]string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, err := b.tagged(bucketName, key, versionID)
	if err != nil {
		return "", err
	}
	v.Tags = tags
	return v.ID, b.save()
}

func (b *backend) tagged(bucketName, key, versionID string) (*objectVersion, error) {
	if versionID != "" {
		return b.version(bucketName, key, versionID)
	}
	_, v, err := b.current(bucketName, key)
	return v, err
}
