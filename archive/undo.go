package archive

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// All or nothing. Extracting into an existing directory (Unpack with
// Root: docker cp, PUT archive, a build's COPY) keeps a log of what it
// does, so that an entry refused half-way (a hard link to nothing, a
// full disk, a path through a file) puts the directory back as it was:
//
//   - entries it creates are removed, the last first;
//   - an entry it replaces is first renamed aside, in its own directory,
//     under a hidden name (.minidock-undo-…), renamed back on failure and
//     removed once the whole tar is in;
//   - an existing directory that an entry describes again, or in which
//     entries are made, gets back the owner, mode and times it had (its
//     extended attributes are not restored).
//
// A layer (Unpack without Root) needs none of this: its directory is new,
// and removed whole on failure.

// undoLog is the log of one extraction.
type undoLog struct {
	created []string        // names relative to dst, in creation order
	made    map[string]bool // the same, for lookups
	aside   []asideEntry    // replaced entries, in order
	dirs    []dirState      // existing directories met, as they were
	kept    map[string]bool // the same, for lookups
	tag     string          // random part of the hidden names
	seq     int
}

type asideEntry struct{ dir, name, hidden string }

type dirState struct {
	name         string
	mode         uint32
	uid, gid     int
	atime, mtime unix.Timespec
}

func newUndoLog() *undoLog {
	var b [6]byte
	rand.Read(b[:])
	return &undoLog{made: map[string]bool{}, kept: map[string]bool{}, tag: hex.EncodeToString(b[:])}
}

// create records that the extraction made name.
func (l *undoLog) create(name string) {
	if l != nil && !l.made[name] {
		l.created = append(l.created, name)
		l.made[name] = true
	}
}

// moveAside renames the existing entry base of directory dir (open as
// pfd) out of the way, unless this extraction made it (then it is simply
// replaced). It reports whether it did.
func (u *unpacker) moveAside(pfd int, dir, base, name string) (bool, error) {
	l := u.undo
	if l.made[name] {
		return false, nil
	}
	l.seq++
	hidden := fmt.Sprintf(".minidock-undo-%s-%d", l.tag, l.seq)
	if err := unix.Renameat(pfd, base, pfd, hidden); err != nil {
		return false, fmt.Errorf("move %q aside to replace it: %w", name, err)
	}
	l.aside = append(l.aside, asideEntry{dir: dir, name: base, hidden: hidden})
	return true, nil
}

// keepDir records the owner, mode and times of the existing directory
// name (relative to dst, "." for dst), open as fd, the first time the
// extraction meets it: before anything in it or about it changes.
func (u *unpacker) keepDir(name string, fd int) error {
	l := u.undo
	if l == nil || l.made[name] || l.kept[name] {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat directory %q: %w", name, err)
	}
	l.kept[name] = true
	l.dirs = append(l.dirs, dirState{name: name, mode: st.Mode &^ unix.S_IFMT, uid: int(st.Uid), gid: int(st.Gid), atime: st.Atim, mtime: st.Mtim})
	return nil
}

// finish ends the log: on success the entries moved aside are removed;
// on failure (failed true) everything is put back. It returns what went
// wrong on the way, which leaves the directory partly restored.
func (u *unpacker) finish(failed bool) error {
	l := u.undo
	u.dropCache()
	var errs []error
	if !failed {
		for _, a := range l.aside {
			if err := u.removeAt(a.dir, a.hidden); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	for i := len(l.created) - 1; i >= 0; i-- {
		dir, base := path.Split(l.created[i])
		if err := u.removeAt(dir, base); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err)
		}
	}
	for i := len(l.aside) - 1; i >= 0; i-- {
		a := l.aside[i]
		fd, err := u.openBeneath(dirOrDot(a.dir))
		if err == nil {
			err = unix.Renameat(fd, a.hidden, fd, a.name)
			unix.Close(fd)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("put %q back: %w", path.Join(a.dir, a.name), err))
		}
	}
	for i := len(l.dirs) - 1; i >= 0; i-- {
		d := l.dirs[i]
		dir, base := path.Split(d.name)
		fd, err := u.openBeneath(dirOrDot(dir))
		if err == nil {
			err = errors.Join(unix.Fchownat(fd, base, d.uid, d.gid, unix.AT_SYMLINK_NOFOLLOW),
				unix.Fchmodat(fd, base, d.mode, 0),
				unix.UtimesNanoAt(fd, base, []unix.Timespec{d.atime, d.mtime}, unix.AT_SYMLINK_NOFOLLOW))
			unix.Close(fd)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restore directory %q: %w", d.name, err))
		}
	}
	return errors.Join(errs...)
}

// removeAt removes entry base of directory dir (relative to dst), a
// directory with all it holds.
func (u *unpacker) removeAt(dir, base string) error {
	fd, err := u.openBeneath(dirOrDot(dir))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return removeAllAt(fd, base)
	}
	if err := unix.Unlinkat(fd, base, 0); err != nil {
		return fmt.Errorf("remove %q: %w", path.Join(dir, base), err)
	}
	return nil
}

func dirOrDot(dir string) string {
	if dir = strings.TrimSuffix(dir, "/"); dir == "" {
		return "."
	}
	return dir
}
