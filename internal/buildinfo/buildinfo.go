// Package buildinfo says which build of seckill is running: the module version and
// the VCS revision the go command stamped into the binary.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is a binary's build.
type Info struct {
	Version   string // module version, "(devel)" for a build from a checkout
	Revision  string // VCS revision, "unknown" when not stamped (go test, go run of a file)
	Time      string // commit time, RFC 3339, or ""
	Modified  bool   // built from a checkout with uncommitted changes
	GoVersion string
}

// Get reads the running binary's build information.
func Get() Info {
	in := Info{Version: "unknown", Revision: "unknown", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	in.Version = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is one line for `seckill version` and the logs.
func (in Info) String() string {
	rev := in.Revision
	if in.Modified {
		rev += "+dirty"
	}
	s := fmt.Sprintf("seckill %s revision %s", in.Version, rev)
	if in.Time != "" {
		s += " (" + in.Time + ")"
	}
	return s + " " + in.GoVersion
}
