package cli

import (
	"errors"
	"strings"
	"testing"
)

func TestTemplateCodeReadsTheCodeKeysOfBothForms(t *testing.T) {
	params := map[string]string{"Bucket": "deploy", "Key": "functions/ab.zip"}
	for _, tc := range []struct{ name, body, want string }{
		{"yaml short forms", `Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Code: {S3Bucket: !Ref Bucket, S3Key: !Ref Key}
  Literal:
    Type: AWS::Lambda::Function
    Properties:
      Code:
        S3Bucket: deploy
        S3Key: functions/cd.zip
  Computed:
    Type: AWS::Lambda::Function
    Properties:
      Code: {S3Bucket: deploy, S3Key: !Sub "functions/${Key}"}
  Other:
    Type: AWS::Lambda::Version
    Properties: {FunctionName: !Ref Fn}
`, "Fn=deploy/functions/ab.zip Literal=deploy/functions/cd.zip"},
		{"json", `{"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"S3Bucket": {"Ref": "Bucket"}, "S3Key": {"Ref": "Key"}}}},
  "Unknown": {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"S3Bucket": {"Ref": "Nope"}, "S3Key": "k.zip"}}}}}`, "Fn=deploy/functions/ab.zip"},
		{"not a template", `:::`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := templateCode(tc.body, params)
			var parts []string
			for _, n := range []string{"Fn", "Literal", "Computed", "Other", "Unknown"} {
				if loc, ok := got[n]; ok {
					parts = append(parts, n+"="+loc[0]+"/"+loc[1])
				}
			}
			if s := strings.Join(parts, " "); s != tc.want {
				t.Errorf("templateCode = %s, want %s", s, tc.want)
			}
		})
	}
}

func TestKeyDigest(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for key, want := range map[string]string{
		"functions/" + hex + ".zip":   hex,
		hex + ".zip":                  hex,
		"functions/" + hex:            "",
		"functions/k1.zip":            "",
		strings.ToUpper(hex) + ".zip": "",
	} {
		if got := keyDigest(key); got != want {
			t.Errorf("keyDigest(%s) = %q, want %q", key, got, want)
		}
	}
	if got, want := codeSha256Of(strings.Repeat("00", 32)), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; got != want {
		t.Errorf("codeSha256Of = %s, want %s", got, want)
	}
}

func TestResolveSkipsRefusesWhatAWSWouldNot(t *testing.T) {
	out := &recoverOutput{Stacks: []*stuckStack{
		{Failed: []failedResource{{Skip: "A", Type: "AWS::CloudFormation::Stack"}}},
		{Path: "A", Failed: []failedResource{{Skip: "A.Fn", Type: "AWS::Lambda::Function"}}},
	}}
	if skip, err := resolveSkips(out, []string{"A.Fn"}); err != nil || !skip["A.Fn"] {
		t.Errorf("skip A.Fn: %v %v", skip, err)
	}
	for _, tc := range []struct{ name, want string }{
		{"A", "a nested stack cannot be skipped"},
		{"A.Perm", "no such resource failed its rollback (those that did: A.Fn)"},
	} {
		_, err := resolveSkips(out, []string{tc.name})
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("skip %s: %v, want a usage error saying %q", tc.name, err, tc.want)
		}
	}
}
