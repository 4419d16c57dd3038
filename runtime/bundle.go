package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/kernel"
	"minidock/ns"
	"minidock/rootfs"
)

// loadBundle reads <bundle>/config.json with the runtime-spec types.
// checkBundle checks it.
func loadBundle(k kernel.Calls, bundle string) (*specs.Spec, error) {
	p := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(p)
	k.Note("read", p, err)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read config.json: %w", err)
		}
		if _, serr := os.Stat(bundle); serr != nil {
			var pe *os.PathError
			if errors.As(serr, &pe) {
				serr = pe.Err
			}
			return nil, fmt.Errorf("bundle %s: %w", bundle, serr)
		}
		return nil, fmt.Errorf("bundle %s: config.json not found (make one with `minidock runtime spec`)", bundle)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("config.json in %s is not valid: %w", bundle, err)
	}
	if spec.Linux == nil {
		return nil, errors.New("config.json: linux section is missing")
	}
	return &spec, nil
}

// checkBundle refuses what the runtime cannot do faithfully (validateSpec)
// and returns the absolute rootfs path.
func checkBundle(spec *specs.Spec, bundle string) (string, error) {
	rootPath, err := validateSpec(spec, bundle)
	if err != nil {
		return "", fmt.Errorf("config.json: %w", err)
	}
	return rootPath, nil
}

// validateSpec refuses what the runtime cannot do faithfully, before
// anything is made. It returns the absolute rootfs path.
func validateSpec(spec *specs.Spec, bundle string) (string, error) {
	if spec.Root == nil || spec.Root.Path == "" {
		return "", errors.New("root.path is missing")
	}
	// process may be left out: the container is made, and start fails
	// (the OCI spec's rule).
	if spec.Process != nil && len(spec.Process.Args) == 0 {
		return "", errors.New("process.args is empty")
	}
	if spec.Linux == nil {
		return "", errors.New("linux section is missing")
	}
	if !strings.HasPrefix(spec.Version, "1.") {
		return "", fmt.Errorf("ociVersion %q: this runtime implements the 1.x runtime spec", spec.Version)
	}
	root := spec.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(bundle, root)
	}
	resolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("rootfs %s: %w", root, err)
	}
	root = resolved
	fi, err := os.Stat(root)
	if err != nil {
		return "", fmt.Errorf("rootfs %s: %w", root, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("rootfs %s is not a directory", root)
	}
	if err := ns.Validate(spec.Linux.Namespaces); err != nil {
		return "", err
	}
	nss := spec.Linux.Namespaces
	if ns.Path(nss, specs.UserNamespace) != "" {
		return "", errors.New("joining an existing user namespace (linux.namespaces user path) is not supported: setns(2) into a user namespace needs a single-threaded process")
	}
	if ns.Has(nss, specs.UserNamespace) && (len(spec.Linux.UIDMappings) == 0 || len(spec.Linux.GIDMappings) == 0) {
		return "", errors.New("a user namespace needs linux.uidMappings and linux.gidMappings")
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return "", fmt.Errorf("mount destination %q is not absolute", m.Destination)
		}
		if _, err := rootfs.Resolve(root, m.Destination); err != nil {
			return "", fmt.Errorf("mount %s: %w", m.Destination, err)
		}
	}
	if p := spec.Process; p != nil {
		if err := checkRlimits(p.Rlimits); err != nil {
			return "", err
		}
		if err := checkCaps(p.Capabilities); err != nil {
			return "", err
		}
	}
	own := map[string]bool{}
	for _, n := range nss {
		if n.Path == "" {
			own[string(n.Type)] = true
		}
	}
	if err := rootfs.CheckSysctls(spec.Linux.Sysctl, own); err != nil {
		return "", err
	}
	return root, nil
}
