package build

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// chownIDs resolves COPY --chown's "user[:group]" in the container: a
// number is taken as it is, a name is looked up in the image's
// /etc/passwd or /etc/group. Without ":group" the group is the user's
// word again (Docker's rule: --chown=55 is 55:55). "" is 0:0.
func (t *sourceTree) chownIDs(spec string) (uid, gid int, err error) {
	if spec == "" {
		return 0, 0, nil
	}
	user, group, ok := strings.Cut(spec, ":")
	if !ok {
		group = user
	}
	if uid, err = t.lookupID("/etc/passwd", user); err != nil {
		return 0, 0, fmt.Errorf("--chown=%s: %w", spec, err)
	}
	if gid, err = t.lookupID("/etc/group", group); err != nil {
		return 0, 0, fmt.Errorf("--chown=%s: %w", spec, err)
	}
	return uid, gid, nil
}

// lookupID finds name's numeric id (third field) in a passwd or group
// file of the tree; a number needs no file.
func (t *sourceTree) lookupID(file, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("invalid id %d", n)
		}
		return n, nil
	}
	fields, err := t.lookup(file, name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(fields[2])
}

// lookup returns the fields of name's line in a passwd-like file of the
// tree.
func (t *sourceTree) lookup(file, name string) ([]string, error) {
	data, err := t.readFile(strings.TrimPrefix(file, "/"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no %s in the image to look %q up in", file, name)
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 4 && f[0] == name {
			if _, err := strconv.Atoi(f[2]); err != nil {
				return nil, fmt.Errorf("%s: bad id for %q", file, name)
			}
			return f, nil
		}
	}
	return nil, fmt.Errorf("%q not found in the image's %s", name, file)
}
