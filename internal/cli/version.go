package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at release time with -ldflags "-X github.com/aviary-deploy/aviary/internal/cli.version=v1.2.3".
var version = ""

type versionCmd struct {
	outputFlags
}

// versionOutput is `aviary version -o json`.
type versionOutput struct {
	v1
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Go       string `json:"go"`
}

func buildVersion() versionOutput {
	out := versionOutput{Version: version, OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if out.Version == "" {
			out.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				out.Revision = s.Value[:12]
			}
		}
	}
	if out.Version == "" || out.Version == "(devel)" {
		out.Version = "dev"
	}
	return out
}

// versionString is what `aviary version` and `aviary --version` print.
func versionString() string {
	v := buildVersion()
	s := v.Version
	if v.Revision != "" {
		s += " (" + v.Revision + ")"
	}
	return fmt.Sprintf("aviary %s %s/%s %s", s, v.OS, v.Arch, v.Go)
}

func (c *versionCmd) Run(e *env) error {
	if c.json() {
		v := buildVersion()
		return writeJSON(e.stdout, &v)
	}
	_, err := fmt.Fprintln(e.stdout, versionString())
	return err
}
