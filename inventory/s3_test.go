package inventory

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Every way S3 spells a rule's scope (the legacy top-level Prefix, Filter's Prefix, Tag and size
// bounds, And's) flattens to one LifecycleRule.
func TestLifecycleRuleFlattensFilters(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   s3types.LifecycleRule
		want LifecycleRule
	}{
		{"legacy prefix", s3types.LifecycleRule{ID: aws.String("a"), Status: s3types.ExpirationStatusEnabled, Prefix: aws.String("releases/"),
			Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(30)}},
			LifecycleRule{ID: "a", Enabled: true, Prefix: "releases/", ExpirationDays: 30}},
		{"filter prefix, disabled", s3types.LifecycleRule{ID: aws.String("b"), Status: s3types.ExpirationStatusDisabled, Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("x/")},
			Expiration: &s3types.LifecycleExpiration{ExpiredObjectDeleteMarker: aws.Bool(true)}},
			LifecycleRule{ID: "b", Prefix: "x/", ExpiredObjectDeleteMarker: true}},
		{"tag and size", s3types.LifecycleRule{ID: aws.String("c"), Status: s3types.ExpirationStatusEnabled,
			Filter:      &s3types.LifecycleRuleFilter{Tag: &s3types.Tag{Key: aws.String("tmp"), Value: aws.String("1")}},
			Transitions: []s3types.Transition{{Days: aws.Int32(90), StorageClass: s3types.TransitionStorageClassDeepArchive}}},
			LifecycleRule{ID: "c", Enabled: true, Tags: map[string]string{"tmp": "1"}, Transitions: []Transition{{Days: 90, StorageClass: "DEEP_ARCHIVE"}}}},
		{"and", s3types.LifecycleRule{ID: aws.String("d"), Status: s3types.ExpirationStatusEnabled,
			Filter: &s3types.LifecycleRuleFilter{And: &s3types.LifecycleRuleAndOperator{Prefix: aws.String("releases/shop/"), ObjectSizeGreaterThan: aws.Int64(10), ObjectSizeLessThan: aws.Int64(100),
				Tags: []s3types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}},
			NoncurrentVersionExpiration:  &s3types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(7)},
			NoncurrentVersionTransitions: []s3types.NoncurrentVersionTransition{{NoncurrentDays: aws.Int32(3), StorageClass: s3types.TransitionStorageClassGlacier}}},
			LifecycleRule{ID: "d", Enabled: true, Prefix: "releases/shop/", SizeGreaterThan: 10, SizeLessThan: 100, Tags: map[string]string{"k": "v"},
				NoncurrentExpires: true, NoncurrentExpirationDays: 7, NoncurrentTransitions: []Transition{{Days: 3, StorageClass: "GLACIER"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lifecycleRule(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("lifecycleRule = %+v, want %+v", got, tc.want)
			}
		})
	}
}
