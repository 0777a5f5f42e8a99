package manifest_test

import (
	"strings"
	"testing"

	"github.com/aviary-deploy/aviary/manifest"
)

func TestParseImage(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for in, want := range map[string]manifest.Image{
		"shop/api:v1": {Repository: "shop/api", Tag: "v1"},
		"shop/api":    {Repository: "shop/api", Tag: "latest"},
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com/api@" + digest: {Registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", Repository: "api", Digest: digest},
		"127.0.0.1:4566/shop/api:v2":                                 {Registry: "127.0.0.1:4566", Repository: "shop/api", Tag: "v2"},
	} {
		got, err := manifest.ParseImage(in)
		if err != nil {
			t.Errorf("ParseImage(%q): %v", in, err)
			continue
		}
		want.Raw = in
		if got != want {
			t.Errorf("ParseImage(%q) = %+v, want %+v", in, got, want)
		}
	}
	for _, bad := range []string{"Shop/API:v1", "api@sha256:short", "api:bad tag", "a"} {
		if _, err := manifest.ParseImage(bad); err == nil {
			t.Errorf("ParseImage(%q) accepted it", bad)
		}
	}
}

func TestImageFunctions(t *testing.T) {
	body := strings.Replace(good, "  static:\n    dir: static\n", "  static:\n    dir: static\n  web:\n    image: shop/web:v3\n", 1)
	m, err := manifest.Load(write(t, body))
	if err != nil {
		t.Fatal(err)
	}
	var web manifest.Function
	for _, fn := range m.Functions {
		if fn.Name == "web" {
			web = fn
		}
	}
	if web.Image == nil || web.Image.Repository != "shop/web" || web.Image.Tag != "v3" || web.Zip != "" || web.Build != nil {
		t.Errorf("web = %+v", web)
	}
	for name, tc := range map[string]struct{ body, want string }{
		"image and zip": {"  web:\n    image: shop/web:v3\n    zip: built.zip\n", "functions.web: needs exactly one of"},
		"bad image":     {"  web:\n    image: Shop/Web\n", "functions.web.image:"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := manifest.Load(write(t, strings.Replace(good, "  static:\n    dir: static\n", "  static:\n    dir: static\n"+tc.body, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
