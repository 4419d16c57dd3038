package volume

import (
	"fmt"
	"strconv"
	"strings"

	"minidock/api"
)

// tmpfs mounts (`--tmpfs /run:size=64m`, `--mount type=tmpfs`) are a new
// memory filesystem at each start: the runtime mounts them from the
// config.json entry Spec writes, with Docker's defaults noexec, nosuid,
// nodev, which the options given may override (exec).

// tmpfsDefaults are Docker's options for every tmpfs mount.
var tmpfsDefaults = []string{"noexec", "nosuid", "nodev", "rprivate"}

// tmpfsData turns --mount's tmpfs options into mount data, as Docker
// does: the size with the largest unit that divides it, the mode in
// octal.
func tmpfsData(o *api.TmpfsOptions, readOnly bool) string {
	var opts []string
	if readOnly {
		opts = append(opts, "ro")
	}
	if o == nil {
		return strings.Join(opts, ",")
	}
	if o.Mode != 0 {
		// the number as given, sticky bit 01000 and all (not Go's ModeSticky)
		opts = append(opts, fmt.Sprintf("mode=%o", uint32(o.Mode)))
	}
	if n := o.SizeBytes; n != 0 {
		suffix := ""
		for _, u := range []struct {
			s string
			d int64
		}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
			if n%u.d == 0 {
				n, suffix = n/u.d, u.s
				break
			}
		}
		opts = append(opts, fmt.Sprintf("size=%d%s", n, suffix))
	}
	for _, opt := range o.Options {
		opts = append(opts, strings.Join(opt, "="))
	}
	return strings.Join(opts, ",")
}

// tmpfsFlags are the flags a tmpfs mount's data may hold besides its own
// key=value options.
var tmpfsFlags = map[string]bool{
	"ro": true, "rw": true, "exec": true, "noexec": true, "suid": true, "nosuid": true, "dev": true, "nodev": true,
	"sync": true, "async": true, "dirsync": true, "atime": true, "noatime": true, "diratime": true, "nodiratime": true,
	"relatime": true, "norelatime": true, "strictatime": true, "nostrictatime": true,
	"private": true, "rprivate": true, "shared": true, "rshared": true, "slave": true, "rslave": true,
	// tmpfs's own flags
	"noswap": true, "inode32": true, "inode64": true, "usrquota": true, "grpquota": true,
}

// validateTmpfsData checks tmpfs mount data ("size=64m,mode=1777,exec"):
// the flags known, size and the counts numbers the kernel reads, mode
// octal, uid and gid numbers.
func validateTmpfsData(data string) error {
	if data == "" {
		return nil
	}
	for _, opt := range strings.Split(data, ",") {
		key, val, hasValue := strings.Cut(opt, "=")
		if !hasValue {
			if !tmpfsFlags[key] {
				return fmt.Errorf("unknown tmpfs option %q", opt)
			}
			continue
		}
		var err error
		switch key {
		case "size":
			if p, ok := strings.CutSuffix(val, "%"); ok {
				_, err = strconv.ParseUint(p, 10, 64)
			} else {
				err = memSize(val)
			}
			if err != nil {
				return fmt.Errorf("invalid tmpfs size %q: a number of bytes with an optional k, m or g suffix, or a percentage of memory", val)
			}
		case "nr_blocks", "nr_inodes":
			if memSize(val) != nil {
				return fmt.Errorf("invalid tmpfs %s %q: a number with an optional k, m or g suffix", key, val)
			}
		case "mode":
			if _, err := strconv.ParseUint(val, 8, 32); err != nil {
				return fmt.Errorf("invalid tmpfs mode %q: an octal number", val)
			}
		case "uid", "gid":
			if _, err := strconv.ParseUint(val, 10, 32); err != nil {
				return fmt.Errorf("invalid tmpfs %s %q: a number", key, val)
			}
		case "mpol", "huge", "usrquota_block_hardlimit", "usrquota_inode_hardlimit", "grpquota_block_hardlimit", "grpquota_inode_hardlimit":
		default:
			return fmt.Errorf("unknown tmpfs option %q", opt)
		}
	}
	return nil
}

// memSize checks a number as the kernel's memparse reads it: digits and
// an optional k, m, g, t, p or e (either case).
func memSize(s string) error {
	if n := len(s); n > 0 && strings.ContainsRune("kKmMgGtTpPeE", rune(s[n-1])) {
		s = s[:n-1]
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err
}

// tmpfsOptions are the config.json options of a tmpfs mount: Docker's
// defaults, then data; of two options that contradict (noexec, exec) or
// set the same key (size=), the later wins.
func tmpfsOptions(data string) []string {
	all := append([]string{}, tmpfsDefaults...)
	if data != "" {
		all = append(all, strings.Split(data, ",")...)
	}
	var out []string
	seen := map[string]int{} // key -> index in out
	for _, opt := range all {
		key := optionKey(opt)
		if i, ok := seen[key]; ok {
			out[i] = opt
			continue
		}
		seen[key] = len(out)
		out = append(out, opt)
	}
	return out
}

// optionKey names what an option sets: "size" for size=64m, "exec" for
// both exec and noexec, "propagation" for rprivate and its kin.
func optionKey(opt string) string {
	if k, _, ok := strings.Cut(opt, "="); ok {
		return k
	}
	switch opt {
	case "private", "rprivate", "shared", "rshared", "slave", "rslave":
		return "propagation"
	case "rw":
		return "ro"
	case "norelatime", "nostrictatime":
		return strings.TrimPrefix(opt, "no")
	case "async":
		return "sync"
	}
	if strings.HasPrefix(opt, "no") && tmpfsFlags[strings.TrimPrefix(opt, "no")] {
		return strings.TrimPrefix(opt, "no")
	}
	return opt
}
