package ns

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SubordinateIDs reads the ranges of /etc/subuid or /etc/subgid
// (subuid(5): "name-or-id:first:count" lines) given to the user (or
// group) name or id, in file order, as mappings with ContainerID 0: the
// ids that user may map into a user namespace of its own (newuidmap
// checks them), or that --userns-remap gives containers.
func SubordinateIDs(file, name string, id int) []specs.LinuxIDMapping {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []specs.LinuxIDMapping
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Split(strings.TrimSpace(s.Text()), ":")
		if len(fields) != 3 || (fields[0] != name && fields[0] != strconv.Itoa(id)) || fields[0] == "" {
			continue
		}
		first, e1 := strconv.ParseUint(fields[1], 10, 32)
		count, e2 := strconv.ParseUint(fields[2], 10, 32)
		if e1 == nil && e2 == nil && count > 0 {
			out = append(out, specs.LinuxIDMapping{HostID: uint32(first), Size: uint32(count)})
		}
	}
	return out
}
