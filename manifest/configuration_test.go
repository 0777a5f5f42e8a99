package manifest_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aviary-deploy/aviary/manifest"
)

const configured = `service: shop
artifacts:
  bucket: shop-artifacts
functions:
  api:
    dir: static
    configuration:
      environment:
        GREETING: hello
        DB_PASSWORD: "{{ssm:/shop/db/password}}"
        BUILD: "v-${GIT_SHA}"
      memory: 512
      timeout: 30
      layers: ["arn:aws:lambda:eu-west-1:123456789012:layer:otel:7"]
      architectures: [arm64]
environments:
  staging:
    strategy: all-at-once
`

func TestConfiguration(t *testing.T) {
	m, err := manifest.Load(write(t, configured))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Functions[0].Configuration
	want := &manifest.Configuration{
		Environment:   map[string]string{"GREETING": "hello", "DB_PASSWORD": "{{ssm:/shop/db/password}}", "BUILD": "v-${GIT_SHA}"},
		MemorySize:    512,
		Timeout:       30,
		Layers:        []string{"arn:aws:lambda:eu-west-1:123456789012:layer:otel:7"},
		Architectures: []string{"arm64"},
		Line:          got.Line,
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("configuration:\n got %+v\nwant %+v", got, want)
	}
	if got, want := strings.Join(got.Fields(), ","), "environment,memory,timeout,layers,architectures"; got != want {
		t.Errorf("Fields() = %s, want %s", got, want)
	}
}

// What Lambda refuses is refused when the manifest is read, naming the function and the field.
func TestConfigurationProblems(t *testing.T) {
	for name, tc := range map[string]struct{ from, to, want string }{
		"unknown key":      {"      memory: 512", "      memroy: 512", `functions.api.configuration.memroy: unknown field "memroy" (did you mean "memory"?)`},
		"memory 50":        {"memory: 512", "memory: 50", "functions.api.configuration.memory: 50 is outside what Lambda accepts (128–10240 MB of memory)"},
		"timeout 901":      {"timeout: 30", "timeout: 901", "functions.api.configuration.timeout: 901 is outside"},
		"reserved key":     {"GREETING: hello", "AWS_REGION: x", "functions.api.configuration.environment.AWS_REGION: AWS_REGION is reserved"},
		"bad key":          {"GREETING: hello", "9LIVES: x", `environment.9LIVES: "9LIVES" is not a name Lambda accepts`},
		"number value":     {"GREETING: hello", "GREETING: {a: 1}", "environment.GREETING: must be a string"},
		"bad reference":    {"v-${GIT_SHA}", "v-${GIT SHA}", "environment.BUILD: ${GIT SHA} is not an environment variable reference"},
		"bad ssm":          {"{{ssm:/shop/db/password}}", "{{ssm:}}", "environment.DB_PASSWORD: {{ssm:}} does not name an SSM parameter"},
		"layer ARN":        {"layer:otel:7", "layer:otel", "functions.api.configuration.layers[0]: "},
		"six layers":       {`layers: ["arn:aws:lambda:eu-west-1:123456789012:layer:otel:7"]`, `layers: [` + strings.Repeat(`"arn:aws:lambda:eu-west-1:123456789012:layer:otel:7",`, 6) + `]`, "lists 6 layers; Lambda takes at most 5"},
		"architecture":     {"[arm64]", "[sparc]", `architectures[0]: "sparc" is not an architecture`},
		"two arches":       {"[arm64]", "[arm64, x86_64]", "architectures: must be a list of one architecture"},
		"environment size": {"GREETING: hello", "GREETING: " + strings.Repeat("x", 4100), "environment: is 4"},
	} {
		t.Run(name, func(t *testing.T) {
			body := strings.Replace(configured, tc.from, tc.to, 1)
			if body == configured {
				t.Fatalf("%q is not in the manifest", tc.from)
			}
			_, err := manifest.Load(write(t, body))
			var me *manifest.Error
			if !errors.As(err, &me) {
				t.Fatalf("Load = %v, want a *manifest.Error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}
